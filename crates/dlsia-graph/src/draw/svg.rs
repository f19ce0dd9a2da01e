//! The graph as an SVG picture, laid out by longest-path depth.

use std::fmt::Write;

use super::color::rainbow_step;
use super::{distinct_sorted, xml_escape};
use crate::graph::SmsGraph;

const DX: f64 = 120.0;
const DY: f64 = 64.0;
const R: f64 = 15.0;
const MARGIN: f64 = 40.0;
const TITLE_H: f64 = 30.0;

/// Point on a cubic Bézier at `t`.
fn bezier(p: [(f64, f64); 4], t: f64) -> (f64, f64) {
    let u = 1.0 - t;
    let w = [u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t];
    (
        p.iter().zip(w).map(|(q, w)| q.0 * w).sum(),
        p.iter().zip(w).map(|(q, w)| q.1 * w).sum(),
    )
}

/// A node size power as dlsia's legend names it.
fn size_label(power: i32, base: u32) -> String {
    match power {
        0 => "Input Size".to_string(),
        p if p < 0 => format!("Downsampled by 1/{}", u64::from(base).pow(p.unsigned_abs())),
        p => format!("Upsampled by {}", u64::from(base).pow(p.unsigned_abs())),
    }
}

/// The graph as SVG: one column per longest-path depth (input left, output right), nodes in a
/// column in iteration order, edges as cubic curves coloured by dilation with width growing
/// with channels and labelled `d<dilation>·c<channels>`, nodes coloured by size power (stride
/// base 2 in the legend), and a legend.
pub fn to_svg(graph: &SmsGraph) -> String {
    let depth = graph.depths();
    let columns = depth.iter().copied().max().unwrap_or(0) + 1;
    let mut column_members: Vec<Vec<usize>> = vec![Vec::new(); columns];
    for n in graph.nodes() {
        column_members[depth[n.id]].push(n.id);
    }
    let rows = column_members.iter().map(Vec::len).max().unwrap_or(1);
    let dilations = distinct_sorted(graph.edges().map(|(_, e)| e.dilation));
    let mut powers: Vec<i32> = graph.nodes().iter().map(|n| n.size).collect();
    powers.sort_unstable_by(|a, b| b.cmp(a));
    powers.dedup();
    let legend_rows = dilations.len().max(powers.len()) + 2;
    let width = (2.0 * MARGIN + (columns - 1) as f64 * DX).max(520.0);
    let plot_h = (rows.max(1) - 1) as f64 * DY + 2.0 * R;
    let height = TITLE_H + 2.0 * MARGIN + plot_h + 20.0 + legend_rows as f64 * 18.0;
    let mid_y = TITLE_H + MARGIN + plot_h / 2.0;
    let mut pos = vec![(0.0, 0.0); graph.node_count()];
    for (c, members) in column_members.iter().enumerate() {
        let k = members.len() as f64;
        for (r, &id) in members.iter().enumerate() {
            pos[id] = (
                MARGIN + c as f64 * DX,
                mid_y + (r as f64 - (k - 1.0) / 2.0) * DY,
            );
        }
    }
    let dil_colour = |d: usize| {
        rainbow_step(
            dilations.iter().position(|&x| x == d).unwrap_or(0),
            dilations.len(),
        )
    };
    let size_colour = |p: i32| {
        rainbow_step(
            powers.iter().position(|&x| x == p).unwrap_or(0),
            powers.len(),
        )
    };

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(s, "<defs>");
    for (i, &d) in dilations.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<marker id="arrow{i}" viewBox="0 0 10 10" refX="9" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{}"/></marker><!-- dilation {d} -->"#,
            dil_colour(d)
        );
    }
    let _ = writeln!(s, "</defs>");
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="22" font-size="15" text-anchor="middle">{}</text>"#,
        width / 2.0,
        xml_escape(&format!(
            "SMSNet graph: {} nodes, {} edges (columns = longest-path depth)",
            graph.node_count(),
            graph.edge_count()
        ))
    );
    // Edges first, so nodes are drawn over their ends.
    let mut labels = String::new();
    for (k, (u, e)) in graph.edges().enumerate() {
        let (x1, y1) = pos[u];
        let (x2, y2) = pos[e.to];
        let span = depth[e.to].saturating_sub(depth[u]).max(1) as f64;
        // Long edges bow away from the row so that they do not run through nodes in between.
        let bend = if span > 1.0 {
            let side = if k % 2 == 0 { -1.0 } else { 1.0 };
            side * (18.0 + 14.0 * (span - 1.0)).min(0.45 * DY * (rows as f64 + 1.0))
        } else {
            0.0
        };
        let p = [
            (x1 + R, y1),
            (x1 + R + 0.4 * (x2 - x1), y1 + bend),
            (x2 - R - 0.4 * (x2 - x1), y2 + bend),
            (x2 - R, y2),
        ];
        let w = 1.0 + (e.channels as f64).log2().max(0.0);
        let i = dilations.iter().position(|&x| x == e.dilation).unwrap_or(0);
        let _ = writeln!(
            s,
            r#"<path class="edge" data-from="{u}" data-to="{}" d="M{:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="none" stroke="{}" stroke-width="{w:.1}" marker-end="url(#arrow{i})"/>"#,
            e.to,
            p[0].0,
            p[0].1,
            p[1].0,
            p[1].1,
            p[2].0,
            p[2].1,
            p[3].0,
            p[3].1,
            dil_colour(e.dilation)
        );
        let (lx, ly) = bezier(p, 0.5);
        let _ = writeln!(
            labels,
            r#"<text class="edge-label" x="{lx:.1}" y="{:.1}" font-size="10" text-anchor="middle" stroke="white" stroke-width="3" paint-order="stroke">d{}·c{}</text>"#,
            ly + 3.0,
            e.dilation,
            e.channels
        );
    }
    s.push_str(&labels);
    for n in graph.nodes() {
        let (x, y) = pos[n.id];
        let _ = writeln!(
            s,
            r#"<circle class="node" data-id="{}" cx="{x:.1}" cy="{y:.1}" r="{R}" fill="{}" stroke="black"/>"#,
            n.id,
            size_colour(n.size)
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
            y + 4.0,
            n.id
        );
    }
    // Legend.
    let mut ly = TITLE_H + 2.0 * MARGIN + plot_h + 10.0;
    let _ = writeln!(
        s,
        r#"<text x="{MARGIN}" y="{ly:.1}" font-size="11">edge label d·c = dilation·channels; line width grows with channels; input left, output right</text>"#
    );
    ly += 18.0;
    let _ = writeln!(
        s,
        r#"<text x="{MARGIN}" y="{ly:.1}" font-size="11" font-weight="bold">dilation</text>"#
    );
    let col2 = MARGIN + 200.0;
    let _ = writeln!(
        s,
        r#"<text x="{col2}" y="{ly:.1}" font-size="11" font-weight="bold">node size</text>"#
    );
    for (i, &d) in dilations.iter().enumerate() {
        let y = ly + 18.0 * (i + 1) as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{MARGIN}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="3"/><text x="{:.1}" y="{y:.1}" font-size="11">{d}</text>"#,
            y - 4.0,
            MARGIN + 30.0,
            y - 4.0,
            dil_colour(d),
            MARGIN + 38.0
        );
    }
    for (i, &p) in powers.iter().enumerate() {
        let y = ly + 18.0 * (i + 1) as f64;
        let _ = writeln!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="6" fill="{}" stroke="black"/><text x="{:.1}" y="{y:.1}" font-size="11">{}</text>"#,
            col2 + 6.0,
            y - 4.0,
            size_colour(p),
            col2 + 18.0,
            xml_escape(&size_label(p, 2))
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bezier_ends_and_size_labels() {
        let p = [(0.0, 0.0), (1.0, 2.0), (3.0, 2.0), (4.0, 0.0)];
        assert_eq!(bezier(p, 0.0), (0.0, 0.0));
        assert_eq!(bezier(p, 1.0), (4.0, 0.0));
        // Midpoint (P0 + 3P1 + 3P2 + P3)/8 = (2, 1.5).
        assert_eq!(bezier(p, 0.5), (2.0, 1.5));
        assert_eq!(size_label(-2, 2), "Downsampled by 1/4");
        assert_eq!(size_label(1, 2), "Upsampled by 2");
        assert_eq!(size_label(0, 2), "Input Size");
    }
}
