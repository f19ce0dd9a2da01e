//! `cargo xtask bench train`: training precision on the CPU — the dlsia-train `precision`
//! criterion benchmark (a U-Net-sized convolution forward and forward+backward, and its matrix
//! product, in f32/f16/bf16 with Candle) and, right after in the same run, its PyTorch
//! counterpart `tools/bench_precision.py` with the same shapes and threads. `uptime` is printed
//! before, between and after, since the machine is shared.
//!
//! Options: `--threads N` (2), `--no-peer`.

use std::process::Command;

use anyhow::{bail, Context, Result};

/// The PyTorch original's virtual environment (see `../shared/peer/README.md`).
const PEER_PYTHON: &str = "/root/.cache/dlsia-peer/venv/bin/python";

fn load() {
    if let Ok(out) = Command::new("uptime").output() {
        eprint!("load: {}", String::from_utf8_lossy(&out.stdout));
    }
}

/// Runs the suite with the given options.
pub fn run(args: &[String]) -> Result<()> {
    let mut threads = "2".to_string();
    let mut peer = true;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--threads" => threads = it.next().context("--threads needs a number")?.clone(),
            "--no-peer" => peer = false,
            other => bail!("unknown option {other:?} (known: --threads N, --no-peer)"),
        }
    }
    threads
        .parse::<usize>()
        .with_context(|| format!("--threads {threads:?} is not a number"))?;
    load();
    let status = Command::new("cargo")
        .args(["bench", "-p", "dlsia-train", "--bench", "precision"])
        .env("RAYON_NUM_THREADS", &threads)
        .status()
        .context("cannot start cargo bench")?;
    if !status.success() {
        bail!("the dlsia-train precision benchmark failed with {status}");
    }
    if peer {
        load();
        crate::run(PEER_PYTHON, &["tools/bench_precision.py", &threads])?;
    }
    load();
    Ok(())
}
