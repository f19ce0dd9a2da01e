//! The lean MSDNet: parity with dlsia's MixedScaleDenseNetwork through the converter
//! (fixtures from `tools/make_lean_msd_fixtures.py`: outputs and every gradient), parameter
//! counts, the normalised variant against the same network built from plain layers, training,
//! save/load and input checks.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use candle_core::{DType, Device, Module, ModuleT, Tensor, Var};
use candle_nn::optim::{AdamW, Optimizer, ParamsAdamW};
use dlsia_nets::lean_msd::convert::{
    dlsia_weights_from_lean, lean_weights_from_dlsia, DlsiaMsdSpec,
};
use dlsia_nets::{load_model, save_model, FinalAct, LeanMsdConfig, LeanMsdNet, Network, Norm};
use dlsia_ops::nn::BatchNorm;
use dlsia_ops::{conv, ConvSpec, LoadOptions, PaddingMode, ParamStore};

fn dev() -> Device {
    Device::Cpu
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// `max|got − want| ≤ tol · max(1e-6, max|want|)`.
fn assert_rel_close(what: &str, got: &Tensor, want: &Tensor, tol: f64) {
    assert_eq!(got.elem_count(), want.elem_count(), "{what}: size");
    let (g, w) = (flat(got), flat(want));
    let scale = w.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
    let err = g
        .iter()
        .zip(&w)
        .fold(0f64, |m, (a, b)| m.max((a - b).abs()));
    assert!(
        err <= tol * scale,
        "{what}: max error {err:e} > {tol:e} × {scale:e}"
    );
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lean_msd")
}

/// Converts a dlsia fixture into a lean network and checks outputs and all gradients.
fn check_dlsia_case(case: &str) {
    let dir = fixtures().join(case);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("dlsia.json")).unwrap()).unwrap();
    let spec: DlsiaMsdSpec = serde_json::from_value(meta["spec"].clone()).unwrap();
    let cfg = LeanMsdConfig::from_dlsia(&spec).unwrap();
    let net = LeanMsdNet::new(&cfg, 5, &dev()).unwrap();
    assert_eq!(
        net.num_parameters() as u64,
        meta["dlsia_num_parameters"].as_u64().unwrap(),
        "{case}: parameter count"
    );
    let state: BTreeMap<String, Tensor> =
        candle_core::safetensors::load(dir.join("weights.safetensors"), &dev())
            .unwrap()
            .into_iter()
            .collect();
    let lean = lean_weights_from_dlsia(&cfg, &state).unwrap();
    net.params()
        .load_tensors(&lean, &LoadOptions::default())
        .unwrap();
    // The round trip gives dlsia's tensors back, shapes included.
    let back = dlsia_weights_from_lean(&cfg, &lean).unwrap();
    assert_eq!(back.len(), state.len());
    for (k, v) in &state {
        assert_eq!(back[k].dims(), v.dims(), "{case}: {k}");
        assert_eq!(flat(&back[k]), flat(v), "{case}: {k}");
    }
    let io: HashMap<String, Tensor> =
        candle_core::safetensors::load(dir.join("io.safetensors"), &dev()).unwrap();
    let x = Var::from_tensor(&io["input"]).unwrap();
    let y = net.forward_t(&x, false).unwrap();
    assert_rel_close(&format!("{case} output"), &y, &io["output"], 1e-5);
    assert_rel_close(
        &format!("{case} predict"),
        &net.predict(&x).unwrap(),
        &io["output"],
        1e-5,
    );
    // Gradients: map dlsia's per-parameter gradients to the lean layout with the converter.
    let grads = (y * &io["probe"])
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_rel_close(
        &format!("{case} grad input"),
        grads.get(&x).unwrap(),
        &io["grad.input"],
        1e-4,
    );
    let dlsia_grads: BTreeMap<String, Tensor> = state
        .keys()
        .map(|k| (k.clone(), io[&format!("grad.{k}")].clone()))
        .collect();
    let want = lean_weights_from_dlsia(&cfg, &dlsia_grads).unwrap();
    for (name, w) in &want {
        let var = net.params().get(name).unwrap();
        let g = grads.get(var.as_tensor()).unwrap();
        assert_rel_close(&format!("{case} grad {name}"), g, w, 1e-4);
    }
}

#[test]
fn matches_dlsia_msdnet_2d_width_1_zeros() {
    check_dlsia_case("w1_zeros_2d");
}

#[test]
fn matches_dlsia_msdnet_2d_width_2_reflect() {
    check_dlsia_case("w2_reflect_2d");
}

#[test]
fn matches_dlsia_msdnet_custom_dilations_replicate() {
    check_dlsia_case("custom_replicate_2d");
}

#[test]
fn matches_dlsia_msdnet_3d() {
    check_dlsia_case("w1_zeros_3d");
}

#[test]
fn parameter_counts_equal_dlsia_without_batchnorm() {
    let counts: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("param_counts.json")).unwrap(),
    )
    .unwrap();
    for (id, cfg) in [
        ("W1", LeanMsdConfig::new(2, 1, 2, 100, 1, 10)),
        ("W2", LeanMsdConfig::new(2, 1, 1, 200, 1, 10)),
    ] {
        let net = LeanMsdNet::new(&cfg, 0, &dev()).unwrap();
        assert_eq!(
            net.num_parameters() as u64,
            counts[id]["normalization_none"].as_u64().unwrap(),
            "{id}"
        );
    }
    // The paper's 200-layer network: 181,302 convolution parameters.
    let w2 = LeanMsdNet::new(&LeanMsdConfig::new(2, 1, 1, 200, 1, 10), 0, &dev()).unwrap();
    assert_eq!(w2.num_parameters(), 181_302);
}

#[test]
fn converter_refuses_networks_that_differ() {
    let mut d = DlsiaMsdSpec::new(2, 1, 2, 5, 1, 3);
    let e = LeanMsdConfig::from_dlsia(&d).unwrap_err().to_string();
    assert!(e.contains("normalization"), "{e}");
    d.normalization = Norm::None;
    d.final_layer = Some(FinalAct::Softmax);
    let e = LeanMsdConfig::from_dlsia(&d).unwrap_err().to_string();
    assert!(e.contains("raw input"), "{e}");
    d.final_layer = None;
    let cfg = LeanMsdConfig::from_dlsia(&d).unwrap();
    assert_eq!(cfg.to_dlsia().unwrap(), d);
    // A state_dict with BatchNorm tensors is refused by name.
    let net = LeanMsdNet::new(&cfg, 0, &dev()).unwrap();
    let mut state = dlsia_weights_from_lean(&cfg, &net.params().snapshot().unwrap()).unwrap();
    state.insert(
        "normalization_0.weight".into(),
        Tensor::ones(2, DType::F32, &dev()).unwrap(),
    );
    let e = lean_weights_from_dlsia(&cfg, &state)
        .unwrap_err()
        .to_string();
    assert!(e.contains("normalization_0.weight"), "{e}");
    // A lean network with BatchNorm has no dlsia counterpart.
    let mut bn = cfg.clone();
    bn.normalization = Norm::Batch;
    assert!(bn.to_dlsia().is_err());
    bn.normalization = Norm::Group { groups: 1 };
    assert!(bn.validate().is_err());
}

/// The normalised lean network rebuilt from plain layers: per layer, conv + BatchNorm (of the
/// new channels) + ReLU, concatenated; 1×1 head.
fn plain_normalised(net: &LeanMsdNet, x: &Tensor, bns: &[BatchNorm], train: bool) -> Tensor {
    let cfg = net.config();
    let block = net.block();
    let p = net.params();
    let w = p.get("msd.weight").unwrap();
    let b = p.get("msd.bias").unwrap();
    let mut r = x.clone();
    for i in 0..cfg.num_layers {
        let mut new = vec![r.clone()];
        for k in 0..cfg.layer_width {
            let u = i * cfg.layer_width + k;
            let d = block.spec().dilations[u];
            let spec =
                ConvSpec::uniform(cfg.spatial_dims, 1, d, d).with_padding_mode(cfg.padding_mode);
            let z = conv(
                &r,
                &block.unpack_weight(w.as_tensor(), u).unwrap(),
                Some(&b.as_tensor().narrow(0, u, 1).unwrap()),
                &spec,
            )
            .unwrap();
            new.push(bns[u].forward_t(&z, train).unwrap().relu().unwrap());
        }
        r = Tensor::cat(&new, 1).unwrap();
    }
    let hw = p.get("head.weight").unwrap();
    let hb = p.get("head.bias").unwrap();
    let (n, c) = (r.dim(0).unwrap(), r.dim(1).unwrap());
    let mut dims = r.dims().to_vec();
    dims[1] = cfg.out_channels;
    let y = hw
        .as_tensor()
        .broadcast_left(n)
        .unwrap()
        .matmul(&r.reshape((n, c, ())).unwrap())
        .unwrap()
        .broadcast_add(&hb.as_tensor().reshape((1, cfg.out_channels, 1)).unwrap())
        .unwrap();
    y.reshape(dims).unwrap()
}

#[test]
fn batchnorm_variant_matches_plain_layers_in_train_and_eval() {
    let mut cfg = LeanMsdConfig::new(2, 1, 2, 4, 2, 3);
    cfg.normalization = Norm::Batch;
    cfg.padding_mode = PaddingMode::Symmetric;
    let net = LeanMsdNet::new(&cfg, 3, &dev()).unwrap();
    // Per-unit BatchNorm layers holding the lean network's γ, β and running statistics.
    let units = net.block().units();
    let store = ParamStore::new(0, &dev());
    let bns: Vec<BatchNorm> = (0..units)
        .map(|u| BatchNorm::new(&store.root().pp(u), 1).unwrap())
        .collect();
    let gamma = Tensor::rand(0.5f32, 1.5, units, &dev()).unwrap();
    let beta = Tensor::rand(-0.3f32, 0.3, units, &dev()).unwrap();
    net.params()
        .get("msd.norm.weight")
        .unwrap()
        .set(&gamma)
        .unwrap();
    net.params()
        .get("msd.norm.bias")
        .unwrap()
        .set(&beta)
        .unwrap();
    for u in 0..units {
        let pick = |t: &Tensor| t.narrow(0, u, 1).unwrap();
        store
            .get(&format!("{u}.weight"))
            .unwrap()
            .set(&pick(&gamma))
            .unwrap();
        store
            .get(&format!("{u}.bias"))
            .unwrap()
            .set(&pick(&beta))
            .unwrap();
    }
    let x = Tensor::rand(0f32, 1., (3, 1, 11, 9), &dev()).unwrap();
    for step in 0..2 {
        let got = net.forward_t(&x, true).unwrap();
        let want = plain_normalised(&net, &x, &bns, true);
        assert_rel_close(&format!("train step {step}"), &got, &want, 1e-5);
    }
    let rm = flat(
        net.params()
            .get("msd.norm.running_mean")
            .unwrap()
            .as_tensor(),
    );
    let rv = flat(
        net.params()
            .get("msd.norm.running_var")
            .unwrap()
            .as_tensor(),
    );
    for (u, bn) in bns.iter().enumerate() {
        assert!(
            (rm[u] - flat(bn.running_mean().unwrap())[0]).abs() < 1e-5,
            "mean {u}"
        );
        assert!(
            (rv[u] - flat(bn.running_var().unwrap())[0]).abs() < 1e-5,
            "var {u}"
        );
    }
    let nbt = net
        .params()
        .get("msd.norm.num_batches_tracked")
        .unwrap()
        .as_tensor()
        .to_scalar::<i64>()
        .unwrap();
    assert_eq!(nbt, 2);
    let got = net.forward_t(&x, false).unwrap();
    let want = plain_normalised(&net, &x, &bns, false);
    assert_rel_close("eval", &got, &want, 1e-5);
    assert_rel_close("predict", &net.predict(&x).unwrap(), &want, 1e-5);
}

#[test]
fn trains_and_round_trips_through_a_model_directory() {
    let mut cfg = LeanMsdConfig::new(2, 1, 1, 8, 1, 4);
    cfg.final_activation = Some(FinalAct::Sigmoid);
    cfg.padding_mode = PaddingMode::Reflect;
    let net = LeanMsdNet::new(&cfg, 11, &dev()).unwrap();
    let x = Tensor::rand(0f32, 1., (2, 1, 16, 16), &dev()).unwrap();
    let target = x.ge(0.5).unwrap().to_dtype(DType::F32).unwrap();
    let mut opt = AdamW::new(
        net.params().trainable_vars(),
        ParamsAdamW {
            lr: 1e-2,
            weight_decay: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    let loss = |net: &LeanMsdNet| {
        (net.forward_t(&x, true).unwrap() - &target)
            .unwrap()
            .sqr()
            .unwrap()
            .mean_all()
            .unwrap()
    };
    let first = loss(&net).to_scalar::<f32>().unwrap();
    for _ in 0..80 {
        opt.backward_step(&loss(&net)).unwrap();
    }
    let last = loss(&net).to_scalar::<f32>().unwrap();
    assert!(last < 0.4 * first, "loss {first} → {last}");

    let dir = tempfile::tempdir().unwrap();
    save_model(&net, dir.path(), &serde_json::json!({}), false).unwrap();
    let json = std::fs::read_to_string(dir.path().join("model.json")).unwrap();
    assert!(
        json.contains("\"lean_msdnet\"") && json.contains("\"reflect\""),
        "{json}"
    );
    let (loaded, _) = load_model(dir.path(), &dev()).unwrap();
    assert_eq!(
        flat(&loaded.forward_t(&x, false).unwrap()),
        flat(&net.forward_t(&x, false).unwrap())
    );
    let names: Vec<String> = net.params().entries().into_iter().map(|e| e.0).collect();
    assert_eq!(
        names,
        ["msd.weight", "msd.bias", "head.weight", "head.bias"]
    );
}

#[test]
fn same_seed_same_weights_and_pytorch_bounds() {
    let cfg = LeanMsdConfig::new(3, 2, 1, 5, 2, 3);
    let a = LeanMsdNet::new(&cfg, 7, &dev()).unwrap();
    let b = LeanMsdNet::new(&cfg, 7, &dev()).unwrap();
    let c = LeanMsdNet::new(&cfg, 8, &dev()).unwrap();
    let w = |n: &LeanMsdNet| flat(n.params().get("msd.weight").unwrap().as_tensor());
    assert_eq!(w(&a), w(&b));
    assert_ne!(w(&a), w(&c));
    // Unit u's weights are uniform on ±1/√(C_in·27) like a PyTorch Conv3d.
    let block = a.block();
    let wa = w(&a);
    for u in 0..block.units() {
        let bound = 1.0 / ((block.unit_in_channels(u) * 27) as f64).sqrt();
        let r = block.unit_weights(u);
        assert!(wa[r.clone()].iter().all(|v| v.abs() <= bound), "unit {u}");
        assert!(wa[r].iter().any(|v| v.abs() > 0.5 * bound), "unit {u}");
    }
}

#[test]
fn input_checks_name_what_would_work() {
    let mut cfg = LeanMsdConfig::new(2, 2, 1, 6, 1, 8);
    cfg.padding_mode = PaddingMode::Reflect;
    let net = LeanMsdNet::new(&cfg, 0, &dev()).unwrap();
    let e = net.check_input(&[1, 1, 32, 32]).unwrap_err().to_string();
    assert!(e.contains("(N ≥ 1, 2, H, W)"), "{e}");
    let e = net.check_input(&[1, 2, 32, 6]).unwrap_err().to_string();
    assert!(e.contains("reflect") && e.contains("at least 7"), "{e}");
    net.check_input(&[1, 2, 7, 7]).unwrap();
    let x = Tensor::zeros((1, 2, 6, 9), DType::F32, &dev()).unwrap();
    assert!(net.forward_t(&x, false).is_err());
    // Module-level check: the head applies to any accepted size.
    let y = net
        .forward_t(
            &Tensor::zeros((2, 2, 9, 7), DType::F32, &dev()).unwrap(),
            false,
        )
        .unwrap();
    assert_eq!(y.dims(), &[2, 1, 9, 7]);
    let _ = FinalAct::Sigmoid.layer().forward(&y).unwrap();
}
