//! Gradient clipping by value or by global norm ([`ClipConfig`]), applied after gradient
//! accumulation (and after loss-scale removal) and before the optimizer step.

use serde::{Deserialize, Serialize};

use crate::error::{config_err, Result};
use crate::grads::Gradients;

/// How gradients are clipped, by `kind`.
///
/// * `value`: every element to `[-clip_value, clip_value]` (PyTorch `clip_grad_value_`, what
///   dlsia's `clip_value` does).
/// * `norm`: when the global L2 norm exceeds `max_norm`, all gradients are scaled by
///   `max_norm / (norm + 1e-6)` (PyTorch `clip_grad_norm_`).
///
/// ```
/// use dlsia_train::ClipConfig;
/// let c: ClipConfig = toml::from_str("kind = \"norm\"\nmax_norm = 1.0").unwrap();
/// assert_eq!(c, ClipConfig::Norm { max_norm: 1.0 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClipConfig {
    /// Element-wise clamp.
    Value {
        /// The bound (> 0).
        clip_value: f64,
    },
    /// Global-norm rescaling.
    Norm {
        /// The largest allowed global L2 norm (> 0).
        max_norm: f64,
    },
}

impl ClipConfig {
    /// Checks the bound.
    pub fn check(&self) -> Result<()> {
        let (key, v) = match self {
            ClipConfig::Value { clip_value } => ("clip.clip_value", *clip_value),
            ClipConfig::Norm { max_norm } => ("clip.max_norm", *max_norm),
        };
        if !(v.is_finite() && v > 0.0) {
            return Err(config_err(key, format!("must be finite and > 0, got {v}")));
        }
        Ok(())
    }

    /// Clips `grads` in place; `norm` is their global norm before clipping.
    pub fn apply(&self, grads: &mut Gradients, norm: f64) -> Result<()> {
        match *self {
            ClipConfig::Value { clip_value } => grads.clamp(clip_value),
            ClipConfig::Norm { max_norm } => {
                let coef = max_norm / (norm + 1e-6);
                if coef < 1.0 {
                    grads.scale(coef)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn grads() -> Gradients {
        let d = Device::Cpu;
        Gradients::from_vec(vec![
            Some(Tensor::new(&[3.0f32, -4.0], &d).unwrap()),
            None,
            Some(Tensor::new(&[[12.0f32]], &d).unwrap()),
        ])
    }

    fn values(g: &Gradients) -> Vec<f32> {
        g.as_slice()
            .iter()
            .flatten()
            .flat_map(|t| t.flatten_all().unwrap().to_vec1::<f32>().unwrap())
            .collect()
    }

    #[test]
    fn norm_clipping_bounds_the_global_norm() {
        let mut g = grads();
        let norm = g.global_norm().unwrap();
        assert_eq!(norm, 13.0); // √(9 + 16 + 144)
        ClipConfig::Norm { max_norm: 2.6 }
            .apply(&mut g, norm)
            .unwrap();
        let after = g.global_norm().unwrap();
        assert!(after <= 2.6 && after > 2.6 - 1e-5, "{after}");
        let want = [3.0, -4.0, 12.0].map(|v| v * 2.6 / (13.0 + 1e-6));
        for (a, b) in values(&g).iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6);
        }
        assert!(g.as_slice()[1].is_none());
        // Under the bound nothing changes.
        let mut g = grads();
        ClipConfig::Norm { max_norm: 20.0 }
            .apply(&mut g, 13.0)
            .unwrap();
        assert_eq!(values(&g), vec![3.0, -4.0, 12.0]);
    }

    #[test]
    fn value_clipping_bounds_every_element() {
        let mut g = grads();
        ClipConfig::Value { clip_value: 3.5 }
            .apply(&mut g, 13.0)
            .unwrap();
        assert_eq!(values(&g), vec![3.0, -3.5, 3.5]);
        assert!(ClipConfig::Value { clip_value: 0.0 }.check().is_err());
        assert!(ClipConfig::Norm { max_norm: f64::NAN }.check().is_err());
    }

    #[test]
    fn accumulation_sums_and_keeps_missing_gradients() {
        let mut a = grads();
        let d = Device::Cpu;
        a.accumulate(Gradients::from_vec(vec![
            Some(Tensor::new(&[1.0f32, 1.0], &d).unwrap()),
            Some(Tensor::new(&[5.0f32], &d).unwrap()),
            None,
        ]))
        .unwrap();
        a.scale(0.5).unwrap();
        assert_eq!(values(&a), vec![2.0, -1.5, 2.5, 6.0]);
        assert!(
            !Gradients::from_vec(vec![Some(Tensor::new(&[f32::NAN], &d).unwrap())])
                .global_norm()
                .unwrap()
                .is_finite()
        );
    }
}
