//! Shape clustering: a mixed-scale autoencoder on random shapes, its latent space embedded with
//! UMAP and PCA and scored by k-NN accuracy and silhouette.
//!
//! ```text
//! cargo run --release -p dlsia-examples --example shape_clustering -- [--quick] [--out DIR] [--force] [--seed N] [--net msae|sparse]
//! ```

use anyhow::Result;
use clap::Parser;
use dlsia_examples::cli::CommonArgs;
use dlsia_examples::outdir::prepare_out_dir;
use dlsia_examples::shape_clustering::{describe, run, ClusteringNet, ClusteringSettings};

/// Train an autoencoder on random shapes; score how its latent space separates the classes.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    common: CommonArgs,
    /// The autoencoder: the paper's mixed-scale MSAE, or dlsia's SMSNet-based SparseAutoEncoder.
    #[arg(long, value_enum, default_value = "msae")]
    net: ClusteringNet,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let c = cli.common;
    // Training binary: keep freed buffers in the process (much faster steps; see dlsia_ops::alloc).
    dlsia_ops::alloc::tune_for_throughput();
    let mut settings = if c.quick {
        ClusteringSettings::quick(c.seed)
    } else {
        ClusteringSettings::standard(c.seed)
    };
    settings.net = cli.net;
    let out = prepare_out_dir(c.out.as_deref(), "shape_clustering", c.force)?;
    let summary = run(&settings, &out)?;
    println!("{}", describe(&summary));
    println!("wrote {}", out.display());
    Ok(())
}
