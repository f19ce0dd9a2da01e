//! Parity of SparseAutoEncoder, SparseAEC and SparseLabeler with the PyTorch original on
//! fixtures written by `tools/make_sparse_fixtures.py` (dlsia 0.3.4, the original's own sampled
//! graphs): parameter counts, outputs in eval and train mode, latent vectors, BatchNorm1d
//! running statistics after the training pass, and the gradients of `Σ output·g` with respect
//! to every parameter and the input.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Tensor, Var};
use dlsia_nets::{
    load_model, load_weights, read_model_file, Autoencoder, Network, SparseAec, SparseAutoEncoder,
    SparseLabeler, Topology,
};
use dlsia_ops::ParamStore;

mod common;
use common::{assert_close, assert_fixture_gradients};

/// One of the three networks, concrete (for `forward_both` and the latent vectors).
#[allow(clippy::large_enum_variant)] // three values in a test
enum Sparse {
    Ae(SparseAutoEncoder),
    Aec(SparseAec),
    Labeler(SparseLabeler),
}

impl Sparse {
    fn build(topo: &Topology, store: ParamStore) -> Sparse {
        match topo {
            Topology::SparseAutoEncoder(c) => {
                Sparse::Ae(SparseAutoEncoder::from_store(c, store).unwrap())
            }
            Topology::SparseAec(c) => Sparse::Aec(SparseAec::from_store(c, store).unwrap()),
            Topology::SparseLabeler(c) => {
                Sparse::Labeler(SparseLabeler::from_store(c, store).unwrap())
            }
            other => panic!("not a sparsenet network: {}", other.architecture()),
        }
    }

    fn net(&self) -> &dyn Network {
        match self {
            Sparse::Ae(n) => n,
            Sparse::Aec(n) => n,
            Sparse::Labeler(n) => n,
        }
    }

    /// The outputs under the fixture's key suffixes ("" and, for SparseAEC, "_logits").
    fn outputs(&self, x: &Tensor, train: bool) -> Vec<(&'static str, Tensor)> {
        match self {
            Sparse::Aec(n) => {
                let (rec, logits) = n.forward_both(x, train).unwrap();
                assert_eq!(
                    n.forward_t(x, train).unwrap().dims(),
                    rec.dims(),
                    "forward_t is the reconstruction"
                );
                vec![("", rec), ("_logits", logits)]
            }
            other => vec![("", other.net().forward_t(x, train).unwrap())],
        }
    }

    fn latent(&self, x: &Tensor) -> Option<Tensor> {
        match self {
            Sparse::Ae(n) => Some(n.encode(x, false).unwrap()),
            Sparse::Aec(n) => Some(n.encode(x, false).unwrap()),
            Sparse::Labeler(_) => None,
        }
    }
}

fn check_case(case: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sparse")
        .join(case);
    let (loaded, meta) = load_model(&dir, &Device::Cpu).unwrap();
    assert_eq!(
        loaded.num_parameters(),
        meta["dlsia_num_parameters"].as_u64().unwrap() as usize,
        "{case}: parameter count"
    );
    let topo = read_model_file(&dir).unwrap().topology;
    assert_eq!(
        loaded.topology(),
        topo,
        "{case}: the explicit graphs are kept"
    );
    let io: HashMap<String, Tensor> =
        candle_core::safetensors::load(dir.join("io.safetensors"), &Device::Cpu).unwrap();
    let x = &io["input"];

    // f32: eval and train outputs, latent vectors, running statistics after training.
    let net = Sparse::build(&topo, ParamStore::new(0, &Device::Cpu));
    load_weights(net.net(), &topo, &dir.join("weights.safetensors")).unwrap();
    for (suffix, got) in net.outputs(x, false) {
        assert_close(
            &format!("{case} eval{suffix}"),
            &got,
            &io[&format!("eval{suffix}")],
            1e-4,
            1e-6,
        );
    }
    assert_close(
        &format!("{case} predict"),
        &net.net().predict(x).unwrap(),
        &io["eval"],
        1e-4,
        1e-6,
    );
    if let Some(z) = net.latent(x) {
        assert_close(&format!("{case} latent"), &z, &io["latent"], 1e-4, 1e-6);
    }
    for (suffix, got) in net.outputs(x, true) {
        assert_close(
            &format!("{case} train{suffix}"),
            &got,
            &io[&format!("train{suffix}")],
            1e-4,
            1e-6,
        );
    }
    // The running statistics are compared below, on a fresh network after exactly one
    // training pass as in PyTorch (this one has run two).
    assert!(
        io.keys().any(|k| k.starts_with("after_train.")),
        "{case}: BatchNorm1d buffers in the fixture"
    );

    // f64: one training pass from the fixture's weights, then gradients and running stats.
    let net64 = Sparse::build(&topo, ParamStore::with_dtype(0, &Device::Cpu, DType::F64));
    load_weights(net64.net(), &topo, &dir.join("weights.safetensors")).unwrap();
    let xv = Var::from_tensor(&x.to_dtype(DType::F64).unwrap()).unwrap();
    let outs = match &net64 {
        Sparse::Aec(n) => {
            let (r, l) = n.forward_both(xv.as_tensor(), true).unwrap();
            vec![("", r), ("_logits", l)]
        }
        other => vec![("", other.net().forward_t(xv.as_tensor(), true).unwrap())],
    };
    let mut loss = Tensor::zeros((), DType::F64, &Device::Cpu).unwrap();
    for (suffix, y) in &outs {
        assert_close(
            &format!("{case} train{suffix} (f64)"),
            y,
            &io[&format!("train{suffix}")],
            1e-4,
            1e-6,
        );
        let g_key = if suffix.is_empty() {
            "grad_output".to_string()
        } else {
            format!("grad{suffix}")
        };
        let g = io[&g_key].to_dtype(DType::F64).unwrap();
        loss = (loss + (y * g).unwrap().sum_all().unwrap()).unwrap();
    }
    for (key, want) in &io {
        let Some(name) = key.strip_prefix("after_train.") else {
            continue;
        };
        let got = net64
            .net()
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
            assert_close(&format!("{case} {name}"), got.as_tensor(), want, 1e-4, 1e-6);
        }
    }
    let grads = loss.backward().unwrap();
    // Gradients that vanish analytically (a bias before batch-statistics BatchNorm) are
    // PyTorch f32 noise: compared absolutely, to 1e-4 × 1.
    assert_fixture_gradients(
        case,
        &io,
        &grads,
        xv.as_tensor(),
        net64.net().params(),
        1e-4,
        1.0,
    );
}

#[test]
fn sparse_autoencoder_matches_dlsia() {
    check_case("autoencoder");
}

#[test]
fn sparse_aec_matches_dlsia() {
    check_case("aec");
}

#[test]
fn sparse_labeler_matches_dlsia() {
    check_case("labeler");
}
