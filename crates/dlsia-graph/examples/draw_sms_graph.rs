//! Draws an SMSNet graph: DOT, SVG and the dilation/channel adjacency heat maps.
//!
//! ```sh
//! cargo run -p dlsia-graph --example draw_sms_graph -- OUT_DIR [GRAPH.json]
//! ```
//! Without a graph file it samples the benchmark's SMSNet setting (16 layers, dilations 1–4,
//! 6 hidden channels, the ensemble builder's connection settings) with seed 2. Graph files
//! written by `tools/export_sms_graph.py` record channels and dimensionality, which the
//! printed parameter count uses.

use anyhow::Context;
use dlsia_graph::{count_parameters, draw, CountSpec, EnsembleParams, GraphDocument, SpatialDims};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let out = args
        .next()
        .context("usage: draw_sms_graph OUT_DIR [GRAPH.json]")?;
    let doc = match args.next() {
        Some(path) => GraphDocument::load(&path)?,
        None => GraphDocument::new(
            EnsembleParams::new(1, 1, 2, 16)
                .graph_params()
                .check()?
                .sample(2),
        ),
    };
    let meta_u64 =
        |k: &str, default: u64| doc.meta.get(k).and_then(|v| v.as_u64()).unwrap_or(default);
    let (cin, cout) = (
        doc.in_channels.unwrap_or(1),
        meta_u64("out_channels", 2) as usize,
    );
    let dims = SpatialDims::try_from(meta_u64("dims", 2) as u8)?;
    let graph = &doc.graph;
    std::fs::create_dir_all(&out)?;
    draw::write_drawings(graph, &out, "sms_graph")?;
    let params = count_parameters(graph, &CountSpec::new(cin, cout, dims))?;
    println!(
        "{} nodes, {} edges, {params} parameters ({}-D, {cin} → {cout} channels, linear last action); \
         wrote {out}/sms_graph{{.dot,.svg,_dilations.svg,_channels.svg}}",
        graph.node_count(),
        graph.edge_count(),
        dims.count()
    );
    Ok(())
}
