//! Helpers shared by the integration tests: seeded random tensors, fixtures, finite differences.
#![allow(dead_code)]

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var};
use dlsia_losses::Loss;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub fn dev() -> Device {
    Device::Cpu
}

/// Standard-normal-ish values (sum of uniforms) from a seeded generator, as f64.
pub fn randn(shape: &[usize], scale: f64, seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|_| {
            let s: f64 = (0..6).map(|_| rng.random::<f64>()).sum();
            (s - 3.0) * scale
        })
        .collect();
    Tensor::from_vec(v, shape, &dev()).unwrap()
}

/// Uniform values in `[lo, hi)`, f64.
pub fn uniform(shape: &[usize], lo: f64, hi: f64, seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|_| lo + (hi - lo) * rng.random::<f64>())
        .collect();
    Tensor::from_vec(v, shape, &dev()).unwrap()
}

/// Integer labels in `0..classes`, with a fraction set to −1.
pub fn labels(shape: &[usize], classes: usize, missing: f64, seed: u64) -> Tensor {
    let mut rng = StdRng::seed_from_u64(seed);
    let n: usize = shape.iter().product();
    let v: Vec<i64> = (0..n)
        .map(|_| {
            if rng.random::<f64>() < missing {
                -1
            } else {
                rng.random_range(0..classes as i64)
            }
        })
        .collect();
    Tensor::from_vec(v, shape, &dev()).unwrap()
}

pub fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

pub fn flat(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    flat(a)
        .iter()
        .zip(flat(b))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

pub fn assert_close(got: f64, want: f64, tol: f64, what: &str) {
    assert!(
        (got - want).abs() <= tol * (1.0 + want.abs()),
        "{what}: got {got}, want {want} (tol {tol})"
    );
}

/// The loss value and its gradient with respect to the prediction.
pub fn value_and_grad(
    loss: &dyn Loss,
    x: &Tensor,
    target: &Tensor,
    mask: Option<&Tensor>,
) -> (f64, Tensor) {
    let var = Var::from_tensor(x).unwrap();
    let l = loss.loss(var.as_tensor(), target, mask).unwrap();
    let grads = l.backward().unwrap();
    let g = grads
        .get(var.as_tensor())
        .cloned()
        .unwrap_or_else(|| x.zeros_like().unwrap());
    (scalar(&l), g)
}

/// Checks autograd against central finite differences (f64 prediction), every element.
pub fn fd_check(loss: &dyn Loss, x: &Tensor, target: &Tensor, mask: Option<&Tensor>, tol: f64) {
    assert_eq!(x.dtype(), DType::F64);
    let (_, g) = value_and_grad(loss, x, target, mask);
    let g = flat(&g);
    let base = flat(x);
    let h = 1e-6;
    let eval = |v: &[f64]| {
        let t = Tensor::from_vec(v.to_vec(), x.shape(), &dev()).unwrap();
        scalar(&loss.loss(&t, target, mask).unwrap())
    };
    let mut worst = 0.0f64;
    for i in 0..base.len() {
        let mut p = base.clone();
        p[i] += h;
        let mut m = base.clone();
        m[i] -= h;
        let fd = (eval(&p) - eval(&m)) / (2.0 * h);
        let err = (fd - g[i]).abs() / (1.0 + fd.abs());
        worst = worst.max(err);
        assert!(
            err <= tol,
            "element {i}: finite difference {fd}, autograd {}",
            g[i]
        );
    }
    assert!(worst.is_finite());
}

pub fn fixtures() -> HashMap<String, Tensor> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dlsia_losses.safetensors"
    );
    candle_core::safetensors::load(path, &dev()).unwrap()
}

pub fn fixture_scalar(f: &HashMap<String, Tensor>, name: &str) -> f64 {
    flat(&f[name])[0]
}
