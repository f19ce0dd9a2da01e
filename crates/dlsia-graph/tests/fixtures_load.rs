//! Graphs sampled by the original dlsia (tools/export_sms_graph.py) load, validate and give the
//! original's action order, state_dict shapes and parameter counts.

mod common;

use common::{fixture, read_json};
use dlsia_graph::{
    count_parameters, CountSpec, EdgeOp, GraphDocument, LastAction, ScalingTable, SmsGraph,
    SpatialDims,
};

fn fixtures() -> Vec<(String, GraphDocument)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixture("graphs")).unwrap() {
        let path = entry.unwrap().path();
        let doc = GraphDocument::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.push((
            path.file_name().unwrap().to_string_lossy().into_owned(),
            doc,
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(out.len(), 7, "expected the 7 exported graphs");
    out
}

fn dims_of(doc: &GraphDocument) -> SpatialDims {
    SpatialDims::try_from(doc.meta["dims"].as_u64().unwrap() as u8).unwrap()
}

#[test]
fn fixtures_validate_and_some_have_unsorted_node_order() {
    let mut unsorted = 0;
    for (name, doc) in fixtures() {
        let g = &doc.graph;
        let order: Vec<usize> = g.nodes().iter().map(|n| n.id).collect();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        if order != sorted {
            unsorted += 1;
        }
        // channel_count was checked on load; check it once more explicitly.
        let cc = doc.channel_count.as_ref().unwrap();
        g.check_channel_count(doc.in_channels.unwrap(), cc).unwrap();
        assert_eq!(cc.len(), g.node_count(), "{name}");
    }
    assert!(
        unsorted >= 3,
        "only {unsorted} fixtures with unsorted order"
    );
}

#[test]
fn action_order_matches_the_original() {
    for (name, doc) in fixtures() {
        let expected: Vec<String> = doc.meta["action_order"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .filter(|s| s != "Last_Action")
            .collect();
        let ours: Vec<String> = doc
            .graph
            .actions(doc.in_channels.unwrap(), dims_of(&doc))
            .iter()
            .map(|a| a.name())
            .collect();
        assert_eq!(ours, expected, "{name}");
    }
}

#[test]
fn edge_ops_give_the_original_state_dict_shapes() {
    for (name, doc) in fixtures() {
        let dims = dims_of(&doc);
        let shapes: std::collections::HashMap<String, Vec<usize>> = doc.meta["state_dict_shapes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let k = p[0].as_str().unwrap().to_string();
                let v = p[1]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_u64().unwrap() as usize)
                    .collect();
                (k, v)
            })
            .collect();
        let mut edge_keys = 0;
        for a in doc.graph.actions(doc.in_channels.unwrap(), dims) {
            let k = match a.op {
                EdgeOp::ConvBnRelu { .. } => 3,
                EdgeOp::Linear => 1,
            };
            let transposed = a.to_size > a.from_size;
            let mut want = if transposed {
                vec![a.in_channels, a.out_channels]
            } else {
                vec![a.out_channels, a.in_channels]
            };
            want.extend(std::iter::repeat_n(k, dims.count() as usize));
            assert_eq!(
                shapes[&format!("{}.0.weight", a.name())],
                want,
                "{name} {}",
                a.name()
            );
            let has_bias = shapes.contains_key(&format!("{}.0.bias", a.name()));
            let has_bn = shapes.contains_key(&format!("{}.1.weight", a.name()));
            let conv = matches!(a.op, EdgeOp::ConvBnRelu { .. });
            assert_eq!((has_bias, has_bn), (conv, conv), "{name} {}", a.name());
            edge_keys += if conv { 4 } else { 1 };
        }
        let last_keys = shapes
            .keys()
            .filter(|k| k.starts_with("Last_Action"))
            .count();
        assert_eq!(
            edge_keys + last_keys,
            shapes.len(),
            "{name}: every state_dict entry accounted for"
        );
    }
}

#[test]
fn parameter_counts_equal_pytorch() {
    let mut checked = 0;
    for (name, doc) in fixtures() {
        let dims = dims_of(&doc);
        let cin = doc.in_channels.unwrap();
        let out = doc.meta["out_channels"].as_u64().unwrap() as usize;
        let default = count_parameters(&doc.graph, &CountSpec::new(cin, out, dims)).unwrap();
        assert_eq!(
            default as u64,
            doc.meta["parameters"].as_u64().unwrap(),
            "{name}"
        );
        for c in doc.meta["parameter_counts"].as_array().unwrap() {
            let last_action = match c["last_action"].as_str().unwrap() {
                "Linear" => LastAction::Linear,
                "LinearSigmoid" => LastAction::LinearSigmoid,
                "LinearBnRelu" => LastAction::LinearBnRelu,
                "Identity" => LastAction::Identity,
                other => panic!("{other}"),
            };
            let spec = CountSpec {
                in_channels: cin,
                out_channels: c["out_channels"].as_u64().unwrap() as usize,
                kernel_size: c["kernel_size"].as_u64().unwrap() as usize,
                dims,
                last_action,
            };
            let ours = count_parameters(&doc.graph, &spec).unwrap();
            assert_eq!(ours as u64, c["count"].as_u64().unwrap(), "{name} {c}");
            checked += 1;
        }
    }
    assert!(checked >= 60, "{checked}");
}

#[test]
fn w4_benchmark_graph_has_45748_parameters() {
    let doc = GraphDocument::load(fixture("graphs/w4_ensemble_2d_seed2.json")).unwrap();
    let n = count_parameters(&doc.graph, &CountSpec::new(1, 2, SpatialDims::Two)).unwrap();
    assert_eq!(n, 45_748);
}

#[test]
fn sizing_fixture_keeps_node_sizes() {
    let doc = GraphDocument::load(fixture("graphs/sizing_2d_seed4.json")).unwrap();
    let g = &doc.graph;
    assert_eq!(g.node(0).unwrap().size, 0);
    // in 64 / out 32 with base 2: the output node has power −1.
    assert_eq!(g.node(g.output()).unwrap().size, -1);
    assert!(g.nodes().iter().all(|n| (-2..=1).contains(&n.size)));
    assert!(g.nodes().iter().any(|n| n.size > 0) && g.nodes().iter().any(|n| n.size < -1));
}

#[test]
fn json_round_trip_keeps_everything() {
    for (name, doc) in fixtures() {
        let text = doc.to_json();
        let back = GraphDocument::from_json(&text).unwrap();
        assert_eq!(back, doc, "{name}");
        let g2 = SmsGraph::from_json(&doc.graph.to_json()).unwrap();
        assert_eq!(g2, doc.graph, "{name}");
    }
    let dir = tempfile::tempdir().unwrap();
    let (_, doc) = fixtures().remove(0);
    let path = dir.path().join("g.json");
    doc.graph.save(&path).unwrap();
    assert_eq!(SmsGraph::load(&path).unwrap(), doc.graph);
}

#[test]
fn scaling_tables_equal_dlsia() {
    let tables = read_json("scaling_tables.json");
    for t in tables.as_array().unwrap() {
        let g = |k: &str| t[k].as_i64().unwrap();
        let ours = ScalingTable::new(
            g("input_size") as usize,
            g("stride_base") as u32,
            g("min_power") as i32,
            g("max_power") as i32,
            g("kernel") as usize,
        )
        .unwrap();
        let entries = t["entries"].as_array().unwrap();
        let w = (g("max_power") - g("min_power") + 1) as usize;
        assert_eq!(entries.len(), w * w);
        for e in entries {
            let step = ours
                .get(e[0].as_i64().unwrap() as i32, e[1].as_i64().unwrap() as i32)
                .unwrap();
            assert_eq!(step.stride, e[2].as_u64().unwrap(), "{t}");
            assert_eq!(step.output_padding, e[3].as_i64(), "{e} in {t}");
        }
    }
}
