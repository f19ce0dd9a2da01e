//! `cargo xtask bench` (or `bench all`): the standard workloads W1–W6 of
//! `../shared/peer/README.md` through the existing suites, in one table.
//!
//! W1, W2, W2b and W4 run through `bench mixed`, W3, W5 and W6 through `bench nets`: each suite
//! times its workloads in fresh release-build child processes and the PyTorch original right
//! after each one (same threads, same run), and writes its numbers as JSON. This command then
//! reads both files and prints one table — workload, parameters, forward ms, train-step ms,
//! peak RSS MiB, each for Rust and PyTorch with the ratio Rust / PyTorch (below 1: Rust is
//! faster or leaner) — and writes everything to `<target>/bench/bench-all.json` (`<target>`:
//! `CARGO_TARGET_DIR` or the workspace's `target/`).
//!
//! Options: `--threads N`, `--warmup N`, `--reps N`, `--peer-wait S` (how long the original's
//! script may wait for an idle machine), `--no-peer`, `--skip-train` (passed to
//! both suites; each keeps its own defaults otherwise) and `--only W1,W3` (a subset).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::bench_proc::median_of;
use crate::bench_util::load_average;
use crate::{bench_mixed, bench_nets};

/// Workloads of each suite, in table order.
const MIXED: [&str; 4] = ["W1", "W2", "W2b", "W4"];
const NETS: [&str; 3] = ["W3", "W5", "W6"];

/// What the workloads are, for the table.
fn describe(id: &str) -> &'static str {
    match id {
        "W1" => "MSDNet 100 layers, 4×1×256², CE",
        "W2" => "MSDNet 200 layers, 1×1×512², L1",
        "W2b" => "MSDNet 200 layers, 1×1×256², L1",
        "W3" => "TUNet 2-D depth 4 base 16, 4×1×256², CE",
        "W4" => "SMSNet 45,748 params, 4×1×256², CE",
        "W5" => "MSAE depth 4 base 16 latent 16, 64×1×64², MSE",
        "W6" => "TUNet 3-D depth 3 base 8, 1×1×64³, CE",
        _ => "",
    }
}

fn bench_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("bench")
}

/// One row of the unified table from a suite's `{"workload", "rust", "pytorch"}` object.
fn row(entry: &Value) -> Value {
    let (r, p) = (&entry["rust"], &entry["pytorch"]);
    let peer_ms = |phase: &str| p[phase]["median_s"].as_f64().map(|s| s * 1e3);
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    };
    let (rf, rt, rm) = (
        median_of(&r["forward_ms"]),
        median_of(&r["train_ms"]),
        r["peak_rss_mib"].as_f64(),
    );
    let (pf, pt, pm) = (
        peer_ms("forward"),
        peer_ms("train"),
        p["maxrss_total_mib"].as_f64(),
    );
    json!({
        "workload": entry["workload"],
        "params": r["params"],
        "params_pytorch": p["params"],
        "forward_ms": {"rust": rf, "pytorch": pf, "ratio": ratio(rf, pf)},
        "train_step_ms": {"rust": rt, "pytorch": pt, "ratio": ratio(rt, pt)},
        "peak_mib": {"rust": rm, "pytorch": pm, "ratio": ratio(rm, pm)},
        "pytorch_status": p["status"],
    })
}

fn print_table(rows: &[Value], threads: &str) {
    let f = |v: &Value| v.as_f64().map_or("–".to_string(), |v| format!("{v:.0}"));
    let r = |v: &Value| v.as_f64().map_or("–".to_string(), |v| format!("{v:.2}"));
    println!(
        "\n| workload ({threads} threads) | params | forward ms Rust | PyTorch | ratio | train step ms Rust | PyTorch | ratio | peak MiB Rust | PyTorch | ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for w in rows {
        let id = w["workload"].as_str().unwrap_or("?");
        let status = w["pytorch_status"]
            .as_str()
            .filter(|s| *s != "ok")
            .map_or(String::new(), |s| format!(" (PyTorch: {s})"));
        println!(
            "| {id} {}{status} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            describe(id),
            w["params"],
            f(&w["forward_ms"]["rust"]),
            f(&w["forward_ms"]["pytorch"]),
            r(&w["forward_ms"]["ratio"]),
            f(&w["train_step_ms"]["rust"]),
            f(&w["train_step_ms"]["pytorch"]),
            r(&w["train_step_ms"]["ratio"]),
            f(&w["peak_mib"]["rust"]),
            f(&w["peak_mib"]["pytorch"]),
            r(&w["peak_mib"]["ratio"]),
        );
    }
}

/// Entry point of `cargo xtask bench [all] [options]`.
pub fn run(args: &[String]) -> Result<()> {
    let mut pass: Vec<String> = vec![];
    let mut only: Option<Vec<String>> = None;
    let mut threads = "2".to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--threads" | "--warmup" | "--reps" | "--peer-wait" => {
                let v = it.next().with_context(|| format!("{a} needs a value"))?;
                if a == "--threads" {
                    threads = v.clone();
                }
                pass.extend([a.clone(), v.clone()]);
            }
            "--no-peer" | "--skip-train" => pass.push(a.clone()),
            "--only" => {
                let v = it.next().context("--only needs a value, e.g. W1,W3")?;
                only = Some(v.split(',').map(str::to_string).collect());
            }
            other => bail!("unknown option {other}; expected --threads N, --warmup N, --reps N, --peer-wait S, --no-peer, --skip-train, --only W1,W3"),
        }
    }
    if let Some(o) = &only {
        if let Some(bad) = o
            .iter()
            .find(|w| !MIXED.contains(&w.as_str()) && !NETS.contains(&w.as_str()))
        {
            bail!("unknown workload {bad}; the standard workloads are W1, W2, W2b, W3, W4, W5, W6");
        }
    }
    let dir = bench_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let load_before = load_average();
    let pick = |suite: &[&str]| -> Vec<String> {
        suite
            .iter()
            .filter(|w| only.as_ref().is_none_or(|o| o.iter().any(|x| x == *w)))
            .map(|w| w.to_string())
            .collect()
    };
    let mut entries: Vec<Value> = vec![];
    for (name, ids, suite_run) in [
        (
            "mixed",
            pick(&MIXED),
            bench_mixed::run as fn(&[String]) -> Result<()>,
        ),
        (
            "nets",
            pick(&NETS),
            bench_nets::run as fn(&[String]) -> Result<()>,
        ),
    ] {
        if ids.is_empty() {
            continue;
        }
        let json_path = dir.join(format!("bench-{name}.json"));
        let mut a = pass.clone();
        a.extend([
            "--only".into(),
            ids.join(","),
            "--json".into(),
            json_path.display().to_string(),
        ]);
        eprintln!("== bench {name} {}", a.join(" "));
        suite_run(&a)?;
        let text = std::fs::read_to_string(&json_path)
            .with_context(|| format!("the {name} suite wrote no {}", json_path.display()))?;
        let v: Value = serde_json::from_str(&text)?;
        entries.extend(v.as_array().cloned().unwrap_or_default());
    }
    let order = |e: &Value| {
        let id = e["workload"].as_str().unwrap_or("");
        ["W1", "W2", "W2b", "W3", "W4", "W5", "W6"]
            .iter()
            .position(|w| *w == id)
    };
    entries.sort_by_key(order);
    let rows: Vec<Value> = entries.iter().map(row).collect();
    let load_after = load_average();
    print_table(&rows, &threads);
    println!("\nload average {load_before} before, {load_after} after; ratio = Rust / PyTorch (below 1: Rust faster or leaner)");
    let path = dir.join("bench-all.json");
    let out = json!({
        "threads": threads,
        "load_average_before": load_before,
        "load_average_after": load_after,
        "rows": rows,
        "suites": entries,
    });
    std::fs::write(&path, serde_json::to_string_pretty(&out)?)?;
    println!("wrote {}", path.display());
    Ok(())
}
