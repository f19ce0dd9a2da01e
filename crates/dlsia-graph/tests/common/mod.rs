//! Shared helpers of the integration tests: fixture paths and the translation of the exporter's
//! (dlsia's) settings into [`SmsGraphParams`].
#![allow(dead_code)]

use std::path::PathBuf;

use dlsia_graph::{DegreeBound, DilationMode, SmsGraphParams, SpatialDims};
use serde_json::Value;

/// Path of a file under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Reads a JSON fixture.
pub fn read_json(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name)).expect("fixture exists");
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn degree(v: &Value) -> Option<DegreeBound> {
    match v {
        Value::Null => None,
        Value::Number(n) if n.is_u64() => Some(DegreeBound::Count(n.as_u64().unwrap() as usize)),
        Value::Number(n) => Some(DegreeBound::Fraction(n.as_f64().unwrap())),
        other => panic!("bad degree {other}"),
    }
}

/// The sampler parameters of one of the exporter's settings (dlsia's quirks replicated).
pub fn params_from_settings(s: &Value) -> SmsGraphParams {
    let usizes = |v: &Value| -> Vec<usize> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect()
    };
    let lp = &s["layer_probabilities"];
    let mut p = SmsGraphParams::new(
        s["layers"].as_u64().unwrap() as usize,
        usizes(&s["dilation_choices"]),
    );
    p.hidden_out_channels = usizes(&s["hidden_out_channels"]);
    p.in_channels = s["in_channels"].as_u64().unwrap() as usize;
    p.dims = SpatialDims::try_from(s["dims"].as_u64().unwrap() as u8).unwrap();
    p.ll_alpha = lp["LL_alpha"].as_f64().unwrap();
    p.ll_gamma = lp["LL_gamma"].as_f64();
    p.ll_min_degree = degree(&lp["LL_min_degree"]).unwrap();
    p.ll_max_degree = degree(&lp["LL_max_degree"]);
    p.il = lp["IL"].as_f64().unwrap();
    p.lo = lp["LO"].as_f64().unwrap();
    p.io = lp["IO"].as_bool().unwrap();
    p.dilation_mode = match s["dilation_mode"].as_str().unwrap() {
        "Edges" => DilationMode::Edges,
        "Node" => DilationMode::Node,
        "NodeCyclic" => DilationMode::NodeCyclic,
        other => panic!("mode {other}"),
    };
    p
}
