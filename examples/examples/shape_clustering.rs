//! Shape clustering: a mixed-scale autoencoder on random shapes, its latent space embedded with
//! UMAP and PCA and scored by k-NN accuracy and silhouette.
//!
//! ```text
//! cargo run --release -p dlsia-examples --example shape_clustering -- [--quick] [--out DIR] [--force] [--seed N]
//! ```

use anyhow::Result;
use clap::Parser;
use dlsia_examples::cli::CommonArgs;
use dlsia_examples::outdir::prepare_out_dir;
use dlsia_examples::shape_clustering::{describe, run, ClusteringSettings};

/// Train an autoencoder on random shapes; score how its latent space separates the classes.
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
        ClusteringSettings::quick(c.seed)
    } else {
        ClusteringSettings::standard(c.seed)
    };
    let out = prepare_out_dir(c.out.as_deref(), "shape_clustering", c.force)?;
    let summary = run(&settings, &out)?;
    println!("{}", describe(&summary));
    println!("wrote {}", out.display());
    Ok(())
}
