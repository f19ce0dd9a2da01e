//! `cargo xtask cuda`: build-checks the CUDA side of the workspace on a machine without a GPU.
//!
//! 1. Installs a CUDA 13.0 toolkit (nvcc, NVVM, headers, runtime; ~100 MB of PyPI wheels, the
//!    version the lent GPU machines' driver 580 runs) into `~/.cache/dlsia-cuda/13.0` unless
//!    it is already there (`DLSIA_CUDA_HOME` overrides the folder).
//! 2. Compiles every `crates/dlsia-kernels/kernels/*.cu` to PTX for sm_80 and sm_90 with
//!    warnings as errors, and assembles the PTX with ptxas (about a minute in all).
//! 3. Runs `cargo clippy --all-targets --features cuda -- -D warnings` for every crate that has a
//!    `cuda` feature (type-checks the CUDA code paths, including Candle's CUDA backend, whose
//!    own kernels nvcc compiles on the first run: minutes).
//!
//! Linking and running need a GPU machine; see README.md. There, `cargo xtask cuda --run-tests`
//! does everything a GPU owner owes in one command: it runs the CUDA test suites
//! (`cargo test --features cuda` of every crate with a `cuda` feature; every `test_device!` test
//! then also runs on GPU 0) and the GPU benchmark (`cargo xtask bench gpu`: LeanMsdNet and
//! MsdNet against PyTorch's MSDNet, train step and peak GPU memory), and prints a table to paste
//! into BENCHMARKS.md. Without a GPU it refuses and says so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// The toolkit release (must match the GPU machines' driver: PTX from a newer nvcc may not load).
const RELEASE: &str = "13.0";
/// The wheels that make up the toolkit.
const WHEELS: [&str; 5] = [
    "nvidia-cuda-nvcc==13.0.88",
    "nvidia-nvvm==13.0.88",
    "nvidia-cuda-crt==13.0.88",
    "nvidia-cuda-runtime==13.0.88",
    "nvidia-cuda-cccl==13.0.85",
];
/// The architectures every kernel is compiled for (A100, H100/H200).
const ARCHS: [&str; 2] = ["sm_80", "sm_90"];

/// Entry point of `cargo xtask cuda`.
pub fn run(args: &[String]) -> Result<()> {
    let mut run_tests = false;
    for a in args {
        match a.as_str() {
            "--run-tests" => run_tests = true,
            other => bail!("`cargo xtask cuda` takes only `--run-tests` (got `{other}`); set DLSIA_CUDA_HOME to choose the toolkit folder"),
        }
    }
    let root = workspace_root()?;
    let home = toolkit_home()?;
    if run_tests {
        return run_on_gpu(&root, &home);
    }
    let t0 = Instant::now();
    install(&home)?;
    eprintln!(
        "toolkit ready in {:.1} s: {}",
        t0.elapsed().as_secs_f64(),
        home.display()
    );

    let t1 = Instant::now();
    let n = compile_kernels(&root, &home)?;
    eprintln!(
        "compiled {n} kernel files for {} in {:.1} s",
        ARCHS.join(" and "),
        t1.elapsed().as_secs_f64()
    );

    let t2 = Instant::now();
    let mut crates = cuda_crates(&root)?;
    if crates.is_empty() {
        bail!("no crate under crates/ declares a `cuda` feature");
    }
    // xtask's own `cuda` feature: the GPU benchmark's memory measurement.
    crates.push("xtask".into());
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root).arg("clippy");
    for c in &crates {
        cmd.args(["-p", c]);
    }
    cmd.args([
        "--all-targets",
        "--features",
        "cuda",
        "--",
        "-D",
        "warnings",
    ]);
    toolkit_env(&mut cmd, &home);
    eprintln!(
        "$ cargo clippy -p {} --all-targets --features cuda -- -D warnings",
        crates.join(" -p ")
    );
    let status = cmd.status().context("cannot start cargo")?;
    if !status.success() {
        bail!("the cuda feature does not type-check ({status})");
    }
    eprintln!(
        "cuda features of {} type-check ({:.0} s); total {:.0} s",
        crates.join(", "),
        t2.elapsed().as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
    eprintln!(
        "to build by hand: export PATH={0}/bin:$PATH CUDA_HOME={0} NVCC={0}/bin/nvcc CUDA_COMPUTE_CAP=80",
        home.display()
    );
    Ok(())
}

/// `cargo xtask cuda --run-tests`: the CUDA test suites and the GPU benchmark, on a GPU machine.
fn run_on_gpu(root: &Path, home: &Path) -> Result<()> {
    let gpus = Command::new("nvidia-smi")
        .arg("-L")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    if !gpus.contains("GPU") {
        bail!("`cargo xtask cuda --run-tests` needs an NVIDIA GPU and `nvidia-smi`, and this machine has none; without a GPU, `cargo xtask cuda` compiles the kernels and type-checks the `cuda` features, and `cargo xtask bench gpu --device cpu --tiny` checks the benchmark");
    }
    eprintln!("{gpus}");
    // A toolkit already on the machine (CUDA_HOME) wins; else the cached PyPI one (installed if
    // missing, which needs the network).
    let home = match std::env::var_os("CUDA_HOME").map(PathBuf::from) {
        Some(h) if h.join("bin").join("nvcc").is_file() => h,
        _ => {
            install(home)?;
            home.to_path_buf()
        }
    };
    let crates = cuda_crates(root)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(root).arg("test");
    for c in &crates {
        cmd.args(["-p", c]);
    }
    cmd.args(["--features", "cuda"]);
    toolkit_env(&mut cmd, &home);
    // Let build.rs ask nvidia-smi for the GPU's compute capability.
    cmd.env_remove("CUDA_COMPUTE_CAP");
    eprintln!("$ cargo test -p {} --features cuda", crates.join(" -p "));
    let status = cmd.status().context("cannot start cargo")?;
    if !status.success() {
        bail!("the CUDA test suites failed ({status})");
    }
    let json = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("bench")
        .join("gpu-bench.json");
    if let Some(dir) = json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(root)
        .args(["xtask", "bench", "gpu", "--device", "cuda:0", "--json"])
        .arg(&json);
    toolkit_env(&mut cmd, &home);
    cmd.env_remove("CUDA_COMPUTE_CAP");
    eprintln!(
        "$ cargo xtask bench gpu --device cuda:0 --json {}",
        json.display()
    );
    let status = cmd.status().context("cannot start cargo")?;
    if !status.success() {
        bail!("the GPU benchmark failed ({status})");
    }
    eprintln!(
        "CUDA tests passed; paste the table above into BENCHMARKS.md (## GPU), with the GPU named"
    );
    Ok(())
}

fn workspace_root() -> Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Ok(manifest
        .parent()
        .context("xtask has no parent folder")?
        .to_path_buf())
}

/// `DLSIA_CUDA_HOME`, else `~/.cache/dlsia-cuda/13.0`.
fn toolkit_home() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("DLSIA_CUDA_HOME") {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").context("HOME is not set; set DLSIA_CUDA_HOME")?;
    Ok(PathBuf::from(home)
        .join(".cache")
        .join("dlsia-cuda")
        .join(RELEASE))
}

/// Sets the variables nvcc, cudarc and the build scripts read.
fn toolkit_env(cmd: &mut Command, home: &Path) {
    let bin = home.join("bin");
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![bin.clone()];
    paths.extend(std::env::split_paths(&path));
    cmd.env("PATH", std::env::join_paths(paths).unwrap_or(path))
        .env("CUDA_HOME", home)
        .env("NVCC", bin.join("nvcc"))
        .env("CUDA_COMPUTE_CAP", "80");
}

/// Downloads and unpacks the toolkit wheels into `home` unless `home/bin/nvcc` exists.
fn install(home: &Path) -> Result<()> {
    let nvcc = home.join("bin").join("nvcc");
    if !nvcc.is_file() {
        let parent = home.parent().context("toolkit folder has no parent")?;
        std::fs::create_dir_all(parent)?;
        let stage = parent.join(format!(".stage-{RELEASE}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&stage);
        let wheels = stage.join("wheels");
        let tree = stage.join("tree");
        std::fs::create_dir_all(&wheels)?;
        eprintln!("downloading the CUDA {RELEASE} toolkit wheels from PyPI (~100 MB)…");
        let status = Command::new("python3")
            .args(["-m", "pip", "download", "--no-deps", "--quiet", "-d"])
            .arg(&wheels)
            .args(WHEELS)
            .status()
            .context("cannot run `python3 -m pip` (needed to fetch the toolkit wheels)")?;
        if !status.success() {
            bail!("pip download of {} failed ({status})", WHEELS.join(" "));
        }
        for w in std::fs::read_dir(&wheels)? {
            let w = w?.path();
            let status = Command::new("python3")
                .args(["-m", "zipfile", "-e"])
                .arg(&w)
                .arg(&tree)
                .status()
                .context("cannot run `python3 -m zipfile`")?;
            if !status.success() {
                bail!("cannot unpack {}", w.display());
            }
        }
        let cu = tree.join("nvidia").join("cu13");
        if !cu.join("bin").join("nvcc").is_file() {
            bail!("the unpacked wheels lack nvidia/cu13/bin/nvcc; the wheel layout changed");
        }
        // zip does not keep permissions: make the tools executable.
        for dir in [cu.join("bin"), cu.join("nvvm").join("bin")] {
            for f in std::fs::read_dir(&dir)? {
                let f = f?.path();
                if f.is_file() {
                    make_executable(&f)?;
                }
            }
        }
        if home.exists() {
            std::fs::remove_dir_all(home)?;
        }
        std::fs::rename(&cu, home)
            .with_context(|| format!("cannot move the toolkit to {}", home.display()))?;
        std::fs::remove_dir_all(&stage)?;
    }
    let out = Command::new(&nvcc)
        .arg("--version")
        .output()
        .with_context(|| format!("cannot run {}", nvcc.display()))?;
    let version = String::from_utf8_lossy(&out.stdout);
    if !version.contains(&format!("release {RELEASE}")) {
        bail!(
            "{} is not CUDA {RELEASE}: {version}; remove the folder to reinstall",
            nvcc.display()
        );
    }
    Ok(())
}

#[cfg(unix)]
fn make_executable(f: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut p = std::fs::metadata(f)?.permissions();
    p.set_mode(p.mode() | 0o755);
    std::fs::set_permissions(f, p)?;
    Ok(())
}

#[cfg(not(unix))]
fn make_executable(_f: &Path) -> Result<()> {
    Ok(())
}

/// Compiles every kernel file for every architecture; returns the number of files.
fn compile_kernels(root: &Path, home: &Path) -> Result<usize> {
    let src = root.join("crates").join("dlsia-kernels").join("kernels");
    let out = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("cuda-ptx");
    std::fs::create_dir_all(&out)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&src)
        .with_context(|| format!("cannot list {}", src.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "cu"))
        .collect();
    files.sort();
    let nvcc = home.join("bin").join("nvcc");
    let mut failures = Vec::new();
    for f in &files {
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("kernel");
        for arch in ARCHS {
            let ptx = out.join(format!("{stem}.{arch}.ptx"));
            let o = Command::new(&nvcc)
                .args(["--ptx", "-O3", "-std=c++17", "-Werror", "all-warnings"])
                .arg(format!("-arch={arch}"))
                .arg("-I")
                .arg(&src)
                .arg(f)
                .arg("-o")
                .arg(&ptx)
                .output()
                .with_context(|| format!("cannot run {}", nvcc.display()))?;
            if !o.status.success() {
                eprintln!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                );
                failures.push(format!("{stem}.cu ({arch})"));
            } else {
                // Assemble the PTX too: ptxas catches what only shows at the machine level
                // (register or shared-memory limits, unsupported instructions).
                let asm = Command::new(home.join("bin").join("ptxas"))
                    .arg(format!("-arch={arch}"))
                    .arg(&ptx)
                    .arg("-o")
                    .arg(ptx.with_extension("cubin"))
                    .output()
                    .context("cannot run ptxas")?;
                if !asm.status.success() {
                    eprintln!("{}", String::from_utf8_lossy(&asm.stderr));
                    failures.push(format!("{stem}.cu ({arch}, ptxas)"));
                    continue;
                }
                let text = std::fs::read_to_string(&ptx)?;
                let entries = text.matches(".entry").count();
                eprintln!("  {stem}.cu {arch}: {entries} kernels, assembled");
            }
        }
    }
    if !failures.is_empty() {
        bail!("nvcc failed on {}", failures.join(", "));
    }
    Ok(files.len())
}

/// Names of the crates under `crates/` whose manifest declares a `cuda` feature.
fn cuda_crates(root: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root.join("crates"))? {
        let manifest = e?.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let mut in_features = false;
        let mut has_cuda = false;
        let mut name = None;
        for line in text.lines() {
            let l = line.trim();
            if l.starts_with('[') {
                in_features = l == "[features]";
            } else if in_features && l.starts_with("cuda") && l[4..].trim_start().starts_with('=') {
                has_cuda = true;
            } else if name.is_none() && l.starts_with("name") {
                name = l.split('"').nth(1).map(str::to_owned);
            }
        }
        if let (true, Some(n)) = (has_cuda, name) {
            out.push(n);
        }
    }
    out.sort();
    Ok(out)
}
