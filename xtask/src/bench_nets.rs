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

use crate::bench_proc::{
    child_request, median_of, peer_phase_ms, peer_script, rerun_as_release, run_child, CommonOpts,
    PeerRun,
};
use crate::bench_util::{load_average, peak_rss_mib, time_ms, uniform};
use anyhow::{Context, Result};
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
    common: CommonOpts,
    skip_train: bool,
    tune_alloc: bool,
}

fn parse(args: &[String]) -> Result<Opts> {
    let (mut skip_train, mut tune_alloc) = (false, false);
    let common = CommonOpts::with_runs(3, 7, 120).parse(
        args,
        ", --skip-train, --tune-alloc",
        |flag, _| {
            match flag {
                "--skip-train" => skip_train = true,
                "--tune-alloc" => tune_alloc = true,
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    Ok(Opts {
        common,
        skip_train,
        tune_alloc,
    })
}

/// Entry point of `cargo xtask bench nets [options]` (and of the per-workload children).
pub fn run(args: &[String]) -> Result<()> {
    if let Some((id, rest)) = child_request(args)? {
        return child(&id, &parse(&rest)?);
    }
    let opts = parse(args)?;
    if rerun_as_release("nets", args, opts.common.threads, &[])? {
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
    let (fwd, fwd_cpu) = time_ms(o.common.warmup, o.common.reps, || {
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
    let reps = if o.skip_train { 0 } else { o.common.reps };
    let warmup = if o.skip_train { 0 } else { o.common.warmup };
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

/// The sparsenet workloads (S…) run through this repository's wrapper of `bench_dlsia.py`
/// (`tools/bench_sparse_dlsia.py`, which adds them); the others through `bench_dlsia.py`.
fn peer_script_for(id: &str) -> Option<PathBuf> {
    if id.starts_with('S') {
        let s = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/bench_sparse_dlsia.py");
        s.is_file().then_some(s)
    } else {
        peer_script()
    }
}

/// The child's arguments: the options that change what it measures.
fn child_args(o: &Opts) -> Vec<String> {
    let mut a = o.common.child_args();
    a.extend(o.skip_train.then(|| "--skip-train".to_string()));
    a.extend(o.tune_alloc.then(|| "--tune-alloc".to_string()));
    a
}

fn parent(o: &Opts) -> Result<()> {
    let c = &o.common;
    let load_before = load_average();
    eprintln!(
        "dlsia-nets workloads: {} threads, {} warm-up + {} timed runs, load average {load_before}{}",
        c.threads,
        c.warmup,
        c.reps,
        if o.tune_alloc { ", Rust allocator tuned" } else { "" }
    );
    let mut rows = vec![];
    for w in workloads()?.into_iter().filter(|w| c.selected(w.id)) {
        eprintln!("{} {}: Rust…", w.id, w.what);
        let rust = run_child("nets", w.id, &child_args(o), &[])?;
        let peer = if c.peer {
            eprintln!("{} PyTorch…", w.id);
            PeerRun {
                workload: w.id,
                opts: c,
                runs: Some((c.warmup, c.reps)),
                skip_train: o.skip_train,
                env: &[],
            }
            .run_with(peer_script_for(w.id))?
        } else {
            None
        };
        rows.push((w, rust, peer));
    }
    let load_after = load_average();
    let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}", a / b),
        _ => "–".to_string(),
    };
    for (title, rkey, cpu) in [
        ("wall-clock ms (median)", ["forward_ms", "train_ms"], false),
        (
            "process CPU ms (median)",
            ["forward_cpu_ms", "train_cpu_ms"],
            true,
        ),
    ] {
        println!(
            "\n{title}, {} threads\n\n| workload | params Rust / PyTorch | forward Rust | PyTorch | ratio | train step Rust | PyTorch | ratio | peak RSS MiB Rust | PyTorch |",
            c.threads
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (w, r, p) in &rows {
            let (rf, rt) = (median_of(&r[rkey[0]]), median_of(&r[rkey[1]]));
            let pick = |(wall, cpu_ms): (Option<f64>, Option<f64>)| if cpu { cpu_ms } else { wall };
            let pf = pick(peer_phase_ms(p.as_ref(), "forward"));
            let pt = pick(peer_phase_ms(p.as_ref(), "train"));
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
        c.reps, c.warmup
    );
    if let Some(path) = &c.json {
        std::fs::write(path, serde_json::to_string_pretty(&Value::Array(out))?)?;
    }
    Ok(())
}
