//! `cargo xtask bench ops`: the dlsia-ops kernels against PyTorch, same shapes, same threads.
//!
//! The command re-runs itself as a release build (`cargo run --release -p xtask`) with
//! `RAYON_NUM_THREADS` set, times each workload's forward pass and forward + backward pass
//! (`op(x).sum().backward()`), then runs `tools/bench_ops.py` with the PyTorch peer venv
//! (`$PEER_VENV`, else `~/.cache/dlsia-peer/venv`) and prints medians and the ratio
//! Rust / PyTorch (below 1 = Rust faster).
//!
//! Options: `--threads N` (2), `--reps N` (7), `--only substr,substr`, `--no-peer`,
//! `--tuned-malloc` (both processes run with glibc's mmap and trim thresholds raised, so freed
//! buffers are reused instead of returned to the kernel and faulted in again; the default
//! measures the stock allocator).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use crate::bench_proc::{peer_python, rerun_as_release, TUNED_MALLOC};
use crate::bench_util::{load_average, median, time_ms};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, ModuleT, Tensor, Var};
use dlsia_ops::nn::BatchNorm;
use dlsia_ops::{conv, conv_transpose, max_pool, ConvSpec, ConvTransposeSpec, ParamStore};

/// One benchmarked operation.
enum Op {
    Conv {
        pad: usize,
        dil: usize,
    },
    ConvT {
        stride: usize,
    },
    Pool {
        k: usize,
    },
    /// Train-mode batch normalisation (affine, running statistics).
    BatchNorm,
}

struct Workload {
    name: &'static str,
    x: &'static [usize],
    w: &'static [usize],
    op: Op,
}

/// The shapes plus the U-Net up/down operators; names match `tools/bench_ops.py`.
fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            name: "conv2d 3x3 16->16 4x16x256^2",
            x: &[4, 16, 256, 256],
            w: &[16, 16, 3, 3],
            op: Op::Conv { pad: 1, dil: 1 },
        },
        Workload {
            name: "conv3d 3x3x3 16->16 1x16x64^3",
            x: &[1, 16, 64, 64, 64],
            w: &[16, 16, 3, 3, 3],
            op: Op::Conv { pad: 1, dil: 1 },
        },
        Workload {
            name: "dilated conv2d 3x3 d8 64->1 4x64x256^2",
            x: &[4, 64, 256, 256],
            w: &[1, 64, 3, 3],
            op: Op::Conv { pad: 8, dil: 8 },
        },
        Workload {
            name: "dilated conv3d 3x3x3 d4 32->1 1x32x64^3",
            x: &[1, 32, 64, 64, 64],
            w: &[1, 32, 3, 3, 3],
            op: Op::Conv { pad: 4, dil: 4 },
        },
        Workload {
            name: "conv_transpose2d 2x2 s2 32->16 4x32x128^2",
            x: &[4, 32, 128, 128],
            w: &[32, 16, 2, 2],
            op: Op::ConvT { stride: 2 },
        },
        Workload {
            name: "conv_transpose3d 2x2x2 s2 16->8 1x16x32^3",
            x: &[1, 16, 32, 32, 32],
            w: &[16, 8, 2, 2, 2],
            op: Op::ConvT { stride: 2 },
        },
        Workload {
            name: "max_pool2d 2 4x16x256^2",
            x: &[4, 16, 256, 256],
            w: &[],
            op: Op::Pool { k: 2 },
        },
        Workload {
            name: "max_pool3d 2 1x16x64^3",
            x: &[1, 16, 64, 64, 64],
            w: &[],
            op: Op::Pool { k: 2 },
        },
        Workload {
            name: "batch_norm2d train 4x16x256^2",
            x: &[4, 16, 256, 256],
            w: &[],
            op: Op::BatchNorm,
        },
        Workload {
            name: "batch_norm3d train 1x16x64^3",
            x: &[1, 16, 64, 64, 64],
            w: &[],
            op: Op::BatchNorm,
        },
    ]
}

impl Workload {
    fn apply(&self, x: &Tensor, w: &Tensor, bn: Option<&BatchNorm>) -> Result<Tensor> {
        let nd = self.x.len() - 2;
        Ok(match self.op {
            Op::BatchNorm => bn
                .context("batch-norm workload without a layer")?
                .forward_t(x, true)?,
            Op::Conv { pad, dil } => conv(x, w, None, &ConvSpec::uniform(nd, 1, pad, dil))?,
            Op::ConvT { stride } => {
                conv_transpose(x, w, None, &ConvTransposeSpec::uniform(nd, stride, 0, 0, 1))?
            }
            Op::Pool { k } => max_pool(x, &vec![k; nd], &vec![k; nd], &vec![0; nd])?,
        })
    }
}

struct Opts {
    threads: usize,
    reps: usize,
    only: Vec<String>,
    peer: bool,
    tuned_malloc: bool,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        threads: 2,
        reps: 7,
        only: vec![],
        peer: true,
        tuned_malloc: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--threads" => o.threads = val()?.parse()?,
            "--reps" => o.reps = val()?.parse()?,
            "--only" => o.only = val()?.split(',').map(str::to_string).collect(),
            "--no-peer" => o.peer = false,
            "--tuned-malloc" => o.tuned_malloc = true,
            other => bail!(
                "unknown option {other}; expected --threads N, --reps N, --only a,b, --no-peer, --tuned-malloc"
            ),
        }
    }
    if o.reps == 0 || o.threads == 0 {
        bail!("--reps and --threads must be positive");
    }
    Ok(o)
}

/// Entry point of `cargo xtask bench ops [options]`.
pub fn run(args: &[String]) -> Result<()> {
    let opts = parse(args)?;
    let env: &[(&str, &str)] = if opts.tuned_malloc {
        &[("GLIBC_TUNABLES", TUNED_MALLOC)]
    } else {
        &[]
    };
    if rerun_as_release("ops", args, opts.threads, env)? {
        return Ok(());
    }
    inner(&opts)
}

fn inner(o: &Opts) -> Result<()> {
    let dev = Device::Cpu;
    let load_before = load_average();
    eprintln!(
        "dlsia-ops benchmarks: {} rayon threads, {} reps, {} allocator, load average {load_before}",
        rayon::current_num_threads(),
        o.reps,
        if o.tuned_malloc { "tuned" } else { "stock" }
    );
    let selected: Vec<Workload> = workloads()
        .into_iter()
        .filter(|w| o.only.is_empty() || o.only.iter().any(|s| w.name.contains(s.as_str())))
        .collect();
    // Per workload: [fwd wall, fwd cpu, fwd+bwd wall, fwd+bwd cpu] samples in ms.
    let mut rust: BTreeMap<&str, [Vec<f64>; 4]> = BTreeMap::new();
    for wl in &selected {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, wl.x, &dev)?)?;
        let w = if wl.w.is_empty() {
            Var::from_tensor(&Tensor::zeros(1, DType::F32, &dev)?)?
        } else {
            Var::from_tensor(&(Tensor::randn(0f32, 1.0, wl.w, &dev)? * 0.1)?)?
        };
        let (xt, wt) = (x.as_tensor().detach(), w.as_tensor().detach());
        let store = ParamStore::new(0, &dev);
        let bn = match wl.op {
            Op::BatchNorm => Some(BatchNorm::new(&store.root(), wl.x[1])?),
            _ => None,
        };
        let (fw, fc) = time_ms(1, o.reps, || {
            wl.apply(&xt, &wt, bn.as_ref())?;
            Ok(())
        })?;
        let (bw, bc) = time_ms(1, o.reps, || {
            wl.apply(x.as_tensor(), w.as_tensor(), bn.as_ref())?
                .sum_all()?
                .backward()?;
            Ok(())
        })?;
        eprintln!(
            "  {:<44} fwd {:>8.1} ms   fwd+bwd {:>8.1} ms",
            wl.name,
            median(&fw),
            median(&bw)
        );
        rust.insert(wl.name, [fw, fc, bw, bc]);
    }
    let peer = if o.peer { run_peer(o)? } else { None };
    let load_after = load_average();
    let stats = |v: &[f64]| -> Option<(f64, f64)> {
        (!v.is_empty()).then(|| (median(v), v.iter().copied().fold(f64::INFINITY, f64::min)))
    };
    let peer_samples = |name: &str, key: &str| -> Vec<f64> {
        peer.as_ref()
            .and_then(|p| p.get(name))
            .and_then(|v| v[key].as_array().cloned())
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default()
    };
    // Cells read "median (min)"; the ratio of minima is the less load-sensitive figure.
    let cells = |r: Option<(f64, f64)>, p: Option<(f64, f64)>| -> [String; 3] {
        let fmt = |s: Option<(f64, f64)>| {
            s.map_or("–".to_string(), |s| format!("{:.1} ({:.1})", s.0, s.1))
        };
        let ratio = match (r, p) {
            (Some(r), Some(p)) => format!("{:.2} ({:.2})", r.0 / p.0, r.1 / p.1),
            _ => "–".into(),
        };
        [fmt(r), fmt(p), ratio]
    };
    for (title, wall_or_cpu) in [
        ("wall-clock ms", 0usize),
        ("process CPU ms per run (all threads)", 1),
    ] {
        println!(
            "\n{title}, {} threads\n\n| workload | Rust fwd | PyTorch fwd | ratio | Rust fwd+bwd | PyTorch fwd+bwd | ratio |",
            o.threads
        );
        println!("|---|---:|---:|---:|---:|---:|---:|");
        let keys = if wall_or_cpu == 0 {
            ["fwd", "fwdbwd"]
        } else {
            ["fwd_cpu", "fwdbwd_cpu"]
        };
        for wl in &selected {
            let r = &rust[wl.name];
            let [a, b, c] = cells(
                stats(&r[wall_or_cpu]),
                stats(&peer_samples(wl.name, keys[0])),
            );
            let [d, e, g] = cells(
                stats(&r[2 + wall_or_cpu]),
                stats(&peer_samples(wl.name, keys[1])),
            );
            println!("| {} | {a} | {b} | {c} | {d} | {e} | {g} |", wl.name);
        }
    }
    println!(
        "\nmedian (min) of {} runs after one warm-up; ratio = Rust / PyTorch; {} glibc allocator; OMP_WAIT_POLICY={}; load average {load_before} before, {load_after} after",
        o.reps,
        if o.tuned_malloc { "tuned (GLIBC_TUNABLES, both processes)" } else { "stock" },
        std::env::var("OMP_WAIT_POLICY").unwrap_or_else(|_| "default".into())
    );
    Ok(())
}

fn run_peer(o: &Opts) -> Result<Option<serde_json::Map<String, serde_json::Value>>> {
    let Some(python) = peer_python() else {
        eprintln!("no PyTorch peer venv (set PEER_VENV); printing Rust timings only");
        return Ok(None);
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/bench_ops.py");
    eprintln!("running the PyTorch side ({})", python.display());
    let out = Command::new(python)
        .arg(&script)
        .args([
            "--threads",
            &o.threads.to_string(),
            "--reps",
            &o.reps.to_string(),
        ])
        .args(if o.only.is_empty() {
            vec![]
        } else {
            vec!["--only".to_string(), o.only.join(",")]
        })
        .env("OMP_NUM_THREADS", o.threads.to_string())
        .env(
            "GLIBC_TUNABLES",
            if o.tuned_malloc { TUNED_MALLOC } else { "" },
        )
        .output()
        .context("cannot run the PyTorch benchmark script")?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("PyTorch script output is not JSON")?;
    Ok(v.as_object().cloned())
}
