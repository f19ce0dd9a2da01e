//! Small numeric helpers of the workflows, in f64.

/// Pearson correlation of `x` and `y` over the elements where `mask` is true; `None` when fewer
/// than two elements are selected or either side is constant.
pub fn pearson_where(x: &[f32], y: &[f32], mask: &[bool]) -> Option<f64> {
    let (mut n, mut sx, mut sy) = (0.0f64, 0.0f64, 0.0f64);
    for ((&a, &b), _) in x.iter().zip(y).zip(mask).filter(|(_, &m)| m) {
        n += 1.0;
        sx += a as f64;
        sy += b as f64;
    }
    if n < 2.0 {
        return None;
    }
    let (mx, my) = (sx / n, sy / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for ((&a, &b), _) in x.iter().zip(y).zip(mask).filter(|(_, &m)| m) {
        let (da, db) = (a as f64 - mx, b as f64 - my);
        sxy += da * db;
        sxx += da * da;
        syy += db * db;
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

/// Mean absolute difference of `x` and `y` where `mask` is true (`NaN` when nothing is selected).
pub fn l1_where(x: &[f32], y: &[f32], mask: &[bool]) -> f64 {
    let (mut n, mut s) = (0usize, 0.0f64);
    for ((&a, &b), _) in x.iter().zip(y).zip(mask).filter(|(_, &m)| m) {
        n += 1;
        s += (a as f64 - b as f64).abs();
    }
    s / n as f64
}

/// Precision, recall and F1 of a binary prediction against the truth.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BinaryScores {
    /// True positives / predicted positives.
    pub precision: f64,
    /// True positives / actual positives.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
}

/// Scores `predicted` against `truth` (both true = positive).
pub fn binary_scores(predicted: &[bool], truth: &[bool]) -> BinaryScores {
    let (mut tp, mut fp, mut fneg) = (0u64, 0u64, 0u64);
    for (&p, &t) in predicted.iter().zip(truth) {
        match (p, t) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fneg += 1,
            _ => {}
        }
    }
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fneg);
    let f1 = ratio(2 * tp, 2 * tp + fp + fneg);
    BinaryScores {
        precision,
        recall,
        f1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_and_l1_by_hand() {
        let x = [1.0, 2.0, 3.0, 100.0];
        let y = [2.0, 4.0, 7.0, -5.0];
        let m = [true, true, true, false];
        // The masked-out 4th pair must not count: x̄ = 2 (dx = −1, 0, 1, Σdx² = 2), ȳ = 13/3.
        let dy = [2.0 - 13.0 / 3.0, 4.0 - 13.0 / 3.0, 7.0 - 13.0 / 3.0];
        let sxy = -dy[0] + dy[2];
        let syy: f64 = dy.iter().map(|d| d * d).sum();
        let expect = sxy / (2.0 * syy).sqrt();
        assert!((pearson_where(&x, &y, &m).unwrap() - expect).abs() < 1e-12);
        assert!((l1_where(&x, &y, &m) - (1.0 + 2.0 + 4.0) / 3.0).abs() < 1e-12);
        assert!(pearson_where(&x, &y, &[true, false, false, false]).is_none());
        assert!(pearson_where(&[1.0, 1.0], &[1.0, 2.0], &[true, true]).is_none());
    }

    #[test]
    fn binary_scores_by_hand() {
        let p = [true, true, false, false, true];
        let t = [true, false, true, false, true];
        let s = binary_scores(&p, &t);
        assert!((s.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.f1 - 4.0 / 6.0).abs() < 1e-12);
        assert_eq!(binary_scores(&[false], &[false]).f1, 0.0);
    }
}
