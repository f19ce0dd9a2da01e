//! DOT and SVG output: every node and edge appears with its attributes, and the SVG is
//! well-formed XML.

use dlsia_graph::draw::{
    channel_heatmap_svg, dilation_heatmap_svg, to_dot, to_svg, write_drawings,
};
use dlsia_graph::{GraphDocument, SmsGraph};

fn graph() -> SmsGraph {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/graphs/sizing_2d_seed4.json"
    );
    GraphDocument::load(path).unwrap().graph
}

/// Checks that every tag is closed in order, and attributes are quoted; returns the element
/// names in document order.
fn well_formed(xml: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut names = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        assert!(
            !rest[..start].contains('>'),
            "stray '>' in text: {:?}",
            &rest[..start]
        );
        let end = rest[start..].find('>').expect("unterminated tag") + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with("!--") {
            assert!(tag.ends_with("--"), "comment {tag}");
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            continue;
        }
        let self_closing = tag.ends_with('/');
        let body = tag.trim_end_matches('/');
        let name = body.split_whitespace().next().unwrap().to_string();
        assert_eq!(
            body.matches('"').count() % 2,
            0,
            "unbalanced quotes in <{body}>"
        );
        assert!(
            !body.contains('&') || body.contains("&amp;") || body.contains("&lt;"),
            "raw & in <{body}>"
        );
        names.push(name.clone());
        if !self_closing {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed {stack:?}");
    names
}

#[test]
fn svg_has_every_node_and_edge_with_labels() {
    let g = graph();
    let svg = to_svg(&g);
    well_formed(&svg);
    assert_eq!(svg.matches(r#"class="edge""#).count(), g.edge_count());
    assert_eq!(svg.matches(r#"class="edge-label""#).count(), g.edge_count());
    assert_eq!(svg.matches(r#"class="node""#).count(), g.node_count());
    for (u, e) in g.edges() {
        assert!(svg.contains(&format!(r#"data-from="{u}" data-to="{}""#, e.to)));
        assert!(svg.contains(&format!("d{}·c{}", e.dilation, e.channels)));
    }
    // Size legend names the powers as dlsia does (this graph has powers −2 … 1).
    for label in [
        "Input Size",
        "Downsampled by 1/2",
        "Downsampled by 1/4",
        "Upsampled by 2",
    ] {
        assert!(svg.contains(label), "{label}");
    }
}

#[test]
fn svg_columns_follow_longest_path_depth() {
    let g = graph();
    let svg = to_svg(&g);
    let depth = g.depths();
    let cx = |id: usize| -> f64 {
        let key = format!(r#"data-id="{id}" cx=""#);
        let at = svg.find(&key).unwrap() + key.len();
        svg[at..at + svg[at..].find('"').unwrap()].parse().unwrap()
    };
    for (u, e) in g.edges() {
        assert!(cx(u) < cx(e.to), "edge {u}→{} must point right", e.to);
    }
    for a in 0..g.node_count() {
        for b in 0..g.node_count() {
            if depth[a] == depth[b] {
                assert_eq!(cx(a), cx(b));
            }
        }
    }
}

#[test]
fn heatmaps_have_one_cell_per_edge() {
    let g = graph();
    for (svg, value) in [
        (
            dilation_heatmap_svg(&g),
            Box::new(|e: &dlsia_graph::SmsEdge| e.dilation) as Box<dyn Fn(&_) -> usize>,
        ),
        (
            channel_heatmap_svg(&g),
            Box::new(|e: &dlsia_graph::SmsEdge| e.channels),
        ),
    ] {
        well_formed(&svg);
        assert_eq!(svg.matches(r#"class="cell""#).count(), g.edge_count());
        for (u, e) in g.edges() {
            let cell = format!(
                r#"data-from="{u}" data-to="{}" data-value="{}""#,
                e.to,
                value(e)
            );
            assert!(svg.contains(&cell), "{cell}");
        }
    }
}

#[test]
fn dot_lists_nodes_ranks_and_labelled_edges() {
    let g = graph();
    let dot = to_dot(&g);
    assert!(dot.starts_with("digraph sms {") && dot.trim_end().ends_with('}'));
    for (u, e) in g.edges() {
        assert!(dot.contains(&format!(
            "  {u} -> {} [label=\"d{} c{}\"",
            e.to, e.dilation, e.channels
        )));
    }
    let max_depth = *g.depths().iter().max().unwrap();
    assert_eq!(dot.matches("rank=same").count(), max_depth + 1);
    assert_eq!(dot.matches(" -> ").count(), g.edge_count());
}

#[test]
fn write_drawings_writes_four_files() {
    let dir = tempfile::tempdir().unwrap();
    write_drawings(&graph(), dir.path(), "g").unwrap();
    for f in ["g.dot", "g.svg", "g_dilations.svg", "g_channels.svg"] {
        assert!(
            std::fs::metadata(dir.path().join(f)).unwrap().len() > 100,
            "{f}"
        );
    }
    assert!(write_drawings(&graph(), "/nonexistent/dir", "g").is_err());
}
