//! Bad input gives errors that say what is wrong, never panics.

mod common;

use candle_core::Tensor;
use common::*;
use dlsia_losses::*;

fn err_text(r: Result<Tensor>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn labels_out_of_range_are_rejected() {
    let x = randn(&[1, 3, 2, 2], 1.0, 1);
    let y = Tensor::new(&[[[0i64, 1], [3, -1]]], &dev()).unwrap();
    let msg = err_text(CrossEntropy::default().loss(&x, &y, None));
    assert!(
        msg.contains("found label 3") && msg.contains("0..3"),
        "{msg}"
    );
    // Binary: labels must be 0/1.
    let xb = randn(&[1, 1, 2, 2], 1.0, 1);
    let yb = Tensor::new(&[[[0i64, 2], [1, -1]]], &dev()).unwrap();
    let msg = err_text(DiceConfig::default().build().unwrap().loss(&xb, &yb, None));
    assert!(msg.contains("found label 2"), "{msg}");
    // A different ignore value: −1 is then out of range.
    let ce = CrossEntropyConfig {
        ignore_index: 255,
        ..Default::default()
    }
    .build()
    .unwrap();
    let y = Tensor::new(&[[[0i64, 1], [255, -1]]], &dev()).unwrap();
    assert!(err_text(ce.loss(&x, &y, None)).contains("found label -1"));
}

#[test]
fn shapes_are_checked() {
    let x = randn(&[2, 3, 2, 2], 1.0, 1);
    let y = labels(&[2, 2, 3], 3, 0.0, 1);
    assert!(err_text(CrossEntropy::default().loss(&x, &y, None)).contains("integer labels"));
    let y = labels(&[2, 2, 2], 3, 0.0, 1);
    let m = uniform(&[2, 2, 2, 2], 0.0, 1.0, 1);
    assert!(err_text(CrossEntropy::default().loss(&x, &y, Some(&m))).contains("mask"));
    let soft = uniform(&[2, 2, 2, 2], 0.0, 1.0, 1);
    assert!(err_text(CrossEntropy::default().loss(&x, &soft, None)).contains("shape"));
    let xr = randn(&[2, 1, 2, 2], 1.0, 1);
    assert!(err_text(MaskedL1.loss(&xr, &x, None)).contains("shape"));
    let one_channel = randn(&[2, 1, 2, 2], 1.0, 1);
    assert!(
        err_text(CrossEntropy::default().loss(&one_channel, &y, None))
            .contains("binary_cross_entropy")
    );
    let tv = TotalVariation::new(vec![1.0, 1.0], TvOn::Prediction).unwrap();
    assert!(err_text(tv.value(&x)).contains("2 weights"));
}

#[test]
fn values_are_checked() {
    let y = labels(&[1, 2, 2], 2, 0.0, 1);
    // Probabilities outside [0, 1] when the loss is told the input holds probabilities.
    let p = Tensor::new(&[0.2f64, 1.3, 0.5, 0.1], &dev())
        .unwrap()
        .reshape((1, 1, 2, 2))
        .unwrap();
    let dice = DiceConfig {
        input: PredictionKind::Probabilities,
        ..Default::default()
    }
    .build()
    .unwrap();
    let msg = err_text(dice.loss(&p, &y, None));
    assert!(msg.contains("[0, 1]") && msg.contains("logits"), "{msg}");
    // Negative and NaN mask weights.
    let x = randn(&[1, 1, 2, 2], 1.0, 2);
    let m = Tensor::new(&[1.0f64, -1.0, 1.0, 1.0], &dev())
        .unwrap()
        .reshape((1, 1, 2, 2))
        .unwrap();
    assert!(err_text(dice.loss(&x.affine(0.0, 0.5).unwrap(), &y, Some(&m))).contains("mask"));
    let m = Tensor::new(&[1.0f64, f64::NAN, 1.0, 1.0], &dev())
        .unwrap()
        .reshape((1, 1, 2, 2))
        .unwrap();
    assert!(err_text(MaskedMse.loss(&x, &x, Some(&m))).contains("mask"));
    // NaN in a regression target.
    let t = Tensor::new(&[1.0f64, f64::NAN, 1.0, 1.0], &dev())
        .unwrap()
        .reshape((1, 1, 2, 2))
        .unwrap();
    assert!(err_text(MaskedMse.loss(&x, &t, None)).contains("NaN"));
    // Soft targets outside [0, 1].
    let soft = x.affine(0.0, 2.0).unwrap();
    assert!(err_text(BinaryCrossEntropy::default().loss(&x, &soft, None)).contains("[0, 1]"));
    // Class weights of the wrong length (known only at the first batch).
    let ce = CrossEntropyConfig {
        class_weights: Some(vec![1.0, 2.0, 3.0]),
        ..Default::default()
    }
    .build()
    .unwrap();
    let x2 = randn(&[1, 2, 2, 2], 1.0, 2);
    assert!(err_text(ce.loss(&x2, &y, None)).contains("3 class weights"));
}

#[test]
fn impossible_hyperparameters_are_rejected_at_build() {
    let e = |r: Result<()>| r.unwrap_err().to_string();
    assert!(e(DiceConfig {
        smooth: -1.0,
        ..Default::default()
    }
    .build()
    .map(|_| ()))
    .contains("smooth"));
    assert!(e(TverskyConfig {
        alpha: f64::NAN,
        ..Default::default()
    }
    .build()
    .map(|_| ()))
    .contains("alpha"));
    assert!(e(FocalTverskyConfig {
        gamma: 0.0,
        ..Default::default()
    }
    .build()
    .map(|_| ()))
    .contains("gamma"));
    assert!(e(FocalConfig {
        alpha: Some(1.5),
        ..Default::default()
    }
    .build()
    .map(|_| ()))
    .contains("[0, 1]"));
    assert!(e(DiceBceConfig {
        alpha: -0.1,
        ..Default::default()
    }
    .build()
    .map(|_| ()))
    .contains("alpha"));
    assert!(e(CrossEntropyConfig {
        class_weights: Some(vec![0.0, 0.0]),
        ..Default::default()
    }
    .build()
    .map(|_| ()))
    .contains("class_weights"));
    assert!(e(TotalVariation::new(vec![-1.0], TvOn::Softmax).map(|_| ())).contains("weights"));
}
