//! Command-line options shared by the three example programs.

use std::path::PathBuf;

use clap::Args;

/// `--out`, `--force`, `--quick`, `--seed`.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Output folder (default: a new folder `runs/<workflow>-<time>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write into an existing, non-empty output folder.
    #[arg(long)]
    pub force: bool,
    /// A run of a few seconds with tiny data and networks (what the tests run).
    #[arg(long)]
    pub quick: bool,
    /// Seed of every random choice (data, weights, batch order).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}
