//! `cargo xtask bench nets`: the dlsia-nets workloads W3 (TUNet 2-D), W5 (MSAE) and W6 (TUNet
//! 3-D) of `../shared/peer/README.md` against the PyTorch original, same threads, same run.
//!
//! S1 (dlsia's default SparseAutoEncoder, with the graphs the original sampled) runs its
//! PyTorch side through `tools/bench_sparse_dlsia.py`, a wrapper of `bench_dlsia.py`.
//!
//! The command re-runs itself as a release build with `RAYON_NUM_THREADS` set. Each Rust
//! workload runs in a fresh child process (so that peak RSS is per workload): parameters,
//! median forward time (eval mode), median training step (forward in train mode + loss +
//! backward + Adam, i.e. candle-nn's AdamW with weight decay 0) and peak RSS. Right after each
//! Rust workload the original runs the same workload through `bench_dlsia.py` (its own child
//! process, `torch.set_num_threads`); the table gives both and the ratio Rust / PyTorch (below 1
//! = Rust faster).
//!
//! Options: `--threads N` (2), `--warmup N` (3), `--reps N` (7), `--only W3,W5`, `--no-peer`,
//! `--peer-wait S` (how long `bench_dlsia.py` may wait for an idle machine, 120 s),
//! `--json PATH` (all numbers), `--skip-train` (forward only), `--tune-alloc` (the Rust children
//! call `dlsia_ops::alloc::tune_for_throughput()` first, as a training binary may).

use std::path::PathBuf;
use std::process::Command;

use crate::bench_util::{load_average, median, peak_rss_mib, time_ms, uniform};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use dlsia_nets::{MsaeConfig, Topology, TuNetConfig};
use serde_json::{json, Value};

/// One standard workload (ids as in `bench_dlsia.py`).
struct Workload {
    id: &'static str,
    what: &'static str,
    topology: Topology,
    input: Vec<usize>,
    /// Classes of the cross-entropy target; `None` = MSE against the input.
    classes: Option<usize>,
}

/// S1's topology: dlsia's default SparseAutoEncoder with the graphs the original sampled
/// (`tools/bench_sparse_s1.json`, written by `tools/bench_sparse_dlsia.py --write-topology`).
fn sparse_s1() -> Result<Topology> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/bench_sparse_s1.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}", path.display()))?;
    let v: Value = serde_json::from_str(&text)?;
    Ok(serde_json::from_value(v["topology"].clone())?)
}

fn workloads() -> Result<Vec<Workload>> {
    Ok(vec![
        Workload {
            id: "W3",
            what: "TUNet 2-D depth 4 base 16, 4×1×256², cross-entropy",
            topology: Topology::TuNet(TuNetConfig::new(&[256, 256], 1, 2, 4, 16)),
            input: vec![4, 1, 256, 256],
            classes: Some(2),
        },
        Workload {
            id: "W5",
            what: "MSAE depth 4 base 16 latent 16, 64×1×64², MSE",
            topology: Topology::MsAutoencoder(MsaeConfig::new(&[1, 64, 64], 4, 16, 2.0, 16, 5, 1)),
            input: vec![64, 1, 64, 64],
            classes: None,
        },
        Workload {
            id: "W6",
            what: "TUNet 3-D depth 3 base 8, 1×1×64³, cross-entropy",
            topology: Topology::TuNet(TuNetConfig::new(&[64, 64, 64], 1, 2, 3, 8)),
            input: vec![1, 1, 64, 64, 64],
            classes: Some(2),
        },
        Workload {
            id: "S1",
            what: "SparseAutoEncoder defaults (28²→7², depth 20, latent [32, 2]), 64×1×28², MSE",
            topology: sparse_s1()?,
            input: vec![64, 1, 28, 28],
            classes: None,
        },
    ])
}

struct Opts {
    threads: usize,
    warmup: usize,
    reps: usize,
    only: Vec<String>,
    peer: bool,
    peer_wait: u64,
    json: Option<PathBuf>,
    skip_train: bool,
    tune_alloc: bool,
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        threads: 2,
        warmup: 3,
        reps: 7,
        only: vec![],
        peer: true,
        peer_wait: 120,
        json: None,
        skip_train: false,
        tune_alloc: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            "--threads" => o.threads = val()?.parse()?,
            "--warmup" => o.warmup = val()?.parse()?,
            "--reps" => o.reps = val()?.parse()?,
            "--only" => o.only = val()?.split(',').map(str::to_string).collect(),
            "--no-peer" => o.peer = false,
            "--peer-wait" => o.peer_wait = val()?.parse()?,
            "--json" => o.json = Some(PathBuf::from(val()?)),
            "--skip-train" => o.skip_train = true,
            "--tune-alloc" => o.tune_alloc = true,
            other => bail!("unknown option {other}; expected --threads N, --warmup N, --reps N, --only W3,W5, --no-peer, --peer-wait S, --json PATH, --skip-train, --tune-alloc"),
        }
    }
    if o.reps == 0 || o.threads == 0 {
        bail!("--reps and --threads must be positive");
    }
    Ok(o)
}

/// Entry point of `cargo xtask bench nets [options]` (and of the per-workload children).
pub fn run(args: &[String]) -> Result<()> {
    if let Some(id) = args
        .iter()
        .position(|a| a == "--child")
        .map(|i| &args[i + 1])
    {
        let rest: Vec<String> = args
            .iter()
            .filter(|a| *a != "--child" && *a != id)
            .cloned()
            .collect();
        return child(id, &parse(&rest)?);
    }
    let opts = parse(args)?;
    if std::env::var_os("DLSIA_BENCH_INNER").is_none() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "run",
                "--release",
                "--quiet",
                "-p",
                "xtask",
                "--",
                "bench",
                "nets",
            ])
            .args(args)
            .env("DLSIA_BENCH_INNER", "1")
            .env("RAYON_NUM_THREADS", opts.threads.to_string())
            .status()
            .context("cannot start the release build of xtask")?;
        if !status.success() {
            bail!("release benchmark run failed with {status}");
        }
        return Ok(());
    }
    parent(&opts)
}

/// Times one workload in this (child) process and prints one JSON line.
fn child(id: &str, o: &Opts) -> Result<()> {
    let w = workloads()?
        .into_iter()
        .find(|w| w.id == id)
        .with_context(|| format!("unknown workload {id}"))?;
    if o.tune_alloc && !dlsia_ops::alloc::tune_for_throughput() {
        eprintln!("allocator tuning not available on this platform");
    }
    let net = w.topology.build(0, &Device::Cpu)?;
    let x = uniform(&w.input, 1)?;
    let target = match w.classes {
        Some(k) => {
            let mut shape = w.input.clone();
            shape[1] = k;
            let u = uniform(&shape, 2)?;
            u.broadcast_eq(&u.max_keepdim(1)?)?.to_dtype(DType::F32)?
        }
        None => x.clone(),
    };
    let (fwd, fwd_cpu) = time_ms(o.warmup, o.reps, || {
        net.predict(&x)?;
        Ok(())
    })?;
    let rss_fwd = peak_rss_mib();
    let mut opt = AdamW::new(
        net.params().trainable_vars(),
        ParamsAdamW {
            lr: 1e-3,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let reps = if o.skip_train { 0 } else { o.reps };
    let warmup = if o.skip_train { 0 } else { o.warmup };
    let (train, train_cpu) = time_ms(warmup, reps, || {
        let y = net.forward_t(&x, true)?;
        let loss = match w.classes {
            Some(_) => {
                let logp = candle_nn::ops::log_softmax(&y, 1)?;
                let n = (y.elem_count() / y.dim(1)?) as f64;
                ((logp * &target)?.sum_all()? * (-1.0 / n))?
            }
            None => (y - &target)?.sqr()?.mean_all()?,
        };
        opt.backward_step(&loss)?;
        Ok(())
    })?;
    let out = json!({
        "workload": id,
        "params": net.num_parameters(),
        "forward_ms": fwd,
        "forward_cpu_ms": fwd_cpu,
        "train_ms": train,
        "train_cpu_ms": train_cpu,
        "peak_rss_fwd_mib": rss_fwd,
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{out}");
    Ok(())
}

fn run_child(id: &str, o: &Opts) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args(["bench", "nets", "--child", id])
        .args([
            "--warmup",
            &o.warmup.to_string(),
            "--reps",
            &o.reps.to_string(),
        ])
        .args(["--threads", &o.threads.to_string()])
        .args(o.skip_train.then_some("--skip-train"))
        .args(o.tune_alloc.then_some("--tune-alloc"))
        .output()
        .context("cannot start the benchmark child")?;
    if !out.status.success() {
        bail!("{id} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim()).with_context(|| format!("{id}: bad child output {line}"))
}

fn peer_script() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::var_os("DLSIA_PEER_BENCH")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            root.join("../shared/peer/bench_dlsia.py"),
            PathBuf::from("/work/shared/peer/bench_dlsia.py"),
        ])
        .find(|p| p.is_file())
}

fn peer_python() -> Option<PathBuf> {
    std::env::var_os("PEER_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/dlsia-peer/venv"))
        })
        .map(|v| v.join("bin/python"))
        .filter(|p| p.exists())
}

/// Runs `bench_dlsia.py` for one workload and returns its result object.
fn run_peer(id: &str, o: &Opts) -> Result<Option<Value>> {
    // The sparsenet workloads run through this repository's wrapper of bench_dlsia.py.
    let script = if id.starts_with('S') {
        let s = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/bench_sparse_dlsia.py");
        peer_script().map(|_| s)
    } else {
        peer_script()
    };
    let (Some(python), Some(script)) = (peer_python(), script) else {
        eprintln!("no PyTorch peer (set PEER_VENV and DLSIA_PEER_BENCH); Rust timings only");
        return Ok(None);
    };
    let tmp =
        std::env::temp_dir().join(format!("dlsia-nets-peer-{id}-{}.json", std::process::id()));
    let status = Command::new(python)
        .arg(&script)
        .args(["--workloads", id, "--threads", &o.threads.to_string()])
        .args([
            "--warmup",
            &o.warmup.to_string(),
            "--runs",
            &o.reps.to_string(),
        ])
        .args(["--wait-idle", &o.peer_wait.to_string(), "--run-wait", "10"])
        .args(o.skip_train.then_some("--skip-train"))
        .arg("--json")
        .arg(&tmp)
        .stdout(std::process::Stdio::null())
        .status()
        .context("cannot run bench_dlsia.py")?;
    if !status.success() {
        bail!("{} failed with {status}", script.display());
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&tmp)?)?;
    let _ = std::fs::remove_file(&tmp);
    Ok(v["results"].as_array().and_then(|r| r.first()).cloned())
}

fn parent(o: &Opts) -> Result<()> {
    let load_before = load_average();
    eprintln!(
        "dlsia-nets workloads: {} threads, {} warm-up + {} timed runs, load average {load_before}{}",
        o.threads,
        o.warmup,
        o.reps,
        if o.tune_alloc { ", Rust allocator tuned" } else { "" }
    );
    let mut rows = vec![];
    for w in workloads()?
        .into_iter()
        .filter(|w| o.only.is_empty() || o.only.iter().any(|s| s == w.id))
    {
        eprintln!("{} {}: Rust…", w.id, w.what);
        let rust = run_child(w.id, o)?;
        let peer = if o.peer {
            eprintln!("{} PyTorch…", w.id);
            run_peer(w.id, o)?
        } else {
            None
        };
        rows.push((w, rust, peer));
    }
    let load_after = load_average();
    let ms = |v: &Value| -> Option<f64> {
        let xs: Vec<f64> = v.as_array()?.iter().filter_map(Value::as_f64).collect();
        (!xs.is_empty()).then(|| median(&xs))
    };
    // The original's CPU time per timed run: user + system seconds of its process.
    let peer_cpu = |p: &Value, phase: &str| -> Option<f64> {
        let u = p[phase]["user_s"].as_array()?;
        let s = p[phase]["sys_s"].as_array()?;
        let xs: Vec<f64> = u
            .iter()
            .zip(s)
            .filter_map(|(a, b)| Some((a.as_f64()? + b.as_f64()?) * 1e3))
            .collect();
        (!xs.is_empty()).then(|| median(&xs))
    };
    let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}", a / b),
        _ => "–".to_string(),
    };
    for (title, rkey, pkey) in [
        ("wall-clock ms (median)", ["forward_ms", "train_ms"], None),
        (
            "process CPU ms (median)",
            ["forward_cpu_ms", "train_cpu_ms"],
            Some(()),
        ),
    ] {
        println!(
            "\n{title}, {} threads\n\n| workload | params Rust / PyTorch | forward Rust | PyTorch | ratio | train step Rust | PyTorch | ratio | peak RSS MiB Rust | PyTorch |",
            o.threads
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (w, r, p) in &rows {
            let (rf, rt) = (ms(&r[rkey[0]]), ms(&r[rkey[1]]));
            let (pf, pt) = match (p, pkey) {
                (Some(p), None) => (
                    p["forward"]["median_s"].as_f64().map(|s| s * 1e3),
                    p["train"]["median_s"].as_f64().map(|s| s * 1e3),
                ),
                (Some(p), Some(())) => (peer_cpu(p, "forward"), peer_cpu(p, "train")),
                (None, _) => (None, None),
            };
            println!(
                "| {} {} | {} / {} | {} | {} | {} | {} | {} | {} | {:.0} | {} |",
                w.id,
                w.what,
                r["params"],
                p.as_ref()
                    .map_or("–".to_string(), |p| p["params"].to_string()),
                fmt(rf),
                fmt(pf),
                ratio(rf, pf),
                fmt(rt),
                fmt(pt),
                ratio(rt, pt),
                r["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
                p.as_ref()
                    .and_then(|p| p["maxrss_total_mib"].as_f64())
                    .map_or("–".to_string(), |v| format!("{v:.0}")),
            );
        }
    }
    let out: Vec<Value> = rows
        .iter()
        .map(|(w, r, p)| json!({"workload": w.id, "rust": r, "pytorch": p}))
        .collect();
    println!(
        "\nmedians of {} runs after {} warm-ups; load average {load_before} before, {load_after} after",
        o.reps, o.warmup
    );
    if let Some(path) = &o.json {
        std::fs::write(path, serde_json::to_string_pretty(&Value::Array(out))?)?;
    }
    Ok(())
}
