//! Developer commands for the workspace, run as `cargo xtask <command>`.
//!
//! * `ci`: what `.ci/run` does (format check, clippy with warnings denied, the test suite).
//! * `bench` (or `bench all`): the standard workloads W1–W6 through the suites below, one table
//!   (see `bench_all.rs`).
//! * `bench mixed`: MSDNet W1/W2/W2b and SMSNet W4 against PyTorch (see `bench_mixed.rs`).
//! * `bench nets`: the dlsia-nets workloads W3/W5/W6 against PyTorch (see `bench_nets.rs`).
//! * `bench ops`: the dlsia-ops kernels against PyTorch, same shapes and threads (see `bench_ops.rs`).
//! * `bench lean`: the lean MSDNet on the MSDNet workloads against PyTorch (see `bench_lean.rs`).
//! * `bench train`: training precision (f32/f16/bf16) on the CPU against PyTorch (see `bench_train.rs`).
//! * `bench gpu`: LeanMsdNet and MsdNet against PyTorch's MSDNet on a GPU, train step and peak
//!   GPU memory (see `bench_gpu.rs`; `--device cpu --tiny` checks it without a GPU).
//! * `cuda`: installs a CUDA 13.0 toolkit from PyPI, compiles every kernel to PTX and
//!   type-checks the `cuda` features, all without a GPU (see `cuda.rs`).

mod bench_all;
mod bench_gpu;
mod bench_lean;
mod bench_mixed;
mod bench_nets;
mod bench_ops;
mod bench_proc;
mod bench_train;
mod bench_util;
mod cuda;

use std::process::Command;

use anyhow::{bail, Context, Result};

fn run(cmd: &str, args: &[&str]) -> Result<()> {
    eprintln!("$ {cmd} {}", args.join(" "));
    let status = Command::new(cmd)
        .args(args)
        .status()
        .with_context(|| format!("cannot start `{cmd}`"))?;
    if !status.success() {
        bail!("`{cmd} {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

fn ci() -> Result<()> {
    run("cargo", &["fmt", "--all", "--check"])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    run("cargo", &["test", "--workspace"])
}

/// The command list printed on a usage error.
const USAGE: &str = "usage: cargo xtask <command>

commands:
  ci           format check, clippy -D warnings, tests
  bench [all]  W1–W6 through the suites below, one table + target/bench/bench-all.json
  bench mixed  MSDNet W1/W2/W2b, SMSNet W4 vs PyTorch (2 threads)
  bench nets   dlsia-nets W3/W5/W6 vs PyTorch (2 threads)
  bench ops    dlsia-ops kernels vs PyTorch (2 threads)
  bench lean   lean MSDNet W1/W2/W2b/3-D/depth scaling vs PyTorch (2 threads)
  bench train  training precision f32/f16/bf16 on the CPU vs PyTorch (2 threads)
  bench gpu    G1 (MSDNet depth 100, 4×1×512²) train step + peak GPU memory vs PyTorch on a GPU
               (--device cpu --tiny checks it without one)
  cuda         install CUDA 13.0 nvcc (PyPI), compile kernels for sm_80/sm_90, check --features cuda";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("cuda") => cuda::run(&args[1..]),
        Some("bench") => match args.get(1).map(String::as_str) {
            None => bench_all::run(&[]),
            Some("all") => bench_all::run(&args[2..]),
            Some(opt) if opt.starts_with("--") => bench_all::run(&args[1..]),
            Some("mixed") => bench_mixed::run(&args[2..]),
            Some("nets") => bench_nets::run(&args[2..]),
            Some("ops") => bench_ops::run(&args[2..]),
            Some("lean") => bench_lean::run(&args[2..]),
            Some("train") => bench_train::run(&args[2..]),
            Some("gpu") => bench_gpu::run(&args[2..]),
            _ => {
                eprintln!("{USAGE}");
                bail!("unknown or missing bench suite")
            }
        },
        _ => {
            eprintln!("{USAGE}");
            bail!("unknown or missing command")
        }
    }
}
