//! Process plumbing shared by the `bench` suites: the options every suite takes, the re-run as
//! a release build, one child process per workload (so that peak RSS is per workload), the
//! PyTorch peer (`bench_dlsia.py` in the peer venv) and reading the numbers both sides print.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::bench_util::median;

/// glibc tunables that keep freed large buffers in the process (`--tuned-malloc`).
pub const TUNED_MALLOC: &str =
    "glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295";

/// The options every workload suite takes.
#[derive(Debug, Clone)]
pub struct CommonOpts {
    /// Threads on both sides (`RAYON_NUM_THREADS`, `torch.set_num_threads`).
    pub threads: usize,
    /// Untimed runs before the timed ones.
    pub warmup: usize,
    /// Timed runs (medians are reported).
    pub reps: usize,
    /// Workload ids to run; empty = all.
    pub only: Vec<String>,
    /// Run the PyTorch original too.
    pub peer: bool,
    /// How long `bench_dlsia.py` may wait for an idle machine, seconds.
    pub peer_wait: u64,
    /// Where to write all numbers as JSON.
    pub json: Option<PathBuf>,
}

impl CommonOpts {
    /// Defaults: 2 threads, the given warm-up and timed runs, all workloads, with the peer.
    pub fn with_runs(warmup: usize, reps: usize, peer_wait: u64) -> Self {
        Self {
            threads: 2,
            warmup,
            reps,
            only: vec![],
            peer: true,
            peer_wait,
            json: None,
        }
    }

    /// Whether `--only` selects workload `id`.
    pub fn selected(&self, id: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == id)
    }

    /// The arguments that tell a workload child how to time: warm-up, timed runs, threads.
    pub fn child_args(&self) -> Vec<String> {
        let mut a = vec![];
        for (flag, v) in [
            ("--warmup", self.warmup),
            ("--reps", self.reps),
            ("--threads", self.threads),
        ] {
            a.extend([flag.to_string(), v.to_string()]);
        }
        a
    }

    /// Parses the common options from `args`, handing every other flag to `extra(flag, value)`
    /// (which returns `false` for a flag it does not know either; `value()` takes the flag's
    /// argument). `usage` lists the suite's own flags for the error message.
    pub fn parse(
        mut self,
        args: &[String],
        usage: &str,
        mut extra: impl FnMut(&str, &mut dyn FnMut() -> Result<String>) -> Result<bool>,
    ) -> Result<Self> {
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut val = || {
                it.next()
                    .cloned()
                    .with_context(|| format!("{a} needs a value"))
            };
            match a.as_str() {
                "--threads" => self.threads = val()?.parse()?,
                "--warmup" => self.warmup = val()?.parse()?,
                "--reps" => self.reps = val()?.parse()?,
                "--only" => self.only = val()?.split(',').map(str::to_string).collect(),
                "--no-peer" => self.peer = false,
                "--peer-wait" => self.peer_wait = val()?.parse()?,
                "--json" => self.json = Some(PathBuf::from(val()?)),
                other => {
                    if !extra(other, &mut val)? {
                        bail!("unknown option {other}; expected --threads N, --warmup N, --reps N, --only W1,W2, --no-peer, --peer-wait S, --json PATH{usage}");
                    }
                }
            }
        }
        if self.reps == 0 || self.threads == 0 {
            bail!("--reps and --threads must be positive");
        }
        Ok(self)
    }
}

/// `Some((workload, other args))` when `args` hold `--child ID` (this process is a child).
pub fn child_request(args: &[String]) -> Result<Option<(String, Vec<String>)>> {
    let Some(i) = args.iter().position(|a| a == "--child") else {
        return Ok(None);
    };
    let id = args.get(i + 1).context("--child needs a workload")?;
    let rest = args
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != i && j != i + 1)
        .map(|(_, a)| a.clone())
        .collect();
    Ok(Some((id.clone(), rest)))
}

/// Re-runs `cargo xtask bench <suite> args…` as a release build with `RAYON_NUM_THREADS` set,
/// unless this already is that run. Returns `true` when it did (the caller is then done).
pub fn rerun_as_release(
    suite: &str,
    args: &[String],
    threads: usize,
    env: &[(&str, &str)],
) -> Result<bool> {
    if std::env::var_os("DLSIA_BENCH_INNER").is_some() {
        return Ok(false);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["run", "--release", "--quiet", "-p", "xtask", "--", "bench"])
        .arg(suite)
        .args(args)
        .envs(env.iter().copied())
        .env("DLSIA_BENCH_INNER", "1")
        .env("RAYON_NUM_THREADS", threads.to_string())
        .status()
        .context("cannot start the release build of xtask")?;
    if !status.success() {
        bail!("release benchmark run failed with {status}");
    }
    Ok(true)
}

/// Runs `xtask bench <suite> --child <id> args…` in a fresh process and parses the one JSON
/// line it prints.
pub fn run_child(suite: &str, id: &str, args: &[String], env: &[(&str, &str)]) -> Result<Value> {
    let out = Command::new(std::env::current_exe()?)
        .args(["bench", suite, "--child", id])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .context("cannot start the benchmark child")?;
    if !out.status.success() {
        bail!("{id} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim()).with_context(|| format!("{id}: bad child output {line}"))
}

/// The peer venv's Python (`PEER_VENV`, else `~/.cache/dlsia-peer/venv`), if installed.
pub fn peer_python() -> Option<PathBuf> {
    std::env::var_os("PEER_VENV")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/dlsia-peer/venv"))
        })
        .map(|v| v.join("bin/python"))
        .filter(|p| p.exists())
}

/// `bench_dlsia.py` (`DLSIA_BENCH_PEER`, else `../shared/peer/`), if present.
pub fn peer_script() -> Option<PathBuf> {
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

/// One run of the original through `bench_dlsia.py`.
pub struct PeerRun<'a> {
    /// The `bench_dlsia.py` workload id.
    pub workload: &'a str,
    /// Threads, idle wait and (when set) warm-up/timed runs.
    pub opts: &'a CommonOpts,
    /// `Some((warmup, runs))` overrides `bench_dlsia.py`'s own defaults.
    pub runs: Option<(usize, usize)>,
    /// Forward only.
    pub skip_train: bool,
    /// Extra environment (e.g. `GLIBC_TUNABLES`).
    pub env: &'a [(&'a str, &'a str)],
}

impl PeerRun<'_> {
    /// Runs it and returns its result object, or `None` when no peer is installed.
    pub fn run(&self) -> Result<Option<Value>> {
        self.run_with(peer_script())
    }

    /// As [`PeerRun::run`], with `script` instead of `bench_dlsia.py` (a script with its
    /// command line and JSON output, e.g. a wrapper that adds workloads).
    pub fn run_with(&self, script: Option<PathBuf>) -> Result<Option<Value>> {
        let (Some(python), Some(script)) = (peer_python(), script) else {
            eprintln!("no PyTorch peer (set PEER_VENV and DLSIA_PEER_BENCH); Rust timings only");
            return Ok(None);
        };
        let tmp = std::env::temp_dir().join(format!(
            "dlsia-peer-{}-{}.json",
            self.workload,
            std::process::id()
        ));
        let runs = self.runs.map(|(w, r)| {
            [
                "--warmup".to_string(),
                w.to_string(),
                "--runs".into(),
                r.to_string(),
            ]
        });
        let status = Command::new(python)
            .arg(&script)
            .args(["--workloads", self.workload])
            .args(["--threads", &self.opts.threads.to_string()])
            .args(runs.into_iter().flatten())
            .args(["--wait-idle", &self.opts.peer_wait.to_string()])
            .args(["--run-wait", "10"])
            .args(self.skip_train.then_some("--skip-train"))
            .arg("--json")
            .arg(&tmp)
            .envs(self.env.iter().copied())
            .stdout(Stdio::null())
            .status()
            .context("cannot run bench_dlsia.py")?;
        if !status.success() {
            bail!("{} failed with {status}", script.display());
        }
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&tmp)?)?;
        let _ = std::fs::remove_file(&tmp);
        Ok(v["results"].as_array().and_then(|r| r.first()).cloned())
    }
}

/// Median of a JSON array of numbers (`None` when absent or empty).
pub fn median_of(v: &Value) -> Option<f64> {
    let xs: Vec<f64> = v.as_array()?.iter().filter_map(Value::as_f64).collect();
    (!xs.is_empty()).then(|| median(&xs))
}

/// The original's median wall-clock and CPU (user + system) milliseconds of a phase
/// (`"forward"` or `"train"`) of a `bench_dlsia.py` result.
pub fn peer_phase_ms(peer: Option<&Value>, phase: &str) -> (Option<f64>, Option<f64>) {
    let Some(ph) = peer.map(|p| &p[phase]) else {
        return (None, None);
    };
    let wall = ph["median_s"].as_f64().map(|s| s * 1e3);
    let seconds = |k: &str| -> Vec<f64> {
        ph[k]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    let (user, sys) = (seconds("user_s"), seconds("sys_s"));
    let cpu = (!user.is_empty() && user.len() == sys.len()).then(|| {
        let v: Vec<f64> = user.iter().zip(&sys).map(|(a, b)| (a + b) * 1e3).collect();
        median(&v)
    });
    (wall, cpu)
}
