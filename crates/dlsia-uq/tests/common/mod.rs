//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub fn dev() -> Device {
    Device::Cpu
}

pub fn fixtures() -> HashMap<String, Tensor> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/dlsia_uq.safetensors"
    );
    candle_core::safetensors::load(path, &dev()).unwrap()
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
    assert_eq!(a.dims(), b.dims());
    flat(a)
        .iter()
        .zip(flat(b))
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Approximately normal values (Irwin–Hall), f32.
pub fn randn(shape: &[usize], scale: f32, rng: &mut StdRng) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| ((0..6).map(|_| rng.random::<f32>()).sum::<f32>() - 3.0) * scale)
        .collect();
    Tensor::from_vec(v, shape, &dev()).unwrap()
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Softmax probabilities `(1, C, m)` and labels `(1, m)` drawn from them: an exchangeable
/// sample of `m` pixels for which the probabilities are calibrated.
pub fn synthetic_pixels(c: usize, m: usize, rng: &mut StdRng) -> (Tensor, Tensor) {
    let mut probs = vec![0f32; c * m];
    let mut labels = vec![0i64; m];
    for i in 0..m {
        let logits: Vec<f32> = (0..c)
            .map(|_| ((0..6).map(|_| rng.random::<f32>()).sum::<f32>() - 3.0) * 2.5)
            .collect();
        let mx = logits.iter().cloned().fold(f32::MIN, f32::max);
        let e: Vec<f32> = logits.iter().map(|l| (l - mx).exp()).collect();
        let z: f32 = e.iter().sum();
        let mut u = rng.random::<f32>();
        labels[i] = (c - 1) as i64;
        for k in 0..c {
            let p = e[k] / z;
            probs[k * m + i] = p;
            if u < p && labels[i] == (c - 1) as i64 {
                labels[i] = k as i64;
                u = f32::MAX;
            } else {
                u -= p;
            }
        }
    }
    (
        Tensor::from_vec(probs, (1, c, m), &dev()).unwrap(),
        Tensor::from_vec(labels, (1, m), &dev()).unwrap(),
    )
}
