//! `cargo xtask bench lean`: the lean MSDNet (fused block, `dlsia_nets::LeanMsdNet`) on the
//! standard MSDNet workloads of `../shared/peer/README.md` beside the PyTorch original's
//! `MixedScaleDenseNetwork`, same threads, same run; a 3-D workload; a depth-scaling table.
//!
//! The command re-runs itself as a release build with `RAYON_NUM_THREADS` set. Each Rust
//! workload runs in a fresh child process (so that peak RSS is per workload): parameters,
//! median forward time (inference, no gradient tracking, like the original's `no_grad` eval
//! forward), median training step (forward in train mode + loss + backward + Adam, i.e.
//! candle-nn's AdamW with weight decay 0) and peak RSS (`VmHWM`). The original runs the same
//! workload through `bench_dlsia.py` in its own child process right after. The original's W2
//! training step is not re-run by default: it needs more than 21 GiB (its documented
//! out-of-memory failure) and the machine is shared; pass `--peer-w2-train` to run it.
//!
//! Workloads: W1 (depth 100, 4×1×256², cross-entropy), W2 (depth 200, 1×1×512², L1), W2b
//! (depth 200, 1×1×256², L1), V3 (3-D depth 50, 1×1×128³, L1; no PyTorch run: the original's
//! 3-D MSDNet at this size needs far more memory than the machine has) and D25/D50/D100/D200
//! (depth scaling on 1×1×256², L1; D200 is W2b).
//!
//! Options: `--threads N` (2), `--warmup N` (1), `--reps N` (3), `--only W1,W2b`, `--no-peer`,
//! `--peer-wait S` (120), `--peer-runs N` (the original: 1 warm-up and N timed runs instead of
//! `bench_dlsia.py`'s defaults; for a loaded machine), `--peer-w2-train`, `--json PATH`.

use crate::bench_proc::{
    child_request, median_of, peer_phase_ms, rerun_as_release, run_child, CommonOpts, PeerRun,
};
use crate::bench_util::{load_average, peak_rss_mib, time_ms, uniform};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use dlsia_nets::{LeanMsdConfig, LeanMsdNet, Network};
use serde_json::{json, Value};

/// One workload.
struct Workload {
    id: &'static str,
    what: &'static str,
    cfg: LeanMsdConfig,
    input: Vec<usize>,
    /// Cross-entropy with this many classes, or L1 against a random target.
    classes: Option<usize>,
    /// The `bench_dlsia.py` workload with the same network and input, if any.
    peer: Option<&'static str>,
}

fn workloads() -> Vec<Workload> {
    let d2 = |depth, out| LeanMsdConfig::new(2, 1, out, depth, 1, 10);
    let scale = |id, what, depth| Workload {
        id,
        what,
        cfg: d2(depth, 1),
        input: vec![1, 1, 256, 256],
        classes: None,
        peer: None,
    };
    vec![
        Workload {
            id: "W1",
            what: "depth 100, 4×1×256², cross-entropy",
            cfg: d2(100, 2),
            input: vec![4, 1, 256, 256],
            classes: Some(2),
            peer: Some("W1"),
        },
        Workload {
            id: "W2",
            what: "depth 200, 1×1×512², L1",
            cfg: d2(200, 1),
            input: vec![1, 1, 512, 512],
            classes: None,
            peer: Some("W2"),
        },
        Workload {
            id: "W2b",
            what: "depth 200, 1×1×256², L1",
            cfg: d2(200, 1),
            input: vec![1, 1, 256, 256],
            classes: None,
            peer: Some("W2b"),
        },
        Workload {
            id: "V3",
            what: "3-D depth 50, 1×1×128³, L1",
            cfg: LeanMsdConfig::new(3, 1, 1, 50, 1, 10),
            input: vec![1, 1, 128, 128, 128],
            classes: None,
            peer: None,
        },
        scale("D25", "depth 25, 1×1×256², L1", 25),
        scale("D50", "depth 50, 1×1×256², L1", 50),
        scale("D100", "depth 100, 1×1×256², L1", 100),
    ]
}

struct Opts {
    common: CommonOpts,
    peer_w2_train: bool,
    peer_runs: Option<usize>,
}

fn parse(args: &[String]) -> Result<Opts> {
    let (mut peer_w2_train, mut peer_runs) = (false, None);
    let common = CommonOpts::with_runs(1, 3, 120).parse(
        args,
        ", --peer-runs N, --peer-w2-train",
        |flag, value| {
            match flag {
                "--peer-w2-train" => peer_w2_train = true,
                "--peer-runs" => peer_runs = Some(value()?.parse()?),
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    if peer_runs == Some(0) {
        bail!("--peer-runs must be positive");
    }
    Ok(Opts {
        common,
        peer_w2_train,
        peer_runs,
    })
}

/// Entry point of `cargo xtask bench lean [options]` (and of the per-workload children).
pub fn run(args: &[String]) -> Result<()> {
    if let Some((id, rest)) = child_request(args)? {
        return child(&id, &parse(&rest)?);
    }
    let opts = parse(args)?;
    if rerun_as_release("lean", args, opts.common.threads, &[])? {
        return Ok(());
    }
    parent(&opts)
}

/// FLOPs of one forward pass of the convolutions (2 per multiply-add).
fn forward_gflop(net: &LeanMsdNet, input: &[usize]) -> f64 {
    let b = net.block();
    let pixels: usize = input[0] * input[2..].iter().product::<usize>();
    let macs: usize = (0..b.units())
        .map(|u| b.unit_in_channels(u) * b.taps())
        .sum();
    2.0 * (macs * pixels) as f64 / 1e9
}

/// Times one workload in this (child) process and prints one JSON line.
fn child(id: &str, o: &Opts) -> Result<()> {
    let w = workloads()
        .into_iter()
        .find(|w| w.id == id)
        .with_context(|| format!("unknown workload {id}"))?;
    let net = LeanMsdNet::new(&w.cfg, 0, &Device::Cpu)?;
    let x = uniform(&w.input, 1)?;
    let mut tshape = w.input.clone();
    tshape[1] = w.classes.unwrap_or(w.cfg.out_channels);
    let target = match w.classes {
        Some(_) => {
            let u = uniform(&tshape, 2)?;
            u.broadcast_eq(&u.max_keepdim(1)?)?.to_dtype(DType::F32)?
        }
        None => uniform(&tshape, 2)?,
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
    let (train, train_cpu) = time_ms(o.common.warmup, o.common.reps, || {
        let y = net.forward_t(&x, true)?;
        let loss = match w.classes {
            Some(_) => {
                let logp = candle_nn::ops::log_softmax(&y, 1)?;
                let n = (y.elem_count() / y.dim(1)?) as f64;
                ((logp * &target)?.sum_all()? * (-1.0 / n))?
            }
            None => (y - &target)?.abs()?.mean_all()?,
        };
        opt.backward_step(&loss)?;
        Ok(())
    })?;
    let out = json!({
        "workload": id,
        "params": net.num_parameters(),
        "forward_ms": fwd,
        "train_ms": train,
        "forward_cpu_s": fwd_cpu.iter().map(|ms| ms / 1e3).collect::<Vec<_>>(),
        "train_cpu_s": train_cpu.iter().map(|ms| ms / 1e3).collect::<Vec<_>>(),
        "forward_gflop": forward_gflop(&net, &w.input),
        "peak_rss_fwd_mib": rss_fwd,
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{out}");
    Ok(())
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.digits$}"))
}

fn parent(o: &Opts) -> Result<()> {
    let c = &o.common;
    let load_before = load_average();
    eprintln!(
        "lean MSDNet workloads: {} threads, {} warm-up + {} timed runs (Rust), load average {load_before}",
        c.threads, c.warmup, c.reps
    );
    let mut rows = vec![];
    for w in workloads().into_iter().filter(|w| c.selected(w.id)) {
        eprintln!("{} {}: Rust… (load {})", w.id, w.what, load_average());
        let rust = run_child("lean", w.id, &c.child_args(), &[])?;
        eprintln!("  {rust}");
        let peer = match (c.peer, w.peer) {
            (true, Some(p)) => {
                eprintln!("{} PyTorch… (load {})", w.id, load_average());
                PeerRun {
                    workload: p,
                    opts: c,
                    runs: o.peer_runs.map(|r| (1, r)),
                    skip_train: p == "W2" && !o.peer_w2_train,
                    env: &[],
                }
                .run()?
            }
            _ => None,
        };
        rows.push((w, rust, peer));
    }
    let load_after = load_average();
    println!(
        "\n| workload ({} threads) | params Rust / PyTorch | forward ms Rust | PyTorch | speed-up | train step ms Rust | PyTorch | speed-up | train GFLOP/s Rust | peak RSS MiB Rust | PyTorch | ratio |",
        c.threads
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut out = vec![];
    for (w, r, p) in &rows {
        let rf = median_of(&r["forward_ms"]);
        let rt = median_of(&r["train_ms"]);
        let (pf, _) = peer_phase_ms(p.as_ref(), "forward");
        let (pt, _) = peer_phase_ms(p.as_ref(), "train");
        let rr = r["peak_rss_mib"].as_f64();
        let pr = p.as_ref().and_then(|p| p["maxrss_total_mib"].as_f64());
        let speed = |rust: Option<f64>, peer: Option<f64>| match (rust, peer) {
            (Some(a), Some(b)) => format!("{:.1}×", b / a),
            _ => "–".into(),
        };
        let gflops = rt.and_then(|t| Some(3.0 * r["forward_gflop"].as_f64()? / (t / 1e3)));
        let peer_train = match (p, pt) {
            (Some(_), Some(v)) => format!("{v:.0}"),
            (Some(_), None) if w.id == "W2" => "not run (OOM > 21 GiB)".into(),
            _ => "–".into(),
        };
        println!(
            "| {} {} | {} / {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            w.id,
            w.what,
            r["params"],
            p.as_ref()
                .map_or("–".to_string(), |p| p["params"].to_string()),
            fmt(rf, 0),
            fmt(pf, 0),
            speed(rf, pf),
            fmt(rt, 0),
            peer_train,
            speed(rt, pt),
            fmt(gflops, 1),
            fmt(rr, 0),
            fmt(pr, 0),
            match (rr, pr) {
                (Some(a), Some(b)) => format!("1/{:.0}", b / a),
                _ => "–".into(),
            },
        );
        out.push(json!({"workload": w.id, "rust": r, "pytorch": p}));
    }
    println!(
        "\nProcess CPU time (user + system, all threads; less sensitive to load than wall-clock):\n\n| workload | train step CPU-s Rust | PyTorch | ratio | train GFLOP per CPU-s Rust | forward CPU-s Rust | PyTorch | ratio |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (w, r, p) in &rows {
        let rt = median_of(&r["train_cpu_s"]);
        let rf = median_of(&r["forward_cpu_s"]);
        let peer_cpu = |phase: &str| peer_phase_ms(p.as_ref(), phase).1.map(|ms| ms / 1e3);
        let (pt, pf) = (peer_cpu("train"), peer_cpu("forward"));
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => format!("{:.1}×", b / a),
            _ => "–".into(),
        };
        let gf = rt.and_then(|t| Some(3.0 * r["forward_gflop"].as_f64()? / t));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            w.id,
            fmt(rt, 2),
            fmt(pt, 2),
            ratio(rt, pt),
            fmt(gf, 1),
            fmt(rf, 2),
            fmt(pf, 2),
            ratio(rf, pf),
        );
    }
    println!(
        "\nRust: medians of {} runs after {} warm-up(s); PyTorch: bench_dlsia.py's medians. Load average {load_before} before, {load_after} after.",
        c.reps, c.warmup
    );
    if let Some(path) = &c.json {
        std::fs::write(path, serde_json::to_string_pretty(&Value::Array(out))?)?;
    }
    Ok(())
}
