//! Confusion-matrix scores and streaming Pearson against hand-computed values and naive
//! references.
#![allow(clippy::needless_range_loop)] // index loops mirror the formulas

mod common;

use candle_core::Tensor;
use common::*;
use dlsia_losses::metrics::{ConfusionMatrix, Pearson};

#[test]
fn confusion_matrix_scores_by_hand() {
    // targets:   0 0 0 1 1 2 -1
    // predicted: 0 0 1 1 2 2  0
    let mut cm = ConfusionMatrix::new(3, -1).unwrap();
    cm.update_from_slices(&[0, 0, 1, 1, 2, 2, 0], &[0, 0, 0, 1, 1, 2, -1])
        .unwrap();
    assert_eq!(cm.total(), 6);
    assert_eq!(cm.counts(), &[2, 1, 0, 0, 1, 1, 0, 0, 1]);
    assert_eq!(
        (
            cm.true_positives(0),
            cm.false_positives(0),
            cm.false_negatives(0)
        ),
        (2, 0, 1)
    );
    assert_close(cm.accuracy(), 4.0 / 6.0, 1e-15, "accuracy");
    assert_close(cm.f1_micro(), 4.0 / 6.0, 1e-15, "micro");
    // F1: class 0: 4/5; class 1: 2/4; class 2: 2/3.
    let f1 = cm.f1_per_class();
    assert_close(f1[0].unwrap(), 0.8, 1e-15, "f1 0");
    assert_close(f1[1].unwrap(), 0.5, 1e-15, "f1 1");
    assert_close(f1[2].unwrap(), 2.0 / 3.0, 1e-15, "f1 2");
    assert_close(cm.f1_macro(), (0.8 + 0.5 + 2.0 / 3.0) / 3.0, 1e-15, "macro");
    // IoU: 2/3, 1/3, 1/2.
    let iou = cm.iou_per_class();
    assert_close(iou[0].unwrap(), 2.0 / 3.0, 1e-15, "iou 0");
    assert_close(iou[1].unwrap(), 1.0 / 3.0, 1e-15, "iou 1");
    assert_close(iou[2].unwrap(), 0.5, 1e-15, "iou 2");
    assert_close(
        cm.mean_iou(),
        (2.0 / 3.0 + 1.0 / 3.0 + 0.5) / 3.0,
        1e-15,
        "miou",
    );
}

#[test]
fn absent_classes_are_left_out_of_macro_averages() {
    let mut cm = ConfusionMatrix::new(4, -1).unwrap();
    cm.update_from_slices(&[0, 1, 1], &[0, 1, 0]).unwrap();
    let f1 = cm.f1_per_class();
    assert_eq!(f1[2], None);
    assert_eq!(f1[3], None);
    // class 0: 2/3, class 1: 2/3
    assert_close(cm.f1_macro(), 2.0 / 3.0, 1e-15, "macro");
    let empty = ConfusionMatrix::new(2, -1).unwrap();
    assert_eq!(
        (empty.f1_micro(), empty.f1_macro(), empty.mean_iou()),
        (0.0, 0.0, 0.0)
    );
}

#[test]
fn scores_tensors_merge_and_reset() {
    // Arg-max over channels of a (1, 3, 2, 2) score tensor; 3D-shaped labels work the same.
    let scores = Tensor::new(
        &[
            0.1f32, 0.9, 0.3, 0.2, 0.8, 0.05, 0.3, 0.1, 0.1, 0.05, 0.4, 0.7,
        ],
        &dev(),
    )
    .unwrap()
    .reshape((1, 3, 2, 2))
    .unwrap();
    // predicted: pixel0 = class 1 (0.8), pixel1 = 0 (0.9), pixel2 = 2 (0.4), pixel3 = 2 (0.7)
    let target = Tensor::new(&[[[1i64, 0], [1, -1]]], &dev()).unwrap();
    let mut a = ConfusionMatrix::new(3, -1).unwrap();
    a.update_from_scores(&scores, &target).unwrap();
    assert_eq!(a.counts(), &[1, 0, 0, 0, 1, 1, 0, 0, 0]);
    let target_with_channel = target.unsqueeze(1).unwrap();
    let mut b = ConfusionMatrix::new(3, -1).unwrap();
    b.update_from_scores(&scores, &target_with_channel).unwrap();
    a.merge(&b).unwrap();
    assert_eq!(a.total(), 6);
    a.reset();
    assert_eq!(a.total(), 0);
    // Errors: wrong channel count, out-of-range labels, mismatched merge.
    let mut c = ConfusionMatrix::new(2, -1).unwrap();
    assert!(c.update_from_scores(&scores, &target).is_err());
    assert!(c
        .update_from_slices(&[0], &[5])
        .unwrap_err()
        .to_string()
        .contains("5"));
    assert!(c
        .update_from_slices(&[7], &[0])
        .unwrap_err()
        .to_string()
        .contains("7"));
    assert!(c.merge(&b).is_err());
    assert!(ConfusionMatrix::new(0, -1).is_err());
}

fn naive_pearson(x: &[f64], y: &[f64], w: &[f64]) -> f64 {
    let sw: f64 = w.iter().sum();
    let mx = x.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() / sw;
    let my = y.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() / sw;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..x.len() {
        sxy += w[i] * (x[i] - mx) * (y[i] - my);
        sxx += w[i] * (x[i] - mx).powi(2);
        syy += w[i] * (y[i] - my).powi(2);
    }
    sxy / (sxx * syy).sqrt()
}

#[test]
fn pearson_streams_with_masks_and_large_offsets() {
    // Large common offset: naive Σx² accumulators in f32 would lose every digit.
    let x = randn(&[4, 1, 8, 8], 1.0, 1).affine(1.0, 1e6).unwrap();
    let noise = randn(&[4, 1, 8, 8], 1.0, 2);
    let y = (x.affine(0.5, 0.0).unwrap() + noise).unwrap();
    let m = uniform(&[4, 1, 8, 8], 0.0, 1.0, 3)
        .ge(0.3)
        .unwrap()
        .to_dtype(candle_core::DType::F64)
        .unwrap();
    let want = naive_pearson(&flat(&x), &flat(&y), &flat(&m));
    let mut r = Pearson::new();
    for i in 0..4 {
        let s = |t: &Tensor| t.narrow(0, i, 1).unwrap();
        r.update(&s(&x), &s(&y), Some(&s(&m))).unwrap();
    }
    assert_close(r.compute().unwrap(), want, 1e-9, "masked pearson");
    // Merging two halves gives the same.
    let mut a = Pearson::new();
    let mut b = Pearson::new();
    a.update(
        &x.narrow(0, 0, 2).unwrap(),
        &y.narrow(0, 0, 2).unwrap(),
        Some(&m.narrow(0, 0, 2).unwrap()),
    )
    .unwrap();
    b.update(
        &x.narrow(0, 2, 2).unwrap(),
        &y.narrow(0, 2, 2).unwrap(),
        Some(&m.narrow(0, 2, 2).unwrap()),
    )
    .unwrap();
    a.merge(&b);
    assert_close(a.compute().unwrap(), want, 1e-9, "merged");
    // Undefined cases.
    assert_eq!(Pearson::new().compute(), None);
    let mut c = Pearson::new();
    c.update_slices(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0], None)
        .unwrap();
    assert_eq!(c.compute(), None);
    assert!(c
        .update_slices(&[f64::NAN, 1.0], &[1.0, 2.0], None)
        .is_err());
    assert!(c.update(&x, &m.narrow(0, 0, 1).unwrap(), None).is_err());
}
