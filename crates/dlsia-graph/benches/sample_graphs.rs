//! Sampling speed. The PyTorch original's graph sampling for the same settings is timed by
//! `tools/export_sms_graph.py --bench` (see BENCHMARKS.md, "SMSNet graphs").
//!
//! cargo bench -p dlsia-graph --bench sample_graphs

use criterion::{criterion_group, criterion_main, Criterion};
use dlsia_graph::{
    count_parameters, draw, sample_ensemble, CountSpec, EnsembleParams, SmsGraphParams, SpatialDims,
};
use std::hint::black_box;

fn benches(c: &mut Criterion) {
    // W4's setting: 16 layers, dilations 1–4, 6 hidden channels, the ensemble's connections.
    let w4 = EnsembleParams::new(1, 1, 2, 16)
        .graph_params()
        .check()
        .unwrap();
    let default10 = SmsGraphParams::new(10, vec![1, 2, 4]).check().unwrap();
    let mut seed = 0u64;
    c.bench_function("sample_graph/w4_16_layers", |b| {
        b.iter(|| {
            seed += 1;
            black_box(w4.sample(seed))
        })
    });
    c.bench_function("sample_graph/default_10_layers", |b| {
        b.iter(|| {
            seed += 1;
            black_box(default10.sample(seed))
        })
    });
    let g = w4.sample(2);
    let spec = CountSpec::new(1, 2, SpatialDims::Two);
    c.bench_function("count_parameters/w4", |b| {
        b.iter(|| count_parameters(black_box(&g), &spec).unwrap())
    });
    c.bench_function("to_svg/w4", |b| b.iter(|| draw::to_svg(black_box(&g))));
    let mut bounded = EnsembleParams::new(5, 1, 2, 16);
    bounded.parameter_bounds = Some((40_000, 50_000));
    c.bench_function("ensemble/5_networks_40k_50k", |b| {
        b.iter(|| {
            seed += 1;
            black_box(sample_ensemble(&bounded, seed).unwrap())
        })
    });
}

criterion_group! {
    name = group;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(group);
