//! The fused CPU kernels agree with the composed reference path: values and gradients, in f32
//! and f64, 2D and 3D, with sparse labels, (N, 1) and (N, C) masks, logits and probabilities.

mod common;

use candle_core::{DType, Tensor};
use common::*;
use dlsia_losses::*;

fn losses(input: PredictionKind, channels: usize) -> Vec<(String, Box<dyn Loss>)> {
    let mut v: Vec<(String, Box<dyn Loss>)> = Vec::new();
    for avg in [ClassAverage::Macro, ClassAverage::Pooled] {
        v.push((
            format!("dice/{avg:?}"),
            Box::new(
                DiceConfig {
                    input,
                    class_average: avg,
                    smooth: 0.5,
                    ..Default::default()
                }
                .build()
                .unwrap(),
            ),
        ));
    }
    v.push((
        "tversky".into(),
        Box::new(
            TverskyConfig {
                input,
                ..Default::default()
            }
            .build()
            .unwrap(),
        ),
    ));
    v.push((
        "focal_tversky".into(),
        Box::new(
            FocalTverskyConfig {
                input,
                ..Default::default()
            }
            .build()
            .unwrap(),
        ),
    ));
    v.push((
        "dice_bce".into(),
        Box::new(
            DiceBceConfig {
                input,
                ..Default::default()
            }
            .build()
            .unwrap(),
        ),
    ));
    if channels >= 2 {
        let cw: Vec<f64> = (0..channels).map(|k| 0.5 + k as f64).collect();
        v.push((
            "cross_entropy".into(),
            Box::new(
                CrossEntropyConfig {
                    input,
                    class_weights: Some(cw.clone()),
                    ..Default::default()
                }
                .build()
                .unwrap(),
            ),
        ));
        for gamma in [0.5, 2.0] {
            v.push((
                format!("focal/{gamma}"),
                Box::new(
                    FocalConfig {
                        input,
                        gamma,
                        class_weights: Some(cw.clone()),
                        ..Default::default()
                    }
                    .build()
                    .unwrap(),
                ),
            ));
        }
    }
    v
}

fn compare(dtype: DType, spatial: &[usize], channels: usize, input: PredictionKind, seed: u64) {
    let mut shape = vec![2, channels];
    shape.extend_from_slice(spatial);
    let x = match input {
        PredictionKind::Logits => randn(&shape, 3.0, seed),
        PredictionKind::Probabilities => uniform(&shape, 0.0, 1.0, seed),
    }
    .to_dtype(dtype)
    .unwrap();
    let mut lshape = vec![2];
    lshape.extend_from_slice(spatial);
    let y = labels(&lshape, channels.max(2), 0.3, seed + 1);
    let mut m1 = shape.clone();
    m1[1] = 1;
    let mask1 = uniform(&m1, 0.0, 2.0, seed + 2).to_dtype(dtype).unwrap();
    let maskc = uniform(&shape, 0.0, 1.0, seed + 3).to_dtype(dtype).unwrap();
    let tol = if dtype == DType::F64 { 1e-10 } else { 2e-5 };
    for (name, loss) in losses(input, channels) {
        for mask in [None, Some(&mask1), Some(&maskc)] {
            let (vf, gf) = value_and_grad(loss.as_ref(), &x, &y, mask);
            let (vc, gc) = without_fused_kernels(|| value_and_grad(loss.as_ref(), &x, &y, mask));
            let what = format!(
                "{name} {dtype:?} {spatial:?} C={channels} {input:?} mask={}",
                mask.is_some()
            );
            assert_close(vf, vc, tol, &what);
            let scale = flat(&gc).iter().fold(0.0f64, |a, b| a.max(b.abs()));
            let err = max_abs_diff(&gf, &gc);
            assert!(
                err <= tol * (1.0 + scale),
                "{what}: gradients differ by {err}"
            );
        }
    }
}

#[test]
fn fused_kernels_match_the_composed_path() {
    for dtype in [DType::F64, DType::F32] {
        for input in [PredictionKind::Logits, PredictionKind::Probabilities] {
            compare(dtype, &[5, 6], 3, input, 1);
            compare(dtype, &[3, 4, 5], 4, input, 2);
            compare(dtype, &[7, 3], 1, input, 3);
        }
    }
}

#[test]
fn fused_kernels_are_deterministic_across_chunks() {
    // More pixels than one work chunk: the parallel reduction must give identical results.
    let x = randn(&[2, 3, 80, 80], 2.0, 9).to_dtype(DType::F32).unwrap();
    let y = labels(&[2, 80, 80], 3, 0.3, 10);
    let ce = CrossEntropy::default();
    let a = scalar(&ce.loss(&x, &y, None).unwrap());
    for _ in 0..3 {
        assert_eq!(scalar(&ce.loss(&x, &y, None).unwrap()), a);
    }
    let composed = without_fused_kernels(|| scalar(&ce.loss(&x, &y, None).unwrap()));
    assert_close(a, composed, 1e-5, "large ce");
}

#[test]
fn fused_path_reports_bad_labels_and_masks() {
    let x = randn(&[1, 3, 2, 2], 1.0, 1);
    let y = Tensor::new(&[[[0i64, 4], [1, -1]]], &dev()).unwrap();
    let e = CrossEntropy::default()
        .loss(&x, &y, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("found label 4"), "{e}");
    let y = labels(&[1, 2, 2], 3, 0.0, 1);
    let m = Tensor::new(&[1.0f64, -2.0, 1.0, 1.0], &dev())
        .unwrap()
        .reshape((1, 1, 2, 2))
        .unwrap();
    let e = CrossEntropy::default()
        .loss(&x, &y, Some(&m))
        .unwrap_err()
        .to_string();
    assert!(e.contains("mask"), "{e}");
}
