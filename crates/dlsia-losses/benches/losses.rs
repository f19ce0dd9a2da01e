//! Loss forward and forward+backward, and metric updates, on the standard segmentation output
//! size (4 × 2 × 256 × 256, f32, half the pixels unlabelled). The PyTorch counterpart is
//! `tools/bench_losses.py`; results and commands are in BENCHMARKS.md.

use candle_core::{Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion};
use dlsia_losses::metrics::{ConfusionMatrix, Pearson};
use dlsia_losses::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SHAPE: (usize, usize, usize, usize) = (4, 2, 256, 256);

fn inputs() -> (Tensor, Tensor) {
    let mut rng = StdRng::seed_from_u64(0);
    let (n, c, h, w) = SHAPE;
    let x: Vec<f32> = (0..n * c * h * w)
        .map(|_| rng.random::<f32>() * 4.0 - 2.0)
        .collect();
    let y: Vec<i64> = (0..n * h * w)
        .map(|_| {
            if rng.random::<f32>() < 0.5 {
                -1
            } else {
                rng.random_range(0..c as i64)
            }
        })
        .collect();
    (
        Tensor::from_vec(x, SHAPE, &Device::Cpu).unwrap(),
        Tensor::from_vec(y, (n, h, w), &Device::Cpu).unwrap(),
    )
}

fn bench_losses(c: &mut Criterion) {
    let (x, y) = inputs();
    let var = Var::from_tensor(&x).unwrap();
    let losses: Vec<(&str, Box<dyn Loss>)> = vec![
        ("cross_entropy", Box::new(CrossEntropy::default())),
        ("dice", Box::new(DiceConfig::default().build().unwrap())),
        ("focal", Box::new(FocalConfig::default().build().unwrap())),
        (
            "dice_bce",
            Box::new(DiceBceConfig::default().build().unwrap()),
        ),
    ];
    let mut g = c.benchmark_group("loss_4x2x256x256");
    g.sample_size(20);
    for (name, loss) in &losses {
        g.bench_function(format!("{name}/forward"), |b| {
            b.iter(|| loss.loss(&x, &y, None).unwrap())
        });
        g.bench_function(format!("{name}/forward_backward"), |b| {
            b.iter(|| {
                let l = loss.loss(var.as_tensor(), &y, None).unwrap();
                l.backward().unwrap()
            })
        });
        // The composed reference path (what runs on devices without the fused CPU kernels).
        g.bench_function(format!("{name}/composed_forward_backward"), |b| {
            b.iter(|| {
                without_fused_kernels(|| {
                    let l = loss.loss(var.as_tensor(), &y, None).unwrap();
                    l.backward().unwrap()
                })
            })
        });
    }
    g.finish();
}

fn bench_metrics(c: &mut Criterion) {
    let (x, y) = inputs();
    let mut g = c.benchmark_group("metric_4x2x256x256");
    g.sample_size(20);
    g.bench_function("confusion_matrix/update_from_scores", |b| {
        let mut cm = ConfusionMatrix::new(2, -1).unwrap();
        b.iter(|| cm.update_from_scores(&x, &y).unwrap())
    });
    let a = x.narrow(1, 0, 1).unwrap();
    let t = x.narrow(1, 1, 1).unwrap();
    g.bench_function("pearson/update", |b| {
        let mut r = Pearson::new();
        b.iter(|| r.update(&a, &t, None).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench_losses, bench_metrics);
criterion_main!(benches);
