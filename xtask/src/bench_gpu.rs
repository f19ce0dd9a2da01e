//! `cargo xtask bench gpu`: the GPU benchmark of issue 11 — `LeanMsdNet` (the fused MSD block)
//! and `MsdNet` (dlsia-compatible, the stack operation) against the original's PyTorch
//! `MixedScaleDenseNetwork` on the same device in the same run.
//!
//! Workload G1: depth 100, width 1, max dilation 10, 1 → 2 channels, input 4×1×512², cross
//! entropy, Adam(W) with lr 1e-3 and no weight decay. Per network: median training step
//! (forward in train mode + loss + backward + optimiser step, device synchronised) and the
//! peak memory the steps allocate beyond what existed before them (network, input, optimiser
//! state): on CUDA the high-water mark of the device's default memory pool, which Candle's
//! stream-ordered allocations come from (`CU_MEMPOOL_ATTR_USED_MEM_HIGH`, the analogue of
//! `torch.cuda.max_memory_allocated`); on the CPU peak RSS. The PyTorch side is
//! `tools/bench_msd_gpu.py` in its own process. Each Rust network also runs in its own process.
//!
//! Options: `--device cuda|cuda:N|cpu` (cuda:0), `--tiny` (depth 4 on 1×1×32²: checks the
//! command, measures nothing useful), `--warmup N` (2), `--reps N` (5), `--only lean,msdnet`,
//! `--no-peer`, `--python PATH` (else `$PEER_VENV/bin/python`, the peer venv, `python3`),
//! `--json PATH`. The command re-runs itself as a release build, with `--features cuda` for a
//! CUDA device; it refuses with a clear message when no GPU can be opened.

use std::path::PathBuf;
use std::process::Command;

use crate::bench_proc::{child_request, peer_python, run_child};
use crate::bench_util::{load_average, median, peak_rss_mib, uniform};
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use dlsia_nets::{LeanMsdConfig, LeanMsdNet, MsdNet, MsdNetConfig, Network};
use serde_json::{json, Value};

/// Command-line options.
#[derive(Debug, Clone)]
struct Opts {
    device: String,
    tiny: bool,
    warmup: usize,
    reps: usize,
    only: Vec<String>,
    peer: bool,
    python: Option<PathBuf>,
    json: Option<PathBuf>,
}

const NETS: [&str; 2] = ["lean", "msdnet"];

fn parse(args: &[String]) -> Result<Opts> {
    let mut o = Opts {
        device: "cuda:0".into(),
        tiny: false,
        warmup: 2,
        reps: 5,
        only: NETS.iter().map(|s| s.to_string()).collect(),
        peer: true,
        python: None,
        json: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || -> Result<String> {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--device" => o.device = val()?,
            "--tiny" => o.tiny = true,
            "--warmup" => o.warmup = val()?.parse().context("--warmup: a number")?,
            "--reps" => o.reps = val()?.parse().context("--reps: a number")?,
            "--only" => o.only = val()?.split(',').map(str::to_owned).collect(),
            "--no-peer" => o.peer = false,
            "--python" => o.python = Some(PathBuf::from(val()?)),
            "--json" => o.json = Some(PathBuf::from(val()?)),
            other => bail!("unknown option `{other}` of `cargo xtask bench gpu`"),
        }
    }
    if o.reps == 0 {
        bail!("--reps must be at least 1");
    }
    if let Some(bad) = o.only.iter().find(|n| !NETS.contains(&n.as_str())) {
        bail!(
            "--only: unknown network `{bad}`; expected {}",
            NETS.join(",")
        );
    }
    Ok(o)
}

/// Options as arguments again (for the release re-run and the children).
fn to_args(o: &Opts) -> Vec<String> {
    let mut v = vec![
        "--device".into(),
        o.device.clone(),
        "--warmup".into(),
        o.warmup.to_string(),
        "--reps".into(),
        o.reps.to_string(),
        "--only".into(),
        o.only.join(","),
    ];
    if o.tiny {
        v.push("--tiny".into());
    }
    if !o.peer {
        v.push("--no-peer".into());
    }
    if let Some(p) = &o.python {
        v.extend(["--python".into(), p.display().to_string()]);
    }
    if let Some(p) = &o.json {
        v.extend(["--json".into(), p.display().to_string()]);
    }
    v
}

fn wants_cuda(device: &str) -> bool {
    !device.trim().eq_ignore_ascii_case("cpu")
}

/// Entry point of `cargo xtask bench gpu [options]` (and of the per-network children).
pub fn run(args: &[String]) -> Result<()> {
    if let Some((net, rest)) = child_request(args)? {
        return child(&net, &parse(&rest)?);
    }
    let o = parse(args)?;
    let need_cuda = wants_cuda(&o.device);
    if std::env::var_os("DLSIA_BENCH_INNER").is_none() {
        if need_cuda && !gpu_visible() {
            bail!(
                "--device {}: no NVIDIA GPU found (nvidia-smi lists none); run this on a GPU machine, or try the command with --device cpu --tiny",
                o.device
            );
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["run", "--release", "--quiet", "-p", "xtask"]);
        if need_cuda {
            cmd.args(["--features", "cuda"]);
        }
        let status = cmd
            .args(["--", "bench", "gpu"])
            .args(to_args(&o))
            .env("DLSIA_BENCH_INNER", "1")
            .status()
            .context("cannot start the release build of xtask")?;
        if !status.success() {
            bail!("GPU benchmark run failed with {status}");
        }
        return Ok(());
    }
    if need_cuda && !dlsia_ops::device::CUDA_COMPILED {
        bail!("--device {}: this xtask was built without CUDA support (run it as `cargo xtask bench gpu`, which rebuilds with --features cuda)", o.device);
    }
    parent(&o)
}

/// Whether `nvidia-smi` lists at least one GPU.
fn gpu_visible() -> bool {
    Command::new("nvidia-smi")
        .arg("-L")
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("GPU"))
        .unwrap_or(false)
}

/// Depth and input shape of the workload.
fn workload(tiny: bool) -> (usize, Vec<usize>) {
    if tiny {
        (4, vec![1, 1, 32, 32])
    } else {
        (100, vec![4, 1, 512, 512])
    }
}

fn build(net: &str, depth: usize, dev: &Device) -> Result<Box<dyn Network>> {
    Ok(match net {
        "lean" => Box::new(LeanMsdNet::new(
            &LeanMsdConfig::new(2, 1, 2, depth, 1, 10),
            0,
            dev,
        )?),
        "msdnet" => Box::new(MsdNet::new(&MsdNetConfig::new(1, 2, depth, 1, 10), 0, dev)?),
        other => bail!("unknown network {other}"),
    })
}

fn child(net_name: &str, o: &Opts) -> Result<()> {
    let dev = dlsia_ops::device_from_str(&o.device)?;
    let (depth, shape) = workload(o.tiny);
    let net = build(net_name, depth, &dev)?;
    let x = uniform(&shape, 1)?.to_device(&dev)?;
    let mut tshape = shape.clone();
    tshape[1] = 2;
    let u = uniform(&tshape, 2)?;
    let target = u
        .broadcast_eq(&u.max_keepdim(1)?)?
        .to_dtype(DType::F32)?
        .to_device(&dev)?;
    let mut opt = AdamW::new(
        net.params().trainable_vars(),
        ParamsAdamW {
            lr: 1e-3,
            weight_decay: 0.0,
            ..Default::default()
        },
    )?;
    let mut step = || -> Result<f32> {
        let y = net.forward_t(&x, true)?;
        let logp = candle_nn::ops::log_softmax(&y, 1)?;
        let n = (y.elem_count() / y.dim(1)?) as f64;
        let loss: Tensor = ((logp * &target)?.sum_all()? * (-1.0 / n))?;
        opt.backward_step(&loss)?;
        Ok(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?)
    };
    dev.synchronize()?;
    let base = gpu_memory::reset_peak(&dev)?;
    let mut times = Vec::with_capacity(o.reps);
    let mut loss = f32::NAN;
    for i in 0..o.warmup + o.reps {
        dev.synchronize()?;
        let t0 = std::time::Instant::now();
        loss = step()?;
        dev.synchronize()?;
        if i >= o.warmup {
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    let (peak, what) = match base {
        Some(base) => (
            (gpu_memory::peak(&dev)?.saturating_sub(base)) as f64 / 1048576.0,
            "high-water mark of the CUDA default memory pool during the steps, minus what was in use before",
        ),
        None => (peak_rss_mib(), "peak RSS of the process (CPU)"),
    };
    println!(
        "{}",
        json!({
            "side": "rust",
            "network": net_name,
            "params": net.num_parameters(),
            "train_step_ms": median(&times),
            "train_step_ms_all": times,
            "peak_mib": peak,
            "peak_what": what,
            "loss": loss,
        })
    );
    Ok(())
}

/// The Python of the PyTorch side: `--python`, else the peer venv's, else `python3`.
fn python(o: &Opts) -> PathBuf {
    o.python
        .clone()
        .or_else(peer_python)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

fn run_peer(o: &Opts) -> Result<Value> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/bench_msd_gpu.py");
    let mut cmd = Command::new(python(o));
    cmd.arg(&script)
        .args(["--device", &o.device])
        .args(["--warmup", &o.warmup.to_string()])
        .args(["--reps", &o.reps.to_string()]);
    if o.tiny {
        cmd.arg("--tiny");
    }
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "the PyTorch side failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim()).with_context(|| format!("unreadable PyTorch output {line}"))
}

fn num(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

fn parent(o: &Opts) -> Result<()> {
    let (depth, shape) = workload(o.tiny);
    let shape_s = shape
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join("×");
    let device_name = device_description(&o.device);
    eprintln!(
        "G1{}: MSDNet depth {depth}, width 1, max dilation 10, {shape_s}, cross-entropy, Adam; {} on {device_name}; load {}",
        if o.tiny { " (tiny)" } else { "" },
        o.device,
        load_average()
    );
    let mut rows = Vec::new();
    for net in &o.only {
        eprintln!("  rust {net} …");
        rows.push(run_child("gpu", net, &to_args(o), &[])?);
    }
    let peer = if o.peer {
        eprintln!("  pytorch …");
        Some(run_peer(o)?)
    } else {
        None
    };
    let (pt_ms, pt_mib) = match &peer {
        Some(p) => (num(p, "train_step_ms"), num(p, "peak_mib")),
        None => (None, None),
    };
    let f = |v: Option<f64>, d: usize| v.map_or("–".into(), |x| format!("{x:.d$}"));
    let mut table = String::from(
        "| network | params | train step ms | peak MiB | time ratio (÷ PyTorch) | memory ratio |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for r in &rows {
        let (ms, mib) = (num(r, "train_step_ms"), num(r, "peak_mib"));
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        table += &format!(
            "| dlsia-rs {} | {} | {} | {} | {} | {} |\n",
            r["network"].as_str().unwrap_or("?"),
            r["params"],
            f(ms, 1),
            f(mib, 0),
            f(ratio(ms, pt_ms), 3),
            f(ratio(mib, pt_mib), 3)
        );
    }
    if let Some(p) = &peer {
        let status = p["status"].as_str().unwrap_or("?");
        table += &format!(
            "| PyTorch dlsia MSDNet{} | {} | {} | {} | 1 | 1 |\n",
            if status == "ok" {
                String::new()
            } else {
                format!(" ({status})")
            },
            p["params"],
            f(pt_ms, 1),
            f(pt_mib, 0)
        );
    }
    let peak_what = if wants_cuda(&o.device) {
        "peak = GPU memory the steps allocate beyond the network, input and optimiser state"
    } else {
        "peak = peak RSS of each process, PyTorch's including its ~730 MiB import: a dry run, not a measurement"
    };
    println!(
        "\nG1 on {device_name}, `cargo xtask bench gpu{}` (median of {} steps after {} warm-up; {peak_what}):\n\n{table}",
        if o.tiny { " --tiny" } else { "" },
        o.reps,
        o.warmup
    );
    if let Some(path) = &o.json {
        let all = json!({"device": device_name, "tiny": o.tiny, "rust": rows, "pytorch": peer, "table": table});
        std::fs::write(path, serde_json::to_string_pretty(&all)?)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// The GPU's name from `nvidia-smi` for a CUDA device, else "CPU".
fn device_description(device: &str) -> String {
    if !wants_cuda(device) {
        return "CPU".into();
    }
    Command::new("nvidia-smi")
        .args(["--query-gpu=name,driver_version", "--format=csv,noheader"])
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| device.to_owned())
}

/// Peak device memory through the CUDA default memory pool (feature `cuda`).
#[cfg(feature = "cuda")]
mod gpu_memory {
    use anyhow::{bail, Result};
    use candle_core::cuda_backend::cudarc::driver::sys;
    use candle_core::Device;

    fn pool(dev: &Device) -> Result<Option<sys::CUmemoryPool>> {
        let Device::Cuda(cd) = dev else {
            return Ok(None);
        };
        let ctx = cd.cuda_stream().context().clone();
        ctx.bind_to_thread()?;
        let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
        // SAFETY: a valid device handle and an out pointer to a pool handle.
        let r = unsafe { sys::cuDeviceGetDefaultMemPool(&mut pool, ctx.cu_device()) };
        if r != sys::CUresult::CUDA_SUCCESS {
            bail!("cuDeviceGetDefaultMemPool failed: {r:?}");
        }
        Ok(Some(pool))
    }

    fn attr(pool: sys::CUmemoryPool, a: sys::CUmemPool_attribute) -> Result<u64> {
        let mut v: u64 = 0;
        // SAFETY: the pool attributes read here are 64-bit integers.
        let r = unsafe { sys::cuMemPoolGetAttribute(pool, a, (&mut v as *mut u64).cast()) };
        if r != sys::CUresult::CUDA_SUCCESS {
            bail!("cuMemPoolGetAttribute failed: {r:?}");
        }
        Ok(v)
    }

    /// Resets the pool's high-water mark; returns the bytes in use now (None on the CPU).
    pub fn reset_peak(dev: &Device) -> Result<Option<u64>> {
        let Some(p) = pool(dev)? else {
            return Ok(None);
        };
        let mut zero: u64 = 0;
        // SAFETY: USED_MEM_HIGH is a 64-bit integer that may be reset to 0.
        let r = unsafe {
            sys::cuMemPoolSetAttribute(
                p,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH,
                (&mut zero as *mut u64).cast(),
            )
        };
        if r != sys::CUresult::CUDA_SUCCESS {
            bail!("cuMemPoolSetAttribute failed: {r:?}");
        }
        Ok(Some(attr(
            p,
            sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_CURRENT,
        )?))
    }

    /// The pool's high-water mark in bytes since the last reset.
    pub fn peak(dev: &Device) -> Result<u64> {
        match pool(dev)? {
            Some(p) => attr(p, sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_HIGH),
            None => Ok(0),
        }
    }
}

/// Without CUDA support there is no device memory to measure.
#[cfg(not(feature = "cuda"))]
mod gpu_memory {
    use anyhow::Result;
    use candle_core::Device;

    /// Always `None` (peak RSS is used instead).
    pub fn reset_peak(_dev: &Device) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Always 0.
    pub fn peak(_dev: &Device) -> Result<u64> {
        Ok(0)
    }
}
