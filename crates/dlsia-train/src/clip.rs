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
