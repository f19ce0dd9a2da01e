//! Conversion between the lean MSDNet and dlsia's `MixedScaleDenseNetwork`.
//!
//! The two compute the same function exactly when the dlsia network has
//!
//! * `normalization=None` — dlsia's BatchNorm re-normalises the whole concatenated stack after
//!   every layer, so each layer sees its inputs through a different per-channel transform; the
//!   lean network stores every channel once (its optional BatchNorm acts on new channels only);
//! * `activation=nn.ReLU()` — the fused kernel's activation. dlsia also applies it to the raw
//!   input (quirk), which the lean network reproduces with `relu_input = true`; re-applying ReLU
//!   to channels that are already non-negative changes nothing;
//! * `final_layer=None` — dlsia applies `final_layer` to the raw input as well (quirk), which
//!   the lean network does not reproduce;
//! * any `dropout` (it only acts in training; the lean network has none), any dilations,
//!   kernel size, padding mode (zeros, reflect, replicate; not circular) and 2-D or 3-D.
//!
//! Anything else is refused with an error naming the difference. Weights map one to one:
//! `layer_i.conv_j.{weight, bias}` ↔ the unit `i·width + j` of `msd.weight` / `msd.bias`, and
//! `final_convolution.{weight, bias}` ↔ `head.{weight, bias}`.
//!
//! ```
//! use dlsia_nets::lean_msd::convert::{DlsiaMsdSpec};
//! use dlsia_nets::{LeanMsdConfig, Norm};
//!
//! let mut dlsia = DlsiaMsdSpec::new(2, 1, 2, 10, 1, 5);   // dlsia's defaults: BatchNorm
//! assert!(LeanMsdConfig::from_dlsia(&dlsia).is_err());
//! dlsia.normalization = Norm::None;
//! let lean = LeanMsdConfig::from_dlsia(&dlsia)?;
//! assert!(lean.relu_input);
//! assert_eq!(lean.to_dlsia()?, dlsia);
//! # Ok::<(), dlsia_nets::Error>(())
//! ```

use std::collections::BTreeMap;

use candle_core::Tensor;
use dlsia_ops::msd::MsdBlock;
use dlsia_ops::PaddingMode;
use serde::{Deserialize, Serialize};

use super::config::{LeanMsdConfig, NET};
use crate::choices::{Act, FinalAct, Norm};
use crate::error::{config_error, Error, Result};

/// dlsia's `custom_msdnet` argument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DlsiaCustomDilations {
    /// A 1-D array: repeated to `num_layers` layers of width 1.
    Repeated(Vec<usize>),
    /// A 2-D array with one row per channel of a layer and one column per layer (it sets both
    /// the width and the number of layers).
    PerLayer(Vec<Vec<usize>>),
}

/// The hyperparameters of a dlsia `MixedScaleDenseNetwork` (its `topology_dict()`) that decide
/// what it computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DlsiaMsdSpec {
    /// 2 for `convolution=nn.Conv2d`, 3 for `nn.Conv3d`.
    pub spatial_dims: usize,
    /// `in_channels`.
    pub in_channels: usize,
    /// `out_channels`.
    pub out_channels: usize,
    /// `num_layers`.
    pub num_layers: usize,
    /// `layer_width` (`None` is allowed with a `custom_msdnet`, as in dlsia).
    pub layer_width: Option<usize>,
    /// `max_dilation` (`None` is allowed with a `custom_msdnet`, as in dlsia).
    pub max_dilation: Option<usize>,
    /// `custom_msdnet`.
    pub custom_msdnet: Option<DlsiaCustomDilations>,
    /// `activation` (one module; a list is not representable).
    pub activation: Act,
    /// `normalization`.
    pub normalization: Norm,
    /// `final_layer`.
    pub final_layer: Option<FinalAct>,
    /// `conv_kernel_size`.
    pub conv_kernel_size: usize,
    /// `padding_mode`.
    pub padding_mode: PaddingMode,
    /// Whether `dropout` is set (it acts in training only).
    pub dropout: bool,
}

impl DlsiaMsdSpec {
    /// dlsia's constructor defaults: ReLU, BatchNorm, no final layer, kernel 3, zero padding,
    /// no dropout.
    pub fn new(
        spatial_dims: usize,
        in_channels: usize,
        out_channels: usize,
        num_layers: usize,
        layer_width: usize,
        max_dilation: usize,
    ) -> Self {
        DlsiaMsdSpec {
            spatial_dims,
            in_channels,
            out_channels,
            num_layers,
            layer_width: Some(layer_width),
            max_dilation: Some(max_dilation),
            custom_msdnet: None,
            activation: Act::Relu,
            normalization: Norm::Batch,
            final_layer: None,
            conv_kernel_size: 3,
            padding_mode: PaddingMode::Zeros,
            dropout: false,
        }
    }
}

fn not_equivalent(why: impl Into<String>) -> Error {
    config_error(
        NET,
        format!(
            "not equivalent to a dlsia MixedScaleDenseNetwork: {}",
            why.into()
        ),
    )
}

impl LeanMsdConfig {
    /// The lean network that computes the same function as a dlsia MSDNet, or an error naming
    /// the setting that makes them differ (see the [module docs](self)).
    pub fn from_dlsia(d: &DlsiaMsdSpec) -> Result<Self> {
        if d.normalization != Norm::None {
            return Err(not_equivalent(format!(
                "its normalization {:?} re-normalises every carried channel after every layer; only normalization=None converts (train a lean network with normalization \"batch\" instead)",
                d.normalization
            )));
        }
        if d.activation != Act::Relu {
            return Err(not_equivalent(format!(
                "its activation is {:?}; the fused kernel's activation is ReLU",
                d.activation
            )));
        }
        if let Some(f) = d.final_layer {
            return Err(not_equivalent(format!(
                "its final_layer {f:?} is also applied to the raw input (dlsia quirk); convert with final_layer=None"
            )));
        }
        let missing = |what: &str| {
            config_error(
                NET,
                format!("a dlsia MSDNet without custom_msdnet needs {what}"),
            )
        };
        let mut cfg = LeanMsdConfig::new(
            d.spatial_dims,
            d.in_channels,
            d.out_channels,
            d.num_layers,
            d.layer_width.unwrap_or(1),
            d.max_dilation.unwrap_or(1),
        );
        match &d.custom_msdnet {
            None => {
                cfg.layer_width = d.layer_width.ok_or_else(|| missing("layer_width"))?;
                cfg.max_dilation = d.max_dilation.ok_or_else(|| missing("max_dilation"))?;
            }
            Some(DlsiaCustomDilations::Repeated(v)) => {
                cfg.layer_width = 1;
                cfg.custom_dilations = Some(v.clone());
            }
            Some(DlsiaCustomDilations::PerLayer(m)) => {
                let width = m.len();
                let layers = m.first().map_or(0, Vec::len);
                if width == 0 || layers == 0 || m.iter().any(|r| r.len() != layers) {
                    return Err(config_error(
                        NET,
                        "custom_msdnet must be a non-empty rectangular (width × layers) array",
                    ));
                }
                cfg.layer_width = width;
                cfg.num_layers = layers;
                cfg.custom_dilations = Some(
                    (0..layers)
                        .flat_map(|i| m.iter().map(move |r| r[i]))
                        .collect(),
                );
            }
        }
        cfg.conv_kernel_size = d.conv_kernel_size;
        cfg.padding_mode = d.padding_mode;
        cfg.relu_input = true;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The dlsia MSDNet that computes the same function, or an error naming the setting that
    /// has no dlsia equivalent.
    pub fn to_dlsia(&self) -> Result<DlsiaMsdSpec> {
        self.validate()?;
        if self.normalization != Norm::None {
            return Err(not_equivalent(
                "the lean per-channel BatchNorm has no dlsia counterpart (dlsia normalises the whole stack)",
            ));
        }
        if !self.relu_input {
            return Err(not_equivalent(
                "dlsia applies ReLU to the raw input; set relu_input (equivalent for non-negative inputs only otherwise)",
            ));
        }
        if let Some(f) = self.final_activation {
            return Err(not_equivalent(format!(
                "dlsia would apply the final activation {f:?} to the raw input too"
            )));
        }
        let mut d = DlsiaMsdSpec::new(
            self.spatial_dims,
            self.in_channels,
            self.out_channels,
            self.num_layers,
            self.layer_width,
            self.max_dilation,
        );
        d.normalization = Norm::None;
        d.conv_kernel_size = self.conv_kernel_size;
        d.padding_mode = self.padding_mode;
        if self.custom_dilations.is_some() {
            let dil = self.dilations();
            let w = self.layer_width;
            d.max_dilation = None;
            d.custom_msdnet = Some(DlsiaCustomDilations::PerLayer(
                (0..w)
                    .map(|j| (0..self.num_layers).map(|i| dil[i * w + j]).collect())
                    .collect(),
            ));
        }
        Ok(d)
    }
}

fn take<'a>(m: &'a BTreeMap<String, Tensor>, key: &str, dims: &[usize]) -> Result<&'a Tensor> {
    let t = m.get(key).ok_or_else(|| {
        config_error(
            NET,
            format!("the state_dict lacks `{key}` (expected shape {dims:?})"),
        )
    })?;
    if t.elem_count() != dims.iter().product::<usize>() {
        return Err(config_error(
            NET,
            format!(
                "`{key}` has shape {:?}; the network expects {dims:?}",
                t.dims()
            ),
        ));
    }
    Ok(t)
}

fn check_no_extra(m: &BTreeMap<String, Tensor>, known: &[String]) -> Result<()> {
    if let Some(k) = m.keys().find(|k| !known.contains(k)) {
        return Err(if k.starts_with("normalization_") {
            not_equivalent(format!(
                "the state_dict holds `{k}`: a network with BatchNorm does not convert"
            ))
        } else {
            config_error(NET, format!("unexpected tensor `{k}` for this network"))
        });
    }
    Ok(())
}

/// dlsia names of every tensor, in conversion order.
fn dlsia_names(cfg: &LeanMsdConfig) -> Vec<String> {
    let w = cfg.layer_width;
    let mut v = Vec::new();
    for i in 0..cfg.num_layers {
        for j in 0..w {
            v.push(format!("layer_{i}.conv_{j}.weight"));
            v.push(format!("layer_{i}.conv_{j}.bias"));
        }
    }
    v.push("final_convolution.weight".into());
    v.push("final_convolution.bias".into());
    v
}

/// The lean network's tensors from a dlsia MSDNet `state_dict` (converted with
/// [`LeanMsdConfig::from_dlsia`]); load them with `ParamStore::load_tensors`.
pub fn lean_weights_from_dlsia(
    cfg: &LeanMsdConfig,
    state: &BTreeMap<String, Tensor>,
) -> Result<BTreeMap<String, Tensor>> {
    if cfg.normalization != Norm::None {
        return Err(not_equivalent("the lean configuration has normalization"));
    }
    check_no_extra(state, &dlsia_names(cfg))?;
    let block = MsdBlock::new(cfg.block_spec())?;
    let w = cfg.layer_width;
    let mut weights = Vec::with_capacity(block.units());
    let mut biases = Vec::with_capacity(block.units());
    for u in 0..block.units() {
        let (i, j) = (u / w, u % w);
        let shape = block.unit_weight_shape(u);
        weights.push(take(state, &format!("layer_{i}.conv_{j}.weight"), &shape)?.flatten_all()?);
        biases.push(take(state, &format!("layer_{i}.conv_{j}.bias"), &[1])?.flatten_all()?);
    }
    let c = cfg.buffer_channels();
    let out = cfg.out_channels;
    let mut hw = vec![out, c];
    hw.extend(std::iter::repeat_n(1, cfg.spatial_dims));
    let mut m = BTreeMap::new();
    m.insert("msd.weight".to_string(), Tensor::cat(&weights, 0)?);
    m.insert("msd.bias".to_string(), Tensor::cat(&biases, 0)?);
    m.insert(
        "head.weight".to_string(),
        take(state, "final_convolution.weight", &hw)?.reshape((out, c))?,
    );
    m.insert(
        "head.bias".to_string(),
        take(state, "final_convolution.bias", &[out])?.clone(),
    );
    Ok(m)
}

/// A dlsia MSDNet `state_dict` from the lean network's tensors (for a configuration that
/// [`LeanMsdConfig::to_dlsia`] accepts).
pub fn dlsia_weights_from_lean(
    cfg: &LeanMsdConfig,
    lean: &BTreeMap<String, Tensor>,
) -> Result<BTreeMap<String, Tensor>> {
    cfg.to_dlsia()?;
    let names: Vec<String> = ["msd.weight", "msd.bias", "head.weight", "head.bias"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    check_no_extra(lean, &names)?;
    let block = MsdBlock::new(cfg.block_spec())?;
    let packed = take(lean, "msd.weight", &[block.weight_len()])?.flatten_all()?;
    let bias = take(lean, "msd.bias", &[block.units()])?.flatten_all()?;
    let w = cfg.layer_width;
    let mut m = BTreeMap::new();
    for u in 0..block.units() {
        let (i, j) = (u / w, u % w);
        m.insert(
            format!("layer_{i}.conv_{j}.weight"),
            block.unpack_weight(&packed, u)?,
        );
        m.insert(format!("layer_{i}.conv_{j}.bias"), bias.narrow(0, u, 1)?);
    }
    let (out, c) = (cfg.out_channels, cfg.buffer_channels());
    let mut hw = vec![out, c];
    hw.extend(std::iter::repeat_n(1, cfg.spatial_dims));
    m.insert(
        "final_convolution.weight".to_string(),
        take(lean, "head.weight", &[out, c])?.reshape(hw)?,
    );
    m.insert(
        "final_convolution.bias".to_string(),
        take(lean, "head.bias", &[out])?.clone(),
    );
    Ok(m)
}
