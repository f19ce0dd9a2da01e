//! The SMSNet ensemble builder: the paper's five ~45 k-parameter networks, budgets, seeds,
//! member independence, errors instead of the original's endless loop, and use as one
//! `dlsia-uq` predictor.

use candle_core::{DType, Device, Tensor, D};
use dlsia_graph::{count_parameters, member_seed, EnsembleParams, SpatialDims};
use dlsia_nets::{Network, SmsEnsemble, SmsNet};
use dlsia_uq::{Ensemble, LogitsFn, Predictor};

fn input(shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn weights(net: &SmsNet) -> Vec<(String, Vec<f32>)> {
    net.params()
        .entries()
        .into_iter()
        .map(|(k, _, t)| (k, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

#[test]
fn paper_ensemble_is_five_nets_of_about_45k_parameters() {
    let ens = SmsEnsemble::paper(1, 2, 11, &Device::Cpu).unwrap();
    assert_eq!(ens.len(), 5);
    let params = SmsEnsemble::paper_params(1, 2);
    for (i, net) in ens.members().iter().enumerate() {
        let n = net.num_parameters();
        assert!(n > 40_000 && n < 50_000, "member {i}: {n} parameters");
        // The built network has exactly the parameters dlsia's count gives for its graph.
        let spec = params.count_spec();
        assert_eq!(count_parameters(&net.config().graph, &spec).unwrap(), n);
        assert_eq!(net.config().graph.nodes().len(), 16 + 2);
    }
    assert!(ens.trials().iter().all(|&t| (1..=100).contains(&t)));
    // Five different graphs.
    for i in 0..5 {
        for j in i + 1..5 {
            assert_ne!(
                ens.members()[i].config().graph,
                ens.members()[j].config().graph
            );
        }
    }
}

#[test]
fn same_seed_same_ensemble_and_members_are_independent_of_n() {
    let mut p = EnsembleParams::new(4, 1, 3, 8);
    p.parameter_bounds = Some((2_000, 30_000));
    let a = SmsEnsemble::build(&p, 5, &Device::Cpu).unwrap();
    let b = SmsEnsemble::build(&p, 5, &Device::Cpu).unwrap();
    p.n_networks = 2;
    let c = SmsEnsemble::build(&p, 5, &Device::Cpu).unwrap();
    let d = SmsEnsemble::build(&p, 6, &Device::Cpu).unwrap();
    for i in 0..4 {
        assert_eq!(a.members()[i].config(), b.members()[i].config());
        assert_eq!(weights(&a.members()[i]), weights(&b.members()[i]));
    }
    for i in 0..2 {
        assert_eq!(a.members()[i].config(), c.members()[i].config());
        assert_eq!(weights(&a.members()[i]), weights(&c.members()[i]));
    }
    assert_ne!(a.members()[0].config(), d.members()[0].config());
    // Weights are seeded per member, from a stream of their own.
    assert_ne!(weights(&a.members()[0]), weights(&a.members()[1]));
    let again = SmsNet::new(
        a.members()[1].config(),
        member_seed(5 ^ dlsia_nets::smsnet::WEIGHT_SALT, 1),
        &Device::Cpu,
    )
    .unwrap();
    assert_eq!(weights(&again), weights(&a.members()[1]));
}

#[test]
fn unreachable_budget_is_an_error_not_an_endless_loop() {
    let mut p = EnsembleParams::new(2, 1, 2, 4);
    p.parameter_bounds = Some((1_000_000, 2_000_000));
    p.max_trial = 5;
    let err = SmsEnsemble::build(&p, 0, &Device::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("1000000") || msg.contains("1,000,000"),
        "{msg}"
    );
    p.parameter_bounds = Some((10, 11));
    assert!(SmsEnsemble::build(&p, 0, &Device::Cpu).is_err());
    p.parameter_bounds = None;
    p.n_networks = 0;
    assert!(SmsEnsemble::build(&p, 0, &Device::Cpu).is_err());
}

#[test]
fn three_d_members_and_network_types() {
    let mut p = EnsembleParams::new(2, 2, 1, 5);
    p.dims = SpatialDims::Three;
    p.network_type = dlsia_graph::NetworkType::RegressionSigmoid;
    let ens = SmsEnsemble::build(&p, 3, &Device::Cpu).unwrap();
    let outs = ens.forward_all(&input(&[1, 2, 6, 6, 6], 1), false).unwrap();
    for (o, net) in outs.iter().zip(ens.members()) {
        assert_eq!(o.dims(), &[1, 1, 6, 6, 6]);
        assert_eq!(net.spatial_dims(), 3);
        // A sigmoid last action: every value in (0, 1).
        let v = o.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|&y| y > 0.0 && y < 1.0));
    }
    // Wrong input channels are an error from every member, not a panic.
    assert!(ens.forward_all(&input(&[1, 1, 6, 6, 6], 1), false).is_err());
}

#[test]
fn from_members_checks_agreement() {
    let p = EnsembleParams::new(1, 1, 2, 4);
    let a = SmsEnsemble::build(&p, 1, &Device::Cpu).unwrap();
    let q = EnsembleParams::new(1, 1, 3, 4);
    let b = SmsEnsemble::build(&q, 1, &Device::Cpu).unwrap();
    let mut both = a.clone().into_members();
    both.extend(b.into_members());
    assert!(SmsEnsemble::from_members(both).is_err());
    assert!(SmsEnsemble::from_members(vec![]).is_err());
    let one = SmsEnsemble::from_members(a.into_members()).unwrap();
    assert_eq!(one.trials(), &[1]);
}

#[test]
fn ensemble_is_one_uq_predictor() {
    let mut p = EnsembleParams::new(3, 1, 2, 6);
    p.parameter_bounds = Some((500, 50_000));
    let ens = SmsEnsemble::build(&p, 9, &Device::Cpu).unwrap();
    let x = input(&[2, 1, 12, 12], 4);
    let logits = ens.forward_all(&x, false).unwrap();
    let predictors: Vec<Box<dyn Predictor>> = ens
        .into_members()
        .into_iter()
        .map(|net| {
            Box::new(LogitsFn::new(2, move |x: &Tensor| net.forward_t(x, false)).unwrap())
                as Box<dyn Predictor>
        })
        .collect();
    let uq = Ensemble::new(predictors).unwrap();
    let stats = uq.stats(&x).unwrap();
    // Reference: the mean and sample standard deviation of the members' softmaxes, in f64.
    let probs: Vec<Vec<f64>> = logits
        .iter()
        .map(|l| {
            let l = l.to_dtype(DType::F64).unwrap();
            let e = l
                .broadcast_sub(&l.max_keepdim(1).unwrap())
                .unwrap()
                .exp()
                .unwrap();
            let p = e.broadcast_div(&e.sum_keepdim(1).unwrap()).unwrap();
            p.flatten_all().unwrap().to_vec1::<f64>().unwrap()
        })
        .collect();
    let mean = stats.mean.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let std = stats.std.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for k in 0..mean.len() {
        let m = probs.iter().map(|p| p[k]).sum::<f64>() / 3.0;
        let v = probs.iter().map(|p| (p[k] - m).powi(2)).sum::<f64>() / 2.0;
        assert!((mean[k] as f64 - m).abs() < 1e-5, "mean {k}");
        assert!((std[k] as f64 - v.sqrt()).abs() < 1e-4, "std {k}");
    }
    assert_eq!(
        stats.mean.sum(1).unwrap().min(D::Minus1).unwrap().dims(),
        &[2, 12]
    );
}
