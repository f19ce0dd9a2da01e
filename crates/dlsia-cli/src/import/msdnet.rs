//! `topo_dict` of dlsia's `MixedScaleDenseNetwork` (13 keys) → [`MsdNetSpec`].

use dlsia_nets::msdnet::{CustomDilations, MsdActivation};
use dlsia_nets::{Act, FinalAct, MsdNetConfig, Norm};
use dlsia_ops::PaddingMode;
use serde::{Deserialize, Serialize};

use super::classes::{activation, class_dims, final_activation, normalization};
use super::topo_dict::TopoDict;
use crate::error::{format_err, unsupported, Result};
use crate::pickle::numpy::ndarray;
use crate::pickle::Value;

/// Everything a saved dlsia MSDNet says about itself, in dlsia's vocabulary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MsdNetSpec {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Number of layers (from `custom_msdnet`'s columns when it is given).
    pub num_layers: usize,
    /// Convolutions per layer (from `custom_msdnet`'s rows when it is given).
    pub layer_width: usize,
    /// Dilations cycle through `1..=max_dilation` when `custom_msdnet` is absent.
    pub max_dilation: usize,
    /// Explicit dilations `(width, layers)`, as saved (dlsia tiles a 1-D array to the layers).
    pub custom_msdnet: Option<Vec<Vec<usize>>>,
    /// Activation after every layer (and, a dlsia quirk, on the raw input).
    pub activation: Act,
    /// Normalisation after every layer.
    pub normalization: Norm,
    /// Transform after the last 1×1 convolution (and, a dlsia quirk, on the raw input).
    pub final_layer: Option<FinalAct>,
    /// Kernel size of the dilated convolutions.
    pub conv_kernel_size: usize,
    /// Dropout rates `[initial, hidden, final]`, if any.
    pub dropout: Option<Vec<f64>>,
    /// 2 or 3.
    pub spatial_dims: usize,
    /// Padding mode of the dilated convolutions (`zeros`, `reflect`, `replicate`, `circular`).
    pub padding_mode: String,
}

impl MsdNetSpec {
    /// The dilation of every convolution: `dilations()[layer][channel]`, as dlsia builds them
    /// (`((i·width + j) mod max_dilation) + 1`, or column `i` of `custom_msdnet`).
    pub fn dilations(&self) -> Vec<Vec<usize>> {
        match &self.custom_msdnet {
            Some(rows) => (0..self.num_layers)
                .map(|i| rows.iter().map(|r| r[i]).collect())
                .collect(),
            None => (0..self.num_layers)
                .map(|i| {
                    (0..self.layer_width)
                        .map(|j| ((i * self.layer_width + j) % self.max_dilation) + 1)
                        .collect()
                })
                .collect(),
        }
    }
}

impl MsdNetSpec {
    /// The dlsia-nets configuration of this network (same layer names, shapes and quirks).
    pub fn to_config(&self) -> Result<MsdNetConfig> {
        let padding_mode = match self.padding_mode.as_str() {
            "zeros" => PaddingMode::Zeros,
            "reflect" => PaddingMode::Reflect,
            "replicate" => PaddingMode::Replicate,
            other => {
                return Err(unsupported(
                    "topo_dict[\"padding_mode\"] of a dlsia MixedScaleDenseNetwork",
                    format!(
                        "padding mode `{other}` is not supported; zeros, reflect and replicate are"
                    ),
                ))
            }
        };
        let dropout = self.dropout.as_ref().map(|r| [r[0], r[1], r[2]]);
        let mut cfg = MsdNetConfig::new(
            self.in_channels,
            self.out_channels,
            self.num_layers,
            self.layer_width,
            self.max_dilation,
        );
        cfg.spatial_dims = self.spatial_dims;
        cfg.custom_dilations = self.custom_msdnet.clone().map(CustomDilations::Matrix);
        cfg.activation = MsdActivation::One(self.activation);
        cfg.normalization = self.normalization;
        cfg.final_activation = self.final_layer;
        cfg.conv_kernel_size = self.conv_kernel_size;
        cfg.dropout = dropout;
        cfg.padding_mode = padding_mode;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Decodes an MSDNet `topo_dict`.
pub fn decode_msdnet(topo: &Value) -> Result<MsdNetSpec> {
    let mut t = TopoDict::new("MixedScaleDenseNetwork", topo)?;
    let what = t.what("convolution");
    let dims = class_dims(&t.take("convolution")?, "conv", "Conv", &what)?;
    let in_channels = t.usize("in_channels")?;
    let out_channels = t.usize("out_channels")?;
    let custom_value = t.take("custom_msdnet")?;
    let custom = if custom_value.is_none() {
        None
    } else {
        let what = t.what("custom_msdnet");
        let arr = ndarray(&custom_value, &what)?;
        let values = arr.to_i64(&what)?;
        let (rows, cols) = match arr.shape.as_slice() {
            [n] => (1, *n),
            [r, c] => (*r, *c),
            s => {
                return Err(format_err(
                    what,
                    format!("an array of shape {s:?}; dlsia uses a 1-D or 2-D array"),
                ))
            }
        };
        if values.iter().any(|&d| d < 1) || rows == 0 || cols == 0 {
            return Err(format_err(
                what,
                "dilations must be positive and the array non-empty",
            ));
        }
        Some(
            values
                .chunks(cols)
                .map(|r| r.iter().map(|&d| d as usize).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
        )
    };
    let num_layers_value = t.take("num_layers")?;
    let width_value = t.take("layer_width")?;
    let max_dil_value = t.take("max_dilation")?;
    let (num_layers, layer_width, max_dilation) = match &custom {
        Some(rows) => {
            let layers = rows[0].len();
            // dlsia saves the (tiled) array's column count as the layer count.
            if let Value::Int(n) = num_layers_value {
                if n != layers as i64 {
                    return Err(format_err(
                        t.what("num_layers"),
                        format!("{n} layers but custom_msdnet has {layers} columns"),
                    ));
                }
            }
            let max = rows.iter().flatten().copied().max().unwrap_or(1);
            (layers, rows.len(), max)
        }
        None => {
            let w = t.what("num_layers");
            let n = num_layers_value.as_usize(&w)?;
            let w = t.what("layer_width");
            let width = width_value.as_usize(&w)?;
            let w = t.what("max_dilation");
            let max = max_dil_value.as_usize(&w)?;
            if n == 0 || width == 0 || max == 0 {
                return Err(format_err(
                    t.what("num_layers"),
                    format!(
                        "num_layers {n}, layer_width {width}, max_dilation {max}: all must be ≥ 1"
                    ),
                ));
            }
            (n, width, max)
        }
    };
    let what = t.what("activation");
    let act = activation(&t.take("activation")?, &what)?;
    let what = t.what("normalization");
    let norm = normalization(&t.take("normalization")?, dims, &what)?;
    let what = t.what("final_layer");
    let final_layer = final_activation(&t.take("final_layer")?, &what)?;
    let conv_kernel_size = t.usize("conv_kernel_size")?;
    let what = t.what("dropout");
    let dropout = match t.take("dropout")? {
        Value::None => None,
        v => {
            let rates = match ndarray(&v, &what) {
                Ok(a) => a
                    .values
                    .iter()
                    .map(|x| x.as_f64(&what))
                    .collect::<Result<Vec<_>>>()?,
                Err(_) => v
                    .as_seq(&what)?
                    .iter()
                    .map(|x| x.as_f64(&what))
                    .collect::<Result<Vec<_>>>()?,
            };
            if rates.len() != 3 || rates.iter().any(|r| !(0.0..1.0).contains(r)) {
                return Err(format_err(
                    what,
                    format!("{rates:?}; dlsia expects three rates in [0, 1) for initial, hidden and final dropout"),
                ));
            }
            Some(rates)
        }
    };
    let what = t.what("padding_mode");
    let padding_mode = t.take("padding_mode")?.as_str(&what)?;
    if !["zeros", "reflect", "replicate", "circular"].contains(&padding_mode.as_str()) {
        return Err(format_err(
            what,
            format!("`{padding_mode}`; PyTorch knows zeros, reflect, replicate and circular"),
        ));
    }
    t.finish()?;
    Ok(MsdNetSpec {
        in_channels,
        out_channels,
        num_layers,
        layer_width,
        max_dilation,
        custom_msdnet: custom,
        activation: act,
        normalization: norm,
        final_layer,
        conv_kernel_size,
        dropout,
        spatial_dims: dims,
        padding_mode,
    })
}
