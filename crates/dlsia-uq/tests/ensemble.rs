//! Ensembles: mean/std against a naive reference, the confidence rule, predictor adapters.

mod common;

use candle_core::{DType, Tensor};
use common::*;
use dlsia_uq::*;

fn fixed(probs: Tensor) -> Box<dyn Predictor> {
    let c = probs.dim(1).unwrap();
    Box::new(
        ProbabilitiesFn::new(c, move |_x: &Tensor| {
            Ok::<_, candle_core::Error>(probs.clone())
        })
        .unwrap(),
    )
}

fn px(p: &[[f32; 2]]) -> Tensor {
    // (1, 2, n) from rows of class probabilities.
    let n = p.len();
    let v: Vec<f32> = (0..2).flat_map(|c| p.iter().map(move |r| r[c])).collect();
    Tensor::from_vec(v, (1, 2, n), &dev()).unwrap()
}

#[test]
fn mean_and_std_match_a_naive_reference() {
    let mut r = rng(1);
    let members: Vec<Tensor> = (0..5).map(|_| synthetic_pixels(3, 40, &mut r).0).collect();
    let ens = Ensemble::new(members.iter().cloned().map(fixed).collect()).unwrap();
    let x = Tensor::zeros((1, 1, 40), DType::F32, &dev()).unwrap();
    let st = ens.stats(&x).unwrap();
    let vals: Vec<Vec<f64>> = members.iter().map(flat).collect();
    let mean = flat(&st.mean);
    let std = flat(&st.std);
    for i in 0..mean.len() {
        let m: f64 = vals.iter().map(|v| v[i]).sum::<f64>() / 5.0;
        let var: f64 = vals.iter().map(|v| (v[i] - m).powi(2)).sum::<f64>() / 4.0;
        assert!((mean[i] - m).abs() < 1e-6 && (std[i] - var.sqrt()).abs() < 1e-6);
    }
    let se = flat(&st.standard_error().unwrap());
    assert!((se[0] - std[0] / 5f64.sqrt()).abs() < 1e-7);
    assert_eq!(ens.num_classes(), 3);
    assert_eq!(ens.len(), 5);
}

#[test]
fn confidence_rule_keeps_pixels_whose_mean_minus_std_exceeds_one_half() {
    // Pixel 0: class 1 at 0.9, 0.8 → mean 0.85, std 0.0707 → confident class 1.
    // Pixel 1: class 1 at 0.9, 0.3 → mean 0.6, std 0.424 → unsure.
    // Pixel 2: class 0 at 0.7, 0.6 → mean 0.65, std 0.0707 → confident class 0;
    //          with the standard error (0.05) as well.
    let a = px(&[[0.1, 0.9], [0.1, 0.9], [0.7, 0.3]]);
    let b = px(&[[0.2, 0.8], [0.7, 0.3], [0.6, 0.4]]);
    let ens = Ensemble::new(vec![fixed(a), fixed(b)]).unwrap();
    let x = Tensor::zeros((1, 1, 3), DType::F32, &dev()).unwrap();
    let st = ens.stats(&x).unwrap();
    let labels = st
        .confident_labels(Spread::StandardDeviation, 0.5, -1)
        .unwrap();
    assert_eq!(
        labels.flatten_all().unwrap().to_vec1::<i64>().unwrap(),
        vec![1, -1, 0]
    );
    let conf = st.confident(Spread::StandardError, 0.5).unwrap();
    assert_eq!(conf.dims(), &[1, 2, 3]);
    // Standard error 0.3 for pixel 1: 0.6 − 0.3 = 0.3, still unsure.
    assert_eq!(flat(&conf), vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    assert!(st.confident_labels(Spread::StandardError, 0.3, -1).is_err());
}

#[test]
fn ensemble_errors() {
    assert!(Ensemble::new(vec![]).is_err());
    let a = px(&[[0.5, 0.5]]);
    let three = Tensor::ones((1, 3, 1), DType::F32, &dev())
        .unwrap()
        .affine(1.0 / 3.0, 0.0)
        .unwrap();
    let e = Ensemble::new(vec![fixed(a.clone()), fixed(three)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("member 1 predicts 3 classes"), "{e}");
    let one = Ensemble::new(vec![fixed(a)]).unwrap();
    let x = Tensor::zeros((1, 1, 1), DType::F32, &dev()).unwrap();
    assert!(one
        .stats(&x)
        .unwrap_err()
        .to_string()
        .contains("at least 2"));
    assert!(one.predict_proba(&x).is_ok());
}

#[test]
fn logits_adapters_apply_the_right_activation() {
    let x = Tensor::new(&[0.5f32, -1.0, 2.0], &dev())
        .unwrap()
        .reshape((1, 1, 3))
        .unwrap();
    // One-channel binary logits → [1 − σ, σ].
    let bin = LogitsFn::new(2, |x: &Tensor| Ok::<_, candle_core::Error>(x.clone())).unwrap();
    let p = flat(&bin.predict_proba(&x).unwrap());
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    for (i, v) in [0.5, -1.0, 2.0].iter().enumerate() {
        assert!((p[3 + i] - sig(*v)).abs() < 1e-6 && (p[i] - (1.0 - sig(*v))).abs() < 1e-6);
    }
    // Multi-class logits → softmax.
    let multi = LogitsFn::new(3, |x: &Tensor| {
        Tensor::cat(&[x, &x.affine(2.0, 0.0)?, &x.zeros_like()?], 1)
    })
    .unwrap();
    let p = flat(&multi.predict_proba(&x).unwrap());
    let z: f64 = 0.5f64.exp() + 1f64.exp() + 1.0;
    assert!((p[0] - 0.5f64.exp() / z).abs() < 1e-6);
    // Wrong channel count and failing closures are errors.
    let wrong = LogitsFn::new(4, |x: &Tensor| x.repeat((1, 3, 1))).unwrap();
    assert!(wrong
        .predict_proba(&x)
        .unwrap_err()
        .to_string()
        .contains("C = 4"));
    let failing =
        LogitsFn::new(2, |_x: &Tensor| Err(candle_core::Error::Msg("boom".into()))).unwrap();
    assert!(failing
        .predict_proba(&x)
        .unwrap_err()
        .to_string()
        .contains("boom"));
    assert!(LogitsFn::new(1, |x: &Tensor| Ok::<_, candle_core::Error>(x.clone())).is_err());
}
