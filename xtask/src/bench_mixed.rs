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
use std::process::Command;

use crate::bench_util::{load_average, median, peak_rss_mib, time_ms, uniform};
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
    threads: usize,
    warmup: usize,
    reps: usize,
    only: Vec<String>,
    peer: bool,
    peer_wait: u64,
    json: Option<PathBuf>,
    skip_train: bool,
    peer_w2_train: bool,
    tuned_malloc: bool,
}

/// glibc tunables that keep freed large buffers in the process (see `--tuned-malloc`).
const TUNED_MALLOC: &str =
    "glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295";

/// The `GLIBC_TUNABLES` value of every benchmark child.
fn tunables(o: &Opts) -> &'static str {
    if o.tuned_malloc {
        TUNED_MALLOC
    } else {
        ""
    }
}

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        threads: 2,
        warmup: 1,
        reps: 3,
        only: vec![],
        peer: true,
        peer_wait: 60,
        json: None,
        skip_train: false,
        peer_w2_train: false,
        tuned_malloc: false,
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
            "--peer-w2-train" => o.peer_w2_train = true,
            "--tuned-malloc" => o.tuned_malloc = true,
            other => bail!("unknown option {other}; expected --threads N, --warmup N, --reps N, --only W1,W4, --no-peer, --peer-wait S, --json PATH, --skip-train, --peer-w2-train, --tuned-malloc"),
        }
    }
    if o.reps == 0 || o.threads == 0 {
        bail!("--reps and --threads must be positive");
    }
    Ok(o)
}

/// Entry point of `cargo xtask bench mixed [options]` (and of the per-workload children).
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
                "mixed",
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
    let (reps, warmup) = if o.skip_train {
        (0, 0)
    } else {
        (o.reps, o.warmup)
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

fn run_child(id: &str, o: &Opts) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe)
        .args(["bench", "mixed", "--child", id])
        .args([
            "--warmup",
            &o.warmup.to_string(),
            "--reps",
            &o.reps.to_string(),
        ])
        .args(["--threads", &o.threads.to_string()])
        .args(o.skip_train.then_some("--skip-train"))
        .env("GLIBC_TUNABLES", tunables(o))
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
    let (Some(python), Some(script)) = (peer_python(), peer_script()) else {
        eprintln!("no PyTorch peer (set PEER_VENV and DLSIA_PEER_BENCH); Rust timings only");
        return Ok(None);
    };
    let skip_train = o.skip_train || (id == "W2" && !o.peer_w2_train);
    let tmp =
        std::env::temp_dir().join(format!("dlsia-mixed-peer-{id}-{}.json", std::process::id()));
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
        .args(skip_train.then_some("--skip-train"))
        .arg("--json")
        .arg(&tmp)
        .env("GLIBC_TUNABLES", tunables(o))
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

/// Median milliseconds of a PyTorch phase: wall-clock and CPU (user + system).
fn peer_ms(p: &Option<Value>, phase: &str) -> (Option<f64>, Option<f64>) {
    let Some(ph) = p.as_ref().map(|p| &p[phase]) else {
        return (None, None);
    };
    let wall = ph["median_s"].as_f64().map(|s| s * 1e3);
    let sum = |k: &str| -> Option<Vec<f64>> {
        Some(ph[k].as_array()?.iter().filter_map(Value::as_f64).collect())
    };
    let cpu = match (sum("user_s"), sum("sys_s")) {
        (Some(u), Some(s)) if !u.is_empty() && u.len() == s.len() => {
            let v: Vec<f64> = u.iter().zip(&s).map(|(a, b)| (a + b) * 1e3).collect();
            Some(median(&v))
        }
        _ => None,
    };
    (wall, cpu)
}

fn parent(o: &Opts) -> Result<()> {
    let load_before = load_average();
    let malloc = if o.tuned_malloc {
        "tuned malloc (GLIBC_TUNABLES, both sides)"
    } else {
        "stock malloc"
    };
    eprintln!(
        "mixed-scale workloads: {} threads, {} warm-up + {} timed runs, {malloc}, load average {load_before}",
        o.threads, o.warmup, o.reps
    );
    let mut rows = vec![];
    for w in workloads()
        .into_iter()
        .filter(|w| o.only.is_empty() || o.only.iter().any(|s| s == w.id))
    {
        eprintln!("{} {}: Rust…", w.id, w.what);
        let rust = run_child(w.id, o)?;
        eprintln!("{} Rust: {rust}", w.id);
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
    let fmt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.0}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}", a / b),
        _ => "–".to_string(),
    };
    println!(
        "\n| workload ({} threads) | params | forward ms Rust | PyTorch | ratio | train step ms Rust | PyTorch | ratio | train CPU ms Rust | PyTorch | ratio | peak RSS MiB Rust | PyTorch | ratio |",
        o.threads
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut out = vec![];
    for (w, r, p) in &rows {
        let (rf, rt, rtc) = (
            ms(&r["forward_ms"]),
            ms(&r["train_ms"]),
            ms(&r["train_cpu_ms"]),
        );
        let (pf, _) = peer_ms(p, "forward");
        let (pt, ptc) = peer_ms(p, "train");
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
        o.reps, o.warmup
    );
    if let Some(path) = &o.json {
        std::fs::write(path, serde_json::to_string_pretty(&Value::Array(out))?)?;
    }
    Ok(())
}
