//! The deterministic steps of the sampler reproduce the original exactly: fed the original's
//! random draws (raw hidden edges, IL and LO picks, recorded by tools/export_sms_graph.py for 40
//! seeds), the insertion-order `triu`, node classification, full matrix and `sort_and_rename`
//! give the same node order, labels and adjacency order as dlsia; and the attributes dlsia drew
//! obey the rules this crate's attribute step implements.

mod common;

use common::{params_from_settings, read_json};
use dlsia_graph::ll::{degree_bounds, ll_adjacency};
use dlsia_graph::multi_source::{full_adjacency, pick_count, NodeClasses};
use dlsia_graph::rename::sort_and_rename;
use dlsia_graph::{DilationMode, SmsGraph, SmsNode, SpatialDims};
use serde_json::Value;

fn pairs(v: &Value) -> Vec<(usize, usize)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p[0].as_u64().unwrap() as usize,
                p[1].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

fn usizes(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn replaying_the_original_draws_gives_the_original_graph() {
    let fx = read_json("traces.json");
    let traces = fx["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 40);
    let mut unsorted_adjacency = 0;
    for t in traces {
        let setting = t["setting"].as_str().unwrap();
        let p = params_from_settings(&fx["settings"][setting]);
        let layers = t["layers"].as_u64().unwrap() as usize;
        let ll = if t["dense"].as_bool().unwrap() {
            dlsia_graph::ll::dense_ll_adjacency(layers)
        } else {
            let raw = pairs(&t["ll_edges"]);
            // Degrees drawn by the original lie within this crate's bounds.
            for ii in 0..layers - 1 {
                let k = raw.iter().filter(|e| e.0 == ii + 1).count();
                let (lo, hi) =
                    degree_bounds(layers, ii, p.ll_min_degree, p.ll_max_degree, &p.quirks);
                assert!(
                    (lo..=hi).contains(&k),
                    "{setting} seed {} node {}: {k} ∉ {lo}..={hi}",
                    t["seed"],
                    ii + 1
                );
            }
            ll_adjacency(layers, &raw, true)
        };
        let kept: usize = ll.iter().map(Vec::len).sum();
        assert_eq!(
            kept as u64,
            t["ll_adjacency_edges"].as_u64().unwrap(),
            "{setting} {}",
            t["seed"]
        );
        let classes = NodeClasses::of(&ll);
        let il = usizes(&t["il_picks"]);
        let lo = usizes(&t["lo_picks"]);
        assert_eq!(il.len(), pick_count(classes.il_skip().len(), p.il));
        assert_eq!(lo.len(), pick_count(classes.lo_skip().len(), p.lo));
        assert!(il.iter().all(|i| classes.il_skip().contains(i)));
        assert!(lo.iter().all(|i| classes.lo_skip().contains(i)));
        let full = full_adjacency(&ll, &classes, &il, &lo, t["io"].as_bool().unwrap());
        let skeleton = sort_and_rename(&full).unwrap();

        let nodes: Vec<SmsNode> = serde_json::from_value(t["nodes"].clone()).unwrap();
        let theirs = SmsGraph::new(nodes).unwrap();
        let order: Vec<usize> = theirs.nodes().iter().map(|n| n.id).collect();
        assert_eq!(skeleton.order, order, "{setting} seed {}", t["seed"]);
        for (adj, n) in skeleton.adjacency.iter().zip(theirs.nodes()) {
            let targets: Vec<usize> = n.edges.iter().map(|e| e.to).collect();
            assert_eq!(*adj, targets, "{setting} seed {} node {}", t["seed"], n.id);
            let mut s = targets.clone();
            s.sort_unstable();
            unsorted_adjacency += usize::from(s != targets);
        }
        check_attribute_rules(&theirs, &p, setting);
    }
    assert!(
        unsorted_adjacency > 0,
        "the fixtures should exercise unsorted adjacency order"
    );
}

/// The rules of `attributes::assign_attributes`, checked on dlsia's own draws.
fn check_attribute_rules(g: &SmsGraph, p: &dlsia_graph::SmsGraphParams, setting: &str) {
    let out = g.output();
    let mut into: Vec<Option<usize>> = vec![None; g.node_count()];
    for (u, e) in g.edges() {
        if e.to == out {
            assert_eq!(
                e.dilation, 1,
                "{setting}: edges into the output have dilation 1"
            );
        } else if p.dilation_mode == DilationMode::Edges && u == 0 {
            assert_eq!(
                e.dilation, 1,
                "{setting}: input edges have dilation 1 in Edges mode"
            );
        } else {
            assert!(p.dilation_choices.contains(&e.dilation), "{setting}");
        }
        if p.dilation_mode == DilationMode::Node && e.to != out {
            // All edges into a hidden node share its dilation, the input's edges included.
            let d = *into[e.to].get_or_insert(e.dilation);
            assert_eq!(
                d, e.dilation,
                "{setting}: node {} has mixed dilations",
                e.to
            );
        }
        let want_input = if p.dims == SpatialDims::Two {
            p.in_channels
        } else {
            1
        };
        match (u, e.to == out) {
            (0, true) => assert_eq!(e.channels, p.in_channels),
            (0, false) => assert_eq!(e.channels, want_input),
            _ => assert!(p.hidden_out_channels.contains(&e.channels)),
        }
    }
}
