//! Clamped affine maps `r ↦ clamp(a·r + b, lo, hi)`: the value of a carried MSDNet channel as a
//! function of the raw map it started from.
//!
//! dlsia's MSDNet re-applies the activation and BatchNorm to every carried channel after every
//! layer. With ReLU (or no activation) and a per-channel affine normalisation each step is
//! `x ↦ α·relu(x) + β`, and that family is closed under composition: `relu` of a clamped affine
//! map raises both bounds to at least 0, and a per-channel affine map of one is another (bounds
//! swap when `α < 0`). So after any number of layers a channel is one clamped affine function of
//! its raw convolution output, four numbers per (layer, channel) instead of a feature map.

/// `r ↦ clamp(a·r + b, lo, hi)` with `lo ≤ hi` (either may be infinite).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ClampAffine {
    pub a: f64,
    pub b: f64,
    pub lo: f64,
    pub hi: f64,
}

impl ClampAffine {
    /// The identity map.
    pub(crate) const IDENTITY: ClampAffine = ClampAffine {
        a: 1.0,
        b: 0.0,
        lo: f64::NEG_INFINITY,
        hi: f64::INFINITY,
    };

    /// `relu ∘ self`.
    pub(crate) fn relu(self) -> Self {
        ClampAffine {
            lo: self.lo.max(0.0),
            hi: self.hi.max(0.0),
            ..self
        }
    }

    /// `(x ↦ alpha·x + beta) ∘ self`.
    pub(crate) fn then_affine(self, alpha: f64, beta: f64) -> Self {
        if alpha == 0.0 {
            return ClampAffine {
                a: 0.0,
                b: beta,
                ..Self::IDENTITY
            };
        }
        let (l, h) = (alpha * self.lo + beta, alpha * self.hi + beta);
        let (lo, hi) = if alpha > 0.0 { (l, h) } else { (h, l) };
        ClampAffine {
            a: alpha * self.a,
            b: alpha * self.b + beta,
            lo,
            hi,
        }
    }

    /// The map in the element type of a kernel: `(a, b, lo, hi)`.
    pub(crate) fn cast<T: candle_core::WithDType>(self) -> [T; 4] {
        [
            T::from_f64(self.a),
            T::from_f64(self.b),
            T::from_f64(self.lo),
            T::from_f64(self.hi),
        ]
    }

    /// The map applied to one value (f64, for tests and scalar code).
    #[cfg(test)]
    pub(crate) fn eval(self, r: f64) -> f64 {
        (self.a * r + self.b).max(self.lo).min(self.hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Composition equals step-by-step application on a grid of values, for positive,
    /// negative and zero scales.
    #[test]
    fn composition_equals_stepwise_application() {
        let steps = [
            (1.7, -0.4),
            (-0.8, 0.3),
            (0.5, 0.9),
            (2.0, -2.5),
            (-1.3, -0.2),
            (0.0, 0.7),
            (0.9, 0.1),
        ];
        for start in 0..steps.len() {
            let mut f = ClampAffine::IDENTITY;
            let mut vals: Vec<f64> = (-40..=40).map(|i| i as f64 * 0.1).collect();
            let raw = vals.clone();
            for &(alpha, beta) in &steps[start..] {
                f = f.relu().then_affine(alpha, beta);
                for v in &mut vals {
                    *v = alpha * v.max(0.0) + beta;
                }
                assert!(f.lo <= f.hi);
                for (r, want) in raw.iter().zip(&vals) {
                    let got = f.eval(*r);
                    assert!((got - want).abs() < 1e-12, "r={r}: {got} vs {want} ({f:?})");
                }
            }
        }
    }

    #[test]
    fn identity_and_relu_by_hand() {
        let f = ClampAffine::IDENTITY;
        assert_eq!(f.eval(-3.0), -3.0);
        let g = f.relu();
        assert_eq!((g.eval(-3.0), g.eval(2.0)), (0.0, 2.0));
        // 2·relu(r) − 1, then relu: max(2r − 1, 0) for r > 0, 0 below.
        let h = g.then_affine(2.0, -1.0).relu();
        assert_eq!((h.eval(-1.0), h.eval(0.25), h.eval(1.0)), (0.0, 0.0, 1.0));
        assert_eq!(h.cast::<f32>(), [2.0f32, -1.0, 0.0, f32::INFINITY]);
    }
}
