//! Convolution and transposed-convolution layers (`Conv1d/2d/3d`, `ConvTranspose1d/2d/3d`).

use candle_core::{Module, Tensor};

use super::check_input;
use crate::error::{invalid, Result};
use crate::params::{Init, ParamBuilder};
use crate::{conv, conv_transpose, ConvSpec, ConvTransposeSpec};

/// A convolution layer with PyTorch's parameters `weight` `(out, in/groups, k…)` and optional
/// `bias` `(out,)`, both initialised uniform on `±1/√(in/groups · kernel volume)`.
#[derive(Debug, Clone)]
pub struct Conv {
    name: String,
    weight: Tensor,
    bias: Option<Tensor>,
    spec: ConvSpec,
    in_channels: usize,
}

impl Conv {
    /// Creates (or reuses) the layer's parameters under `pb`; the number of spatial axes is
    /// `kernel.len()` and must match `spec`.
    pub fn new(
        pb: &ParamBuilder,
        in_channels: usize,
        out_channels: usize,
        kernel: &[usize],
        spec: ConvSpec,
        bias: bool,
    ) -> Result<Self> {
        const OP: &str = "Conv";
        spec.validate()?;
        if kernel.len() != spec.ndim() || kernel.contains(&0) {
            return Err(invalid(
                OP,
                format!(
                    "kernel {kernel:?} must have one positive entry per spatial axis of the spec ({})",
                    spec.ndim()
                ),
            ));
        }
        let g = spec.groups;
        if in_channels == 0 || out_channels == 0 || in_channels % g != 0 || out_channels % g != 0 {
            return Err(invalid(
                OP,
                format!("in_channels {in_channels} and out_channels {out_channels} must be positive and divisible by groups = {g}"),
            ));
        }
        let fan_in = in_channels / g * kernel.iter().product::<usize>();
        let shape = [vec![out_channels, in_channels / g], kernel.to_vec()].concat();
        let weight = pb.param("weight", shape, Init::kaiming_uniform(fan_in))?;
        let bias = if bias {
            Some(pb.param("bias", out_channels, Init::kaiming_uniform(fan_in))?)
        } else {
            None
        };
        Ok(Conv {
            name: pb.prefix().to_string(),
            weight,
            bias,
            spec,
            in_channels,
        })
    }

    /// A layer from existing tensors (weight `(out, in/groups, k…)`, bias `(out,)`).
    pub fn from_parts(weight: Tensor, bias: Option<Tensor>, spec: ConvSpec) -> Result<Self> {
        spec.validate()?;
        if weight.rank() != spec.ndim() + 2 {
            return Err(invalid(
                "Conv",
                format!(
                    "weight of shape {:?} does not have rank {} for {} spatial axes",
                    weight.dims(),
                    spec.ndim() + 2,
                    spec.ndim()
                ),
            ));
        }
        let in_channels = weight.dim(1)? * spec.groups;
        Ok(Conv {
            name: String::new(),
            weight,
            bias,
            spec,
            in_channels,
        })
    }

    /// The weight `(out, in/groups, k…)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
    /// The bias `(out,)`, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
    /// The geometry.
    pub fn spec(&self) -> &ConvSpec {
        &self.spec
    }
    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }
    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.dims()[0]
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        check_input(
            &format!("Conv `{}`", self.name),
            x,
            self.in_channels,
            Some(self.spec.ndim()),
        )?;
        Ok(conv(x, &self.weight, self.bias.as_ref(), &self.spec)?)
    }
}

/// A transposed-convolution layer with PyTorch's parameters `weight` `(in, out/groups, k…)`
/// and optional `bias` `(out,)`, initialised uniform on `±1/√(out/groups · kernel volume)` (the
/// fan-in PyTorch computes from this weight layout).
#[derive(Debug, Clone)]
pub struct ConvTranspose {
    name: String,
    weight: Tensor,
    bias: Option<Tensor>,
    spec: ConvTransposeSpec,
}

impl ConvTranspose {
    /// Creates (or reuses) the layer's parameters under `pb`.
    pub fn new(
        pb: &ParamBuilder,
        in_channels: usize,
        out_channels: usize,
        kernel: &[usize],
        spec: ConvTransposeSpec,
        bias: bool,
    ) -> Result<Self> {
        const OP: &str = "ConvTranspose";
        spec.validate()?;
        if kernel.len() != spec.ndim() || kernel.contains(&0) {
            return Err(invalid(
                OP,
                format!(
                    "kernel {kernel:?} must have one positive entry per spatial axis of the spec ({})",
                    spec.ndim()
                ),
            ));
        }
        let g = spec.groups;
        if in_channels == 0 || out_channels == 0 || in_channels % g != 0 || out_channels % g != 0 {
            return Err(invalid(
                OP,
                format!("in_channels {in_channels} and out_channels {out_channels} must be positive and divisible by groups = {g}"),
            ));
        }
        let fan_in = out_channels / g * kernel.iter().product::<usize>();
        let shape = [vec![in_channels, out_channels / g], kernel.to_vec()].concat();
        let weight = pb.param("weight", shape, Init::kaiming_uniform(fan_in))?;
        let bias = if bias {
            Some(pb.param("bias", out_channels, Init::kaiming_uniform(fan_in))?)
        } else {
            None
        };
        Ok(ConvTranspose {
            name: pb.prefix().to_string(),
            weight,
            bias,
            spec,
        })
    }

    /// The weight `(in, out/groups, k…)`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
    /// The bias `(out,)`, if any.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
    /// The geometry.
    pub fn spec(&self) -> &ConvTransposeSpec {
        &self.spec
    }
    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.weight.dims()[0]
    }
    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.dims()[1] * self.spec.groups
    }
}

impl Module for ConvTranspose {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        check_input(
            &format!("ConvTranspose `{}`", self.name),
            x,
            self.in_channels(),
            Some(self.spec.ndim()),
        )?;
        Ok(conv_transpose(
            x,
            &self.weight,
            self.bias.as_ref(),
            &self.spec,
        )?)
    }
}
