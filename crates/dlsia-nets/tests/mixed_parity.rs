//! Parity of MSDNet and SMSNet with the PyTorch original on fixtures written by
//! `tools/make_mixed_fixtures.py` (dlsia 0.3.4): outputs in eval and train mode, BatchNorm
//! running statistics after the training forward pass, and the gradients of
//! `sum(train_output · g)` with respect to every parameter and the input.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor, Var};
use dlsia_nets::{load_model, load_weights, read_model_file, MsdNet, Network, SmsNet, Topology};
use dlsia_ops::ParamStore;

mod common;
use common::{assert_close, assert_fixture_gradients};

/// `max|got − want| ≤ tol · max(max|want|, 1e-6)`.
fn assert_rel_close(what: &str, got: &Tensor, want: &Tensor, tol: f64) {
    assert_close(what, got, want, tol, 1e-6)
}

/// The fixture's network rebuilt in f64 (for gradients free of f32 noise on this side).
fn f64_network(dir: &std::path::Path, topo: &Topology) -> Box<dyn Network> {
    let store = ParamStore::with_dtype(0, &Device::Cpu, DType::F64);
    let net: Box<dyn Network> = match topo {
        Topology::MsdNet(c) => Box::new(MsdNet::from_store(c, store).unwrap()),
        Topology::SmsNet(c) => Box::new(SmsNet::from_store(c, store).unwrap()),
        other => panic!("not a mixed-scale network: {}", other.architecture()),
    };
    load_weights(net.as_ref(), topo, &dir.join("weights.safetensors")).unwrap();
    net
}

fn check_case(case: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mixed")
        .join(case);
    let (net, meta) = load_model(&dir, &Device::Cpu).unwrap();
    assert_eq!(
        net.num_parameters(),
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
    assert_rel_close(
        &format!("{case} train"),
        &net.forward_t(x, true).unwrap(),
        &io["train"],
        1e-4,
    );
    for (key, want) in &io {
        if let Some(name) = key.strip_prefix("after_train.") {
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
        }
    }
    // Gradients of sum(train output · g), computed in f64 against PyTorch's f32 values.
    let topo = read_model_file(&dir).unwrap().topology;
    let net64 = f64_network(&dir, &topo);
    let xv = Var::from_tensor(&x.to_dtype(DType::F64).unwrap()).unwrap();
    let y = net64.forward_t(xv.as_tensor(), true).unwrap();
    assert_rel_close(&format!("{case} train (f64)"), &y, &io["train"], 1e-4);
    let g = io["grad_output"].to_dtype(DType::F64).unwrap();
    let grads = (y * g).unwrap().sum_all().unwrap().backward().unwrap();
    // Gradients that vanish analytically (a bias before batch-statistics BatchNorm) are
    // PyTorch f32 noise (up to 1.7e-4 here, where weight gradients reach 12): compared
    // absolutely, to 1e-4 × 2.
    assert_fixture_gradients(case, &io, &grads, xv.as_tensor(), net64.params(), 1e-4, 2.0);
}

#[test]
fn msdnet_2d_width_1() {
    check_case("msd2d_w1");
}

#[test]
fn msdnet_2d_width_2() {
    check_case("msd2d_w2");
}

#[test]
fn msdnet_2d_custom_dilation_matrix_sigmoid_kernel_5() {
    check_case("msd2d_custom");
}

#[test]
fn msdnet_2d_custom_dilation_list() {
    check_case("msd2d_custom1d");
}

#[test]
fn msdnet_3d_width_1() {
    check_case("msd3d_w1");
}

#[test]
fn msdnet_3d_width_2() {
    check_case("msd3d_w2");
}

#[test]
fn msdnet_leaky_relu_instance_norm_reflect_softmax() {
    check_case("msd2d_leaky_instance_reflect");
}

#[test]
fn msdnet_activation_list_without_normalisation() {
    check_case("msd2d_actlist_nonorm");
}

#[test]
fn smsnet_2d_unsorted_node_order() {
    check_case("sms2d_unsorted");
}

#[test]
fn smsnet_2d_ensemble_settings() {
    check_case("sms2d_ensemble");
}

#[test]
fn smsnet_2d_regression_positive() {
    check_case("sms2d_positive");
}

#[test]
fn smsnet_2d_regression_sigmoid() {
    check_case("sms2d_sigmoid");
}

#[test]
fn smsnet_2d_strided_and_transposed_edges() {
    check_case("sms2d_sizes");
}

#[test]
fn smsnet_3d() {
    check_case("sms3d");
}
