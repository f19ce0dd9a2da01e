//! SparseAutoEncoder / SparseAEC / SparseLabeler beyond parity: checked configurations,
//! seeded graphs, f64 finite differences of the fully connected paths, input errors,
//! save/load (including the bottleneck the original forgets to save).

use candle_core::{DType, Device, Tensor};
use dlsia_nets::{
    load_model, save_model, Autoencoder, Network, SparseAec, SparseAecConfig, SparseAutoEncoder,
    SparseAutoEncoderConfig, SparseLabeler, SparseLabelerConfig, Topology,
};
use dlsia_ops::ParamStore;

/// A deterministic input with values around 0.3 ± 1.
fn input(shape: &[usize], dtype: DType, phase: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| ((i as f64) * 0.613 + phase).sin() + 0.3)
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

fn small_ae() -> SparseAutoEncoderConfig {
    serde_json::from_str(
        r#"{"in_shape": [16, 16], "latent_shape": [4, 4], "depth": 5, "hidden_channels": 2,
            "latent_sequence": [6, 5, 3], "dropout_p": 0.0, "graph_seed": 11}"#,
    )
    .unwrap()
}

fn small_aec() -> SparseAecConfig {
    serde_json::from_str(
        r#"{"in_shape": [16, 16], "latent_shape": [4, 4], "depth": 5, "hidden_channels": 2,
            "out_channels": 2, "out_classes": 3, "dropout_rate": 0.0, "graph_seed": 12}"#,
    )
    .unwrap()
}

fn small_labeler() -> SparseLabelerConfig {
    serde_json::from_str(
        r#"{"in_shape": [16, 16], "latent_shape": [8, 8], "depth": 5, "hidden_channels": 2,
            "out_classes": 3, "dropout_rate": 0.0, "graph_seed": 13}"#,
    )
    .unwrap()
}

/// Central finite differences in f64 of `loss` against autograd for up to four scalars of
/// every parameter whose name starts with one of `prefixes`.
fn finite_differences(
    net: &dyn Network,
    loss: &dyn Fn() -> Tensor,
    prefixes: &[&str],
    expect_tensors: usize,
) {
    let l = loss();
    let grads = l.backward().unwrap();
    let mut tensors = 0;
    for (name, _, _) in net.params().entries() {
        if !prefixes.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let var = net.params().get(&name).unwrap();
        let Some(grad) = grads.get(var.as_tensor()) else {
            continue; // buffers (running statistics) have no gradient
        };
        let grad = values(grad);
        tensors += 1;
        let n = var.elem_count();
        let mut picks = vec![0, n / 3, (2 * n) / 3, n - 1];
        picks.dedup();
        for &i in &picks {
            let orig = values(var.as_tensor());
            let set = |delta: f64| {
                let mut v = orig.clone();
                v[i] += delta;
                var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
            };
            let eps = 1e-6;
            set(eps);
            let up = loss().to_scalar::<f64>().unwrap();
            set(-eps);
            let down = loss().to_scalar::<f64>().unwrap();
            set(0.0);
            let fd = (up - down) / (2.0 * eps);
            assert!(
                (fd - grad[i]).abs() <= 1e-5 * grad[i].abs().max(1.0),
                "∂/∂{name}[{i}]: finite difference {fd} vs autograd {}",
                grad[i]
            );
        }
    }
    assert_eq!(tensors, expect_tensors, "parameter tensors checked");
}

fn f64_store() -> ParamStore {
    ParamStore::with_dtype(3, &Device::Cpu, DType::F64)
}

#[test]
fn autoencoder_fc_gradients_match_finite_differences() {
    let net = SparseAutoEncoder::from_store(&small_ae(), f64_store()).unwrap();
    let x = input(&[3, 1, 16, 16], DType::F64, 0.1);
    let g = input(&[3, 1, 16, 16], DType::F64, 1.3);
    let loss = || {
        (net.forward_t(&x, true).unwrap() * &g)
            .unwrap()
            .sum_all()
            .unwrap()
    };
    // Linear 0, BN 1, Linear 4, BN 5, Linear 8 in each stack: 2 × (3·2 + 2·2) tensors.
    finite_differences(
        &net,
        &loss,
        &["encoder_fc_layers", "decoder_fc_layers"],
        2 * (3 * 2 + 2 * 2),
    );
    assert!(net
        .params()
        .get("encoder_fc_layers.5.running_var")
        .is_some());
    assert!(net.params().get("decoder_fc_layers.8.weight").is_some());
}

#[test]
fn aec_and_labeler_head_gradients_match_finite_differences() {
    let aec = SparseAec::from_store(&small_aec(), f64_store()).unwrap();
    let x = input(&[3, 1, 16, 16], DType::F64, 0.4);
    let g1 = input(&[3, 1, 16, 16], DType::F64, 2.0);
    let g2 = input(&[3, 3], DType::F64, 0.7);
    let loss = || {
        let (r, l) = aec.forward_both(&x, true).unwrap();
        ((r * &g1).unwrap().sum_all().unwrap() + (l * &g2).unwrap().sum_all().unwrap()).unwrap()
    };
    finite_differences(&aec, &loss, &["fc", "bn"], 3 * 2 + 2 * 2);

    let lab = SparseLabeler::from_store(&small_labeler(), f64_store()).unwrap();
    let loss = || {
        (lab.forward_t(&x, true).unwrap() * &g2)
            .unwrap()
            .sum_all()
            .unwrap()
    };
    finite_differences(&lab, &loss, &["fc", "bn"], 2 * 2 + 2 * 2);
}

#[test]
fn impossible_configurations_are_errors_naming_the_field() {
    let ae = |json: &str| -> String {
        let cfg: SparseAutoEncoderConfig = serde_json::from_str(json).unwrap();
        cfg.validate().unwrap_err().to_string()
    };
    assert!(ae(r#"{"latent_shape": [32, 32]}"#).contains("latent_shape"));
    assert!(ae(r#"{"latent_shape": [7, 8]}"#).contains("latent_shape"));
    assert!(ae(r#"{"in_shape": [30, 30]}"#).contains("latent_shape"));
    assert!(ae(r#"{"depth": 0}"#).contains("depth"));
    assert!(ae(r#"{"latent_sequence": []}"#).contains("latent_sequence"));
    assert!(ae(r#"{"latent_sequence": [8, 0]}"#).contains("latent_sequence"));
    assert!(ae(r#"{"dropout_p": 1.0}"#).contains("dropout_p"));
    assert!(ae(r#"{"dropout_p": -0.1}"#).contains("dropout_p"));
    assert!(ae(r#"{"pIL": 1.5}"#).contains("p_il"));
    assert!(ae(r#"{"alpha_range": [1.0, 0.5]}"#).contains("alpha_range"));
    assert!(ae(r#"{"dilations": []}"#).contains("dilations"));
    assert!(ae(r#"{"stride_base": 1}"#).contains("stride_base"));
    let aec: SparseAecConfig = serde_json::from_str(r#"{"dropout_rate": 1.5}"#).unwrap();
    assert!(aec
        .validate()
        .unwrap_err()
        .to_string()
        .contains("dropout_rate"));
    let lab: SparseLabelerConfig = serde_json::from_str(r#"{"out_classes": 0}"#).unwrap();
    assert!(lab
        .validate()
        .unwrap_err()
        .to_string()
        .contains("out_classes"));
    // Unknown keys are rejected, naming the key.
    let err = serde_json::from_str::<SparseAutoEncoderConfig>(r#"{"latent_dim": 3}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("latent_dim"), "{err}");
    // An explicit graph must fit the shapes: the 16 → 4 encoder graph cannot map 16 → 8.
    let mut cfg = small_labeler();
    cfg.latent_shape = [4, 4];
    let g = cfg.resolved().unwrap().encoder_graph;
    let mut wrong = small_labeler();
    wrong.encoder_graph = g;
    let err = wrong.validate().unwrap_err().to_string();
    assert!(err.contains("encoder_graph"), "{err}");
    // Defaults are the original's and valid.
    let d: SparseAutoEncoderConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(
        (d.depth, d.latent_sequence.clone(), d.p_il, d.max_degree),
        (20, vec![32, 2], 1.0, 5)
    );
    d.validate().unwrap();
}

#[test]
fn graphs_come_from_the_graph_seed() {
    let a = small_ae().resolved().unwrap();
    let b = small_ae().resolved().unwrap();
    assert_eq!(a, b);
    let mut other = small_ae();
    other.graph_seed = 99;
    let c = other.resolved().unwrap();
    assert_ne!(a.encoder_graph, c.encoder_graph);
    // Encoder nodes are at or below the input's size, decoder nodes at or above.
    let enc = a.encoder_graph.unwrap();
    let dec = a.decoder_graph.unwrap();
    assert!(enc.nodes().iter().all(|n| (-2..=0).contains(&n.size)));
    assert!(dec.nodes().iter().all(|n| (0..=2).contains(&n.size)));
    assert_eq!(enc.node(enc.output()).unwrap().size, -2);
    assert_eq!(dec.node(dec.output()).unwrap().size, 2);
    // The weight seed does not change the graphs.
    let n1 = SparseAutoEncoder::new(&small_ae(), 1, &Device::Cpu).unwrap();
    let n2 = SparseAutoEncoder::new(&small_ae(), 2, &Device::Cpu).unwrap();
    assert_eq!(n1.topology(), n2.topology());
    assert_eq!(n1.num_parameters(), n2.num_parameters());
}

#[test]
fn inputs_the_networks_cannot_take_are_errors() {
    let ae = SparseAutoEncoder::new(&small_ae(), 0, &Device::Cpu).unwrap();
    for shape in [[2, 1, 16, 15], [2, 2, 16, 16], [0, 1, 16, 16]] {
        let x = Tensor::zeros(&shape, DType::F32, &Device::Cpu).unwrap();
        assert!(ae.forward_t(&x, false).is_err(), "{shape:?}");
    }
    assert!(ae.check_input(&[1, 1, 16, 16]).is_ok());
    let z = Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap();
    assert!(ae.decode(&z, false).is_err());
    // One sample: evaluation works, training BatchNorm1d needs two.
    let x = input(&[1, 1, 16, 16], DType::F32, 0.0);
    assert_eq!(ae.forward_t(&x, false).unwrap().dims(), &[1, 1, 16, 16]);
    let err = ae.forward_t(&x, true).unwrap_err().to_string();
    assert!(err.contains("more than 1 value"), "{err}");
}

#[test]
fn shapes_and_autoencoder_views() {
    let x = input(&[2, 1, 16, 16], DType::F32, 0.5);
    let ae = SparseAutoEncoder::new(&small_ae(), 0, &Device::Cpu).unwrap();
    let z = ae.encode(&x, false).unwrap();
    assert_eq!((z.dims(), ae.latent_dim()), (&[2usize, 3][..], 3));
    assert_eq!(ae.decode(&z, false).unwrap().dims(), &[2, 1, 16, 16]);
    assert!(ae.as_autoencoder().is_some());

    let aec = SparseAec::new(&small_aec(), 0, &Device::Cpu).unwrap();
    let (rec, logits) = aec.forward_both(&x, false).unwrap();
    assert_eq!(
        (rec.dims(), logits.dims()),
        (&[2, 1, 16, 16][..], &[2, 3][..])
    );
    assert_eq!(
        values(&aec.classify(&x, false).unwrap()),
        values(&logits),
        "classify is forward_both's logits"
    );
    assert_eq!(values(&aec.predict(&x).unwrap()), values(&rec));
    let z = aec.encode(&x, false).unwrap();
    assert_eq!(z.dims(), &[2, 32]);
    assert_eq!(values(&aec.decode(&z, false).unwrap()), values(&rec));

    let lab = SparseLabeler::new(&small_labeler(), 0, &Device::Cpu).unwrap();
    assert_eq!(lab.forward_t(&x, true).unwrap().dims(), &[2, 3]);
    assert_eq!(lab.out_channels(), 3);
    assert!(lab.as_autoencoder().is_none());
}

#[test]
fn saves_and_loads_with_graphs_and_bottleneck() {
    let dir = tempfile::tempdir().unwrap();
    let x = input(&[3, 1, 16, 16], DType::F32, 0.2);
    let nets: Vec<Box<dyn Network>> = vec![
        Box::new(SparseAutoEncoder::new(&small_ae(), 4, &Device::Cpu).unwrap()),
        Box::new(SparseAec::new(&small_aec(), 4, &Device::Cpu).unwrap()),
        Box::new(SparseLabeler::new(&small_labeler(), 4, &Device::Cpu).unwrap()),
    ];
    for (i, net) in nets.iter().enumerate() {
        // A training pass moves the BatchNorm1d running statistics away from their init.
        net.forward_t(&x, true).unwrap();
        let path = dir.path().join(format!("m{i}"));
        save_model(net.as_ref(), &path, &serde_json::json!({}), false).unwrap();
        let (back, _) = load_model(&path, &Device::Cpu).unwrap();
        assert_eq!(back.topology(), net.topology());
        assert_eq!(
            values(&back.forward_t(&x, false).unwrap()),
            values(&net.forward_t(&x, false).unwrap())
        );
    }
    // The original's topology_dict loses latent_sequence; this one keeps it.
    let Topology::SparseAutoEncoder(c) = nets[0].topology() else {
        panic!("not a SparseAutoEncoder topology");
    };
    assert_eq!((c.latent_sequence, c.dropout_p), (vec![6, 5, 3], 0.0));
    let json = serde_json::to_value(nets[0].topology()).unwrap();
    assert_eq!(json["architecture"], "sparse_autoencoder");
    assert!(json["encoder_graph"].is_array() && json["decoder_graph"].is_array());
}

#[test]
fn dropout_masks_come_from_the_weight_seed() {
    let mut cfg = small_labeler();
    cfg.dropout_rate = 0.5;
    let x = input(&[4, 1, 16, 16], DType::F32, 0.9);
    let run = || {
        let net = SparseLabeler::new(&cfg, 8, &Device::Cpu).unwrap();
        values(&net.forward_t(&x, true).unwrap())
    };
    assert_eq!(run(), run(), "same seed, same masks");
    let net = SparseLabeler::new(&cfg, 8, &Device::Cpu).unwrap();
    let train = net.forward_t(&x, true).unwrap();
    assert_eq!(train.dims(), &[4, 3]);
    // Evaluation has no dropout: two passes agree.
    assert_eq!(
        values(&net.forward_t(&x, false).unwrap()),
        values(&net.forward_t(&x, false).unwrap())
    );
}
