//! The fused per-channel ops (`channel_affine`, `batch_norm_train`) against naive f64
//! references and finite differences, for every gradient they produce.
#![allow(clippy::needless_range_loop)]

mod common;

use candle_core::{DType, Device, ModuleT, Tensor};
use common::{assert_close, check_fd, flat, rnd, tensor, var};
use dlsia_ops::nn::BatchNorm;
use dlsia_ops::{batch_norm_train, channel_affine, ParamStore};

/// Index of channel of flat element `i` of an `(N, C, S)` buffer.
fn chan(i: usize, c: usize, s: usize) -> usize {
    (i / s) % c
}

fn naive_affine(x: &[f64], a: &[f64], b: &[f64], c: usize, s: usize) -> Vec<f64> {
    x.iter()
        .enumerate()
        .map(|(i, v)| v * a[chan(i, c, s)] + b[chan(i, c, s)])
        .collect()
}

fn naive_bn(
    x: &[f64],
    w: &[f64],
    b: &[f64],
    c: usize,
    s: usize,
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let mut mean = vec![0.0; c];
    let mut cnt = vec![0.0; c];
    for (i, v) in x.iter().enumerate() {
        mean[chan(i, c, s)] += v;
        cnt[chan(i, c, s)] += 1.0;
    }
    for k in 0..c {
        mean[k] /= cnt[k];
    }
    let mut var = vec![0.0; c];
    for (i, v) in x.iter().enumerate() {
        var[chan(i, c, s)] += (v - mean[chan(i, c, s)]).powi(2);
    }
    for k in 0..c {
        var[k] /= cnt[k];
    }
    let y = x
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let k = chan(i, c, s);
            (v - mean[k]) / (var[k] + eps).sqrt() * w[k] + b[k]
        })
        .collect();
    (y, mean, var)
}

/// `Σ y·g` with its autograd gradients for the given variables.
fn grads(y: &Tensor, g: &[f64], vars: &[&Tensor]) -> Vec<Vec<f64>> {
    let gs = (y * tensor(g, y.dims()))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    vars.iter().map(|v| flat(gs.get(v).unwrap())).collect()
}

#[test]
fn channel_affine_matches_naive_and_finite_differences() {
    for dims in [vec![2usize, 3, 5], vec![2, 3, 4, 3], vec![1, 2, 3, 2, 2]] {
        let (c, s) = (dims[1], dims[2..].iter().product::<usize>());
        let n: usize = dims.iter().product();
        let (xs, a, b, gy) = (rnd(n, 1), rnd(c, 2), rnd(c, 3), rnd(n, 4));
        let (x, av, bv) = (var(&xs, &dims), var(&a, &[c]), var(&b, &[c]));
        let y = channel_affine(x.as_tensor(), Some(av.as_tensor()), Some(bv.as_tensor())).unwrap();
        assert_close(
            "affine y",
            &flat(&y),
            &naive_affine(&xs, &a, &b, c, s),
            1e-14,
        );
        let g = grads(&y, &gy, &[x.as_tensor(), av.as_tensor(), bv.as_tensor()]);
        let dot = |v: &[f64]| v.iter().zip(&gy).map(|(p, q)| p * q).sum::<f64>();
        check_fd(
            "affine dx",
            &xs,
            &g[0],
            |v| dot(&naive_affine(v, &a, &b, c, s)),
            1e-7,
        );
        check_fd(
            "affine da",
            &a,
            &g[1],
            |v| dot(&naive_affine(&xs, v, &b, c, s)),
            1e-7,
        );
        check_fd(
            "affine db",
            &b,
            &g[2],
            |v| dot(&naive_affine(&xs, &a, v, c, s)),
            1e-7,
        );
        // Shift only (the convolution bias path) and scale only.
        let y = channel_affine(x.as_tensor(), None, Some(bv.as_tensor())).unwrap();
        let ones = vec![1.0; c];
        assert_close(
            "shift-only y",
            &flat(&y),
            &naive_affine(&xs, &ones, &b, c, s),
            1e-14,
        );
        let g = grads(&y, &gy, &[x.as_tensor(), bv.as_tensor()]);
        assert_close("shift-only dx", &g[0], &gy, 1e-14);
        check_fd(
            "shift-only db",
            &b,
            &g[1],
            |v| dot(&naive_affine(&xs, &ones, v, c, s)),
            1e-7,
        );
        let y = channel_affine(x.as_tensor(), Some(av.as_tensor()), None).unwrap();
        let g = grads(&y, &gy, &[av.as_tensor()]);
        let zeros = vec![0.0; c];
        check_fd(
            "scale-only da",
            &a,
            &g[0],
            |v| dot(&naive_affine(&xs, v, &zeros, c, s)),
            1e-7,
        );
    }
}

#[test]
fn batch_norm_train_matches_naive_and_finite_differences() {
    let eps = 1e-5;
    for dims in [vec![3usize, 2, 4], vec![2, 3, 3, 4], vec![2, 2, 2, 3, 2]] {
        let (c, s) = (dims[1], dims[2..].iter().product::<usize>());
        let n: usize = dims.iter().product();
        let xs: Vec<f64> = rnd(n, 11).iter().map(|v| 3.0 * v + 0.7).collect();
        let (w, b, gy) = (rnd(c, 12), rnd(c, 13), rnd(n, 14));
        let (x, wv, bv) = (var(&xs, &dims), var(&w, &[c]), var(&b, &[c]));
        let out = batch_norm_train(
            x.as_tensor(),
            Some(wv.as_tensor()),
            Some(bv.as_tensor()),
            eps,
        )
        .unwrap();
        let (y0, m0, v0) = naive_bn(&xs, &w, &b, c, s, eps);
        assert_close("bn y", &flat(&out.y), &y0, 1e-12);
        assert_close("bn mean", &flat(&out.mean), &m0, 1e-13);
        assert_close("bn var", &flat(&out.var), &v0, 1e-13);
        let g = grads(
            &out.y,
            &gy,
            &[x.as_tensor(), wv.as_tensor(), bv.as_tensor()],
        );
        let dot = |v: &[f64]| v.iter().zip(&gy).map(|(p, q)| p * q).sum::<f64>();
        check_fd(
            "bn dx",
            &xs,
            &g[0],
            |v| dot(&naive_bn(v, &w, &b, c, s, eps).0),
            1e-6,
        );
        check_fd(
            "bn dw",
            &w,
            &g[1],
            |v| dot(&naive_bn(&xs, v, &b, c, s, eps).0),
            1e-6,
        );
        check_fd(
            "bn db",
            &b,
            &g[2],
            |v| dot(&naive_bn(&xs, &w, v, c, s, eps).0),
            1e-6,
        );
        // Without affine parameters.
        let out = batch_norm_train(x.as_tensor(), None, None, eps).unwrap();
        let (ones, zeros) = (vec![1.0; c], vec![0.0; c]);
        let g = grads(&out.y, &gy, &[x.as_tensor()]);
        check_fd(
            "bn dx (no affine)",
            &xs,
            &g[0],
            |v| dot(&naive_bn(v, &ones, &zeros, c, s, eps).0),
            1e-6,
        );
    }
}

#[test]
fn f32_batch_norm_agrees_with_f64() {
    let dims = [4usize, 3, 16, 16];
    let n: usize = dims.iter().product();
    let xs: Vec<f64> = rnd(n, 21).iter().map(|v| 50.0 + 2.0 * v).collect();
    let (w, b) = (rnd(3, 22), rnd(3, 23));
    let (y64, _, _) = naive_bn(&xs, &w, &b, 3, 256, 1e-5);
    let f = |v: &[f64], d: &[usize]| tensor(v, d).to_dtype(DType::F32).unwrap();
    let out =
        batch_norm_train(&f(&xs, &dims), Some(&f(&w, &[3])), Some(&f(&b, &[3])), 1e-5).unwrap();
    // A large mean does not cost precision: statistics accumulate in f64.
    assert_close("f32 bn", &flat(&out.y), &y64, 1e-5);
}

#[test]
fn eval_mode_batch_norm_gradients_reach_weight_and_bias() {
    let dims = [2usize, 3, 4, 4];
    let n: usize = dims.iter().product();
    let xs = rnd(n, 31);
    let gy = rnd(n, 32);
    let store = ParamStore::with_dtype(1, &Device::Cpu, DType::F64);
    let bn = BatchNorm::new(&store.root(), 3).unwrap();
    // Non-trivial running statistics and affine parameters.
    let set = |name: &str, v: Vec<f64>| store.get(name).unwrap().set(&tensor(&v, &[3])).unwrap();
    set("running_mean", vec![0.3, -0.2, 0.1]);
    set("running_var", vec![0.5, 2.0, 1.5]);
    set("weight", vec![1.5, -0.5, 0.8]);
    set("bias", vec![0.1, 0.2, -0.3]);
    let x = var(&xs, &dims);
    let y = bn.forward_t(x.as_tensor(), false).unwrap();
    let (w, b) = (store.get("weight").unwrap(), store.get("bias").unwrap());
    let expect: Vec<f64> = xs
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let k = chan(i, 3, 16);
            let (m, s2, ww, bb) = (
                [0.3, -0.2, 0.1][k],
                [0.5, 2.0, 1.5][k],
                [1.5, -0.5, 0.8][k],
                [0.1, 0.2, -0.3][k],
            );
            (v - m) / (s2 + 1e-5f64).sqrt() * ww + bb
        })
        .collect();
    assert_close("eval y", &flat(&y), &expect, 1e-13);
    let g = grads(&y, &gy, &[x.as_tensor(), w.as_tensor(), b.as_tensor()]);
    let mut gb = [0.0; 3];
    let mut gw = [0.0; 3];
    for (i, v) in xs.iter().enumerate() {
        let k = chan(i, 3, 16);
        gb[k] += gy[i];
        gw[k] += gy[i] * (v - [0.3, -0.2, 0.1][k]) / ([0.5, 2.0, 1.5][k] + 1e-5f64).sqrt();
    }
    assert_close("eval db", &g[2], &gb, 1e-12);
    assert_close("eval dw", &g[1], &gw, 1e-12);
}

#[test]
fn bad_arguments_are_errors() {
    let x = Tensor::zeros((2, 3, 4), DType::F32, &Device::Cpu).unwrap();
    let v2 = Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap();
    let v3_64 = Tensor::zeros(3, DType::F64, &Device::Cpu).unwrap();
    let e = channel_affine(&x, Some(&v2), None).unwrap_err().to_string();
    assert!(e.contains("(3,)"), "{e}");
    assert!(channel_affine(&x, None, Some(&v3_64)).is_err());
    assert!(channel_affine(
        &Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap(),
        None,
        None
    )
    .is_err());
    let one = Tensor::zeros((1, 3, 1), DType::F32, &Device::Cpu).unwrap();
    let e = batch_norm_train(&one, None, None, 1e-5)
        .unwrap_err()
        .to_string();
    assert!(e.contains("more than 1 value per channel"), "{e}");
    assert!(batch_norm_train(&x, None, None, 0.0).is_err());
    assert!(batch_norm_train(&x, Some(&v2), None, 1e-5).is_err());
}
