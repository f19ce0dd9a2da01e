//! Conformal calibration and set-size maps, and ensemble statistics, on 4 × 4 × 256 × 256
//! class probabilities (f32). The PyTorch counterpart is `tools/bench_uq.py`; results and
//! commands are in BENCHMARKS.md.

use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use dlsia_losses::ops::softmax_channels;
use dlsia_uq::conformal::{ConformalConfig, ScoreMethod};
use dlsia_uq::{Ensemble, Predictor, ProbabilitiesFn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const N: usize = 4;
const C: usize = 4;
const H: usize = 256;

fn data(seed: u64) -> (Tensor, Tensor) {
    let mut rng = StdRng::seed_from_u64(seed);
    let logits: Vec<f32> = (0..N * C * H * H)
        .map(|_| rng.random::<f32>() * 6.0 - 3.0)
        .collect();
    let labels: Vec<i64> = (0..N * H * H)
        .map(|_| {
            if rng.random::<f32>() < 0.3 {
                -1
            } else {
                rng.random_range(0..C as i64)
            }
        })
        .collect();
    let logits = Tensor::from_vec(logits, (N, C, H, H), &Device::Cpu).unwrap();
    (
        softmax_channels(&logits).unwrap(),
        Tensor::from_vec(labels, (N, H, H), &Device::Cpu).unwrap(),
    )
}

fn bench_conformal(c: &mut Criterion) {
    let (p, l) = data(0);
    let mut g = c.benchmark_group("conformal_4x4x256x256");
    g.sample_size(10);
    for (name, method) in [
        ("lac", ScoreMethod::Lac),
        ("aps", ScoreMethod::Aps { randomized: true }),
    ] {
        let mut cfg = ConformalConfig::new(0.1);
        cfg.method = method;
        g.bench_function(format!("{name}/calibrate"), |b| {
            b.iter(|| {
                let mut cal = cfg.build().unwrap();
                cal.update(&p, &l).unwrap();
                cal.predictor().unwrap()
            })
        });
        let mut cal = cfg.build().unwrap();
        cal.update(&p, &l).unwrap();
        let cp = cal.predictor().unwrap();
        g.bench_function(format!("{name}/prediction_sets"), |b| {
            b.iter(|| cp.prediction_sets(&p).unwrap())
        });
    }
    g.finish();
}

fn bench_ensemble(c: &mut Criterion) {
    let members: Vec<Box<dyn Predictor>> = (0..5)
        .map(|i| {
            let p = data(i).0;
            Box::new(
                ProbabilitiesFn::new(C, move |_x: &Tensor| Ok::<_, candle_core::Error>(p.clone()))
                    .unwrap(),
            ) as Box<dyn Predictor>
        })
        .collect();
    let ens = Ensemble::new(members).unwrap();
    let x = Tensor::zeros((N, 1, H, H), candle_core::DType::F32, &Device::Cpu).unwrap();
    let mut g = c.benchmark_group("ensemble_5x4x4x256x256");
    g.sample_size(10);
    g.bench_function("mean_std", |b| b.iter(|| ens.stats(&x).unwrap()));
    g.finish();
}

criterion_group!(benches, bench_conformal, bench_ensemble);
criterion_main!(benches);
