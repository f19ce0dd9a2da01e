//! AggNet: construction, names, training that learns which ensemble member to trust.

mod common;

use candle_core::{DType, Tensor};
use common::*;
use dlsia_losses::CrossEntropy;
use dlsia_ops::ParamStore;
use dlsia_uq::*;
use rand::Rng;

fn fixed(probs: Tensor) -> Box<dyn Predictor> {
    let c = probs.dim(1).unwrap();
    Box::new(
        ProbabilitiesFn::new(c, move |_x: &Tensor| {
            Ok::<_, candle_core::Error>(probs.clone())
        })
        .unwrap(),
    )
}

/// Labels (1, 20, 20) in 3 classes, a member that is right 70 % of the time and confident, and
/// a member that guesses.
fn members_and_labels(seed: u64) -> (Vec<Box<dyn Predictor>>, Tensor) {
    let mut r = rng(seed);
    let s = 400;
    let labels: Vec<i64> = (0..s).map(|_| r.random_range(0..3)).collect();
    let mut good = vec![0f32; 3 * s];
    let mut noise = vec![0f32; 3 * s];
    for i in 0..s {
        let right = r.random::<f32>() < 0.7;
        let pick = if right {
            labels[i] as usize
        } else {
            r.random_range(0..3)
        };
        for c in 0..3 {
            good[c * s + i] = if c == pick { 0.8 } else { 0.1 };
        }
        let raw: Vec<f32> = (0..3).map(|_| r.random::<f32>() + 0.05).collect();
        let z: f32 = raw.iter().sum();
        for c in 0..3 {
            noise[c * s + i] = raw[c] / z;
        }
    }
    let t = |v: Vec<f32>| Tensor::from_vec(v, (1, 3, 20, 20), &dev()).unwrap();
    (
        vec![fixed(t(noise)), fixed(t(good))],
        Tensor::from_vec(labels, (1, 20, 20), &dev()).unwrap(),
    )
}

fn accuracy(p: &Tensor, labels: &Tensor) -> f64 {
    let am = p
        .argmax_keepdim(1)
        .unwrap()
        .squeeze(1)
        .unwrap()
        .to_dtype(DType::I64)
        .unwrap();
    let eq = am.eq(labels).unwrap().to_dtype(DType::F64).unwrap();
    eq.mean_all().unwrap().to_scalar::<f64>().unwrap()
}

fn trained(seed: u64) -> (AggregatedEnsemble, ParamStore, Vec<f64>, Tensor, Tensor) {
    let (members, labels) = members_and_labels(1);
    let store = ParamStore::new(seed, &dev());
    let cfg = AggNetConfig {
        layers: 2,
        ..AggNetConfig::new(6, 3)
    };
    let net = cfg.build(&store.root()).unwrap();
    let agg = AggregatedEnsemble::new(members, net).unwrap();
    let x = Tensor::zeros((1, 1, 20, 20), DType::F32, &dev()).unwrap();
    let features = agg.features(&x).unwrap();
    let history = train_aggnet(
        agg.net(),
        &store,
        &[(features, labels.clone())],
        &CrossEntropy::default(),
        &AggNetTraining {
            epochs: 150,
            learning_rate: 0.05,
            ..Default::default()
        },
    )
    .unwrap();
    (agg, store, history, x, labels)
}

#[test]
fn aggnet_learns_to_trust_the_good_member() {
    let (agg, store, history, x, labels) = trained(3);
    assert!(history[history.len() - 1] < 0.8 * history[0], "{history:?}");
    let p = agg.predict_proba(&x).unwrap();
    let s: Vec<f64> = flat(&p.sum_keepdim(1).unwrap());
    assert!(s.iter().all(|v| (v - 1.0).abs() < 1e-5));
    let good = accuracy(&agg.features(&x).unwrap().narrow(1, 3, 3).unwrap(), &labels);
    let mean_of_members = {
        let f = agg.features(&x).unwrap();
        (f.narrow(1, 0, 3).unwrap() + f.narrow(1, 3, 3).unwrap()).unwrap()
    };
    let plain = accuracy(&mean_of_members, &labels);
    let learned = accuracy(&p, &labels);
    assert!(
        learned >= good - 1e-9,
        "learned {learned}, good member {good}"
    );
    assert!(learned > plain, "learned {learned}, plain average {plain}");
    // Parameter names are the original's.
    let names: Vec<String> = store.entries().into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(
        names,
        [
            "conv.0.weight",
            "conv.0.bias",
            "final_conv.weight",
            "final_conv.bias"
        ]
    );
    assert_eq!(agg.num_classes(), 3);
}

#[test]
fn training_is_reproducible_from_the_seed() {
    let a = trained(5).1.snapshot().unwrap();
    let b = trained(5).1.snapshot().unwrap();
    let c = trained(6).1.snapshot().unwrap();
    for (k, v) in &a {
        assert_eq!(flat(v), flat(&b[k]), "{k}");
    }
    assert_ne!(flat(&a["final_conv.weight"]), flat(&c["final_conv.weight"]));
}

#[test]
fn aggnet_configuration_errors() {
    let store = ParamStore::new(0, &dev());
    assert!(AggNetConfig::new(0, 3).build(&store.root()).is_err());
    let bad_dims = AggNetConfig {
        spatial_dims: 4,
        ..AggNetConfig::new(6, 3)
    };
    assert!(bad_dims.build(&store.root()).is_err());
    let (members, _) = members_and_labels(2);
    let net = AggNetConfig::new(5, 3)
        .build(&store.root().pp("x"))
        .unwrap();
    let e = AggregatedEnsemble::new(members, net)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("AggNet takes 5 channels"), "{e}");
    let (members, _) = members_and_labels(2);
    let sig = AggNetConfig {
        final_activation: FinalActivation::Sigmoid,
        ..AggNetConfig::new(6, 3)
    }
    .build(&store.root().pp("y"))
    .unwrap();
    assert!(AggregatedEnsemble::new(members, sig).is_err());
    // 3D AggNet: (out, in, 1, 1, 1) weights, volumes in and out.
    let net3 = AggNetConfig {
        spatial_dims: 3,
        final_activation: FinalActivation::Softmax,
        ..AggNetConfig::new(4, 2)
    }
    .build(&store.root().pp("z"))
    .unwrap();
    let v = Tensor::ones((1, 4, 2, 3, 3), DType::F32, &dev()).unwrap();
    assert_eq!(net3.forward(&v).unwrap().dims(), &[1, 2, 2, 3, 3]);
    assert_eq!(
        store.get("z.final_conv.weight").unwrap().dims(),
        &[2, 4, 1, 1, 1]
    );
}
