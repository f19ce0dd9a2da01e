//! Draws an SMSNet graph: DOT, SVG and the dilation/channel adjacency heat maps.
//!
//! ```sh
//! cargo run -p dlsia-graph --example draw_sms_graph -- OUT_DIR [GRAPH.json]
//! ```
//! Without a graph file it samples the benchmark's SMSNet setting (16 layers, dilations 1–4,
//! 6 hidden channels, the ensemble builder's connection settings) with seed 2.

use anyhow::Context;
use dlsia_graph::{count_parameters, draw, CountSpec, EnsembleParams, SmsGraph, SpatialDims};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .context("usage: draw_sms_graph OUT_DIR [GRAPH.json]")?;
    let graph = match args.next() {
        Some(path) => SmsGraph::load(&path)?,
        None => EnsembleParams::new(1, 1, 2, 16)
            .graph_params()
            .check()?
            .sample(2),
    };
    std::fs::create_dir_all(&out)?;
    draw::write_drawings(&graph, &out, "sms_graph")?;
    let params = count_parameters(&graph, &CountSpec::new(1, 2, SpatialDims::Two))?;
    println!(
        "{} nodes, {} edges, {params} parameters (2-D, 1 → 2 channels); wrote {out}/sms_graph{{.dot,.svg,_dilations.svg,_channels.svg}}",
        graph.node_count(),
        graph.edge_count()
    );
    Ok(())
}
