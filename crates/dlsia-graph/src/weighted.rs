//! Weighted choices from log-weights, robust to underflow.

use rand::Rng;

/// Draws an index with probability ∝ `exp(log_w[i])` among the indices where `alive[i]`.
///
/// Weights are shifted by the largest live log-weight first, so the largest weight is 1 and the
/// draw never degenerates even when every `exp(log_w)` would underflow.
pub(crate) fn pick_log_weighted<R: Rng + ?Sized>(
    log_w: &[f64],
    alive: &[bool],
    rng: &mut R,
) -> usize {
    let top = log_w
        .iter()
        .zip(alive)
        .filter(|(_, &a)| a)
        .map(|(&w, _)| w)
        .fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = log_w
        .iter()
        .zip(alive)
        .filter(|(_, &a)| a)
        .map(|(&w, _)| (w - top).exp())
        .sum();
    let mut x = rng.random::<f64>() * total;
    let mut last = usize::MAX;
    for (i, (&w, &a)) in log_w.iter().zip(alive).enumerate() {
        if !a {
            continue;
        }
        last = i;
        let p = (w - top).exp();
        if x < p {
            return i;
        }
        x -= p;
    }
    // Rounding can leave x a hair above the last weight: the last live index is the answer.
    last
}

/// Draws `k` distinct indices by successive sampling: each next index with probability ∝ its
/// weight among those not yet drawn. This is the distribution of numpy's
/// `choice(a, size=k, replace=False, p=p)` (its batched rejection loop draws the same way).
/// Returns the indices sorted ascending.
pub(crate) fn sample_without_replacement<R: Rng + ?Sized>(
    log_w: &[f64],
    k: usize,
    rng: &mut R,
) -> Vec<usize> {
    debug_assert!(k <= log_w.len());
    let mut alive = vec![true; log_w.len()];
    let mut out = Vec::with_capacity(k);
    // Linear weights shifted by the largest live log-weight; recomputed only when every live
    // weight has underflowed to zero.
    let mut w: Vec<f64> = Vec::new();
    let mut total = 0.0f64;
    for _ in 0..k {
        if total.is_nan() || total <= 0.0 || !w.iter().zip(&alive).any(|(&x, &a)| a && x > 0.0) {
            let top = log_w
                .iter()
                .zip(&alive)
                .filter(|(_, &a)| a)
                .map(|(&x, _)| x)
                .fold(f64::NEG_INFINITY, f64::max);
            w = log_w
                .iter()
                .zip(&alive)
                .map(|(&x, &a)| if a { (x - top).exp() } else { 0.0 })
                .collect();
            total = w.iter().sum();
        }
        let mut x = rng.random::<f64>() * total;
        let mut pick = usize::MAX;
        for (i, &wi) in w.iter().enumerate() {
            if wi <= 0.0 {
                continue;
            }
            pick = i;
            if x < wi {
                break;
            }
            x -= wi;
        }
        alive[pick] = false;
        total -= w[pick];
        w[pick] = 0.0;
        out.push(pick);
    }
    out.sort_unstable();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn frequencies_follow_weights() {
        let w = [1.0f64, 2.0, 3.0, 4.0];
        let lw: Vec<f64> = w.iter().map(|x| x.ln()).collect();
        let alive = [true; 4];
        let mut rng = StdRng::seed_from_u64(7);
        let n = 100_000;
        let mut c = [0usize; 4];
        for _ in 0..n {
            c[pick_log_weighted(&lw, &alive, &mut rng)] += 1;
        }
        for i in 0..4 {
            let p = w[i] / 10.0;
            let se = (p * (1.0 - p) / n as f64).sqrt();
            assert!((c[i] as f64 / n as f64 - p).abs() < 5.0 * se, "{i}: {c:?}");
        }
    }

    #[test]
    fn underflowing_weights_still_pick_the_largest() {
        let lw = [-2000.0, -3000.0, -4000.0];
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(sample_without_replacement(&lw, 2, &mut rng), vec![0, 1]);
    }

    #[test]
    fn pair_probabilities_match_successive_sampling() {
        // P({a,b}) = p_a p_b (1/(1-p_a) + 1/(1-p_b)) for weights p = (0.5, 0.3, 0.2).
        let p = [0.5f64, 0.3, 0.2];
        let lw: Vec<f64> = p.iter().map(|x| x.ln()).collect();
        let pair = |a: usize, b: usize| p[a] * p[b] * (1.0 / (1.0 - p[a]) + 1.0 / (1.0 - p[b]));
        let expected = [pair(0, 1), pair(0, 2), pair(1, 2)];
        assert!((expected.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let mut rng = StdRng::seed_from_u64(3);
        let n = 60_000;
        let mut c = [0usize; 3];
        for _ in 0..n {
            match sample_without_replacement(&lw, 2, &mut rng)[..] {
                [0, 1] => c[0] += 1,
                [0, 2] => c[1] += 1,
                [1, 2] => c[2] += 1,
                ref other => panic!("unexpected {other:?}"),
            }
        }
        for i in 0..3 {
            let se = (expected[i] * (1.0 - expected[i]) / n as f64).sqrt();
            assert!(
                (c[i] as f64 / n as f64 - expected[i]).abs() < 5.0 * se,
                "{c:?} vs {expected:?}"
            );
        }
    }
}
