//! `cargo xtask bench mixed`: the mixed-scale workloads W1, W2, W2b (dlsia-compatible MSDNet)
//! and W4 (SMSNet of about 45 k parameters) of `../shared/peer/README.md` against the PyTorch
//! original, same threads, same run.
//!
//! The command re-runs itself as a release build with `RAYON_NUM_THREADS` set. Each Rust
//! workload runs in a fresh child process (so that its peak RSS is its own): parameters, median
//! forward time (`Network::predict`: eval mode without an autograd graph, as the original's
//! `torch.no_grad()`), median training step (forward in train mode + loss + backward +
//! Adam, i.e. candle-nn's AdamW with weight decay 0, as `bench_dlsia.py` does with
//! `torch.optim.Adam`), the process CPU time per step, and peak RSS. Right after each Rust
//! workload the original runs the same workload through `bench_dlsia.py` (its own child
//! process, `torch.set_num_threads`); the table gives both and the ratio Rust / PyTorch (below
//! 1 = Rust faster). The machine is shared: wall-clock times of both sides are also given as
//! CPU time per step, which other processes disturb less.
//!
//! PyTorch cannot train W2 (out of memory at its 21 GiB address-space limit, 18.5 GiB resident
//! at failure, `../shared/peer/README.md`): by default the peer runs W2's forward pass only
//! (`--peer-w2-train` tries the training step too).
//!
//! Options: `--threads N` (2), `--warmup N` (1), `--reps N` (3), `--only W1,W4`, `--no-peer`,
//! `--peer-wait S` (how long `bench_dlsia.py` may wait for an idle machine, 60 s),
//! `--json PATH` (all numbers), `--skip-train` (forward only), `--peer-w2-train`,
//! `--tuned-malloc` (both sides run with glibc tunables that keep freed large buffers in the
//! process, as `dlsia_ops::alloc::tune_for_throughput()` does for a training binary: without
//! them, every fresh Candle tensor above the mmap threshold is mapped, page-faulted and zeroed
//! again, which is most of the CPU time of the SMSNet workload W4).

use std::path::PathBuf;

use crate::bench_proc::{
    child_request, median_of, peer_phase_ms, rerun_as_release, run_child, CommonOpts, PeerRun,
    TUNED_MALLOC,
};
use crate::bench_util::{load_average, peak_rss_mib, time_ms, uniform};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use dlsia_graph::{GraphDocument, SpatialDims};
use dlsia_nets::{MsdNetConfig, Network, SmsNetConfig, Topology};
use serde_json::{json, Value};

/// The loss of a workload.
#[derive(Clone, Copy)]
enum Loss {
    /// Cross-entropy against random classes.
    CrossEntropy,
    /// L1 against a random target.
    L1,
}

/// One standard workload (ids as in `bench_dlsia.py`).
struct Workload {
    id: &'static str,
    what: &'static str,
    input: Vec<usize>,
    loss: Loss,
}

fn workloads() -> Vec<Workload> {
    vec![
        Workload {
            id: "W1",
            what: "MSDNet 100 layers, 4×1×256², cross-entropy",
            input: vec![4, 1, 256, 256],
            loss: Loss::CrossEntropy,
        },
        Workload {
            id: "W2",
            what: "MSDNet 200 layers, 1×1×512², L1",
            input: vec![1, 1, 512, 512],
            loss: Loss::L1,
        },
        Workload {
            id: "W2b",
            what: "MSDNet 200 layers, 1×1×256², L1",
            input: vec![1, 1, 256, 256],
            loss: Loss::L1,
        },
        Workload {
            id: "W4",
            what: "SMSNet 16 layers (dlsia's graph, seed 2), 4×1×256², cross-entropy",
            input: vec![4, 1, 256, 256],
            loss: Loss::CrossEntropy,
        },
    ]
}

/// The network of a workload (built in the child only).
fn network(id: &str) -> Result<Box<dyn Network>> {
    let topo = match id {
        "W1" => Topology::MsdNet(MsdNetConfig::new(1, 2, 100, 1, 10)),
        "W2" | "W2b" => Topology::MsdNet(MsdNetConfig::new(1, 1, 200, 1, 10)),
        "W4" => {
            // The graph bench_dlsia.py's random_SMS_network samples with numpy seed 2,
            // exported by tools/export_sms_graph.py.
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../crates/dlsia-graph/tests/fixtures/graphs/w4_ensemble_2d_seed2.json");
            let doc = GraphDocument::load(&path)?;
            Topology::SmsNet(SmsNetConfig::new(SpatialDims::Two, 1, 2, doc.graph))
        }
        other => bail!("unknown workload {other}"),
    };
    Ok(topo.build(0, &Device::Cpu)?)
}

struct Opts {
    common: CommonOpts,
    skip_train: bool,
    peer_w2_train: bool,
    tuned_malloc: bool,
}

/// The environment of every benchmark child, both sides (`--tuned-malloc`).
fn child_env(o: &Opts) -> Vec<(&'static str, &'static str)> {
    vec![(
        "GLIBC_TUNABLES",
        if o.tuned_malloc { TUNED_MALLOC } else { "" },
    )]
}

fn parse(args: &[String]) -> Result<Opts> {
    let (mut skip_train, mut peer_w2_train, mut tuned_malloc) = (false, false, false);
    let common = CommonOpts::with_runs(1, 3, 60).parse(
        args,
        ", --skip-train, --peer-w2-train, --tuned-malloc",
        |flag, _| {
            match flag {
                "--skip-train" => skip_train = true,
                "--peer-w2-train" => peer_w2_train = true,
                "--tuned-malloc" => tuned_malloc = true,
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    Ok(Opts {
        common,
        skip_train,
        peer_w2_train,
        tuned_malloc,
    })
}

/// Entry point of `cargo xtask bench mixed [options]` (and of the per-workload children).
pub fn run(args: &[String]) -> Result<()> {
    if let Some((id, rest)) = child_request(args)? {
        return child(&id, &parse(&rest)?);
    }
    let opts = parse(args)?;
    if rerun_as_release("mixed", args, opts.common.threads, &[])? {
        return Ok(());
    }
    parent(&opts)
}

/// Times one workload in this (child) process and prints one JSON line.
fn child(id: &str, o: &Opts) -> Result<()> {
    let w = workloads()
        .into_iter()
        .find(|w| w.id == id)
        .with_context(|| format!("unknown workload {id}"))?;
    let net = network(id)?;
    let x = uniform(&w.input, 1)?;
    let mut tshape = w.input.clone();
    tshape[1] = net.out_channels();
    let target = match w.loss {
        Loss::CrossEntropy => {
            let u = uniform(&tshape, 2)?;
            u.broadcast_eq(&u.max_keepdim(1)?)?.to_dtype(DType::F32)?
        }
        Loss::L1 => uniform(&tshape, 2)?,
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
    let (reps, warmup) = if o.skip_train {
        (0, 0)
    } else {
        (o.common.reps, o.common.warmup)
    };
    let (train, train_cpu) = time_ms(warmup, reps, || {
        let y = net.forward_t(&x, true)?;
        let loss = match w.loss {
            Loss::CrossEntropy => {
                let logp = candle_nn::ops::log_softmax(&y, 1)?;
                let n = (y.elem_count() / y.dim(1)?) as f64;
                ((logp * &target)?.sum_all()? * (-1.0 / n))?
            }
            Loss::L1 => (y - &target)?.abs()?.mean_all()?,
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

/// The child's arguments: the options that change what it measures.
fn child_args(o: &Opts) -> Vec<String> {
    let mut a = o.common.child_args();
    a.extend(o.skip_train.then(|| "--skip-train".to_string()));
    a
}

fn parent(o: &Opts) -> Result<()> {
    let c = &o.common;
    let env = child_env(o);
    let load_before = load_average();
    let malloc = if o.tuned_malloc {
        "tuned malloc (GLIBC_TUNABLES, both sides)"
    } else {
        "stock malloc"
    };
    eprintln!(
        "mixed-scale workloads: {} threads, {} warm-up + {} timed runs, {malloc}, load average {load_before}",
        c.threads, c.warmup, c.reps
    );
    let mut rows = vec![];
    for w in workloads().into_iter().filter(|w| c.selected(w.id)) {
        eprintln!("{} {}: Rust…", w.id, w.what);
        let rust = run_child("mixed", w.id, &child_args(o), &env)?;
        eprintln!("{} Rust: {rust}", w.id);
        let peer = if c.peer {
            eprintln!("{} PyTorch…", w.id);
            PeerRun {
                workload: w.id,
                opts: c,
                runs: Some((c.warmup, c.reps)),
                skip_train: o.skip_train || (w.id == "W2" && !o.peer_w2_train),
                env: &env,
            }
            .run()?
        } else {
            None
        };
        rows.push((w, rust, peer));
    }
    let load_after = load_average();
    let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}", a / b),
        _ => "–".to_string(),
    };
    println!(
        "\n| workload ({} threads) | params | forward ms Rust | PyTorch | ratio | train step ms Rust | PyTorch | ratio | train CPU ms Rust | PyTorch | ratio | peak RSS MiB Rust | PyTorch | ratio |",
        c.threads
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut out = vec![];
    for (w, r, p) in &rows {
        let (rf, rt, rtc) = (
            median_of(&r["forward_ms"]),
            median_of(&r["train_ms"]),
            median_of(&r["train_cpu_ms"]),
        );
        let (pf, _) = peer_phase_ms(p.as_ref(), "forward");
        let (pt, ptc) = peer_phase_ms(p.as_ref(), "train");
        let rr = r["peak_rss_mib"].as_f64();
        let pr = p.as_ref().and_then(|p| p["maxrss_total_mib"].as_f64());
        let status = p
            .as_ref()
            .and_then(|p| p["status"].as_str())
            .filter(|s| *s != "ok")
            .map_or(String::new(), |s| format!(" (PyTorch: {s})"));
        println!(
            "| {} {}{status} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            w.id,
            w.what,
            r["params"],
            fmt(rf),
            fmt(pf),
            ratio(rf, pf),
            fmt(rt),
            fmt(pt),
            ratio(rt, pt),
            fmt(rtc),
            fmt(ptc),
            ratio(rtc, ptc),
            fmt(rr),
            fmt(pr),
            ratio(rr, pr),
        );
        out.push(json!({"workload": w.id, "rust": r, "pytorch": p}));
    }
    println!(
        "\nmedians of {} runs after {} warm-ups (PyTorch: 1 warm-up + 3 runs when a step takes > 20 s); {malloc}; load average {load_before} before, {load_after} after",
        c.reps, c.warmup
    );
    if let Some(path) = &c.json {
        std::fs::write(path, serde_json::to_string_pretty(&Value::Array(out))?)?;
    }
    Ok(())
}
