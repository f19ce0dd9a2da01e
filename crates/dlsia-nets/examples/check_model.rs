//! Loads a model directory, runs it on an input and compares with an expected output — the
//! end-to-end check of a network converted from dlsia with `tools/export_dlsia_model.py`.
//!
//! ```sh
//! cargo run --release -p dlsia-nets --example check_model -- MODEL_DIR IO.safetensors INPUT [EXPECTED]
//! ```
//!
//! `IO.safetensors` holds the input tensor under the name `INPUT` and, optionally, the output the
//! original produced (eval mode) under `EXPECTED`. Prints the topology, the parameter count, the
//! output shape and, with `EXPECTED`, the largest absolute and relative differences.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use dlsia_nets::load_model;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        bail!("usage: check_model MODEL_DIR IO.safetensors INPUT [EXPECTED]");
    }
    let (net, meta) = load_model(&PathBuf::from(&args[0]), &Device::Cpu)?;
    let io = candle_core::safetensors::load(&args[1], &Device::Cpu)
        .with_context(|| format!("cannot read {}", args[1]))?;
    let x = io
        .get(&args[2])
        .with_context(|| format!("{} has no tensor {}", args[1], args[2]))?
        .to_dtype(DType::F32)?;
    println!(
        "{}\n{} parameters (metadata: {})",
        serde_json::to_string(&net.topology())?,
        net.num_parameters(),
        meta["dlsia_num_parameters"]
    );
    let y = net.predict(&x)?;
    println!("input {:?} → output {:?}", x.dims(), y.dims());
    if let Some(name) = args.get(3) {
        let want = io
            .get(name)
            .with_context(|| format!("{} has no tensor {name}", args[1]))?
            .to_dtype(DType::F32)?;
        let err = (&y - &want)?
            .abs()?
            .flatten_all()?
            .max(0)?
            .to_scalar::<f32>()?;
        let scale = want.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        println!(
            "max |Δ| = {err:e}, relative to max |expected| = {:e}",
            err / scale.max(1e-30)
        );
    }
    Ok(())
}
