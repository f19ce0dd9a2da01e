//! `dlsia init`: writes a commented example `run.toml` for a workflow.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::output::new_file;

/// The workflows `dlsia init` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workflow {
    /// Segmentation with a tunable U-Net (dense labels, whole images).
    Segmentation,
    /// Segmentation of sparsely labelled data with a mixed-scale dense network.
    Msdnet,
    /// Restoration / denoising (per-pixel values) with a U-Net3+.
    Regression,
}

/// Arguments of `dlsia init`.
#[derive(Args, Debug)]
pub struct InitArgs {
    /// The workflow.
    #[arg(value_enum, default_value = "segmentation")]
    pub workflow: Workflow,
    /// Where to write the configuration.
    #[arg(long, default_value = "run.toml")]
    pub out: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

/// The example configuration of a workflow.
pub fn template(workflow: Workflow) -> &'static str {
    match workflow {
        Workflow::Segmentation => include_str!("../templates/segmentation.toml"),
        Workflow::Msdnet => include_str!("../templates/msdnet.toml"),
        Workflow::Regression => include_str!("../templates/regression.toml"),
    }
}

/// Writes the template.
pub fn run(args: InitArgs) -> Result<()> {
    new_file(&args.out, args.force)?;
    std::fs::write(&args.out, template(args.workflow))
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "wrote {}; edit the paths, then run `dlsia train --config {}`",
        args.out.display(),
        args.out.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_config::RunConfig;
    use std::path::Path;

    #[test]
    fn every_template_is_a_valid_configuration() {
        for w in [
            Workflow::Segmentation,
            Workflow::Msdnet,
            Workflow::Regression,
        ] {
            let cfg = RunConfig::from_toml(template(w), Path::new("/data"))
                .unwrap_or_else(|e| panic!("{w:?}: {e:#}"));
            assert!(cfg.data.images.starts_with("/data"), "{w:?}");
            assert!(cfg.train.epochs >= 1);
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let good = template(Workflow::Segmentation);
        let typo = good.replace("batch_size", "batchsize");
        let e = format!(
            "{:#}",
            RunConfig::from_toml(&typo, Path::new(".")).unwrap_err()
        );
        assert!(e.contains("batchsize"), "{e}");
        let bad = good.replace("epochs = 30", "epochs = 0");
        let e = format!(
            "{:#}",
            RunConfig::from_toml(&bad, Path::new(".")).unwrap_err()
        );
        assert!(e.contains("epochs"), "{e}");
        let depth = good.replace("depth = 3", "depth = 0");
        let e = format!(
            "{:#}",
            RunConfig::from_toml(&depth, Path::new(".")).unwrap_err()
        );
        assert!(e.contains("depth"), "{e}");
        let frac = good.replace("train_fraction = 0.8", "train_fraction = 1.5");
        let e = format!(
            "{:#}",
            RunConfig::from_toml(&frac, Path::new(".")).unwrap_err()
        );
        assert!(e.contains("train_fraction"), "{e}");
    }
}
