//! Conformal calibration and prediction: hand-computed scores and thresholds, spaced-apart
//! calibration, streaming equivalence, and clear errors on bad input.

mod common;

use candle_core::{DType, Tensor};
use common::*;
use dlsia_uq::conformal::{
    conformal_quantile, ConformalConfig, CoverageReport, QuantileRule, ScoreMethod,
};

fn probs_1px(p: &[f32]) -> Tensor {
    Tensor::new(p, &dev())
        .unwrap()
        .reshape((1, p.len(), 1))
        .unwrap()
}

#[test]
fn quantile_is_the_kth_smallest_score() {
    let s: Vec<f64> = (1..=10).map(|v| v as f64).collect();
    // n = 10, alpha = 0.2: k = ⌈11 · 0.8⌉ = 9.
    assert_eq!(
        conformal_quantile(&s, 0.2, QuantileRule::Exact).unwrap(),
        9.0
    );
    assert_eq!(
        conformal_quantile(&s, 0.2, QuantileRule::NumpyHigher).unwrap(),
        10.0
    );
    // alpha = 0.5: k = ⌈5.5⌉ = 6.
    assert_eq!(
        conformal_quantile(&s, 0.5, QuantileRule::Exact).unwrap(),
        6.0
    );
    assert_eq!(
        conformal_quantile(&s, 0.5, QuantileRule::NumpyHigher).unwrap(),
        7.0
    );
    // Unsorted input, ties.
    let t = [0.3, 0.1, 0.3, 0.2];
    assert_eq!(
        conformal_quantile(&t, 0.4, QuantileRule::Exact).unwrap(),
        0.3
    );
}

#[test]
fn errors_say_what_is_wrong() {
    let s = [0.1, 0.2, 0.3];
    for a in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
        let e = conformal_quantile(&s, a, QuantileRule::Exact)
            .unwrap_err()
            .to_string();
        assert!(e.contains("alpha"), "{e}");
        assert!(ConformalConfig::new(a).build().is_err());
    }
    let e = conformal_quantile(&[], 0.1, QuantileRule::Exact)
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty"), "{e}");
    // 3 scores cannot support alpha = 0.1 (needs at least 9).
    let e = conformal_quantile(&s, 0.1, QuantileRule::Exact)
        .unwrap_err()
        .to_string();
    assert!(e.contains("too few") && e.contains('9'), "{e}");
    // A calibrator that saw only unlabelled pixels.
    let mut cal = ConformalConfig::new(0.1).build().unwrap();
    let p = probs_1px(&[0.5, 0.5]);
    cal.update(&p, &Tensor::new(&[[-1i64]], &dev()).unwrap())
        .unwrap();
    assert!(cal.predictor().unwrap_err().to_string().contains("empty"));
    // Probabilities that do not sum to 1.
    let bad = probs_1px(&[0.5, 0.7]);
    let e = cal
        .update(&bad, &Tensor::new(&[[0i64]], &dev()).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("sum to 1") && e.contains("LogitsFn"), "{e}");
    let neg = probs_1px(&[1.5, -0.5]);
    assert!(cal
        .update(&neg, &Tensor::new(&[[0i64]], &dev()).unwrap())
        .is_err());
    // Labels out of range.
    let e = cal
        .update(&p, &Tensor::new(&[[2i64]], &dev()).unwrap())
        .unwrap_err()
        .to_string();
    assert!(e.contains("found label 2") && e.contains("0..2"), "{e}");
    // Label shape.
    assert!(cal
        .update(&p, &Tensor::new(&[[0i64, 1]], &dev()).unwrap())
        .is_err());
    // Bad spacing.
    let mut cfg = ConformalConfig::new(0.1);
    cfg.spacing = Some(vec![0]);
    assert!(cfg.build().unwrap_err().to_string().contains("spacing"));
    // Unknown keys in a config file.
    assert!(toml::from_str::<ConformalConfig>("alpha = 0.1\nalhpa = 0.2").is_err());
}

#[test]
fn aps_scores_and_sets_by_hand() {
    // p = [0.5, 0.3, 0.2]. Deterministic APS scores: class 0: 0.5, class 1: 0.8, class 2: 1.0.
    let p = probs_1px(&[0.5, 0.3, 0.2]);
    let mut cfg = ConformalConfig::new(0.5);
    cfg.method = ScoreMethod::Aps { randomized: false };
    let mut cal = cfg.build().unwrap();
    for y in 0..3i64 {
        cal.update(&p, &Tensor::new(&[[y]], &dev()).unwrap())
            .unwrap();
    }
    let s = cal.scores();
    assert!((s[0] - 0.5).abs() < 1e-7 && (s[1] - 0.8).abs() < 1e-7 && (s[2] - 1.0).abs() < 1e-7);
    // n = 3, alpha = 0.5: k = 2 → q̂ = 0.8 → set {0, 1}.
    let cp = cal.predictor().unwrap();
    assert!((cp.qhat() - 0.8).abs() < 1e-7);
    let sets = cp.prediction_sets(&p).unwrap();
    assert_eq!(flat(&sets), vec![1.0, 1.0, 0.0]);
    // LAC on the same pixel: scores 0.5, 0.7, 0.8 → q̂ = 0.7 → {c : p_c ≥ 0.3} = {0, 1}.
    let mut cal = ConformalConfig::new(0.5).build().unwrap();
    for y in 0..3i64 {
        cal.update(&p, &Tensor::new(&[[y]], &dev()).unwrap())
            .unwrap();
    }
    let cp = cal.predictor().unwrap();
    assert!((cp.qhat() - 0.7).abs() < 1e-7);
    assert_eq!(flat(&cp.set_sizes(&p).unwrap()), vec![2.0]);
}

#[test]
fn randomized_aps_is_seeded() {
    let mut r = rng(5);
    let (p, l) = synthetic_pixels(5, 300, &mut r);
    let run = |seed: u64| {
        let mut cfg = ConformalConfig::new(0.2);
        cfg.method = ScoreMethod::Aps { randomized: true };
        cfg.seed = seed;
        let mut cal = cfg.build().unwrap();
        cal.update(&p, &l).unwrap();
        let cp = cal.predictor().unwrap();
        (cal.scores().to_vec(), flat(&cp.set_sizes(&p).unwrap()))
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1).0, run(2).0);
}

#[test]
fn streaming_over_batches_equals_one_batch() {
    let mut r = rng(6);
    let (p, l) = synthetic_pixels(3, 400, &mut r);
    let mut whole = ConformalConfig::new(0.1).build().unwrap();
    whole.update(&p, &l).unwrap();
    let mut parts = ConformalConfig::new(0.1).build().unwrap();
    for i in 0..4 {
        parts
            .update(
                &p.narrow(2, i * 100, 100).unwrap(),
                &l.narrow(1, i * 100, 100).unwrap(),
            )
            .unwrap();
    }
    assert_eq!(whole.scores(), parts.scores());
    let cp = whole.predictor().unwrap();
    let full = cp.coverage(&p, &l, -1).unwrap();
    let mut merged = CoverageReport::new(3);
    for i in 0..4 {
        let part = cp
            .coverage(
                &p.narrow(2, i * 100, 100).unwrap(),
                &l.narrow(1, i * 100, 100).unwrap(),
                -1,
            )
            .unwrap();
        merged.merge(&part).unwrap();
    }
    assert_eq!(full, merged);
    assert_eq!(full.labelled(), 400);
    assert_eq!(full.size_histogram().iter().sum::<u64>(), 400);
    assert!(format!("{full}").contains("coverage"));
}

#[test]
fn spaced_apart_calibration_keeps_a_seeded_grid() {
    // A 2D image 1 × 3 × 12 × 10, every pixel labelled; spacing 4 × 5 keeps 3 × 2 pixels.
    let mut r = rng(7);
    let (p, l) = synthetic_pixels(3, 120, &mut r);
    let p = p.reshape((1, 3, 12, 10)).unwrap();
    let l = l.reshape((1, 12, 10)).unwrap();
    let mut cfg = ConformalConfig::new(0.1);
    cfg.spacing = Some(vec![4, 5]);
    cfg.seed = 3;
    let mut cal = cfg.build().unwrap();
    cal.update(&p, &l).unwrap();
    assert_eq!(cal.len(), 6);
    // The same grid whether the image comes whole or in tiles with their origins.
    let mut tiled = cfg.build().unwrap();
    for (y0, x0, h, w) in [(0, 0, 7, 10), (7, 0, 5, 6), (7, 6, 5, 4)] {
        let pt = p.narrow(2, y0, h).unwrap().narrow(3, x0, w).unwrap();
        let lt = l.narrow(1, y0, h).unwrap().narrow(2, x0, w).unwrap();
        tiled.update_tile(&pt, &lt, &[y0, x0]).unwrap();
    }
    let mut a = cal.scores().to_vec();
    let mut b = tiled.scores().to_vec();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    assert_eq!(a, b);
    // A single spacing applies to every axis; unlabelled grid pixels are skipped.
    cfg.spacing = Some(vec![3]);
    let mut cal = cfg.build().unwrap();
    let l_sparse = l
        .ones_like()
        .unwrap()
        .affine(-1.0, 0.0)
        .unwrap()
        .to_dtype(DType::I64)
        .unwrap();
    cal.update(&p, &l_sparse).unwrap();
    assert!(cal.is_empty());
    cal.update(&p, &l).unwrap();
    // Rows: 12/3 = 4 whatever the offset; columns: 4 at offset 0, else 3.
    assert!(cal.len() == 12 || cal.len() == 16, "{}", cal.len());
}

#[test]
fn set_maps_have_the_documented_shapes() {
    let mut r = rng(8);
    let (p, l) = synthetic_pixels(4, 2 * 3 * 4 * 5, &mut r);
    let p3 = p
        .reshape((4, 2, 3, 4, 5))
        .unwrap()
        .transpose(0, 1)
        .unwrap()
        .contiguous()
        .unwrap();
    let l3 = l.reshape((2, 3, 4, 5)).unwrap();
    let mut cal = ConformalConfig::new(0.2).build().unwrap();
    cal.update(&p3, &l3).unwrap();
    let cp = cal.predictor().unwrap();
    let sets = cp.prediction_sets(&p3).unwrap();
    assert_eq!(sets.dims(), &[2, 4, 3, 4, 5]);
    assert_eq!(sets.dtype(), DType::U8);
    let sizes = cp.set_sizes(&p3).unwrap();
    assert_eq!(sizes.dims(), &[2, 3, 4, 5]);
    let summed = sets.to_dtype(DType::U32).unwrap().sum(1).unwrap();
    assert_eq!(flat(&summed), flat(&sizes));
    // Wrong number of classes for this predictor.
    assert!(cp.set_sizes(&p3.narrow(1, 0, 3).unwrap()).is_err());
}
