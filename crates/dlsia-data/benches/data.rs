//! Criterion benchmarks of dlsia-data: tiled identity pass (in memory, the workload of
//! tools/bench_tiling_qlty.py), synthetic generators, the pixel split and loader batches.
//!
//!     cargo bench -p dlsia-data --bench data

use std::hint::black_box;

use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use dlsia_data::split::pixel_split_values;
use dlsia_data::synth::{
    fibers_in_concrete, random_shape_set, scattering_pattern, FiberConfig, ScatteringConfig,
};
use dlsia_data::tiling::{run_tiled, ArrayReader, Blend, MemoryWriter, TileConfig};
use dlsia_data::{DataLoader, LoaderConfig, TensorDataset};

fn tiling(c: &mut Criterion) {
    let n = 256usize;
    let data: Vec<f32> = (0..n * n * n).map(|i| (i % 9973) as f32).collect();
    let mut g = c.benchmark_group("tiling");
    g.sample_size(10);
    g.throughput(Throughput::Elements((n * n * n) as u64));
    for (name, blend) in [("uniform", Blend::Uniform), ("gaussian", Blend::default())] {
        g.bench_function(format!("identity_256^3_w64_s48_{name}"), |b| {
            b.iter(|| {
                let mut r = ArrayReader::new(vec![1, n, n, n], data.clone()).unwrap();
                let mut w = MemoryWriter::new();
                let cfg = TileConfig::new(64, 48, 0)
                    .with_blend(blend)
                    .with_batch_size(8);
                run_tiled(&mut r, &mut w, &cfg, &Device::Cpu, |x| Ok(x.clone())).unwrap();
                black_box(w.data()[0])
            })
        });
    }
    g.finish();
}

fn generators(c: &mut Criterion) {
    let mut g = c.benchmark_group("synth");
    g.sample_size(10);
    g.bench_function("fibers_in_concrete_128^3", |b| {
        b.iter(|| black_box(fibers_in_concrete(&FiberConfig::default()).unwrap().image[0]))
    });
    g.bench_function("random_shape_set_1000x64^2", |b| {
        b.iter(|| black_box(random_shape_set(1000, 0.1, 64, 1).unwrap()))
    });
    g.bench_function("scattering_pattern_256^2", |b| {
        b.iter(|| {
            black_box(
                scattering_pattern(&ScatteringConfig::default())
                    .unwrap()
                    .truth[0],
            )
        })
    });
    g.finish();
}

fn split_and_loader(c: &mut Criterion) {
    let labels: Vec<i64> = (0..4_000_000).map(|i| (i % 3) as i64 - 1).collect();
    c.bench_function("pixel_split_4M", |b| {
        b.iter(|| black_box(pixel_split_values(&labels, 0.5, -1, 3).unwrap().0[0]))
    });
    let imgs = Tensor::zeros((256, 1, 64, 64), DType::F32, &Device::Cpu).unwrap();
    let ds = TensorDataset::new(imgs, None, None).unwrap();
    let loader = DataLoader::new(
        ds,
        LoaderConfig {
            batch_size: 32,
            ..Default::default()
        },
    )
    .unwrap();
    c.bench_function("loader_epoch_256x64^2_b32", |b| {
        b.iter(|| loader.epoch(0).map(|x| x.unwrap().len()).sum::<usize>())
    });
}

criterion_group!(benches, tiling, generators, split_and_loader);
criterion_main!(benches);
