//! Fibers in a synthetic concrete tomogram: an ensemble of five SMSNets trained on sparse
//! labels, mean − std thresholding, 3-D connected components, fiber lengths and orientations.
//!
//! ```text
//! cargo run --release -p dlsia-examples --example fibers -- [--quick] [--out DIR] [--force] [--seed N]
//! ```

use anyhow::Result;
use clap::Parser;
use dlsia_examples::cli::CommonArgs;
use dlsia_examples::fibers::{describe, run, FiberSettings};
use dlsia_examples::outdir::prepare_out_dir;

/// Segment fibers with an SMSNet ensemble; report F1 and fibers found vs present.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> Result<()> {
    let c = Cli::parse().common;
    // Training binary: keep freed buffers in the process (much faster steps; see dlsia_ops::alloc).
    dlsia_ops::alloc::tune_for_throughput();
    let settings = if c.quick {
        FiberSettings::quick(c.seed)
    } else {
        FiberSettings::standard(c.seed)
    };
    let out = prepare_out_dir(c.out.as_deref(), "fibers", c.force)?;
    let summary = run(&settings, &out)?;
    println!("{}", describe(&summary));
    println!("wrote {}", out.display());
    Ok(())
}
