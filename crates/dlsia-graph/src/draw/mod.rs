//! Drawing a graph: Graphviz DOT text and SVG written directly (no plotting dependency).
//!
//! * [`to_dot`]: DOT with nodes ranked by longest-path depth and edges labelled `d<dilation>
//!   c<channels>`, for `dot -Tsvg`.
//! * [`to_svg`]: the same picture laid out by this crate: one column per longest-path depth,
//!   edges as curves coloured by dilation (legend), width growing with channels, labels
//!   `d·c`, nodes coloured by size power like dlsia's `draw_network` ("Input Size",
//!   "Downsampled by 1/k", "Upsampled by k").
//! * [`dilation_heatmap_svg`] / [`channel_heatmap_svg`]: dlsia's From × To adjacency matrices of
//!   dilations and channels (white = no edge, a rainbow colour per distinct value, legend).
//!   Rows and columns are the node labels 0 … n−1 (dlsia's figure numbers them 1 … n).

mod color;
mod dot;
mod heatmap;
mod svg;

pub use dot::to_dot;
pub use heatmap::{channel_heatmap_svg, dilation_heatmap_svg};
pub use svg::to_svg;

use std::path::Path;

use crate::error::Result;
use crate::graph::SmsGraph;
use crate::json::io_error;

/// Writes `<stem>.dot`, `<stem>.svg`, `<stem>_dilations.svg` and `<stem>_channels.svg` into `dir`.
pub fn write_drawings(graph: &SmsGraph, dir: impl AsRef<Path>, stem: &str) -> Result<()> {
    let dir = dir.as_ref();
    let files = [
        (format!("{stem}.dot"), to_dot(graph)),
        (format!("{stem}.svg"), to_svg(graph)),
        (format!("{stem}_dilations.svg"), dilation_heatmap_svg(graph)),
        (format!("{stem}_channels.svg"), channel_heatmap_svg(graph)),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| io_error(&path, e))?;
    }
    Ok(())
}

/// Distinct values, ascending.
pub(crate) fn distinct_sorted(values: impl IntoIterator<Item = usize>) -> Vec<usize> {
    let mut v: Vec<usize> = values.into_iter().collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Escapes text for XML content and attributes.
pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
