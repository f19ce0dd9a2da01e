//! dlsia's From × To adjacency matrices of dilations and channels as SVG heat maps.

use std::fmt::Write;

use super::color::rainbow_step;
use super::{distinct_sorted, xml_escape};
use crate::graph::SmsGraph;

/// The dilation matrix: cell (from, to) coloured by the edge's dilation, white without an edge.
pub fn dilation_heatmap_svg(graph: &SmsGraph) -> String {
    heatmap(graph, "Adjacency Matrix - Dilations", "dilation", |e| {
        e.dilation
    })
}

/// The channel matrix: cell (from, to) coloured by the edge's channels, white without an edge.
pub fn channel_heatmap_svg(graph: &SmsGraph) -> String {
    heatmap(graph, "Adjacency Matrix - Channels", "channels", |e| {
        e.channels
    })
}

fn heatmap(
    graph: &SmsGraph,
    title: &str,
    what: &str,
    value: impl Fn(&crate::SmsEdge) -> usize,
) -> String {
    let n = graph.node_count();
    let values = distinct_sorted(graph.edges().map(|(_, e)| value(e)));
    let colour = |v: usize| {
        rainbow_step(
            values.iter().position(|&x| x == v).unwrap_or(0),
            values.len(),
        )
    };
    let cell = (480.0 / n as f64).clamp(6.0, 24.0);
    let left = 60.0;
    let top = 50.0;
    let side = cell * n as f64;
    let legend_w = 110.0;
    let width = left + side + 20.0 + legend_w;
    let height = (top + side + 50.0).max(top + 20.0 * (values.len() + 2) as f64);
    let tick_step = match n {
        0..=14 => 1,
        15..=19 => 2,
        20..=24 => 3,
        _ => 4,
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="24" font-size="14" text-anchor="middle">{}</text>"#,
        left + side / 2.0,
        xml_escape(title)
    );
    let _ = writeln!(
        s,
        r#"<rect x="{left}" y="{top}" width="{side:.1}" height="{side:.1}" fill="white" stroke="black"/>"#
    );
    for (u, e) in graph.edges() {
        let _ = writeln!(
            s,
            r#"<rect class="cell" data-from="{u}" data-to="{}" data-value="{}" x="{:.1}" y="{:.1}" width="{cell:.1}" height="{cell:.1}" fill="{}"/>"#,
            e.to,
            value(e),
            left + e.to as f64 * cell,
            top + u as f64 * cell,
            colour(value(e))
        );
    }
    for i in (0..n).step_by(tick_step) {
        let c = (i as f64 + 0.5) * cell;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle">{i}</text><text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">{i}</text>"#,
            left + c,
            top + side + 14.0,
            left - 4.0,
            top + c + 3.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">To Node</text>"#,
        left + side / 2.0,
        top + side + 32.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 16 {:.1})">From Node</text>"#,
        top + side / 2.0,
        top + side / 2.0
    );
    let lx = left + side + 20.0;
    let _ = writeln!(
        s,
        r#"<text x="{lx:.1}" y="{top:.1}" font-size="12" font-weight="bold">{what}</text>"#
    );
    for (i, &v) in values.iter().enumerate() {
        let y = top + 18.0 * (i + 1) as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}" stroke="black"/><text x="{:.1}" y="{y:.1}" font-size="11">{v}</text>"#,
            y - 10.0,
            colour(v),
            lx + 18.0
        );
    }
    s.push_str("</svg>\n");
    s
}
