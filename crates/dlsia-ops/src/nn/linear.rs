//! The fully connected layer (`nn.Linear`).

use candle_core::{Module, Tensor};

use crate::error::{invalid, Error, Result};
use crate::params::{Init, ParamBuilder};

/// `y = x·weightᵀ + bias` over the last axis; `weight` `(out, in)` and `bias` `(out,)`
/// initialised uniform on `±1/√in`, as in PyTorch.
#[derive(Debug, Clone)]
pub struct Linear {
    name: String,
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    /// Creates (or reuses) the layer's parameters under `pb`.
    pub fn new(
        pb: &ParamBuilder,
        in_features: usize,
        out_features: usize,
        bias: bool,
    ) -> Result<Self> {
        if in_features == 0 || out_features == 0 {
            return Err(invalid(
                "Linear",
                format!(
                    "in_features {in_features} and out_features {out_features} must be positive"
                ),
            ));
        }
        let init = Init::kaiming_uniform(in_features);
        let weight = pb.param("weight", (out_features, in_features), init)?;
        let bias = if bias {
            Some(pb.param("bias", out_features, init)?)
        } else {
            None
        };
        Ok(Linear {
            name: pb.prefix().to_string(),
            weight,
            bias,
        })
    }

    /// The weight `(out, in)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
    /// The bias `(out,)`, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (out_f, in_f) = (self.weight.dim(0)?, self.weight.dim(1)?);
        let d = x.dims();
        if d.is_empty() || d[d.len() - 1] != in_f {
            return Err(Error::Shape {
                op: "Linear",
                expected: format!("`{}`: input (…, {in_f})", self.name),
                got: x.shape().clone(),
            }
            .into());
        }
        let lead: Vec<usize> = d[..d.len() - 1].to_vec();
        let rows: usize = lead.iter().product();
        let y = x.reshape((rows, in_f))?.matmul(&self.weight.t()?)?;
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        y.reshape([lead, vec![out_f]].concat())
    }
}
