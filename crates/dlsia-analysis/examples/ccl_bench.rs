//! Times connected-component labelling of a raw `u8` volume and reports peak memory.
//!
//! ```text
//! cargo run --release -p dlsia-analysis --example ccl_bench -- \
//!     VOLUME.u8 DEPTH HEIGHT WIDTH THREADS REPEATS [CONNECTIVITY] [EXPECTED.u32]
//! ```
//!
//! Prints one JSON line: median and best wall seconds, median CPU seconds (all threads), voxels per second, component count and the
//! process's peak resident memory (VmHWM). With `EXPECTED.u32` (raw little-endian labels, e.g.
//! from cc3d) it also checks that the labels are identical. `tools/bench_ccl.py` drives it.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use dlsia_analysis::ccl::{connected_components, Connectivity};

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU time of all the process's threads so far, in seconds (Linux schedstat).
fn cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e9
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 6 {
        bail!("usage: ccl_bench VOLUME.u8 D H W THREADS REPEATS [6|18|26] [EXPECTED.u32]");
    }
    let path = &args[0];
    let shape: Vec<usize> = args[1..4]
        .iter()
        .map(|s| s.parse())
        .collect::<std::result::Result<_, _>>()
        .context("D H W must be integers")?;
    let threads: usize = args[4].parse()?;
    let repeats: usize = args[5].parse()?;
    let connectivity = match args.get(6).map(String::as_str).unwrap_or("26") {
        "6" => Connectivity::Six,
        "18" => Connectivity::Eighteen,
        "26" => Connectivity::TwentySix,
        other => bail!("connectivity {other} must be 6, 18 or 26"),
    };
    let volume = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    let mut last = None;
    for _ in 0..repeats {
        drop(last.take()); // free the previous result before the next run
        let (t, c) = (Instant::now(), cpu_seconds());
        let l = pool.install(|| connected_components(&volume, &shape, connectivity))?;
        times.push(t.elapsed().as_secs_f64());
        cpu.push(cpu_seconds() - c);
        last = Some(l);
    }
    let labels = last.context("REPEATS must be at least 1")?;
    let peak = peak_rss_mib(); // before reading the expected labels for the parity check
    let mut identical = serde_json::Value::Null;
    if let Some(expected_path) = args.get(7) {
        let raw = std::fs::read(expected_path)?;
        let same = raw.len() == 4 * labels.labels().len()
            && raw
                .chunks_exact(4)
                .zip(labels.labels())
                .all(|(b, &l)| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) == l);
        identical = serde_json::Value::Bool(same);
    }
    times.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let voxels = volume.len() as f64;
    println!(
        "{}",
        serde_json::json!({
            "threads": threads,
            "median_s": median,
            "best_s": times[0],
            "median_cpu_s": cpu[cpu.len() / 2],
            "mvox_per_s": voxels / median / 1e6,
            "n_components": labels.n_components(),
            "peak_rss_mib": peak,
            "identical_to_expected": identical,
        })
    );
    Ok(())
}
