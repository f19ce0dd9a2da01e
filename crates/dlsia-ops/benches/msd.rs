//! The fused MSD block on the standard MSDNet workloads (op only, no head): forward
//! (inference, no gradient tracking) and forward + backward.
//!
//! `cargo bench -p dlsia-ops --bench msd` (set `MSD_BENCH=W1` etc. to pick one workload,
//! `MSD_LPP` to change the layers per pass).

use candle_core::{DType, Device, Tensor, Var};
use criterion::{criterion_group, criterion_main, Criterion};
use dlsia_ops::msd::{MsdBlock, MsdSpec};

struct Workload {
    name: &'static str,
    spec: MsdSpec,
    input: Vec<usize>,
}

fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            name: "W1 depth100 4x1x256x256",
            spec: MsdSpec::cyclic(2, 1, 100, 1, 10),
            input: vec![4, 1, 256, 256],
        },
        Workload {
            name: "W2 depth200 1x1x512x512",
            spec: MsdSpec::cyclic(2, 1, 200, 1, 10),
            input: vec![1, 1, 512, 512],
        },
        Workload {
            name: "3D depth50 1x1x128^3",
            spec: MsdSpec::cyclic(3, 1, 50, 1, 10),
            input: vec![1, 1, 128, 128, 128],
        },
    ]
}

fn bench(c: &mut Criterion) {
    let dev = Device::Cpu;
    let pick = std::env::var("MSD_BENCH").unwrap_or_default();
    let lpp: usize = std::env::var("MSD_LPP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(dlsia_ops::msd::DEFAULT_LAYERS_PER_PASS);
    let mut g = c.benchmark_group("msd");
    g.sample_size(10);
    for wl in workloads() {
        if !pick.is_empty() && !wl.name.starts_with(&pick) {
            continue;
        }
        let block = MsdBlock::new(wl.spec.clone())
            .unwrap()
            .with_layers_per_pass(lpp);
        let x = Tensor::rand(0f32, 1.0, wl.input.as_slice(), &dev).unwrap();
        let w = Var::from_tensor(
            &(Tensor::rand(-1f32, 1.0, block.weight_len(), &dev).unwrap() * 0.05).unwrap(),
        )
        .unwrap();
        let b = Var::zeros(block.units(), DType::F32, &dev).unwrap();
        g.bench_function(format!("forward {}", wl.name), |bch| {
            bch.iter(|| block.infer(&x, &w, &b).unwrap())
        });
        g.bench_function(format!("forward+backward {}", wl.name), |bch| {
            bch.iter(|| {
                let r = block.forward(&x, &w, &b).unwrap();
                r.mean_all().unwrap().backward().unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
