//! Convolutions with a bias run as one fused op on the CPU: values and every gradient equal
//! the unfused composition (bias-free convolution, then `channel_affine` for the bias) exactly,
//! in f64 and f32, for `conv` and `conv_transpose`. (Finite-difference checks of the biased
//! convolutions are in `conv.rs`, which exercises the fused path.)

#![allow(clippy::needless_range_loop)]

mod common;

use candle_core::{DType, Device, Tensor};
use common::{flat, rnd, var_on};
use dlsia_ops::{channel_affine, conv, conv_transpose, ConvSpec, ConvTransposeSpec};

/// `Σ y·g` and the gradients of `x`, `w`, `b`.
fn run(
    dtype: DType,
    dims: (&[usize], &[usize], usize),
    f: impl Fn(&Tensor, &Tensor, Option<&Tensor>) -> Tensor,
    fused: bool,
) -> Vec<Vec<f64>> {
    let (xd, wd, c) = dims;
    let n = |d: &[usize]| d.iter().product::<usize>();
    let dev = Device::Cpu;
    let x = var_on(&rnd(n(xd), 1), xd, &dev, dtype);
    let w = var_on(&rnd(n(wd), 2), wd, &dev, dtype);
    let b = var_on(&rnd(c, 3), &[c], &dev, dtype);
    let y = if fused {
        f(x.as_tensor(), w.as_tensor(), Some(b.as_tensor()))
    } else {
        let y = f(x.as_tensor(), w.as_tensor(), None);
        channel_affine(&y, None, Some(b.as_tensor())).unwrap()
    };
    let g = Tensor::from_vec(rnd(y.elem_count(), 4), y.dims(), &dev)
        .unwrap()
        .to_dtype(dtype)
        .unwrap();
    let grads = (&y * g).unwrap().sum_all().unwrap().backward().unwrap();
    let mut out = vec![flat(&y)];
    for v in [&x, &w, &b] {
        out.push(flat(grads.get(v.as_tensor()).unwrap()));
    }
    out
}

#[test]
fn fused_bias_equals_the_separate_bias_op_exactly() {
    let spec = ConvSpec::uniform(2, 1, 1, 1);
    let tspec = ConvTransposeSpec::uniform(2, 2, 0, 0, 1);
    for dtype in [DType::F64, DType::F32] {
        let cv = |x: &Tensor, w: &Tensor, b: Option<&Tensor>| conv(x, w, b, &spec).unwrap();
        let dims: (&[usize], &[usize], usize) = (&[2, 3, 7, 6], &[4, 3, 3, 3], 4);
        assert_eq!(run(dtype, dims, cv, true), run(dtype, dims, cv, false));
        let ct =
            |x: &Tensor, w: &Tensor, b: Option<&Tensor>| conv_transpose(x, w, b, &tspec).unwrap();
        let dims: (&[usize], &[usize], usize) = (&[2, 4, 3, 5], &[4, 3, 2, 2], 3);
        assert_eq!(run(dtype, dims, ct, true), run(dtype, dims, ct, false));
    }
}
