//! Times the fused MSD block (wall clock and process CPU time) on one workload:
//! `cargo run --release -p dlsia-ops --example msd_profile -- [depth] [n] [size] [lpp] [reps]`.

use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use dlsia_ops::msd::{MsdBlock, MsdSpec};

fn cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let f: Vec<&str> = s
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn main() -> anyhow::Result<()> {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let depth = a.first().copied().unwrap_or(100);
    let n = a.get(1).copied().unwrap_or(4);
    let size = a.get(2).copied().unwrap_or(256);
    let lpp = a.get(3).copied().unwrap_or(4);
    let dev = Device::Cpu;
    let block = MsdBlock::new(MsdSpec::cyclic(2, 1, depth, 1, 10))?.with_layers_per_pass(lpp);
    let x = Tensor::rand(0f32, 1.0, (n, 1, size, size), &dev)?;
    let w = Var::from_tensor(&(Tensor::rand(-1f32, 1.0, block.weight_len(), &dev)? * 0.05)?)?;
    let b = Var::zeros(block.units(), DType::F32, &dev)?;
    let macs: f64 = (0..block.units())
        .map(|u| block.unit_in_channels(u) as f64 * 9.0)
        .sum::<f64>()
        * (n * size * size) as f64;
    let gflop = 2.0 * macs / 1e9;
    let reps = a.get(4).copied().unwrap_or(3);
    let mut best = (f64::MAX, f64::MAX);
    for _ in 0..reps {
        let (t, c) = (Instant::now(), cpu_seconds());
        let r = block.infer(&x, &w, &b)?;
        let (fw, fc) = (t.elapsed().as_secs_f64(), cpu_seconds() - c);
        drop(r);
        let (t, c) = (Instant::now(), cpu_seconds());
        let r = block.forward(&x, &w, &b)?;
        let loss = r.mean_all()?;
        let (t2, c2) = (Instant::now(), cpu_seconds());
        let _g = loss.backward()?;
        let (bw, bc) = (t2.elapsed().as_secs_f64(), cpu_seconds() - c2);
        let (tw, tc) = (t.elapsed().as_secs_f64(), cpu_seconds() - c);
        println!(
            "forward {fw:.3}s wall {fc:.2}s cpu ({:.1} GFLOP/cpu-s) | backward {bw:.3}s wall {bc:.2}s cpu ({:.1} GFLOP/cpu-s) | fwd+bwd {tw:.3}s wall {tc:.2}s cpu",
            gflop / fc.max(1e-9),
            2.0 * gflop / bc.max(1e-9)
        );
        best = (best.0.min(fc), best.1.min(bc));
    }
    println!(
        "best cpu: forward {:.2}s ({:.1} GFLOP/cpu-s), backward {:.2}s ({:.1} GFLOP/cpu-s)",
        best.0,
        gflop / best.0,
        best.1,
        2.0 * gflop / best.1
    );
    Ok(())
}
