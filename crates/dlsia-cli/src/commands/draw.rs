//! `dlsia draw MODEL --out FILE.svg`: an SMSNet's graph, a U-Net's levels, or any other network's
//! layers, as SVG.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use clap::Args;
use dlsia_cli::import::{read_dlsia_file, DlsiaModel};
use dlsia_nets::{load_model, read_model_file, Topology, Upsampling};

use crate::diagram::{layer_list_svg, unet_svg};
use crate::output::new_file;

/// Arguments of `dlsia draw`.
#[derive(Args)]
pub struct DrawArgs {
    /// A model directory or a dlsia `.pt` file.
    pub model: PathBuf,
    /// The SVG file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
}

/// The diagram of a dlsia-nets topology whose weights are in `entries`.
fn topology_svg(
    title: &str,
    topology: &Topology,
    entries: &[(String, Vec<usize>)],
    parameters: usize,
) -> Result<String> {
    Ok(match topology {
        Topology::TuNet(c) => unet_svg(
            &format!("{title} — TUNet, {parameters} parameters"),
            &c.channels()?,
            c.out_channels,
            false,
            "conv-transpose",
        ),
        Topology::TuNet3Plus(c) => unet_svg(
            &format!("{title} — TUNet3+, {parameters} parameters"),
            &c.channels()?,
            c.out_channels,
            true,
            match c.upsampling {
                Upsampling::Nearest => "nearest",
                Upsampling::ConvTranspose => "conv-transpose",
            },
        ),
        other => layer_list_svg(
            &format!("{title} — {}", other.architecture()),
            entries,
            parameters,
        ),
    })
}

/// Runs `dlsia draw`.
pub fn run(args: DrawArgs) -> Result<()> {
    if args.out.extension().and_then(|e| e.to_str()) != Some("svg") {
        bail!(
            "{}: the drawing is SVG; name the output *.svg",
            args.out.display()
        );
    }
    let title = args
        .model
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let svg = if args.model.is_dir() {
        let file = read_model_file(&args.model)
            .with_context(|| format!("cannot read {}", args.model.display()))?;
        let (net, _) = load_model(&args.model, &Device::Cpu)?;
        let entries: Vec<(String, Vec<usize>)> = net
            .params()
            .entries()
            .into_iter()
            .map(|(n, _, t)| (n, t.dims().to_vec()))
            .collect();
        topology_svg(&title, &file.topology, &entries, net.num_parameters())?
    } else if args.model.is_file() {
        let file = read_dlsia_file(&args.model)
            .with_context(|| format!("cannot read {}", args.model.display()))?;
        match &file.model {
            DlsiaModel::SmsNet(s) => dlsia_graph::draw::to_svg(&s.graph),
            _ => {
                let entries: Vec<(String, Vec<usize>)> = file
                    .state_dict
                    .iter()
                    .map(|(n, t)| (n.clone(), t.dims().to_vec()))
                    .collect();
                match file.topology() {
                    Ok(t) => {
                        let net = file.build_network(&Device::Cpu)?;
                        topology_svg(&title, &t, &entries, net.num_parameters())?
                    }
                    Err(_) => layer_list_svg(
                        &format!("{title} — {}", file.model.architecture()),
                        &entries,
                        entries
                            .iter()
                            .filter(|(n, _)| {
                                !n.contains("running_") && !n.ends_with("num_batches_tracked")
                            })
                            .map(|(_, s)| s.iter().product::<usize>())
                            .sum(),
                    ),
                }
            }
        }
    } else {
        bail!("{}: no such model directory or file", args.model.display());
    };
    new_file(&args.out, args.force)?;
    std::fs::write(&args.out, svg)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}
