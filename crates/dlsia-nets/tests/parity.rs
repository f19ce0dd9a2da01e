//! Parity with the PyTorch original on fixtures written by `tools/make_nets_fixtures.py`
//! (dlsia 0.3.4): each fixture is a model directory exported from a dlsia network plus its
//! input, eval-mode output, train-mode output and BatchNorm statistics after that train step.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{Device, Tensor};
use dlsia_nets::{load_model, read_model_file, Network, Topology};

mod common;
use common::assert_close;

/// `max|got − want| ≤ tol · max|want|` (relative to the output's scale, f32 arithmetic).
fn assert_rel_close(what: &str, got: &Tensor, want: &Tensor, tol: f64) {
    assert_close(what, got, want, tol, 1e-12)
}

fn fixture_dir(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(case)
}

/// dlsia's parameter count for a topology, from this port's network.
fn dlsia_count(topo: &Topology, net: &dyn Network) -> usize {
    net.num_parameters()
        + match topo {
            Topology::TuNet3Plus(c) => c.dlsia_unused_parameters(),
            _ => 0,
        }
}

fn check_case(case: &str) {
    let dir = fixture_dir(case);
    let file = read_model_file(&dir).unwrap();
    let (net, meta) = load_model(&dir, &Device::Cpu).unwrap();
    assert_eq!(
        dlsia_count(&file.topology, net.as_ref()),
        meta["dlsia_num_parameters"].as_u64().unwrap() as usize,
        "{case}: parameter count"
    );
    let io: HashMap<String, Tensor> =
        candle_core::safetensors::load(dir.join("io.safetensors"), &Device::Cpu).unwrap();
    let x = &io["input"];
    net.check_input(x.dims()).unwrap();
    assert_rel_close(
        &format!("{case} eval"),
        &net.forward_t(x, false).unwrap(),
        &io["eval"],
        1e-4,
    );
    let inferred = net.predict(x).unwrap();
    assert!(!inferred.track_op(), "{case}: predict records no graph");
    assert_rel_close(&format!("{case} predict"), &inferred, &io["eval"], 1e-4);
    if let (Some(xo), Some(yo)) = (io.get("other_input"), io.get("other_eval")) {
        // The original had to be rebuilt for this size; this port runs the same network.
        assert_rel_close(
            &format!("{case} eval on {:?}", xo.dims()),
            &net.forward_t(xo, false).unwrap(),
            yo,
            1e-4,
        );
    }
    assert_rel_close(
        &format!("{case} train"),
        &net.forward_t(x, true).unwrap(),
        &io["train"],
        1e-4,
    );
    let ignored = file.topology.ignored_weight_prefixes();
    let mut buffers = 0;
    for (key, want) in &io {
        if let Some(name) = key.strip_prefix("after_train.") {
            if ignored.iter().any(|p| name.starts_with(p.as_str())) {
                continue;
            }
            let got = net
                .params()
                .get(name)
                .unwrap_or_else(|| panic!("{case}: no buffer {name}"));
            if name.ends_with("num_batches_tracked") {
                assert_eq!(
                    got.as_tensor().to_scalar::<i64>().unwrap(),
                    want.to_scalar::<i64>().unwrap(),
                    "{case}: {name}"
                );
            } else {
                assert_rel_close(&format!("{case} {name}"), got.as_tensor(), want, 1e-4);
            }
            buffers += 1;
        }
    }
    let has_bn = net
        .params()
        .entries()
        .iter()
        .any(|(n, _, _)| n.ends_with("running_mean"));
    assert_eq!(has_bn, buffers > 0, "{case}: running statistics checked");
}

#[test]
fn tunet_2d_defaults() {
    check_case("tunet2d");
}

#[test]
fn tunet_2d_non_integer_growth_and_leaky_relu() {
    check_case("tunet2d_frac");
}

#[test]
fn tunet_2d_group_norm_elu_softmax_kernel5_pool3() {
    check_case("tunet2d_gn");
}

#[test]
fn tunet_2d_without_normalisation() {
    check_case("tunet2d_nonorm");
}

#[test]
fn tunet_3d() {
    check_case("tunet3d");
}

#[test]
fn tunet3plus_2d_nearest() {
    check_case("tunet3p2d");
}

#[test]
fn tunet3plus_2d_conv_transpose_silu() {
    check_case("tunet3p2d_convt");
}

#[test]
fn tunet3plus_3d() {
    check_case("tunet3p3d");
}

#[test]
fn msae_sigmoid() {
    check_case("msae");
}

#[test]
fn msae_non_integer_growth_two_channels() {
    check_case("msae_frac");
}

/// dlsia's counts for topologies too large to ship (benchmark workloads and others).
#[test]
fn parameter_counts_match_the_original() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/param_counts.json");
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(list.len() >= 5);
    for entry in list {
        let topo: Topology = serde_json::from_value(entry["topology"].clone()).unwrap();
        let net = topo.build(0, &Device::Cpu).unwrap();
        assert_eq!(
            dlsia_count(&topo, net.as_ref()),
            entry["dlsia_num_parameters"].as_u64().unwrap() as usize,
            "{}",
            entry["label"]
        );
    }
}
