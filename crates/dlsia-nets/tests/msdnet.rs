//! MSDNet: the stack operation against the reference composition of layers (values, every
//! gradient, running statistics), finite differences in f64, names and counts.

use candle_core::{DType, Device, Tensor, Var};
use dlsia_nets::msdnet::{CustomDilations, MsdActivation};
use dlsia_nets::{Act, FinalAct, MsdNet, MsdNetConfig, Network, Norm};
use dlsia_ops::ParamStore;

fn input(shape: &[usize], dtype: DType, phase: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|i| ((i as f64) * 0.731 + phase).sin() * 1.3 + 0.2)
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
        .to_vec1()
        .unwrap()
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    // Gradients that vanish analytically (a bias followed by BatchNorm) compare absolutely.
    let scale = b.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn build(cfg: &MsdNetConfig, dtype: DType) -> MsdNet {
    build_on(cfg, dtype, &Device::Cpu)
}

fn build_on(cfg: &MsdNetConfig, dtype: DType, dev: &Device) -> MsdNet {
    let net = MsdNet::from_store(cfg, ParamStore::with_dtype(3, dev, dtype)).unwrap();
    // Non-trivial normalisation parameters so that every term of the backward pass matters.
    for (name, _, t) in net.params().entries() {
        if name.starts_with("normalization_")
            && (name.ends_with("weight") || name.ends_with("bias"))
        {
            let n = t.elem_count();
            let base = if name.ends_with("weight") { 0.8 } else { -0.1 };
            let v: Vec<f64> = (0..n)
                .map(|i| base + 0.37 * ((i as f64) * 1.7).sin())
                .collect();
            let v = Tensor::from_vec(v, n, &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap()
                .to_device(dev)
                .unwrap();
            net.params().get(&name).unwrap().set(&v).unwrap();
        }
    }
    net
}

/// Runs `stack` (forward_t, stack operation) and `reference` (forward_reference) on the same
/// input in `train` mode and compares outputs, every gradient and the running statistics.
fn compare(cfg: &MsdNetConfig, shape: &[usize], dtype: DType, tol: f64) {
    compare_on(cfg, shape, dtype, tol, &Device::Cpu)
}

/// [`compare`] with both networks and the input on `dev`.
fn compare_on(cfg: &MsdNetConfig, shape: &[usize], dtype: DType, tol: f64, dev: &Device) {
    let (a, b) = (build_on(cfg, dtype, dev), build_on(cfg, dtype, dev));
    assert!(a.uses_stack_op(true), "{cfg:?} should use the stack op");
    for train in [true, false, true] {
        let x = Var::from_tensor(&input(shape, dtype, 0.3).to_device(dev).unwrap()).unwrap();
        let ya = a.forward_t(x.as_tensor(), train).unwrap();
        let yb = b.forward_reference(x.as_tensor(), train).unwrap();
        let what = format!("{cfg:?} train={train}");
        let e = max_rel(&values(&ya), &values(&yb));
        assert!(e < tol, "{what}: output differs by {e:e}");
        let g = input(ya.dims(), dtype, 1.1).to_device(dev).unwrap();
        let ga = (&ya * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let gb = (&yb * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let dxa = values(ga.get(x.as_tensor()).unwrap());
        let dxb = values(gb.get(x.as_tensor()).unwrap());
        let e = max_rel(&dxa, &dxb);
        assert!(e < tol, "{what}: input gradient differs by {e:e}");
        for ((name, _, ta), (_, _, tb)) in
            a.params().entries().iter().zip(b.params().entries().iter())
        {
            match (ga.get(ta), gb.get(tb)) {
                (Some(da), Some(db)) => {
                    let e = max_rel(&values(da), &values(db));
                    assert!(e < tol, "{what}: gradient of {name} differs by {e:e}");
                }
                (None, None) => {}
                _ => panic!("{what}: {name} has a gradient in one implementation only"),
            }
            if name.contains("running") {
                let e = max_rel(&values(ta), &values(tb));
                assert!(e < tol, "{what}: {name} differs by {e:e}");
            }
            if name.ends_with("num_batches_tracked") {
                assert_eq!(values(ta), values(tb), "{what}: {name}");
            }
        }
    }
}

#[test]
fn stack_op_equals_reference_defaults_2d() {
    compare(
        &MsdNetConfig::new(1, 2, 5, 1, 3),
        &[2, 1, 9, 11],
        DType::F64,
        1e-10,
    );
    compare(
        &MsdNetConfig::new(2, 3, 4, 2, 4),
        &[3, 2, 10, 8],
        DType::F64,
        1e-10,
    );
}

#[test]
fn stack_op_equals_reference_other_choices() {
    let mut c = MsdNetConfig::new(1, 1, 4, 1, 3);
    c.activation = MsdActivation::One(Act::None);
    compare(&c, &[2, 1, 8, 9], DType::F64, 1e-10);
    let mut c = MsdNetConfig::new(2, 2, 4, 1, 3);
    c.normalization = Norm::None;
    compare(&c, &[2, 2, 8, 9], DType::F64, 1e-10);
    let mut c = MsdNetConfig::new(1, 2, 3, 1, 3);
    c.custom_dilations = Some(CustomDilations::Matrix(vec![vec![1, 4, 2], vec![3, 1, 5]]));
    c.final_activation = Some(FinalAct::Sigmoid);
    c.conv_kernel_size = 5;
    compare(&c, &[2, 1, 12, 13], DType::F64, 1e-10);
}

#[test]
fn stack_op_equals_reference_3d_and_1d() {
    compare(
        &MsdNetConfig::new(1, 2, 3, 2, 2).with_dims(3),
        &[2, 1, 5, 6, 4],
        DType::F64,
        1e-10,
    );
    compare(
        &MsdNetConfig::new(2, 1, 4, 1, 3).with_dims(1),
        &[3, 2, 17],
        DType::F64,
        1e-10,
    );
}

/// The stack operation against the reference composition on the same device (the CPU always,
/// GPU 0 in a `cuda` build): defaults in f64 and f32, neither activation nor normalisation,
/// 3-D.
fn stack_op_on_device(dev: &Device) {
    let c = MsdNetConfig::new(1, 2, 6, 2, 4);
    compare_on(&c, &[2, 1, 13, 11], DType::F64, 1e-10, dev);
    compare_on(&c, &[2, 1, 24, 20], DType::F32, 2e-4, dev);
    let mut c = MsdNetConfig::new(2, 2, 4, 1, 3);
    c.normalization = Norm::None;
    c.activation = MsdActivation::One(Act::None);
    compare_on(&c, &[2, 2, 8, 9], DType::F64, 1e-10, dev);
    let c = MsdNetConfig::new(1, 2, 3, 2, 2).with_dims(3);
    compare_on(&c, &[2, 1, 5, 6, 4], DType::F64, 1e-10, dev);
}
dlsia_ops::test_device!(
    stack_op_on_device,
    stack_op_equals_reference_on_cpu,
    stack_op_equals_reference_on_cuda
);

#[test]
fn stack_op_equals_reference_in_f32() {
    compare(
        &MsdNetConfig::new(1, 2, 8, 1, 4),
        &[2, 1, 24, 20],
        DType::F32,
        2e-4,
    );
}

#[test]
fn dropout_and_other_activations_use_the_reference() {
    let mut c = MsdNetConfig::new(1, 2, 3, 1, 3);
    c.dropout = Some([0.1, 0.2, 0.1]);
    let net = MsdNet::new(&c, 0, &Device::Cpu).unwrap();
    assert!(!net.uses_stack_op(true) && net.uses_stack_op(false));
    c.dropout = Some([0.1, 0.0, 0.1]);
    assert!(MsdNet::new(&c, 0, &Device::Cpu)
        .unwrap()
        .uses_stack_op(true));
    c.activation = MsdActivation::One(Act::LeakyRelu {
        negative_slope: 0.1,
    });
    assert!(!MsdNet::new(&c, 0, &Device::Cpu)
        .unwrap()
        .uses_stack_op(false));
    c.activation = MsdActivation::List(vec![Act::Relu, Act::Tanh]);
    let net = MsdNet::new(&c, 0, &Device::Cpu).unwrap();
    assert!(!net.uses_stack_op(false));
    let y = net
        .forward_t(&input(&[2, 1, 8, 8], DType::F32, 0.0), true)
        .unwrap();
    assert_eq!(y.dims(), &[2, 2, 8, 8]);
}

/// Central finite differences in f64 of `L = Σ y·g` through the stack operation, for a few
/// scalars of the input and of every kind of parameter, in train and eval mode.
#[test]
fn stack_op_gradients_match_finite_differences_in_f64() {
    let mut cfg = MsdNetConfig::new(1, 2, 4, 2, 3);
    cfg.final_activation = Some(FinalAct::Softmax);
    let net = build(&cfg, DType::F64);
    let shape = [2, 1, 7, 6];
    let x = Var::from_tensor(&input(&shape, DType::F64, 0.5)).unwrap();
    for train in [true, false] {
        assert!(net.uses_stack_op(train));
        let g = input(&[2, 2, 7, 6], DType::F64, 2.0);
        let loss = |x: &Tensor| -> f64 {
            let y = net.forward_t(x, train).unwrap();
            (y * &g)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let y = net.forward_t(x.as_tensor(), train).unwrap();
        let grads = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let eps = 1e-6;
        let names = [
            "layer_0.conv_0.weight",
            "layer_1.conv_1.bias",
            "layer_3.conv_0.weight",
            "normalization_0.weight",
            "normalization_2.bias",
            "normalization_3.weight",
            "final_convolution.weight",
        ];
        let mut vars: Vec<(String, Var)> = names
            .iter()
            .map(|n| (n.to_string(), net.params().get(n).unwrap()))
            .collect();
        vars.push(("input".into(), x.clone()));
        for (name, var) in &vars {
            let base = values(var.as_tensor());
            let analytic = values(grads.get(var.as_tensor()).unwrap());
            for idx in [0, base.len() / 3, base.len() - 1] {
                let set = |delta: f64| {
                    let mut v = base.clone();
                    v[idx] += delta;
                    var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                        .unwrap();
                };
                set(eps);
                let up = loss(x.as_tensor());
                set(-eps);
                let down = loss(x.as_tensor());
                set(0.0);
                let numeric = (up - down) / (2.0 * eps);
                let err = (numeric - analytic[idx]).abs();
                assert!(
                    err <= 1e-6 * (1.0 + numeric.abs()),
                    "train={train} {name}[{idx}]: finite difference {numeric} vs {}",
                    analytic[idx]
                );
            }
        }
    }
}

#[test]
fn state_dict_names_and_order_follow_pytorch() {
    let net = MsdNet::new(&MsdNetConfig::new(1, 2, 2, 2, 3), 0, &Device::Cpu).unwrap();
    let names: Vec<String> = net.params().entries().into_iter().map(|e| e.0).collect();
    let bn = |i: usize| {
        [
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "num_batches_tracked",
        ]
        .map(|n| format!("normalization_{i}.{n}"))
    };
    let mut want: Vec<String> = vec![];
    for i in 0..2 {
        for j in 0..2 {
            want.push(format!("layer_{i}.conv_{j}.weight"));
            want.push(format!("layer_{i}.conv_{j}.bias"));
        }
        want.extend(bn(i));
    }
    want.push("final_convolution.weight".into());
    want.push("final_convolution.bias".into());
    assert_eq!(names, want);
    let shape = |n: &str| net.params().get(n).unwrap().dims().to_vec();
    assert_eq!(shape("layer_1.conv_0.weight"), vec![1, 3, 3, 3]);
    assert_eq!(shape("normalization_1.running_var"), vec![5]);
    assert_eq!(shape("final_convolution.weight"), vec![2, 5, 1, 1]);
}

#[test]
fn paper_network_parameter_counts() {
    // The inpainting MSDNet of the paper: 200 layers, max dilation 10, "about 0.18 M parameters"
    // = 181,302 convolution parameters; 221,902 with dlsia's default BatchNorm.
    let cfg = MsdNetConfig::new(1, 1, 200, 1, 10);
    let net = MsdNet::new(&cfg, 0, &Device::Cpu).unwrap();
    assert_eq!(net.num_parameters(), 221_902);
    assert_eq!(cfg.num_conv_parameters().unwrap(), 181_302);
    let mut plain = cfg.clone();
    plain.normalization = Norm::None;
    assert_eq!(
        MsdNet::new(&plain, 0, &Device::Cpu)
            .unwrap()
            .num_parameters(),
        181_302
    );
}

#[test]
fn inputs_the_network_cannot_take_are_errors() {
    let mut cfg = MsdNetConfig::new(1, 1, 6, 1, 6);
    cfg.padding_mode = dlsia_ops::PaddingMode::Reflect;
    let net = MsdNet::new(&cfg, 0, &Device::Cpu).unwrap();
    assert!(net.check_input(&[1, 1, 7, 7]).is_ok());
    let e = net.check_input(&[1, 1, 7, 6]).unwrap_err().to_string();
    assert!(e.contains("at least 7"), "{e}");
    assert!(net.check_input(&[1, 2, 8, 8]).is_err());
    assert!(net.check_input(&[1, 1, 8]).is_err());
    assert!(net
        .forward_t(
            &Tensor::zeros((1, 1, 4, 4), DType::F32, &Device::Cpu).unwrap(),
            false
        )
        .is_err());
}
