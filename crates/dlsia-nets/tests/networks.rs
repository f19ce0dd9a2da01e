//! Behaviour of the networks beyond PyTorch parity: seeded initialisation, any-size inputs,
//! input errors, gradients (finite differences in f64), the autoencoder's halves.

use candle_core::{DType, Device, Tensor, Var};
use dlsia_nets::{
    Act, Autoencoder, FinalAct, MsAutoencoder, MsaeConfig, Network, Norm, Topology, TuNet,
    TuNet3Plus, TuNet3PlusConfig, TuNetConfig, Upsampling,
};
use dlsia_ops::ParamStore;

fn input(shape: &[usize], dtype: DType) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.731).sin()).collect();
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
        .to_vec1()
        .unwrap()
}

#[test]
fn same_seed_same_weights_and_pytorch_default_bounds() {
    let cfg = TuNetConfig::new(&[16, 16], 1, 2, 3, 4);
    let (a, b, c) = (
        TuNet::new(&cfg, 7, &Device::Cpu).unwrap(),
        TuNet::new(&cfg, 7, &Device::Cpu).unwrap(),
        TuNet::new(&cfg, 8, &Device::Cpu).unwrap(),
    );
    let (sa, sb, sc) = (
        a.params().snapshot().unwrap(),
        b.params().snapshot().unwrap(),
        c.params().snapshot().unwrap(),
    );
    let mut differs = false;
    for (k, v) in &sa {
        assert_eq!(values(v), values(&sb[k]), "{k}");
        differs |= values(v) != values(&sc[k]);
    }
    assert!(differs, "another seed must give other weights");
    // Conv weight and bias uniform on ±1/√(in·k²); BatchNorm weight 1, bias 0.
    let w = values(&sa["Encode_1.3.weight"]); // 8 → 8 channels, 3×3
    let bound = 1.0 / (8.0f64 * 9.0).sqrt();
    assert!(w.iter().all(|v| v.abs() <= bound));
    assert!(w.iter().any(|v| v.abs() > 0.8 * bound));
    assert!(values(&sa["Encode_1.4.weight"]).iter().all(|&v| v == 1.0));
    assert!(values(&sa["Encode_1.4.bias"]).iter().all(|&v| v == 0.0));
    // ConvTranspose: fan-in from the (in, out, k, k) layout = out·k² = 4·4.
    let up = values(&sa["Step Up 0.weight"]);
    assert!(up.iter().all(|v| v.abs() <= 0.25));
}

#[test]
fn unets_take_any_size_the_depth_allows() {
    let tu = TuNet::new(&TuNetConfig::new(&[64, 64], 1, 3, 3, 2), 0, &Device::Cpu).unwrap();
    let mut cfg3 = TuNet3PlusConfig::new(&[64, 64], 1, 3, 3, 2);
    let t3 = TuNet3Plus::new(&cfg3, 0, &Device::Cpu).unwrap();
    cfg3.upsampling = Upsampling::ConvTranspose;
    let t3c = TuNet3Plus::new(&cfg3, 0, &Device::Cpu).unwrap();
    let nets: [&dyn Network; 3] = [&tu, &t3, &t3c];
    for net in nets {
        for h in 4..=13 {
            for w in [4, 7, 12] {
                let y = net
                    .forward_t(&input(&[1, 1, h, w], DType::F32), false)
                    .unwrap();
                assert_eq!(y.dims(), &[1, 3, h, w]);
            }
        }
    }
    // 3-D with a pooling kernel of 3: sizes ≥ 9 after two poolings.
    let mut c = TuNetConfig::new(&[9, 9, 9], 1, 2, 3, 2);
    c.maxpool_kernel_size = 3;
    let net = TuNet::new(&c, 0, &Device::Cpu).unwrap();
    let y = net
        .forward_t(&input(&[2, 1, 9, 11, 10], DType::F32), true)
        .unwrap();
    assert_eq!(y.dims(), &[2, 2, 9, 11, 10]);
}

#[test]
fn inputs_the_network_cannot_take_are_errors_naming_what_works() {
    let net = TuNet::new(&TuNetConfig::new(&[32, 32], 2, 2, 4, 2), 0, &Device::Cpu).unwrap();
    let cases: [(&[usize], &str); 5] = [
        (&[1, 2, 32], "rank 4"),
        (&[1, 2, 32, 32, 32], "rank 4"),
        (&[1, 3, 32, 32], "expected 2 input channels"),
        (&[1, 2, 7, 32], "at least 8"),
        (&[0, 2, 32, 32], "empty"),
    ];
    for (shape, want) in cases {
        let e = net.check_input(shape).unwrap_err().to_string();
        assert!(e.contains(want), "{shape:?}: expected `{want}` in `{e}`");
        let x = Tensor::zeros(shape, DType::F32, &Device::Cpu).unwrap();
        assert!(net.forward_t(&x, false).is_err());
    }
    let ae = MsAutoencoder::new(
        &MsaeConfig::new(&[1, 16, 12], 2, 2, 2.0, 3, 2, 1),
        0,
        &Device::Cpu,
    )
    .unwrap();
    let e = ae.check_input(&[4, 1, 16, 16]).unwrap_err().to_string();
    assert!(e.contains("(N, 1, 16, 12)"), "{e}");
    let e = ae
        .decode(
            &Tensor::zeros((2, 4), DType::F32, &Device::Cpu).unwrap(),
            false,
        )
        .unwrap_err()
        .to_string();
    assert!(e.contains("(N, 3)"), "{e}");
}

/// Every trainable tensor receives a non-zero gradient from one training step's loss.
fn assert_all_parameters_learn(net: &dyn Network, shape: &[usize]) {
    let x = input(shape, DType::F32);
    let y = net.forward_t(&x, true).unwrap();
    let g = input(y.dims(), DType::F32);
    let grads = (y * g).unwrap().sum_all().unwrap().backward().unwrap();
    for (name, kind, t) in net.params().entries() {
        if kind != dlsia_ops::ParamKind::Trainable {
            continue;
        }
        let gr = grads
            .get(&t)
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        assert_eq!(gr.dims(), t.dims(), "{name}");
        assert!(
            values(gr).iter().any(|v| *v != 0.0),
            "{name}: zero gradient"
        );
    }
}

#[test]
fn every_parameter_of_every_architecture_learns() {
    let mut t3 = TuNet3PlusConfig::new(&[16, 12], 1, 2, 3, 2);
    assert_all_parameters_learn(
        &TuNet3Plus::new(&t3, 1, &Device::Cpu).unwrap(),
        &[2, 1, 16, 12],
    );
    t3.upsampling = Upsampling::ConvTranspose;
    t3.activation = Act::Gelu;
    assert_all_parameters_learn(
        &TuNet3Plus::new(&t3, 1, &Device::Cpu).unwrap(),
        &[2, 1, 16, 12],
    );
    let mut tu = TuNetConfig::new(&[8, 8, 8], 1, 2, 2, 2);
    tu.normalization = Norm::Group { groups: 2 };
    tu.activation = Act::Elu { alpha: 1.0 };
    assert_all_parameters_learn(&TuNet::new(&tu, 1, &Device::Cpu).unwrap(), &[1, 1, 8, 8, 8]);
    let ms = MsaeConfig::new(&[1, 8, 8], 2, 2, 2.0, 3, 2, 2);
    assert_all_parameters_learn(
        &MsAutoencoder::new(&ms, 1, &Device::Cpu).unwrap(),
        &[3, 1, 8, 8],
    );
}

/// Central finite differences in f64 of `L = Σ y·g` against autograd, for a few scalars of each
/// named tensor.
fn finite_difference_check(net: &dyn Network, shape: &[usize], names: &[&str]) {
    let x = input(shape, DType::F64);
    let loss = |net: &dyn Network| -> f64 {
        let y = net.forward_t(&x, true).unwrap();
        let g = input(y.dims(), DType::F64).affine(0.5, 0.1).unwrap();
        (y * g)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let y = net.forward_t(&x, true).unwrap();
    let g = input(y.dims(), DType::F64).affine(0.5, 0.1).unwrap();
    let grads = (y * g).unwrap().sum_all().unwrap().backward().unwrap();
    let eps = 1e-6;
    for name in names {
        let var: Var = net.params().get(name).unwrap_or_else(|| panic!("{name}"));
        let base = values(var.as_tensor());
        let analytic = values(grads.get(var.as_tensor()).unwrap());
        for idx in [0, base.len() / 2, base.len() - 1] {
            let set = |delta: f64| {
                let mut v = base.clone();
                v[idx] += delta;
                var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
            };
            set(eps);
            let up = loss(net);
            set(-eps);
            let down = loss(net);
            set(0.0);
            let numeric = (up - down) / (2.0 * eps);
            let err = (numeric - analytic[idx]).abs();
            assert!(
                err <= 1e-6 * (1.0 + numeric.abs()),
                "{name}[{idx}]: finite difference {numeric} vs autograd {}",
                analytic[idx]
            );
        }
    }
}

#[test]
fn tunet_gradients_match_finite_differences_in_f64() {
    let mut cfg = TuNetConfig::new(&[7, 6], 1, 2, 2, 2);
    cfg.final_activation = Some(FinalAct::Softmax);
    let store = ParamStore::with_dtype(3, &Device::Cpu, DType::F64);
    let net = TuNet::from_store(&cfg, store).unwrap();
    finite_difference_check(
        &net,
        &[2, 1, 7, 6],
        &[
            "Encode_0.0.weight",
            "Encode_0.1.weight",
            "Final_layer_1.3.bias",
            "Step Up 0.weight",
            "Step Up 0.bias",
            "Decode_0.0.weight",
            "Decode_0.6.weight",
        ],
    );
}

#[test]
fn tunet3plus_and_msae_gradients_match_finite_differences_in_f64() {
    let mut cfg = TuNet3PlusConfig::new(&[9, 8], 1, 2, 3, 2);
    cfg.upsampling = Upsampling::ConvTranspose;
    let net =
        TuNet3Plus::from_store(&cfg, ParamStore::with_dtype(4, &Device::Cpu, DType::F64)).unwrap();
    finite_difference_check(
        &net,
        &[2, 1, 9, 8],
        &[
            "Skip_connection_0_to_1.1.weight",
            "Skip_connection_2_to_0.0.weight",
            "Skip_connection_1_to_0.1.bias",
            "Decode_0.6.weight",
        ],
    );
    let ms = MsaeConfig::new(&[1, 9, 8], 2, 2, 1.5, 2, 2, 1);
    let net = MsAutoencoder::from_store(&ms, ParamStore::with_dtype(5, &Device::Cpu, DType::F64))
        .unwrap();
    finite_difference_check(
        &net,
        &[3, 1, 9, 8],
        &[
            "encoder.network_operator_sequence.0.0.Dilation 2.ops.0.weight",
            "encoder.final_operator.weight",
            "decoder.first_operator.bias",
            "decoder.network_operator_sequence.1.0.weight",
            "decoder.network_operator_sequence.1.1.aggregate.weight",
        ],
    );
}

#[test]
fn autoencoder_halves_compose_and_survive_boxing() {
    let mut cfg = MsaeConfig::new(&[2, 12, 10], 2, 3, 2.0, 4, 3, 1);
    cfg.final_action = Some(FinalAct::Sigmoid);
    let net = Topology::MsAutoencoder(cfg).build(9, &Device::Cpu).unwrap();
    let ae = net.as_autoencoder().expect("MSAE is an autoencoder");
    assert_eq!(ae.latent_dim(), 4);
    let x = input(&[3, 2, 12, 10], DType::F32);
    let z = ae.encode(&x, false).unwrap();
    assert_eq!(z.dims(), &[3, 4]);
    let y = ae.decode(&z, false).unwrap();
    assert_eq!(values(&y), values(&net.forward_t(&x, false).unwrap()));
    assert!(
        values(&y).iter().all(|v| (0.0..=1.0).contains(v)),
        "sigmoid output"
    );
    let tu = Topology::TuNet(TuNetConfig::new(&[8, 8], 1, 1, 2, 2))
        .build(0, &Device::Cpu)
        .unwrap();
    assert!(tu.as_autoencoder().is_none());
}

#[test]
fn optional_layers_change_the_state_dict_names_like_pytorch() {
    let names = |norm: Norm, act: Act| -> Vec<String> {
        let mut c = TuNetConfig::new(&[8, 8], 1, 2, 2, 2);
        c.normalization = norm;
        c.activation = act;
        TuNet::new(&c, 0, &Device::Cpu)
            .unwrap()
            .params()
            .entries()
            .into_iter()
            .map(|e| e.0)
            .filter(|n| n.starts_with("Decode_0."))
            .collect()
    };
    assert_eq!(
        names(Norm::None, Act::None),
        [
            "Decode_0.0.weight",
            "Decode_0.0.bias",
            "Decode_0.1.weight",
            "Decode_0.1.bias",
            "Decode_0.2.weight",
            "Decode_0.2.bias"
        ]
    );
    assert_eq!(
        names(Norm::None, Act::Relu),
        [
            "Decode_0.0.weight",
            "Decode_0.0.bias",
            "Decode_0.2.weight",
            "Decode_0.2.bias",
            "Decode_0.4.weight",
            "Decode_0.4.bias"
        ]
    );
    // InstanceNorm has no tensors but still occupies its index.
    assert_eq!(
        names(Norm::Instance, Act::None),
        [
            "Decode_0.0.weight",
            "Decode_0.0.bias",
            "Decode_0.2.weight",
            "Decode_0.2.bias",
            "Decode_0.4.weight",
            "Decode_0.4.bias"
        ]
    );
    let bn = names(Norm::Batch, Act::Relu);
    assert!(bn.contains(&"Decode_0.6.weight".to_string()));
    assert!(bn.contains(&"Decode_0.4.num_batches_tracked".to_string()));
}

#[test]
fn predict_gives_eval_values_without_a_graph() {
    let mut t3 = TuNet3PlusConfig::new(&[12, 12], 1, 2, 3, 2);
    t3.upsampling = Upsampling::ConvTranspose;
    let mut tu = TuNetConfig::new(&[12, 12], 1, 2, 3, 2);
    tu.final_activation = Some(FinalAct::Sigmoid);
    let nets: Vec<(Box<dyn Network>, Vec<usize>)> = vec![
        (
            Box::new(TuNet::new(&tu, 2, &Device::Cpu).unwrap()),
            vec![2, 1, 13, 12],
        ),
        (
            Box::new(TuNet3Plus::new(&t3, 2, &Device::Cpu).unwrap()),
            vec![2, 1, 12, 15],
        ),
        (
            Box::new(
                MsAutoencoder::new(
                    &MsaeConfig::new(&[1, 12, 12], 2, 2, 2.0, 3, 2, 2),
                    2,
                    &Device::Cpu,
                )
                .unwrap(),
            ),
            vec![2, 1, 12, 12],
        ),
    ];
    for (net, shape) in nets {
        // Move the running statistics away from their initial values first.
        net.forward_t(&input(&shape, DType::F32), true).unwrap();
        let x = input(&shape, DType::F32).affine(0.5, 0.2).unwrap();
        let eval = net.forward_t(&x, false).unwrap();
        assert!(eval.track_op(), "eval mode keeps gradients available");
        let inferred = net.predict(&x).unwrap();
        assert!(!inferred.track_op());
        assert_eq!(values(&inferred), values(&eval));
    }
}
