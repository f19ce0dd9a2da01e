//! Every loss's gradient against central finite differences, in f64, for one-channel (binary)
//! and multi-channel predictions, on logits and on probabilities, with sparse labels and masks.

mod common;

use candle_core::Tensor;
use common::*;
use dlsia_losses::*;

const L: PredictionKind = PredictionKind::Logits;
const P: PredictionKind = PredictionKind::Probabilities;

struct Case {
    name: &'static str,
    loss: Box<dyn Loss>,
    channels: usize,
    input: PredictionKind,
    mask: bool,
}

fn case(
    name: &'static str,
    loss: Box<dyn Loss>,
    channels: usize,
    input: PredictionKind,
    mask: bool,
) -> Case {
    Case {
        name,
        loss,
        channels,
        input,
        mask,
    }
}

fn prediction(channels: usize, input: PredictionKind, seed: u64) -> Tensor {
    let shape = [2, channels, 3, 4];
    match input {
        PredictionKind::Logits => randn(&shape, 1.5, seed),
        PredictionKind::Probabilities => uniform(&shape, 0.05, 0.95, seed),
    }
}

fn class_cases() -> Vec<Case> {
    let mut v = Vec::new();
    for (c, tag) in [(1usize, "binary"), (3, "multiclass")] {
        for input in [L, P] {
            for mask in [false, true] {
                let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
                let nm = |n: &str| leak(format!("{n}/{tag}/{input:?}/mask={mask}"));
                v.push(case(
                    nm("bce"),
                    Box::new(
                        BinaryCrossEntropyConfig {
                            input,
                            ..Default::default()
                        }
                        .build()
                        .unwrap(),
                    ),
                    c,
                    input,
                    mask,
                ));
                for class_average in [ClassAverage::Macro, ClassAverage::Pooled] {
                    v.push(case(
                        nm(&format!("dice/{class_average:?}")),
                        Box::new(
                            DiceConfig {
                                input,
                                class_average,
                                ..Default::default()
                            }
                            .build()
                            .unwrap(),
                        ),
                        c,
                        input,
                        mask,
                    ));
                }
                v.push(case(
                    nm("tversky"),
                    Box::new(
                        TverskyConfig {
                            input,
                            ..Default::default()
                        }
                        .build()
                        .unwrap(),
                    ),
                    c,
                    input,
                    mask,
                ));
                v.push(case(
                    nm("focal_tversky"),
                    Box::new(
                        FocalTverskyConfig {
                            input,
                            ..Default::default()
                        }
                        .build()
                        .unwrap(),
                    ),
                    c,
                    input,
                    mask,
                ));
                v.push(case(
                    nm("dice_bce"),
                    Box::new(
                        DiceBceConfig {
                            input,
                            alpha: 0.3,
                            ..Default::default()
                        }
                        .build()
                        .unwrap(),
                    ),
                    c,
                    input,
                    mask,
                ));
                let focal = if c == 1 {
                    FocalConfig {
                        input,
                        alpha: Some(0.25),
                        gamma: 2.0,
                        ..Default::default()
                    }
                } else {
                    FocalConfig {
                        input,
                        gamma: 1.5,
                        class_weights: Some(vec![0.5, 1.0, 2.0]),
                        ..Default::default()
                    }
                };
                v.push(case(
                    nm("focal"),
                    Box::new(focal.build().unwrap()),
                    c,
                    input,
                    mask,
                ));
                v.push(case(
                    nm("focal_dlsia"),
                    Box::new(
                        FocalDlsiaConfig {
                            input,
                            ..Default::default()
                        }
                        .build()
                        .unwrap(),
                    ),
                    c,
                    input,
                    mask,
                ));
                if c > 1 {
                    v.push(case(
                        nm("cross_entropy"),
                        Box::new(
                            CrossEntropyConfig {
                                input,
                                class_weights: Some(vec![0.2, 1.0, 3.0]),
                                ..Default::default()
                            }
                            .build()
                            .unwrap(),
                        ),
                        c,
                        input,
                        mask,
                    ));
                }
            }
        }
    }
    v
}

#[test]
fn class_losses_match_finite_differences() {
    for (k, c) in class_cases().into_iter().enumerate() {
        let seed = 100 + k as u64;
        let x = prediction(c.channels, c.input, seed);
        let y = labels(&[2, 3, 4], c.channels.max(2), 0.25, seed + 7);
        let m = uniform(&[2, c.channels, 3, 4], 0.0, 1.0, seed + 13);
        let mask = c.mask.then_some(&m);
        // Both the fused CPU kernels and the composed reference path.
        fd_check(c.loss.as_ref(), &x, &y, mask, 1e-6);
        without_fused_kernels(|| fd_check(c.loss.as_ref(), &x, &y, mask, 1e-6));
    }
}

#[test]
fn gradients_vanish_on_unlabelled_pixels() {
    for c in class_cases() {
        let x = prediction(c.channels, c.input, 5);
        let y = labels(&[2, 3, 4], c.channels.max(2), 0.4, 6);
        let lab = flat(&y);
        let per_channel = 12;
        for fused in [true, false] {
            let (_, g) = if fused {
                value_and_grad(c.loss.as_ref(), &x, &y, None)
            } else {
                without_fused_kernels(|| value_and_grad(c.loss.as_ref(), &x, &y, None))
            };
            for (i, gi) in flat(&g).iter().enumerate() {
                let n = i / (c.channels * per_channel);
                let s = i % per_channel;
                if lab[n * per_channel + s] == -1.0 {
                    assert_eq!(
                        *gi, 0.0,
                        "{} (fused {fused}): gradient on an unlabelled pixel",
                        c.name
                    );
                }
            }
        }
    }
}

#[test]
fn regression_and_tv_losses_match_finite_differences() {
    let x = randn(&[2, 2, 3, 4], 1.0, 1);
    let y = randn(&[2, 2, 3, 4], 1.0, 2);
    let m1 = uniform(&[2, 1, 3, 4], 0.0, 1.0, 3);
    let mf = uniform(&[2, 2, 3, 4], 0.0, 1.0, 4);
    for mask in [None, Some(&m1), Some(&mf)] {
        fd_check(&MaskedL1, &x, &y, mask, 1e-6);
        fd_check(&MaskedMse, &x, &y, mask, 1e-6);
    }
    for on in [TvOn::Prediction, TvOn::Softmax] {
        let tv = TvRegularized::new(
            Box::new(MaskedMse),
            TotalVariation::new(vec![0.3, 0.7], on).unwrap(),
        );
        fd_check(&tv, &x, &y, Some(&m1), 1e-6);
        // 3D
        let x3 = randn(&[1, 2, 2, 3, 3], 1.0, 9);
        let l3 = labels(&[1, 2, 3, 3], 2, 0.2, 10);
        let tv3 = TvRegularized::new(
            Box::new(CrossEntropy::default()),
            TotalVariation::new(vec![0.3, 0.7], on).unwrap(),
        );
        fd_check(&tv3, &x3, &l3, None, 1e-6);
    }
}

#[test]
fn gradients_stay_finite_for_extreme_logits_and_perfect_predictions() {
    // Saturated logits: probabilities exactly 0/1 in f32, focal and focal-Tversky exponents < 1.
    let x = Tensor::new(&[200f32, -200.0, 150.0, -150.0], &dev())
        .unwrap()
        .reshape((1, 1, 2, 2))
        .unwrap();
    let y = Tensor::new(&[1i64, 0, 1, 0], &dev())
        .unwrap()
        .reshape((1, 2, 2))
        .unwrap();
    let losses: Vec<Box<dyn Loss>> = vec![
        Box::new(BinaryCrossEntropy::default()),
        Box::new(DiceConfig::default().build().unwrap()),
        Box::new(FocalTverskyConfig::default().build().unwrap()),
        Box::new(
            FocalConfig {
                gamma: 0.5,
                ..Default::default()
            }
            .build()
            .unwrap(),
        ),
        Box::new(FocalDlsiaConfig::default().build().unwrap()),
        Box::new(DiceBceConfig::default().build().unwrap()),
    ];
    for l in &losses {
        let (v, g) = value_and_grad(l.as_ref(), &x, &y, None);
        assert!(v.is_finite() && v >= 0.0, "{l:?}", l = v);
        assert!(flat(&g).iter().all(|g| g.is_finite()));
    }
    // Wrong saturated predictions: BCE is the logit itself (100 for logit 100, target 0),
    // where candle's binary_cross_entropy_with_logit returns inf.
    let x = Tensor::new(&[100f32], &dev())
        .unwrap()
        .reshape((1, 1, 1))
        .unwrap();
    let t = Tensor::new(&[0i64], &dev())
        .unwrap()
        .reshape((1, 1))
        .unwrap();
    let (v, g) = value_and_grad(&BinaryCrossEntropy::default(), &x, &t, None);
    assert_close(v, 100.0, 1e-6, "bce(100, 0)");
    assert_close(flat(&g)[0], 1.0, 1e-6, "d bce / dx");
    // Cross-entropy with logits 1000 apart.
    let x = Tensor::new(&[1000f32, 0.0, -1000.0], &dev())
        .unwrap()
        .reshape((1, 3, 1))
        .unwrap();
    let t = Tensor::new(&[2i64], &dev())
        .unwrap()
        .reshape((1, 1))
        .unwrap();
    let (v, g) = value_and_grad(&CrossEntropy::default(), &x, &t, None);
    assert_close(v, 2000.0, 1e-6, "ce with logits ±1000");
    let g = flat(&g);
    assert!((g[0] - 1.0).abs() < 1e-6 && g[1].abs() < 1e-6 && (g[2] + 1.0).abs() < 1e-6);
}
