//! Geometry of convolutions and transposed convolutions, per spatial axis.
//!
//! A spec holds one entry per spatial axis (1, 2 or 3 axes) so that non-square kernels, strides
//! and paddings — which the original's U-Nets build from their sizing charts — are first-class.
//!
//! ```
//! use dlsia_ops::{ConvSpec, PaddingMode};
//!
//! let spec = ConvSpec::uniform(2, 1, 2, 2).with_padding_mode(PaddingMode::Reflect);
//! assert_eq!(spec.output_size(&[32, 20], &[3, 3])?, vec![32, 20]);
//! # Ok::<(), dlsia_ops::Error>(())
//! ```

use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};
use crate::PaddingMode;

/// Checks that every per-axis list has `ndim` entries and `ndim` is 1, 2 or 3.
fn check_axes(op: &'static str, lists: &[(&str, &[usize])]) -> Result<usize> {
    let ndim = lists[0].1.len();
    if !(1..=3).contains(&ndim) {
        return Err(invalid(
            op,
            format!(
                "{} has {ndim} entries; expected one per spatial axis (1, 2 or 3)",
                lists[0].0
            ),
        ));
    }
    for (name, l) in lists {
        if l.len() != ndim {
            return Err(invalid(
                op,
                format!(
                    "{name} has {} entries but {} has {ndim}; give one per spatial axis",
                    l.len(),
                    lists[0].0
                ),
            ));
        }
    }
    Ok(ndim)
}

fn check_positive(op: &'static str, name: &str, l: &[usize]) -> Result<()> {
    if l.contains(&0) {
        return Err(invalid(
            op,
            format!("{name} must be at least 1 on every axis, got {l:?}"),
        ));
    }
    Ok(())
}

/// Geometry of a convolution (PyTorch's `Conv1d/2d/3d` arguments), one entry per spatial axis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvSpec {
    /// Step between output positions, per axis (≥ 1).
    pub stride: Vec<usize>,
    /// Padding added on both sides of each axis.
    pub padding: Vec<usize>,
    /// Spacing between kernel taps, per axis (≥ 1).
    pub dilation: Vec<usize>,
    /// Number of channel groups; input and output channels must be divisible by it.
    pub groups: usize,
    /// How the padding is filled.
    pub padding_mode: PaddingMode,
}

impl ConvSpec {
    /// The same stride, padding and dilation on each of `ndim` axes, one group, zero padding.
    pub fn uniform(ndim: usize, stride: usize, padding: usize, dilation: usize) -> Self {
        ConvSpec {
            stride: vec![stride; ndim],
            padding: vec![padding; ndim],
            dilation: vec![dilation; ndim],
            groups: 1,
            padding_mode: PaddingMode::Zeros,
        }
    }

    /// Stride 1, no padding, dilation 1 on `ndim` axes.
    pub fn new(ndim: usize) -> Self {
        Self::uniform(ndim, 1, 0, 1)
    }

    /// The same spec with `groups` channel groups.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// The same spec with another padding mode.
    pub fn with_padding_mode(mut self, mode: PaddingMode) -> Self {
        self.padding_mode = mode;
        self
    }

    /// Number of spatial axes.
    pub fn ndim(&self) -> usize {
        self.stride.len()
    }

    /// Checks the spec on its own (list lengths, zero stride/dilation/groups).
    pub fn validate(&self) -> Result<()> {
        check_axes(
            "conv",
            &[
                ("stride", &self.stride),
                ("padding", &self.padding),
                ("dilation", &self.dilation),
            ],
        )?;
        check_positive("conv", "stride", &self.stride)?;
        check_positive("conv", "dilation", &self.dilation)?;
        if self.groups == 0 {
            return Err(invalid("conv", "groups must be at least 1"));
        }
        Ok(())
    }

    /// The output spatial size for an input of spatial size `input` and a kernel of size
    /// `kernel`, or an error if the (dilated) kernel does not fit the padded input or the
    /// padding mode cannot serve the padding.
    pub fn output_size(&self, input: &[usize], kernel: &[usize]) -> Result<Vec<usize>> {
        self.validate()?;
        let nd = self.ndim();
        if input.len() != nd || kernel.len() != nd {
            return Err(invalid(
                "conv",
                format!(
                    "the spec has {nd} spatial axes but the input has {} and the kernel {}",
                    input.len(),
                    kernel.len()
                ),
            ));
        }
        check_positive("conv", "kernel size", kernel)?;
        (0..nd)
            .map(|i| {
                let (n, k, p, s, d) = (
                    input[i],
                    kernel[i],
                    self.padding[i],
                    self.stride[i],
                    self.dilation[i],
                );
                let maxp = self.padding_mode.max_padding(n);
                if p > maxp {
                    return Err(invalid(
                        "conv",
                        format!(
                            "{} padding {p} on spatial axis {i} of length {n} is too large: at most {maxp}",
                            self.padding_mode.as_str()
                        ),
                    ));
                }
                let extent = d * (k - 1) + 1;
                if n + 2 * p < extent {
                    return Err(invalid(
                        "conv",
                        format!(
                            "kernel extent {extent} (kernel {k}, dilation {d}) on spatial axis {i} exceeds the padded input length {} (input {n} + 2·padding {p}); use a smaller kernel or dilation, or more padding",
                            n + 2 * p
                        ),
                    ));
                }
                Ok((n + 2 * p - extent) / s + 1)
            })
            .collect()
    }
}

/// Geometry of a transposed convolution (PyTorch's `ConvTranspose1d/2d/3d`), per spatial axis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvTransposeSpec {
    /// Stride of the convolution this transposes (the upsampling factor), per axis.
    pub stride: Vec<usize>,
    /// Padding of the convolution this transposes (trimmed from both sides of the output).
    pub padding: Vec<usize>,
    /// Extra positions added to one side of the output (less than the stride or the dilation).
    pub output_padding: Vec<usize>,
    /// Spacing between kernel taps.
    pub dilation: Vec<usize>,
    /// Number of channel groups.
    pub groups: usize,
}

impl ConvTransposeSpec {
    /// The same stride, padding, output padding and dilation on each of `ndim` axes, one group.
    pub fn uniform(
        ndim: usize,
        stride: usize,
        padding: usize,
        output_padding: usize,
        dilation: usize,
    ) -> Self {
        ConvTransposeSpec {
            stride: vec![stride; ndim],
            padding: vec![padding; ndim],
            output_padding: vec![output_padding; ndim],
            dilation: vec![dilation; ndim],
            groups: 1,
        }
    }

    /// Stride 1, no padding, dilation 1 on `ndim` axes.
    pub fn new(ndim: usize) -> Self {
        Self::uniform(ndim, 1, 0, 0, 1)
    }

    /// The same spec with `groups` channel groups.
    pub fn with_groups(mut self, groups: usize) -> Self {
        self.groups = groups;
        self
    }

    /// Number of spatial axes.
    pub fn ndim(&self) -> usize {
        self.stride.len()
    }

    /// Checks the spec on its own (list lengths, zero stride/dilation/groups, output padding).
    pub fn validate(&self) -> Result<()> {
        check_axes(
            "conv_transpose",
            &[
                ("stride", &self.stride),
                ("padding", &self.padding),
                ("output_padding", &self.output_padding),
                ("dilation", &self.dilation),
            ],
        )?;
        check_positive("conv_transpose", "stride", &self.stride)?;
        check_positive("conv_transpose", "dilation", &self.dilation)?;
        if self.groups == 0 {
            return Err(invalid("conv_transpose", "groups must be at least 1"));
        }
        for i in 0..self.ndim() {
            let (op, s, d) = (self.output_padding[i], self.stride[i], self.dilation[i]);
            if op >= s && op >= d {
                return Err(invalid(
                    "conv_transpose",
                    format!("output_padding {op} on spatial axis {i} must be smaller than the stride {s} or the dilation {d}"),
                ));
            }
        }
        Ok(())
    }

    /// The output spatial size `(in − 1)·s − 2p + d·(k − 1) + output_padding + 1` per axis.
    pub fn output_size(&self, input: &[usize], kernel: &[usize]) -> Result<Vec<usize>> {
        self.validate()?;
        let nd = self.ndim();
        if input.len() != nd || kernel.len() != nd {
            return Err(invalid(
                "conv_transpose",
                format!(
                    "the spec has {nd} spatial axes but the input has {} and the kernel {}",
                    input.len(),
                    kernel.len()
                ),
            ));
        }
        check_positive("conv_transpose", "kernel size", kernel)?;
        (0..nd)
            .map(|i| {
                let (n, k, p, s, d, op) = (
                    input[i] as isize,
                    kernel[i] as isize,
                    self.padding[i] as isize,
                    self.stride[i] as isize,
                    self.dilation[i] as isize,
                    self.output_padding[i] as isize,
                );
                if n == 0 {
                    return Err(invalid(
                        "conv_transpose",
                        format!("spatial axis {i} of the input is empty"),
                    ));
                }
                let out = (n - 1) * s - 2 * p + d * (k - 1) + op + 1;
                if out < 1 {
                    return Err(invalid(
                        "conv_transpose",
                        format!("padding {p} on spatial axis {i} trims the whole output (length {out}); use less padding"),
                    ));
                }
                Ok(out as usize)
            })
            .collect()
    }
}
