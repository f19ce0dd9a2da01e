//! The split-conformal guarantee on synthetic exchangeable data: with α = 0.1 the mean empirical
//! coverage over many draws lies in [0.90, 0.92] (the theory gives
//! `1 − α ≤ E[coverage] ≤ 1 − α + 1/(n+1)`; for continuous scores it is exactly
//! `⌈(n+1)(1−α)⌉/(n+1)`).

mod common;

use common::*;
use dlsia_uq::conformal::{ConformalConfig, QuantileRule, ScoreMethod};

/// Mean coverage and mean set size over `draws` independent calibrate-then-test rounds.
fn mean_coverage(method: ScoreMethod, n: usize, m: usize, draws: usize, seed: u64) -> (f64, f64) {
    mean_coverage_with(method, QuantileRule::Exact, n, m, draws, seed)
}

fn mean_coverage_with(
    method: ScoreMethod,
    quantile: QuantileRule,
    n: usize,
    m: usize,
    draws: usize,
    seed: u64,
) -> (f64, f64) {
    let mut r = rng(seed);
    let (mut cov, mut size) = (0.0, 0.0);
    for d in 0..draws {
        let (cp, cl) = synthetic_pixels(4, n, &mut r);
        let (tp, tl) = synthetic_pixels(4, m, &mut r);
        let mut cfg = ConformalConfig::new(0.1);
        cfg.method = method;
        cfg.quantile = quantile;
        cfg.seed = d as u64;
        let mut cal = cfg.build().unwrap();
        cal.update(&cp, &cl).unwrap();
        let pred = cal.predictor().unwrap();
        let rep = pred.coverage(&tp, &tl, -1).unwrap();
        cov += rep.coverage().unwrap();
        size += rep.mean_set_size().unwrap();
    }
    let (cov, size) = (cov / draws as f64, size / draws as f64);
    eprintln!(
        "{method:?} n={n} m={m} draws={draws}: mean coverage {cov:.5}, mean set size {size:.3}"
    );
    (cov, size)
}

#[test]
fn lac_coverage_is_within_the_split_conformal_bounds() {
    // n = 20: E[coverage] = ⌈21 · 0.9⌉ / 21 = 19/21 = 0.9048.
    let (cov, size) = mean_coverage(ScoreMethod::Lac, 20, 200, 3000, 1);
    assert!((0.90..=0.92).contains(&cov), "mean coverage {cov}");
    assert!((cov - 19.0 / 21.0).abs() < 0.004, "mean coverage {cov}");
    assert!(size > 1.0 && size < 4.0, "mean set size {size}");
}

#[test]
fn aps_coverage_is_within_the_split_conformal_bounds() {
    for randomized in [true, false] {
        let (cov, _) = mean_coverage(ScoreMethod::Aps { randomized }, 20, 200, 3000, 2);
        assert!(
            (0.90..=0.92).contains(&cov),
            "APS randomized={randomized}: {cov}"
        );
        assert!(
            (cov - 19.0 / 21.0).abs() < 0.004,
            "APS randomized={randomized}: {cov}"
        );
    }
}

#[test]
fn large_calibration_sets_reach_one_minus_alpha() {
    // n = 1000: E[coverage] = 901/1001 = 0.9001, bound 0.9 ≤ · ≤ 0.901.
    let (cov, _) = mean_coverage(ScoreMethod::Lac, 1000, 1000, 150, 3);
    assert!((cov - 901.0 / 1001.0).abs() < 0.003, "mean coverage {cov}");
}

#[test]
fn lac_sets_are_smaller_than_aps_sets_on_calibrated_data() {
    let (_, lac) = mean_coverage(ScoreMethod::Lac, 200, 500, 100, 4);
    let (_, aps) = mean_coverage(ScoreMethod::Aps { randomized: true }, 200, 500, 100, 4);
    assert!(lac < aps, "LAC {lac} vs APS {aps}");
}

#[test]
fn the_originals_quantile_rule_over_covers_small_calibration_sets() {
    // One rank higher: E[coverage] = 20/21 = 0.952, outside [0.90, 0.92].
    let (cov, _) = mean_coverage_with(
        ScoreMethod::Lac,
        QuantileRule::NumpyHigher,
        20,
        200,
        3000,
        1,
    );
    assert!((cov - 20.0 / 21.0).abs() < 0.004, "mean coverage {cov}");
}
