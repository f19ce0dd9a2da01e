//! Graphviz DOT output.

use std::fmt::Write;

use super::color::rainbow_step;
use super::distinct_sorted;
use crate::graph::SmsGraph;

/// The graph in Graphviz DOT: left-to-right, nodes of equal longest-path depth on one rank,
/// edges labelled `d<dilation> c<channels>` and coloured by dilation, nodes in iteration order
/// and edges in action order.
pub fn to_dot(graph: &SmsGraph) -> String {
    let depth = graph.depths();
    let dilations = distinct_sorted(graph.edges().map(|(_, e)| e.dilation));
    let colour = |d: usize| {
        let i = dilations.iter().position(|&x| x == d).unwrap_or(0);
        rainbow_step(i, dilations.len())
    };
    let mut s = String::new();
    let _ = writeln!(s, "digraph sms {{");
    let _ = writeln!(s, "  rankdir=LR;");
    let _ = writeln!(
        s,
        "  node [shape=circle, style=filled, fillcolor=\"#dddddd\"];"
    );
    for n in graph.nodes() {
        let role = if n.id == graph.input() {
            "input"
        } else if n.id == graph.output() {
            "output"
        } else {
            ""
        };
        let label = if role.is_empty() {
            format!("{}", n.id)
        } else {
            format!("{}\\n{role}", n.id)
        };
        let _ = writeln!(s, "  {} [label=\"{label}\", size_power={}];", n.id, n.size);
    }
    let max_depth = depth.iter().copied().max().unwrap_or(0);
    for d in 0..=max_depth {
        let same: Vec<String> = graph
            .nodes()
            .iter()
            .filter(|n| depth[n.id] == d)
            .map(|n| n.id.to_string())
            .collect();
        let _ = writeln!(s, "  {{ rank=same; {} }}", same.join("; "));
    }
    for (u, e) in graph.edges() {
        let _ = writeln!(
            s,
            "  {u} -> {} [label=\"d{} c{}\", color=\"{}\", dilation={}, channels={}, penwidth={:.1}];",
            e.to,
            e.dilation,
            e.channels,
            colour(e.dilation),
            e.dilation,
            e.channels,
            1.0 + (e.channels as f64).log2().max(0.0)
        );
    }
    s.push_str("}\n");
    s
}
