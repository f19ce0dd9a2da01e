//! Criterion benchmark of connected-component labelling (26-connected) on 256³ multilabel
//! volumes, 1 and 2 threads: `structured` (white noise box-blurred three times, cut at its
//! quartiles into values 0..3) and `noise` (independent values 0..3). The 512³ comparison with
//! cc3d, with peak memory, is `tools/bench_ccl.py`.
//!
//! ```text
//! cargo bench -p dlsia-analysis --bench ccl
//! ```

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dlsia_analysis::ccl::{connected_components, Connectivity};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const N: usize = 256;

fn box_blur_axis(v: &[f32], stride: usize, len: usize, radius: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for (i, o) in out.iter_mut().enumerate() {
        let pos = (i / stride) % len;
        let lo = pos.saturating_sub(radius);
        let hi = (pos + radius).min(len - 1);
        let base = i - pos * stride;
        let s: f32 = (lo..=hi).map(|p| v[base + p * stride]).sum();
        *o = s / (hi - lo + 1) as f32;
    }
    out
}

fn volumes() -> Vec<(&'static str, Vec<u8>)> {
    let mut rng = StdRng::seed_from_u64(0);
    let n3 = N * N * N;
    let noise: Vec<u8> = (0..n3).map(|_| rng.random_range(0..4)).collect();
    let mut f: Vec<f32> = (0..n3).map(|_| rng.random::<f32>()).collect();
    for _ in 0..3 {
        for stride in [1, N, N * N] {
            f = box_blur_axis(&f, stride, N, 1);
        }
    }
    let mut sorted: Vec<f32> = f.iter().step_by(97).copied().collect();
    sorted.sort_by(f32::total_cmp);
    let q = [1, 2, 3].map(|k| sorted[k * sorted.len() / 4]);
    let structured = f
        .iter()
        .map(|&x| q.iter().filter(|&&t| x >= t).count() as u8)
        .collect();
    vec![("structured", structured), ("noise", noise)]
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("ccl_26_256cubed");
    g.sample_size(10);
    g.throughput(Throughput::Elements((N * N * N) as u64));
    for (name, vol) in volumes() {
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            g.bench_with_input(
                BenchmarkId::new(name, format!("{threads}t")),
                &vol,
                |b, v| {
                    b.iter(|| {
                        pool.install(|| {
                            connected_components(v, &[N, N, N], Connectivity::TwentySix).unwrap()
                        })
                    })
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
