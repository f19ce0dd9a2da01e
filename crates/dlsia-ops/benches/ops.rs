//! Criterion benchmarks of the dlsia-ops kernels on the shapes (f32, CPU).
//!
//!     RAYON_NUM_THREADS=2 cargo bench -p dlsia-ops --bench ops
//!
//! `cargo xtask bench ops` runs the same shapes beside PyTorch and prints the ratios.

use candle_core::{Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion};
use dlsia_ops::{conv, conv_transpose, max_pool, ConvSpec, ConvTransposeSpec};

fn var(dims: &[usize], scale: f64) -> Var {
    let t = (Tensor::randn(0f32, 1.0, dims, &Device::Cpu).unwrap() * scale).unwrap();
    Var::from_tensor(&t).unwrap()
}

fn bench_conv(c: &mut Criterion, name: &str, x: &[usize], w: &[usize], spec: ConvSpec) {
    let (x, w) = (var(x, 1.0), var(w, 0.1));
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    g.bench_function("forward", |b| {
        b.iter(|| {
            conv(
                &x.as_tensor().detach(),
                &w.as_tensor().detach(),
                None,
                &spec,
            )
            .unwrap()
        })
    });
    g.bench_function("forward+backward", |b| {
        b.iter(|| {
            conv(x.as_tensor(), w.as_tensor(), None, &spec)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
        })
    });
    g.finish();
}

fn convs(c: &mut Criterion) {
    bench_conv(
        c,
        "conv2d 3x3 16->16 4x16x256^2",
        &[4, 16, 256, 256],
        &[16, 16, 3, 3],
        ConvSpec::uniform(2, 1, 1, 1),
    );
    bench_conv(
        c,
        "conv3d 3x3x3 16->16 1x16x64^3",
        &[1, 16, 64, 64, 64],
        &[16, 16, 3, 3, 3],
        ConvSpec::uniform(3, 1, 1, 1),
    );
    bench_conv(
        c,
        "dilated conv2d 3x3 d8 64->1 4x64x256^2",
        &[4, 64, 256, 256],
        &[1, 64, 3, 3],
        ConvSpec::uniform(2, 1, 8, 8),
    );
}

fn up_and_pool(c: &mut Criterion) {
    let (x, w) = (var(&[4, 32, 128, 128], 1.0), var(&[32, 16, 2, 2], 0.1));
    let spec = ConvTransposeSpec::uniform(2, 2, 0, 0, 1);
    let mut g = c.benchmark_group("conv_transpose2d 2x2 s2 32->16 4x32x128^2");
    g.sample_size(10);
    g.bench_function("forward+backward", |b| {
        b.iter(|| {
            conv_transpose(x.as_tensor(), w.as_tensor(), None, &spec)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
        })
    });
    g.finish();
    let x = var(&[1, 16, 64, 64, 64], 1.0);
    let mut g = c.benchmark_group("max_pool3d 2 1x16x64^3");
    g.sample_size(10);
    g.bench_function("forward", |b| {
        b.iter(|| max_pool(&x.as_tensor().detach(), &[2; 3], &[2; 3], &[0; 3]).unwrap())
    });
    g.bench_function("forward+backward", |b| {
        b.iter(|| {
            max_pool(x.as_tensor(), &[2; 3], &[2; 3], &[0; 3])
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, convs, up_and_pool);
criterion_main!(benches);
