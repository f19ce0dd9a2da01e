//! SMSNet beyond PyTorch parity: the W4 graph's state_dict, networks from sampled graphs (sizes,
//! 3-D, any input size), finite differences in f64, input errors, save/load.

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor, Var};
use dlsia_graph::{GraphDocument, LastAction, SizingSettings, SmsGraphParams, SpatialDims};
use dlsia_nets::{load_model, save_model, Network, SmsNet, SmsNetConfig, Topology};
use dlsia_ops::ParamStore;

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
        .to_vec1()
        .unwrap()
}

fn w4_document() -> GraphDocument {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../dlsia-graph/tests/fixtures/graphs/w4_ensemble_2d_seed2.json");
    GraphDocument::load(p).unwrap()
}

/// The W4 benchmark network: the graph dlsia sampled with seed 2, exported with its
/// state_dict's names and shapes, builds exactly that state_dict (45,748 parameters).
#[test]
fn w4_graph_builds_the_original_state_dict() {
    let doc = w4_document();
    let cfg = SmsNetConfig::new(SpatialDims::Two, 1, 2, doc.graph.clone());
    assert_eq!(cfg.num_parameters().unwrap(), 45_748);
    let net = SmsNet::new(&cfg, 0, &Device::Cpu).unwrap();
    assert_eq!(net.num_parameters(), 45_748);
    let want: Vec<(String, Vec<usize>)> = doc.meta["state_dict_shapes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let name = e[0].as_str().unwrap().to_string();
            let shape = e[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            (name, shape)
        })
        .collect();
    let got: Vec<(String, Vec<usize>)> = net
        .params()
        .entries()
        .into_iter()
        .map(|(n, _, t)| (n, t.dims().to_vec()))
        .collect();
    assert_eq!(got, want);
    let y = net
        .forward_t(&input(&[1, 1, 20, 18], DType::F32, 0.0), true)
        .unwrap();
    assert_eq!(y.dims(), &[1, 2, 20, 18]);
}

fn sampled(
    dims: SpatialDims,
    layers: usize,
    seed: u64,
    sizing: Option<(i32, i32)>,
) -> SmsNetConfig {
    let mut p = SmsGraphParams::new(layers, vec![1, 2, 3]);
    p.hidden_out_channels = vec![2, 3];
    p.dims = dims;
    p.in_channels = 2;
    p.ll_max_degree = Some(dlsia_graph::DegreeBound::Count(3));
    if let Some((lo, hi)) = sizing {
        p.sizing = SizingSettings {
            stride_base: 2,
            min_power: lo,
            max_power: hi,
        };
    }
    SmsNetConfig::new(dims, 2, 3, p.check().unwrap().sample(seed))
}

/// Central finite differences in f64 of `L = Σ y·g` against autograd for a few scalars of the
/// input and of parameters of every kind of edge.
fn finite_differences(cfg: &SmsNetConfig, shape: &[usize]) {
    let net = SmsNet::from_store(cfg, ParamStore::with_dtype(5, &Device::Cpu, DType::F64)).unwrap();
    let x = Var::from_tensor(&input(shape, DType::F64, 0.2)).unwrap();
    let y = net.forward_t(x.as_tensor(), true).unwrap();
    let g = input(y.dims(), DType::F64, 1.4);
    let loss = || -> f64 {
        let y = net.forward_t(x.as_tensor(), true).unwrap();
        (y * &g)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let grads = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
    let mut vars: Vec<(String, Var)> = net
        .params()
        .entries()
        .into_iter()
        .filter(|(n, _, _)| n.ends_with(".weight"))
        .step_by(3)
        .map(|(n, _, _)| (n.clone(), net.params().get(&n).unwrap()))
        .collect();
    vars.push(("input".into(), x.clone()));
    assert!(vars.len() > 3);
    let eps = 1e-6;
    for (name, var) in &vars {
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
            let up = loss();
            set(-eps);
            let down = loss();
            set(0.0);
            let numeric = (up - down) / (2.0 * eps);
            assert!(
                (numeric - analytic[idx]).abs() <= 1e-6 * (1.0 + numeric.abs()),
                "{name}[{idx}]: finite difference {numeric} vs autograd {}",
                analytic[idx]
            );
        }
    }
}

#[test]
fn gradients_match_finite_differences_2d_with_strided_and_transposed_edges() {
    let cfg = sampled(SpatialDims::Two, 5, 3, Some((-1, 1)));
    assert!(cfg.graph.nodes().iter().any(|n| n.size != 0));
    finite_differences(&cfg, &[2, 2, 9, 8]);
}

#[test]
fn gradients_match_finite_differences_3d_and_1d() {
    let mut cfg = sampled(SpatialDims::Three, 4, 4, None);
    cfg.last_action = LastAction::LinearSigmoid;
    finite_differences(&cfg, &[2, 2, 5, 6, 7]);
    let mut cfg = sampled(SpatialDims::One, 4, 6, None);
    cfg.last_action = LastAction::LinearBnRelu;
    finite_differences(&cfg, &[3, 2, 13]);
}

#[test]
fn sampled_networks_take_any_size_their_edges_allow() {
    for seed in 0..6 {
        let cfg = sampled(SpatialDims::Two, 6, seed, Some((-1, 1)));
        let net = SmsNet::new(&cfg, seed, &Device::Cpu).unwrap();
        assert_eq!(net.num_parameters(), cfg.num_parameters().unwrap());
        for shape in [[2, 2, 16, 16], [1, 2, 13, 11]] {
            let y = net
                .forward_t(&input(&shape, DType::F32, 0.0), false)
                .unwrap();
            let out_power = cfg.graph.nodes().last().unwrap().size;
            let scale = |n: usize| -> usize {
                let s = 2usize.pow(out_power.unsigned_abs());
                if out_power <= 0 {
                    (n - 1) / s + 1
                } else {
                    n * s
                }
            };
            assert_eq!(y.dims(), &[shape[0], 3, scale(shape[2]), scale(shape[3])]);
        }
    }
}

#[test]
fn batch_statistics_in_eval_mode_too() {
    // track_running_stats = False: an eval output depends on the rest of the batch.
    let net = SmsNet::new(&sampled(SpatialDims::Two, 4, 1, None), 0, &Device::Cpu).unwrap();
    let x = input(&[3, 2, 10, 10], DType::F32, 0.0);
    let full = net.forward_t(&x, false).unwrap();
    let first = net.forward_t(&x.narrow(0, 0, 1).unwrap(), false).unwrap();
    let diff: f64 = values(&(full.narrow(0, 0, 1).unwrap() - first).unwrap())
        .iter()
        .map(|v| v.abs())
        .sum();
    assert!(diff > 1e-3);
    assert!(net
        .params()
        .entries()
        .iter()
        .all(|(n, _, _)| !n.contains("running")));
}

#[test]
fn predict_is_the_eval_forward_without_a_graph() {
    for dims in [SpatialDims::Two, SpatialDims::Three] {
        let net = SmsNet::new(&sampled(dims, 6, 2, None), 3, &Device::Cpu).unwrap();
        let shape = if dims == SpatialDims::Two {
            vec![2, 2, 12, 10]
        } else {
            vec![2, 2, 6, 5, 4]
        };
        let x = input(&shape, DType::F32, 0.4);
        let eval = net.forward_t(&x, false).unwrap();
        assert!(eval.track_op());
        let y = net.predict(&x).unwrap();
        assert!(!y.track_op());
        assert_eq!(values(&y), values(&eval));
    }
}

#[test]
fn inputs_the_network_cannot_take_are_errors() {
    let mut p = SmsGraphParams::new(4, vec![5]);
    p.hidden_out_channels = vec![2];
    let cfg = SmsNetConfig::new(SpatialDims::Two, 1, 1, p.check().unwrap().sample(0));
    let net = SmsNet::new(&cfg, 0, &Device::Cpu).unwrap();
    let has_d5 = cfg
        .graph
        .edges()
        .any(|(u, e)| u != 0 && e.dilation == 5 && e.to != cfg.graph.output());
    if has_d5 {
        let e = net.check_input(&[1, 1, 5, 12]).unwrap_err().to_string();
        assert!(e.contains("reflection"), "{e}");
        assert!(net.check_input(&[1, 1, 6, 12]).is_ok());
    }
    assert!(net.check_input(&[1, 2, 8, 8]).is_err());
    assert!(net.check_input(&[1, 1, 8]).is_err());
    let mut bad = cfg.clone();
    bad.kernel_size = 2;
    assert!(SmsNet::new(&bad, 0, &Device::Cpu).is_err());
    bad = cfg.clone();
    bad.spatial_dims = 4;
    assert!(bad.validate().is_err());
}

#[test]
fn saves_and_loads_with_its_graph() {
    let cfg = sampled(SpatialDims::Two, 5, 9, Some((-1, 0)));
    let net = SmsNet::new(&cfg, 3, &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    save_model(&net, dir.path(), &serde_json::json!({}), false).unwrap();
    let (back, _) = load_model(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(back.topology(), Topology::SmsNet(cfg));
    let x = input(&[2, 2, 12, 12], DType::F32, 0.5);
    assert_eq!(
        values(&net.forward_t(&x, true).unwrap()),
        values(&back.forward_t(&x, true).unwrap())
    );
}
