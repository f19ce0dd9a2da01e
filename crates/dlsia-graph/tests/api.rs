//! Hand-computed parameter counts, validation and parameter errors, JSON errors, ensembles.

use dlsia_graph::{
    count_parameters, sample_ensemble, CountSpec, DegreeBound, EnsembleParams, Error, LastAction,
    Quirks, SizingSettings, SmsEdge, SmsGraph, SmsGraphParams, SmsNode, SpatialDims,
};

fn node(id: usize, edges: &[(usize, usize, usize)]) -> SmsNode {
    SmsNode {
        id,
        size: 0,
        edges: edges
            .iter()
            .map(|&(to, dilation, channels)| SmsEdge {
                to,
                dilation,
                channels,
            })
            .collect(),
    }
}

/// dlsia.md §2.6.2's example: in 2, out 3, 4 layers, dilations [1,2,4], hidden channels [2,3].
fn reference_graph() -> SmsGraph {
    SmsGraph::new(vec![
        node(0, &[(1, 1, 2), (3, 1, 2), (4, 1, 2)]),
        node(1, &[(2, 2, 3), (4, 1, 2)]),
        node(2, &[(3, 4, 3)]),
        node(3, &[(4, 1, 3)]),
        node(4, &[]),
    ])
    .unwrap()
}

#[test]
fn reference_example_channels_and_parameters_by_hand() {
    let g = reference_graph();
    assert_eq!(g.channel_count(2), vec![2, 2, 3, 5, 7]);
    // 2-D: three 3×3 input convs 2→2 (36 + 2 bias + 4 BN = 42 each), Edge_1_2 3×3 2→3 dil 2
    // (54 + 9), Edge_1_4 1×1 2→2 (4), Edge_2_3 3×3 3→3 (81 + 9), Edge_3_4 1×1 5→3 (15),
    // Last_Action 1×1 7→3 + bias (24): 126 + 63 + 4 + 90 + 15 + 24 = 322.
    assert_eq!(
        count_parameters(&g, &CountSpec::new(2, 3, SpatialDims::Two)).unwrap(),
        322
    );
    // 3-D: input edges are ordinary convs (27·2·2 + 6 = 114) except 0→4, a 1×1×1 (4):
    // 114 + 114 + 4 + (162 + 9) + 4 + (243 + 9) + 15 + 24 = 698.
    assert_eq!(
        count_parameters(&g, &CountSpec::new(2, 3, SpatialDims::Three)).unwrap(),
        698
    );
    // 1-D, kernel 5, sigmoid last action: 20+6, 20+6, 4, 30+9, 4, 45+9, 15, 24 = 192.
    let spec = CountSpec {
        kernel_size: 5,
        last_action: LastAction::LinearSigmoid,
        ..CountSpec::new(2, 3, SpatialDims::One)
    };
    assert_eq!(count_parameters(&g, &spec).unwrap(), 192);
    let names: Vec<String> = g
        .actions(2, SpatialDims::Two)
        .iter()
        .map(|a| a.name())
        .collect();
    assert_eq!(
        names,
        ["Edge_0_1", "Edge_0_3", "Edge_0_4", "Edge_1_2", "Edge_1_4", "Edge_2_3", "Edge_3_4"]
    );
    assert_eq!(g.depths(), vec![0, 1, 2, 3, 4]);
}

#[test]
fn petgraph_round_trip_keeps_orders() {
    let g = SmsGraph::new(vec![
        node(0, &[(2, 1, 1), (1, 1, 1), (3, 1, 1)]),
        node(2, &[(1, 2, 1)]),
        node(1, &[(3, 1, 1)]),
        node(3, &[]),
    ])
    .unwrap();
    let pg = g.to_petgraph();
    assert!(!petgraph::algo::is_cyclic_directed(&pg));
    assert_eq!(SmsGraph::from_petgraph(&pg).unwrap(), g);
}

fn invalid(nodes: Vec<SmsNode>, fragment: &str) {
    match SmsGraph::new(nodes) {
        Err(Error::InvalidGraph(msg)) => {
            assert!(msg.contains(fragment), "{msg:?} lacks {fragment:?}")
        }
        other => panic!("expected an error containing {fragment:?}, got {other:?}"),
    }
}

#[test]
fn validation_names_each_problem() {
    invalid(vec![node(0, &[])], "at least an input and an output");
    invalid(vec![node(0, &[(1, 1, 1)]), node(5, &[])], "out of range");
    invalid(vec![node(0, &[(1, 1, 1)]), node(0, &[])], "appears twice");
    invalid(
        vec![node(1, &[(0, 1, 1)]), node(0, &[])],
        "first node must be the input",
    );
    invalid(
        vec![node(0, &[(2, 1, 1)]), node(2, &[(1, 1, 1)]), node(1, &[])],
        "last node must be the output",
    );
    invalid(vec![node(0, &[(0, 1, 1)]), node(1, &[])], "self-loop");
    invalid(
        vec![node(0, &[(1, 1, 1), (1, 2, 1)]), node(1, &[])],
        "listed twice",
    );
    invalid(vec![node(0, &[(1, 0, 1)]), node(1, &[])], "dilation 0");
    invalid(vec![node(0, &[(1, 1, 0)]), node(1, &[])], "0 channels");
    invalid(vec![node(0, &[(7, 1, 1)]), node(1, &[])], "does not exist");
    // A cycle 1 → 2 → 1 cannot be listed in a forward order.
    invalid(
        vec![
            node(0, &[(1, 1, 1)]),
            node(1, &[(2, 1, 1)]),
            node(2, &[(1, 1, 1), (3, 1, 1)]),
            node(3, &[]),
        ],
        "not a topological order",
    );
    invalid(
        vec![node(0, &[(2, 1, 1)]), node(1, &[(2, 1, 1)]), node(2, &[])],
        "node 1 has no incoming edge",
    );
    invalid(
        vec![node(0, &[(1, 1, 1), (2, 1, 1)]), node(1, &[]), node(2, &[])],
        "node 1 has no outgoing edge",
    );
}

#[test]
fn json_errors_are_reported() {
    let good = reference_graph().to_json();
    assert!(SmsGraph::from_json(&good).is_ok());
    let bad_field = good.replacen("\"dilation\"", "\"dilaton\"", 1);
    assert!(
        matches!(SmsGraph::from_json(&bad_field), Err(Error::Json(m)) if m.contains("dilaton"))
    );
    let bad_format = good.replace("dlsia-sms-graph", "something-else");
    assert!(
        matches!(SmsGraph::from_json(&bad_format), Err(Error::Json(m)) if m.contains("format"))
    );
    let bad_version = good.replace("\"version\": 1", "\"version\": 9");
    assert!(
        matches!(SmsGraph::from_json(&bad_version), Err(Error::Json(m)) if m.contains("version 9"))
    );
    assert!(matches!(SmsGraph::from_json("{"), Err(Error::Json(_))));
    // A channel_count that disagrees with the edges.
    let doc = dlsia_graph::GraphDocument::with_channels(reference_graph(), 2);
    let text = doc.to_json().replacen("7\n", "8\n", 1);
    assert!(matches!(
        SmsGraph::from_json(&text),
        Err(Error::InvalidParameter {
            name: "channel_count",
            ..
        })
    ));
    assert!(matches!(
        SmsGraph::load("/nonexistent/g.json"),
        Err(Error::Io { .. })
    ));
}

fn rejects(p: SmsGraphParams, name: &str) {
    match p.check() {
        Err(Error::InvalidParameter { name: n, msg }) => assert_eq!(n, name, "{msg}"),
        other => panic!("expected {name} to be rejected, got {other:?}"),
    }
}

#[test]
fn bad_sampler_parameters_are_rejected() {
    let base = || SmsGraphParams::new(8, vec![1, 2]);
    rejects(
        SmsGraphParams {
            layers: 1,
            ..base()
        },
        "layers",
    );
    rejects(
        SmsGraphParams {
            dilation_choices: vec![],
            ..base()
        },
        "dilation_choices",
    );
    rejects(
        SmsGraphParams {
            dilation_choices: vec![1, 0],
            ..base()
        },
        "dilation_choices",
    );
    rejects(
        SmsGraphParams {
            hidden_out_channels: vec![],
            ..base()
        },
        "hidden_out_channels",
    );
    rejects(
        SmsGraphParams {
            in_channels: 0,
            ..base()
        },
        "in_channels",
    );
    rejects(
        SmsGraphParams {
            ll_alpha: -0.1,
            ..base()
        },
        "LL_alpha",
    );
    rejects(
        SmsGraphParams {
            ll_alpha: f64::NAN,
            ..base()
        },
        "LL_alpha",
    );
    rejects(
        SmsGraphParams {
            ll_gamma: Some(f64::INFINITY),
            ..base()
        },
        "LL_gamma",
    );
    rejects(
        SmsGraphParams {
            ll_min_degree: DegreeBound::Count(0),
            ..base()
        },
        "LL_min_degree",
    );
    rejects(
        SmsGraphParams {
            ll_max_degree: Some(DegreeBound::Fraction(1.5)),
            ..base()
        },
        "LL_max_degree",
    );
    rejects(SmsGraphParams { il: 1.2, ..base() }, "IL");
    rejects(SmsGraphParams { lo: -0.5, ..base() }, "LO");
    let sizing = |min_power, max_power| SizingSettings {
        stride_base: 2,
        min_power,
        max_power,
    };
    rejects(
        SmsGraphParams {
            sizing: sizing(1, 2),
            ..base()
        },
        "sizing",
    );
    rejects(
        SmsGraphParams {
            out_size: 16,
            ..base()
        },
        "out_size",
    ); // needs power −2
    assert!(SmsGraphParams {
        out_size: 16,
        sizing: sizing(-2, 0),
        ..base()
    }
    .check()
    .is_ok());
    let zero_channels = CountSpec::new(0, 1, SpatialDims::Two);
    assert!(count_parameters(&reference_graph(), &zero_channels).is_err());
}

#[test]
fn ensemble_members_respect_bounds_and_are_reproducible() {
    let mut p = EnsembleParams::new(5, 1, 2, 16);
    p.parameter_bounds = Some((30_000, 60_000));
    let a = sample_ensemble(&p, 7).unwrap();
    assert_eq!(a.len(), 5);
    for m in &a {
        assert!(m.parameter_count > 30_000 && m.parameter_count < 60_000);
        let spec = p.count_spec();
        assert_eq!(
            count_parameters(&m.graph, &spec).unwrap(),
            m.parameter_count
        );
        assert!(m.trials >= 1 && m.trials <= p.max_trial);
    }
    assert_eq!(a, sample_ensemble(&p, 7).unwrap());
    // Member i does not depend on how many members there are.
    p.n_networks = 2;
    assert_eq!(sample_ensemble(&p, 7).unwrap()[..], a[..2]);
    // Without bounds every member is the first draw.
    p.parameter_bounds = None;
    assert!(sample_ensemble(&p, 3)
        .unwrap()
        .iter()
        .all(|m| m.trials == 1));
}

#[test]
fn impossible_bounds_give_up_after_max_trial() {
    let mut p = EnsembleParams::new(2, 1, 2, 6);
    p.parameter_bounds = Some((5_000_000, 6_000_000));
    p.max_trial = 25;
    match sample_ensemble(&p, 1) {
        Err(Error::BoundsNotMet {
            member: 0,
            trials: 25,
            min: 5_000_000,
            max: 6_000_000,
            lowest,
            highest,
        }) => {
            assert!(lowest <= highest && highest < 5_000_000);
        }
        other => panic!("{other:?}"),
    }
    p.parameter_bounds = Some((10, 11));
    assert!(matches!(
        sample_ensemble(&p, 1),
        Err(Error::InvalidParameter {
            name: "parameter_bounds",
            ..
        })
    ));
    p.parameter_bounds = None;
    p.n_networks = 0;
    assert!(sample_ensemble(&p, 1).is_err());
}

#[test]
fn ensemble_3d_and_fixed_quirks_sample() {
    let mut p = EnsembleParams::new(3, 1, 1, 8);
    p.dims = SpatialDims::Three;
    p.quirks = Quirks::FIXED;
    let members = sample_ensemble(&p, 5).unwrap();
    for m in members {
        // 1-D/3-D input → hidden edges emit one channel.
        for (u, e) in m.graph.edges() {
            if u == 0 && e.to != m.graph.output() {
                assert_eq!(e.channels, 1);
            }
        }
    }
}

#[test]
fn graph_serialises_as_its_node_list_and_validates_when_read() {
    let g = reference_graph();
    let text = serde_json::to_string(&g).unwrap();
    assert!(text.starts_with("[{\"id\":0"));
    let back: SmsGraph = serde_json::from_str(&text).unwrap();
    assert_eq!(back, g);
    let cyclic = r#"[{"id":0,"edges":[{"to":1,"dilation":1,"channels":1}]},{"id":1,"edges":[{"to":0,"dilation":1,"channels":1}]}]"#;
    let err = serde_json::from_str::<SmsGraph>(cyclic).unwrap_err();
    assert!(err.to_string().contains("topological order"), "{err}");
}

#[test]
fn params_deserialise_with_dlsia_defaults() {
    let p: SmsGraphParams =
        serde_json::from_str(r#"{"layers": 12, "dilation_choices": [1, 2]}"#).unwrap();
    assert_eq!(p, SmsGraphParams::new(12, vec![1, 2]));
    let dense: SmsGraphParams = serde_json::from_str(
        r#"{"layers": 5, "dilation_choices": [1], "ll_gamma": null, "ll_max_degree": 0.5}"#,
    )
    .unwrap();
    assert_eq!(dense.ll_gamma, None);
    assert_eq!(dense.ll_max_degree, Some(DegreeBound::Fraction(0.5)));
    let text = serde_json::to_string(&p).unwrap();
    assert_eq!(serde_json::from_str::<SmsGraphParams>(&text).unwrap(), p);
    assert!(serde_json::from_str::<SmsGraphParams>(
        r#"{"layers": 5, "dilation_choices": [1], "alpha": 1}"#
    )
    .is_err());
}
