//! [`Gradients`]: one optional gradient per trainable variable, taken out of Candle's
//! `GradStore`, summed over accumulated micro-batches, measured and scaled.

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};

use crate::error::Result;
use crate::optim::NamedVar;

/// Gradients aligned with an optimizer's variables (`None`: the variable got no gradient).
#[derive(Debug, Clone, Default)]
pub struct Gradients {
    grads: Vec<Option<Tensor>>,
}

impl Gradients {
    /// Takes the gradients of `vars` out of `store`.
    pub fn from_store(vars: &[NamedVar], store: &mut GradStore) -> Self {
        Self {
            grads: vars
                .iter()
                .map(|v| store.remove(v.var.as_tensor()))
                .collect(),
        }
    }

    /// Gradients given directly (tests, custom loops).
    pub fn from_vec(grads: Vec<Option<Tensor>>) -> Self {
        Self { grads }
    }

    /// The gradients.
    pub fn as_slice(&self) -> &[Option<Tensor>] {
        &self.grads
    }

    /// The gradients, consumed.
    pub fn into_vec(self) -> Vec<Option<Tensor>> {
        self.grads
    }

    /// Adds `other` element-wise (a variable without gradient in one of them keeps the other's).
    pub fn accumulate(&mut self, other: Gradients) -> Result<()> {
        if self.grads.is_empty() {
            self.grads = other.grads;
            return Ok(());
        }
        for (a, b) in self.grads.iter_mut().zip(other.grads) {
            *a = match (a.take(), b) {
                (Some(x), Some(y)) => Some((x + y)?),
                (x, y) => x.or(y),
            };
        }
        Ok(())
    }

    /// Multiplies every gradient by `factor`.
    pub fn scale(&mut self, factor: f64) -> Result<()> {
        if factor == 1.0 {
            return Ok(());
        }
        for g in self.grads.iter_mut().flatten() {
            *g = g.affine(factor, 0.0)?;
        }
        Ok(())
    }

    /// The global L2 norm over every gradient, accumulated in f64 (NaN or inf if any element
    /// is).
    pub fn global_norm(&self) -> Result<f64> {
        let mut sum = 0.0f64;
        for g in self.grads.iter().flatten() {
            let s = g
                .to_dtype(DType::F64)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f64>()?;
            sum += s;
        }
        Ok(sum.sqrt())
    }

    /// Limits every element to `[-limit, limit]`.
    pub fn clamp(&mut self, limit: f64) -> Result<()> {
        for g in self.grads.iter_mut().flatten() {
            *g = g.clamp(-limit, limit)?;
        }
        Ok(())
    }
}
