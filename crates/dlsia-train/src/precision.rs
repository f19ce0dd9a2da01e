//! Numeric precision of training, and dynamic loss scaling.
//!
//! **What is supported.** Training runs in f32 (f64 works for gradient checks) everywhere, and
//! in bf16 or f16 on a CUDA device ([`MixedPrecision`](crate::MixedPrecision): f32 master
//! weights, forward and backward in the narrow dtype, loss and reductions in f32; f16 with a
//! [`LossScaler`], on by default). **Status: compiled, and the mechanism tested on the CPU
//! (f64 masters with f32 compute, and bf16 compute on the CPU in a unit test); never run on a
//! GPU.** The dlsia-ops custom ops have no half-precision kernels: they cast bf16/f16 inputs to
//! f32 and back, so those layers compute in f32. Reduced precision on the CPU is refused with
//! an error that says why:
//!
//! * on the CPU, Candle 0.11 has no bf16 convolution (its gemm path rejects bf16; a plain bf16
//!   matrix product runs, 4× slower than f32), its f16 convolution is no faster than f32 forward
//!   and 2.8× slower forward+backward, its f16 matrix product 2.4× slower (this crate's
//!   `precision` benchmark; PyTorch on the same CPU is slower in f16/bf16 too, see
//!   `BENCHMARKS.md`); the dlsia-ops kernels the networks use are f32/f64 only, so there is
//!   nothing to gain;
//!
//! [`LossScaler`] is the dynamic scaler f16 needs (PyTorch `GradScaler`'s rule: one scaler
//! for the whole run, steps with non-finite gradients skipped, the scale halved on overflow and
//! doubled after `growth_interval` clean steps). It is already usable in f32 through the
//! `loss_scale` configuration key, where it is harmless and testable.

use candle_core::{DType, Device};
use serde::{Deserialize, Serialize};

use crate::error::{config_err, Result};

/// Floating-point format of the forward and backward passes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// 32-bit floats throughout (the default; the only one supported now).
    #[default]
    F32,
    /// bfloat16 compute with f32 master weights (CUDA only).
    Bf16,
    /// float16 compute with f32 master weights and dynamic loss scaling (CUDA only).
    F16,
}

impl Precision {
    /// The dtype of the forward and backward passes when it differs from the master weights'
    /// (bf16, f16), else `None`.
    pub fn compute_dtype(self) -> Option<DType> {
        match self {
            Precision::F32 => None,
            Precision::Bf16 => Some(DType::BF16),
            Precision::F16 => Some(DType::F16),
        }
    }

    /// Checks that training on `device` can use this precision.
    pub fn check(self, device: &Device) -> Result<()> {
        match self {
            Precision::F32 => Ok(()),
            Precision::Bf16 | Precision::F16 if device.is_cpu() => Err(config_err(
                "precision",
                format!(
                    "{self:?} training is not supported on the CPU: Candle 0.11 has no bf16 convolution on the CPU and its f16 kernels are slower than f32 there (see BENCHMARKS.md, `precision`); use precision = \"f32\""
                ),
            )),
            Precision::Bf16 | Precision::F16 => Ok(()),
        }
    }
}

fn init_scale() -> f64 {
    65536.0
}
fn growth_factor() -> f64 {
    2.0
}
fn backoff_factor() -> f64 {
    0.5
}
fn growth_interval() -> u64 {
    2000
}

/// Dynamic loss scaling, PyTorch `GradScaler`'s defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossScaleConfig {
    /// The first scale (default 2¹⁶).
    #[serde(default = "init_scale")]
    pub init_scale: f64,
    /// Factor applied after `growth_interval` clean steps (default 2).
    #[serde(default = "growth_factor")]
    pub growth_factor: f64,
    /// Factor applied when the gradients overflow (default 0.5).
    #[serde(default = "backoff_factor")]
    pub backoff_factor: f64,
    /// Clean steps between growths (default 2000).
    #[serde(default = "growth_interval")]
    pub growth_interval: u64,
}

impl Default for LossScaleConfig {
    fn default() -> Self {
        Self {
            init_scale: init_scale(),
            growth_factor: growth_factor(),
            backoff_factor: backoff_factor(),
            growth_interval: growth_interval(),
        }
    }
}

impl LossScaleConfig {
    /// Checks the values.
    pub fn check(&self) -> Result<()> {
        if !(self.init_scale.is_finite() && self.init_scale > 0.0) {
            return Err(config_err(
                "loss_scale.init_scale",
                format!("must be finite and > 0, got {}", self.init_scale),
            ));
        }
        if !(self.growth_factor.is_finite() && self.growth_factor > 1.0) {
            return Err(config_err(
                "loss_scale.growth_factor",
                format!("must be > 1, got {}", self.growth_factor),
            ));
        }
        if !(self.backoff_factor > 0.0 && self.backoff_factor < 1.0) {
            return Err(config_err(
                "loss_scale.backoff_factor",
                format!("must be in (0, 1), got {}", self.backoff_factor),
            ));
        }
        if self.growth_interval == 0 {
            return Err(config_err(
                "loss_scale.growth_interval",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// One dynamic loss scaler for a whole run: multiply the loss by [`LossScaler::scale`] before
/// the backward pass, divide the gradients by it, skip the step when they are not finite, then
/// call [`LossScaler::update`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossScaler {
    config: LossScaleConfig,
    scale: f64,
    clean_steps: u64,
    skipped_steps: u64,
}

impl LossScaler {
    /// A scaler at `config.init_scale` (the configuration must have been checked).
    pub fn new(config: &LossScaleConfig) -> Self {
        Self {
            config: config.clone(),
            scale: config.init_scale,
            clean_steps: 0,
            skipped_steps: 0,
        }
    }

    /// The current scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Steps skipped so far because of non-finite gradients.
    pub fn skipped_steps(&self) -> u64 {
        self.skipped_steps
    }

    /// Records one step: `found_inf` halves (backs off) the scale and counts a skipped step;
    /// otherwise the scale grows after `growth_interval` clean steps in a row.
    pub fn update(&mut self, found_inf: bool) {
        if found_inf {
            self.scale *= self.config.backoff_factor;
            self.clean_steps = 0;
            self.skipped_steps += 1;
        } else {
            self.clean_steps += 1;
            if self.clean_steps == self.config.growth_interval {
                let grown = self.scale * self.config.growth_factor;
                if grown.is_finite() {
                    self.scale = grown;
                }
                self.clean_steps = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_on_overflow_and_grows_after_clean_steps() {
        let cfg = LossScaleConfig {
            init_scale: 1024.0,
            growth_interval: 3,
            ..Default::default()
        };
        cfg.check().unwrap();
        let mut s = LossScaler::new(&cfg);
        s.update(true);
        assert_eq!((s.scale(), s.skipped_steps()), (512.0, 1));
        s.update(false);
        s.update(false);
        assert_eq!(s.scale(), 512.0);
        s.update(true); // resets the clean-step count
        assert_eq!(s.scale(), 256.0);
        for _ in 0..3 {
            s.update(false);
        }
        assert_eq!(s.scale(), 512.0);
        for _ in 0..3 {
            s.update(false);
        }
        assert_eq!((s.scale(), s.skipped_steps()), (1024.0, 2));
    }

    #[test]
    fn rejects_impossible_values_and_reduced_precision_on_cpu() {
        let bad = LossScaleConfig {
            backoff_factor: 1.5,
            ..Default::default()
        };
        assert!(bad
            .check()
            .unwrap_err()
            .to_string()
            .contains("backoff_factor"));
        Precision::F32.check(&Device::Cpu).unwrap();
        let e = Precision::Bf16.check(&Device::Cpu).unwrap_err().to_string();
        assert!(e.contains("precision") && e.contains("CPU"), "{e}");
    }
}
