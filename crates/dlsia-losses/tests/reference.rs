//! Losses against hand-computed values on tiny tensors and against naive f64 loop
//! implementations of the documented formulas (per-class averaging, sparse labels, masks).
#![allow(clippy::needless_range_loop)] // index loops mirror the formulas

mod common;

use candle_core::Tensor;
use common::*;
use dlsia_losses::*;

fn t4(v: &[f64], shape: (usize, usize, usize, usize)) -> Tensor {
    Tensor::new(v, &dev()).unwrap().reshape(shape).unwrap()
}

#[test]
fn hand_computed_binary_values() {
    // p = [0.5, 1.0], y = [1, 0], smooth 1: TP = 0.5, FP = 1.0, FN = 0.5.
    let p = t4(&[0.5, 1.0], (1, 1, 1, 2));
    let y = Tensor::new(&[[[1i64, 0]]], &dev()).unwrap();
    let prob = PredictionKind::Probabilities;
    let dice = DiceConfig {
        input: prob,
        ..Default::default()
    }
    .build()
    .unwrap();
    assert_close(
        scalar(&dice.loss(&p, &y, None).unwrap()),
        1.0 - 2.0 / 3.5,
        1e-12,
        "dice",
    );
    let tv = TverskyConfig {
        input: prob,
        ..Default::default()
    }
    .build()
    .unwrap();
    // 1 − 1.5 / (0.5 + 0.75 + 0.125 + 1)
    assert_close(
        scalar(&tv.loss(&p, &y, None).unwrap()),
        1.0 - 1.5 / 2.375,
        1e-12,
        "tversky",
    );
    let ft = FocalTverskyConfig {
        input: prob,
        ..Default::default()
    }
    .build()
    .unwrap();
    // alpha = beta = 0.5: T = 1.5 / (0.5 + 0.5 + 0.25 + 1) = 1.5/2.25
    let want = (1.0f64 - 1.5 / 2.25).powf(0.8);
    assert_close(
        scalar(&ft.loss(&p, &y, None).unwrap()),
        want,
        1e-12,
        "focal tversky",
    );

    // One pixel p = 0.8, y = 1: BCE = −ln 0.8, e^{−BCE} = 0.8.
    let p = t4(&[0.8], (1, 1, 1, 1));
    let y = Tensor::new(&[[[1i64]]], &dev()).unwrap();
    let b = -(0.8f64).ln();
    let fd = FocalDlsiaConfig {
        input: prob,
        ..Default::default()
    }
    .build()
    .unwrap();
    assert_close(
        scalar(&fd.loss(&p, &y, None).unwrap()),
        0.8 * 0.2f64.sqrt() * b,
        1e-12,
        "original focal",
    );
    let f = FocalConfig {
        input: prob,
        gamma: 2.0,
        alpha: Some(0.25),
        ..Default::default()
    }
    .build()
    .unwrap();
    assert_close(
        scalar(&f.loss(&p, &y, None).unwrap()),
        0.25 * 0.04 * b,
        1e-12,
        "standard focal",
    );
    // The two focal losses differ per pixel: on two pixels the standard one averages per-pixel
    // focal terms, the original applies one factor to the mean BCE.
    let p = t4(&[0.8, 0.4], (1, 1, 1, 2));
    let y = Tensor::new(&[[[1i64, 1]]], &dev()).unwrap();
    let (b1, b2) = (-(0.8f64).ln(), -(0.4f64).ln());
    let standard = FocalConfig {
        input: prob,
        gamma: 0.5,
        ..Default::default()
    }
    .build()
    .unwrap();
    let want_std = 0.5 * (0.2f64.sqrt() * b1 + 0.6f64.sqrt() * b2);
    assert_close(
        scalar(&standard.loss(&p, &y, None).unwrap()),
        want_std,
        1e-12,
        "focal/2px",
    );
    let mean_b = 0.5 * (b1 + b2);
    let want_orig = 0.8 * (1.0 - (-mean_b).exp()).sqrt() * mean_b;
    assert_close(
        scalar(&fd.loss(&p, &y, None).unwrap()),
        want_orig,
        1e-12,
        "orig/2px",
    );
}

#[test]
fn hand_computed_multiclass_values() {
    // Two pixels, three classes, logits chosen so the softmax is easy: pixel 0 = [ln 2, 0, 0]
    // → p = [1/2, 1/4, 1/4]; pixel 1 = [0, 0, ln 2] → [1/4, 1/4, 1/2]. Labels [0, 1].
    let l2 = 2f64.ln();
    let x = t4(&[l2, 0.0, 0.0, 0.0, 0.0, l2], (1, 3, 1, 2));
    let y = Tensor::new(&[[[0i64, 1]]], &dev()).unwrap();
    let ce = CrossEntropy::default();
    assert_close(
        scalar(&ce.loss(&x, &y, None).unwrap()),
        0.5 * (2f64.ln() + 4f64.ln()),
        1e-12,
        "ce",
    );
    let wce = CrossEntropyConfig {
        class_weights: Some(vec![1.0, 3.0, 1.0]),
        ..Default::default()
    }
    .build()
    .unwrap();
    assert_close(
        scalar(&wce.loss(&x, &y, None).unwrap()),
        (2f64.ln() + 3.0 * 4f64.ln()) / 4.0,
        1e-12,
        "weighted ce",
    );
    // Macro Dice (smooth 1): class 0: TP .5, FP .25, FN .5 → 2/2.75; class 1: TP .25, FP .25,
    // FN .75 → 1.5/2.5; class 2: TP 0, FP .75, FN 0 → 1/1.75.
    let dice = DiceConfig::default().build().unwrap();
    let want = 1.0 - (2.0 / 2.75 + 1.5 / 2.5 + 1.0 / 1.75) / 3.0;
    assert_close(
        scalar(&dice.loss(&x, &y, None).unwrap()),
        want,
        1e-12,
        "macro dice",
    );
    // Pooled: Σp = 2, Σy = 2, TP = .75 → (1.5 + 1)/(2 + 2 + 1).
    let pooled = DiceConfig {
        class_average: ClassAverage::Pooled,
        ..Default::default()
    }
    .build()
    .unwrap();
    assert_close(
        scalar(&pooled.loss(&x, &y, None).unwrap()),
        1.0 - 2.5 / 5.0,
        1e-12,
        "pooled",
    );
    // Focal with gamma 0 is the cross-entropy.
    let f0 = FocalConfig {
        gamma: 0.0,
        ..Default::default()
    }
    .build()
    .unwrap();
    assert_close(
        scalar(&f0.loss(&x, &y, None).unwrap()),
        scalar(&ce.loss(&x, &y, None).unwrap()),
        1e-12,
        "focal γ=0",
    );
    // Dice + CE with alpha 0.5.
    let dbce = DiceBceConfig::default().build().unwrap();
    assert_close(
        scalar(&dbce.loss(&x, &y, None).unwrap()),
        0.5 * 0.5 * (2f64.ln() + 4f64.ln()) + 0.5 * want,
        1e-12,
        "dice+ce",
    );
}

/// Naive f64 reference of the soft counts with sparse labels and a per-class mask.
fn naive_counts(
    p: &[f64],
    lab: &[f64],
    w: &[f64],
    n: usize,
    c: usize,
    s: usize,
) -> Vec<(f64, f64, f64)> {
    let mut out = vec![(0.0, 0.0, 0.0); c];
    for b in 0..n {
        for k in 0..c {
            for i in 0..s {
                let l = lab[b * s + i];
                if l < 0.0 {
                    continue;
                }
                let y = if c == 1 {
                    (l == 1.0) as i32 as f64
                } else {
                    (l as usize == k) as i32 as f64
                };
                let pi = p[(b * c + k) * s + i];
                let wi = w[(b * c + k) * s + i];
                out[k].0 += wi * pi * y;
                out[k].1 += wi * pi * (1.0 - y);
                out[k].2 += wi * (1.0 - pi) * y;
            }
        }
    }
    out
}

fn softmax_naive(x: &[f64], n: usize, c: usize, s: usize) -> Vec<f64> {
    let mut p = vec![0.0; x.len()];
    for b in 0..n {
        for i in 0..s {
            let m = (0..c)
                .map(|k| x[(b * c + k) * s + i])
                .fold(f64::MIN, f64::max);
            let z: f64 = (0..c).map(|k| (x[(b * c + k) * s + i] - m).exp()).sum();
            for k in 0..c {
                p[(b * c + k) * s + i] = (x[(b * c + k) * s + i] - m).exp() / z;
            }
        }
    }
    p
}

#[test]
fn overlap_losses_match_naive_reference_with_sparse_labels_and_masks() {
    let (n, c, s) = (2, 4, 15);
    let x = randn(&[n, c, 3, 5], 2.0, 1);
    let y = labels(&[n, 3, 5], c, 0.3, 2);
    let m = uniform(&[n, c, 3, 5], 0.0, 1.0, 3);
    let p = softmax_naive(&flat(&x), n, c, s);
    let counts = naive_counts(&p, &flat(&y), &flat(&m), n, c, s);
    let (smooth, a, b, g) = (0.7, 0.6, 0.3, 1.7);
    let dice: f64 = counts
        .iter()
        .map(|(tp, fp, fn_)| (2.0 * tp + smooth) / (2.0 * tp + fp + fn_ + smooth))
        .sum::<f64>()
        / c as f64;
    let tv: Vec<f64> = counts
        .iter()
        .map(|(tp, fp, fn_)| (tp + smooth) / (tp + a * fp + b * fn_ + smooth))
        .collect();
    let loss_dice = DiceConfig {
        smooth,
        ..Default::default()
    }
    .build()
    .unwrap();
    assert_close(
        scalar(&loss_dice.loss(&x, &y, Some(&m)).unwrap()),
        1.0 - dice,
        1e-12,
        "dice",
    );
    let loss_tv = TverskyConfig {
        smooth,
        alpha: a,
        beta: b,
        ..Default::default()
    }
    .build()
    .unwrap();
    let want = 1.0 - tv.iter().sum::<f64>() / c as f64;
    assert_close(
        scalar(&loss_tv.loss(&x, &y, Some(&m)).unwrap()),
        want,
        1e-12,
        "tversky",
    );
    let loss_ft = FocalTverskyConfig {
        smooth,
        alpha: a,
        beta: b,
        gamma: g,
        ..Default::default()
    }
    .build()
    .unwrap();
    let want = tv.iter().map(|t| (1.0 - t).powf(g)).sum::<f64>() / c as f64;
    assert_close(
        scalar(&loss_ft.loss(&x, &y, Some(&m)).unwrap()),
        want,
        1e-12,
        "ftversky",
    );
}

#[test]
fn cross_entropy_and_focal_match_naive_reference_with_channel_masks() {
    let (n, c, s) = (2, 3, 12);
    let x = randn(&[n, c, 3, 4], 2.0, 11);
    let y = labels(&[n, 3, 4], c, 0.3, 12);
    let m = uniform(&[n, c, 3, 4], 0.0, 1.0, 13);
    let cw = [0.3, 1.0, 2.5];
    let gamma = 1.3;
    let (xv, yv, mv) = (flat(&x), flat(&y), flat(&m));
    let p = softmax_naive(&xv, n, c, s);
    let (mut ce_num, mut f_num, mut den) = (0.0, 0.0, 0.0);
    for b in 0..n {
        for i in 0..s {
            let l = yv[b * s + i];
            if l < 0.0 {
                continue;
            }
            let k = l as usize;
            let idx = (b * c + k) * s + i;
            let w = cw[k] * mv[idx];
            ce_num += -w * p[idx].ln();
            f_num += -w * (1.0 - p[idx]).powf(gamma) * p[idx].ln();
            den += w;
        }
    }
    let ce = CrossEntropyConfig {
        class_weights: Some(cw.to_vec()),
        ..Default::default()
    }
    .build()
    .unwrap();
    assert_close(
        scalar(&ce.loss(&x, &y, Some(&m)).unwrap()),
        ce_num / den,
        1e-12,
        "ce",
    );
    let focal = FocalConfig {
        gamma,
        class_weights: Some(cw.to_vec()),
        ..Default::default()
    }
    .build()
    .unwrap();
    assert_close(
        scalar(&focal.loss(&x, &y, Some(&m)).unwrap()),
        f_num / den,
        1e-12,
        "focal",
    );
}

#[test]
fn binary_focal_and_bce_match_naive_reference() {
    let x = randn(&[2, 1, 4, 4], 2.0, 21);
    let y = labels(&[2, 4, 4], 2, 0.3, 22);
    let m = uniform(&[2, 1, 4, 4], 0.0, 1.0, 23);
    let (xv, yv, mv) = (flat(&x), flat(&y), flat(&m));
    let (alpha, gamma) = (0.3, 2.0);
    let (mut bce, mut fl, mut den) = (0.0, 0.0, 0.0);
    for i in 0..xv.len() {
        if yv[i] < 0.0 {
            continue;
        }
        let p = 1.0 / (1.0 + (-xv[i]).exp());
        let t = yv[i];
        bce += mv[i] * -(t * p.ln() + (1.0 - t) * (1.0 - p).ln());
        fl += mv[i]
            * -(alpha * t * (1.0 - p).powf(gamma) * p.ln()
                + (1.0 - alpha) * (1.0 - t) * p.powf(gamma) * (1.0 - p).ln());
        den += mv[i];
    }
    let got = scalar(
        &BinaryCrossEntropy::default()
            .loss(&x, &y, Some(&m))
            .unwrap(),
    );
    assert_close(got, bce / den, 1e-12, "bce");
    let focal = FocalConfig {
        alpha: Some(alpha),
        gamma,
        ..Default::default()
    }
    .build()
    .unwrap();
    assert_close(
        scalar(&focal.loss(&x, &y, Some(&m)).unwrap()),
        fl / den,
        1e-12,
        "focal",
    );
}

#[test]
fn total_variation_matches_naive_reference_in_3d() {
    let x = randn(&[2, 2, 3, 4, 5], 1.0, 31);
    let v = flat(&x);
    let w = [0.2, 0.9];
    let (n, c, d, h, ww) = (2, 2, 3, 4, 5);
    let at = |b: usize, k: usize, z: usize, yy: usize, xx: usize| {
        v[(((b * c + k) * d + z) * h + yy) * ww + xx]
    };
    let mut total = 0.0;
    for b in 0..n {
        for k in 0..c {
            for z in 0..d {
                for yy in 0..h {
                    for xx in 0..ww {
                        let a = at(b, k, z, yy, xx);
                        if z + 1 < d {
                            total += w[k] * (at(b, k, z + 1, yy, xx) - a).abs();
                        }
                        if yy + 1 < h {
                            total += w[k] * (at(b, k, z, yy + 1, xx) - a).abs();
                        }
                        if xx + 1 < ww {
                            total += w[k] * (at(b, k, z, yy, xx + 1) - a).abs();
                        }
                    }
                }
            }
        }
    }
    let tv = TotalVariation::new(w.to_vec(), TvOn::Prediction).unwrap();
    let want = total / (n * d * h * ww) as f64;
    assert_close(scalar(&tv.value(&x).unwrap()), want, 1e-12, "tv3d");
}

#[test]
fn masked_regression_with_channel_broadcast_mask() {
    // A (N, 1, …) mask counts each masked pixel once per channel in the denominator.
    let x = t4(&[1.0, 2.0, 3.0, 4.0], (1, 2, 1, 2));
    let y = t4(&[0.0, 0.0, 0.0, 0.0], (1, 2, 1, 2));
    let m = t4(&[1.0, 0.0], (1, 1, 1, 2));
    assert_close(
        scalar(&MaskedL1.loss(&x, &y, Some(&m)).unwrap()),
        2.0,
        1e-12,
        "l1",
    );
    assert_close(
        scalar(&MaskedMse.loss(&x, &y, Some(&m)).unwrap()),
        5.0,
        1e-12,
        "mse",
    );
    assert_close(
        scalar(&MaskedMse.loss(&x, &y, None).unwrap()),
        7.5,
        1e-12,
        "mse/no mask",
    );
}
