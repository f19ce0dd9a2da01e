//! Criterion benchmarks of the standard network workloads (`../shared/peer/README.md`):
//! W3 (TUNet 2-D), W5 (MSAE), W6 (TUNet 3-D); inference (`predict`) and one training step
//! (forward + loss + backward + Adam). `cargo xtask bench nets` runs the same workloads beside
//! the PyTorch original and prints the ratio.
//!
//! `cargo bench -p dlsia-nets --bench nets` (set `RAYON_NUM_THREADS=2` to match the peer).

use candle_core::{DType, Device, Tensor};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use criterion::{criterion_group, criterion_main, Criterion};
use dlsia_nets::{MsaeConfig, Topology, TuNetConfig};

struct Workload {
    name: &'static str,
    topology: Topology,
    input: Vec<usize>,
    /// Classes for cross-entropy; `None` = MSE against the input.
    classes: Option<usize>,
}

fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            name: "W3 tunet2d d4 b16 4x1x256x256",
            topology: Topology::TuNet(TuNetConfig::new(&[256, 256], 1, 2, 4, 16)),
            input: vec![4, 1, 256, 256],
            classes: Some(2),
        },
        Workload {
            name: "W5 msae 64x1x64x64",
            topology: Topology::MsAutoencoder(MsaeConfig::new(&[1, 64, 64], 4, 16, 2.0, 16, 5, 1)),
            input: vec![64, 1, 64, 64],
            classes: None,
        },
        Workload {
            name: "W6 tunet3d d3 b8 1x1x64^3",
            topology: Topology::TuNet(TuNetConfig::new(&[64, 64, 64], 1, 2, 3, 8)),
            input: vec![1, 1, 64, 64, 64],
            classes: Some(2),
        },
    ]
}

/// Deterministic pseudo-random values in [0, 1).
fn uniform(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// Mean cross-entropy of `(N, C, …)` logits against a one-hot `(N, C, …)` target.
fn cross_entropy(logits: &Tensor, onehot: &Tensor) -> Tensor {
    let logp = candle_nn::ops::log_softmax(logits, 1).unwrap();
    let n = (logits.elem_count() / logits.dim(1).unwrap()) as f64;
    ((logp * onehot).unwrap().sum_all().unwrap() * (-1.0 / n)).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("nets");
    g.sample_size(10);
    for w in workloads() {
        let net = w.topology.build(0, &Device::Cpu).unwrap();
        let x = uniform(&w.input, 1);
        let target = match w.classes {
            Some(k) => {
                let mut shape = w.input.clone();
                shape[1] = k;
                let u = uniform(&shape, 2);
                let hot = u.broadcast_eq(&u.max_keepdim(1).unwrap()).unwrap();
                hot.to_dtype(DType::F32).unwrap()
            }
            None => x.clone(),
        };
        g.bench_function(format!("{} forward", w.name), |b| {
            b.iter(|| net.predict(&x).unwrap())
        });
        let mut opt = AdamW::new(
            net.params().trainable_vars(),
            ParamsAdamW {
                lr: 1e-3,
                weight_decay: 0.0,
                ..Default::default()
            },
        )
        .unwrap();
        g.bench_function(format!("{} train step", w.name), |b| {
            b.iter(|| {
                let y = net.forward_t(&x, true).unwrap();
                let loss = match w.classes {
                    Some(_) => cross_entropy(&y, &target),
                    None => (y - &target).unwrap().sqr().unwrap().mean_all().unwrap(),
                };
                opt.backward_step(&loss).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
