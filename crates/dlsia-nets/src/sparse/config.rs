//! Hyperparameters of the SMS-based autoencoders and classifier (dlsia's `sparsenet`
//! constructors), checked once, and the sampling (or checking) of their SMSNet graphs.
//!
//! The three configurations share the backbone fields of the original's constructors (same
//! names, same defaults; `pIL`/`pLO`/`IO` are also accepted under those spellings) and add their
//! own head. The graphs are either given (`encoder_graph`/`decoder_graph`, e.g. exported from an
//! original network, so that its weights fit) or sampled from `graph_seed`; a built network's
//! [`topology`](crate::Network::topology) always holds them explicitly, so a saved model never
//! depends on the sampler.

use dlsia_graph::{DegreeBound, SizingSettings, SmsGraph, SmsGraphParams, SpatialDims};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::choices::FinalAct;
use crate::error::{config_error, Result};
use crate::smsnet::SmsNetConfig;

fn d_in_shape() -> [usize; 2] {
    [28, 28]
}
fn d_latent_shape() -> [usize; 2] {
    [7, 7]
}
fn d_one() -> usize {
    1
}
fn d_depth() -> usize {
    20
}
fn d_dilations() -> Vec<usize> {
    vec![1, 2, 3]
}
fn d_hidden() -> usize {
    10
}
fn d_alpha() -> [f64; 2] {
    [0.75, 1.0]
}
fn d_gamma() -> [f64; 2] {
    [0.0, 0.5]
}
fn d_max_degree() -> usize {
    5
}
fn d_p_full() -> f64 {
    1.0
}
fn d_p_quarter() -> f64 {
    0.25
}
fn d_true() -> bool {
    true
}
fn d_base() -> usize {
    2
}
fn d_dropout() -> f64 {
    0.05
}
fn d_classes() -> usize {
    10
}
fn d_latent_sequence() -> Vec<usize> {
    vec![32, 2]
}

/// Defines a configuration struct with the backbone fields every `sparsenet` network shares
/// (serde can't combine `flatten` with `deny_unknown_fields`), plus the network's own fields.
macro_rules! sparse_config {
    (
        $(#[$meta:meta])*
        $name:ident, p_default = $pdef:literal, net = $net:literal,
        { $($(#[$fmeta:meta])* pub $field:ident : $ty:ty,)* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Spatial input shape `(Y, X)` (default `(28, 28)`).
            #[serde(default = "d_in_shape")]
            pub in_shape: [usize; 2],
            /// Spatial shape of the encoder output (default `(7, 7)`); `in_shape` must be
            /// `latent_shape · stride_base^power` exactly.
            #[serde(default = "d_latent_shape")]
            pub latent_shape: [usize; 2],
            /// Channels of the input image (default 1).
            #[serde(default = "d_one")]
            pub in_channels: usize,
            /// Channels of the encoder output, the latent image (default 1).
            #[serde(default = "d_one")]
            pub out_channels: usize,
            /// Hidden layers of each SMSNet graph before pruning (default 20, at least 2).
            #[serde(default = "d_depth")]
            pub depth: usize,
            /// Dilations the graph edges draw from (default `[1, 2, 3]`).
            #[serde(default = "d_dilations")]
            pub dilations: Vec<usize>,
            /// Channels every hidden edge emits (default 10).
            #[serde(default = "d_hidden")]
            pub hidden_channels: usize,
            /// Range of the graphs' `LL_alpha`, drawn once uniformly (default `(0.75, 1.0)`).
            #[serde(default = "d_alpha")]
            pub alpha_range: [f64; 2],
            /// Range of the graphs' `LL_gamma`, drawn once uniformly (default `(0.0, 0.5)`).
            #[serde(default = "d_gamma")]
            pub gamma_range: [f64; 2],
            /// `LL_max_degree` (default 5; dlsia's off-by-one makes it 4 edges at most).
            #[serde(default = "d_max_degree")]
            pub max_degree: usize,
            /// `LL_min_degree` (default 1).
            #[serde(default = "d_one")]
            pub min_degree: usize,
            /// Probability of the optional input → hidden edges (`pIL`).
            #[serde(default = $pdef, alias = "pIL")]
            pub p_il: f64,
            /// Probability of the optional hidden → output edges (`pLO`).
            #[serde(default = $pdef, alias = "pLO")]
            pub p_lo: f64,
            /// Whether the input connects straight to the output (`IO`, default true).
            #[serde(default = "d_true", alias = "IO")]
            pub io: bool,
            /// Base of the strides between node sizes (default 2).
            #[serde(default = "d_base")]
            pub stride_base: usize,
            /// Seed of the graph sampling (alpha, gamma and the graphs), used for every graph
            /// not given explicitly.
            #[serde(default)]
            pub graph_seed: u64,
            /// The encoder's graph (dlsia's `encode.network_graph`); sampled when absent.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub encoder_graph: Option<SmsGraph>,
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $name {
            fn backbone(&self) -> Backbone {
                Backbone {
                    net: $net,
                    in_shape: self.in_shape,
                    latent_shape: self.latent_shape,
                    in_channels: self.in_channels,
                    out_channels: self.out_channels,
                    depth: self.depth,
                    dilations: self.dilations.clone(),
                    hidden_channels: self.hidden_channels,
                    alpha_range: self.alpha_range,
                    gamma_range: self.gamma_range,
                    max_degree: self.max_degree,
                    min_degree: self.min_degree,
                    p_il: self.p_il,
                    p_lo: self.p_lo,
                    io: self.io,
                    stride_base: self.stride_base,
                    graph_seed: self.graph_seed,
                }
            }

            /// Number of latent features, `out_channels · latent_shape[0] · latent_shape[1]`.
            pub fn n_latent(&self) -> usize {
                self.out_channels * self.latent_shape[0] * self.latent_shape[1]
            }

            /// The encoder SMSNet (`in_channels → out_channels`, `in_shape → latent_shape`),
            /// with the given graph or one sampled from `graph_seed`.
            pub fn encoder_config(&self) -> Result<SmsNetConfig> {
                let b = self.backbone();
                b.validate()?;
                b.sms_config(false, self.encoder_graph.clone())
            }
        }
    };
}

sparse_config! {
    /// dlsia's `sparsenet.SparseAutoEncoder`: SMSNet encoder → fully connected bottleneck
    /// `latent_sequence` → mirrored fully connected layers → SMSNet decoder.
    ///
    /// Unlike the original's `topology_dict`, this configuration keeps `latent_sequence` and
    /// `dropout_p`, so a saved model reloads whatever its bottleneck.
    ///
    /// ```
    /// use dlsia_nets::SparseAutoEncoderConfig;
    ///
    /// let cfg: SparseAutoEncoderConfig =
    ///     serde_json::from_str(r#"{"depth": 6, "latent_sequence": [16, 3], "pIL": 0.5}"#)?;
    /// assert_eq!((cfg.in_shape, cfg.hidden_channels, cfg.p_lo), ([28, 28], 10, 1.0));
    /// cfg.validate()?;
    /// let bad: SparseAutoEncoderConfig = serde_json::from_str(r#"{"dropout_p": 1.0}"#)?;
    /// assert!(bad.validate().unwrap_err().to_string().contains("dropout_p"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    SparseAutoEncoderConfig, p_default = "d_p_full", net = "SparseAutoEncoder",
    {
        /// The decoder's graph (dlsia's `decode.network_graph`); sampled when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub decoder_graph: Option<SmsGraph>,
        /// Widths of the fully connected encoder layers; the last is the latent vector's
        /// length (default `[32, 2]`).
        #[serde(default = "d_latent_sequence")]
        pub latent_sequence: Vec<usize>,
        /// Dropout probability after each hidden fully connected layer (default 0.05).
        #[serde(default = "d_dropout")]
        pub dropout_p: f64,
        /// Transform of the reconstruction (`final_transform`, e.g. `"sigmoid"`).
        #[serde(default)]
        pub final_transform: Option<FinalAct>,
    }
}

sparse_config! {
    /// dlsia's `sparsenet.SparseAEC`: an SMS autoencoder (no fully connected bottleneck) with a
    /// classifier `fc1 → bn1 → ReLU → dropout → fc2 → bn2 → ReLU → dropout → fc3` on the
    /// flattened latent image.
    ///
    /// ```
    /// use dlsia_nets::SparseAecConfig;
    ///
    /// let cfg: SparseAecConfig = serde_json::from_str(r#"{"out_classes": 4, "depth": 5}"#)?;
    /// assert_eq!((cfg.n_latent(), cfg.dropout_rate), (49, 0.05));
    /// assert!(serde_json::from_str::<SparseAecConfig>(r#"{"classes": 4}"#).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    SparseAecConfig, p_default = "d_p_full", net = "SparseAEC",
    {
        /// The decoder's graph (dlsia's `decode.network_graph`); sampled when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub decoder_graph: Option<SmsGraph>,
        /// Number of classes (default 10).
        #[serde(default = "d_classes")]
        pub out_classes: usize,
        /// Dropout probability in the classifier (default 0.05).
        #[serde(default = "d_dropout")]
        pub dropout_rate: f64,
    }
}

sparse_config! {
    /// dlsia's `sparsenet.SparseLabeler`: an SMSNet encoder and a classifier
    /// `dropout → fc1 → bn1 → ReLU → dropout → fc2 → bn2` (the logits pass through BatchNorm,
    /// as in the original). Its `pIL`/`pLO` default to 0.25.
    ///
    /// ```
    /// use dlsia_nets::SparseLabelerConfig;
    ///
    /// let cfg: SparseLabelerConfig = serde_json::from_str(r#"{"latent_shape": [14, 14]}"#)?;
    /// assert_eq!((cfg.p_il, cfg.out_classes), (0.25, 10));
    /// cfg.validate()?;
    /// let bad: SparseLabelerConfig = serde_json::from_str(r#"{"latent_shape": [56, 56]}"#)?;
    /// assert!(bad.validate().unwrap_err().to_string().contains("latent_shape"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    SparseLabelerConfig, p_default = "d_p_quarter", net = "SparseLabeler",
    {
        /// Number of classes (default 10).
        #[serde(default = "d_classes")]
        pub out_classes: usize,
        /// Dropout probability in the classifier (default 0.05).
        #[serde(default = "d_dropout")]
        pub dropout_rate: f64,
    }
}

/// The backbone fields of any of the three configurations.
struct Backbone {
    net: &'static str,
    in_shape: [usize; 2],
    latent_shape: [usize; 2],
    in_channels: usize,
    out_channels: usize,
    depth: usize,
    dilations: Vec<usize>,
    hidden_channels: usize,
    alpha_range: [f64; 2],
    gamma_range: [f64; 2],
    max_degree: usize,
    min_degree: usize,
    p_il: f64,
    p_lo: f64,
    io: bool,
    stride_base: usize,
    graph_seed: u64,
}

impl Backbone {
    /// dlsia's `power = floor(log(in/latent)/log(stride_base) + 0.5)`.
    fn power(&self) -> i32 {
        let ratio = self.in_shape[0] as f64 / self.latent_shape[0] as f64;
        (ratio.ln() / (self.stride_base as f64).ln() + 0.5).floor() as i32
    }

    fn validate(&self) -> Result<()> {
        let net = self.net;
        for (name, v, min) in [
            ("in_channels", self.in_channels, 1),
            ("out_channels", self.out_channels, 1),
            ("depth", self.depth, 2),
            ("hidden_channels", self.hidden_channels, 1),
            ("max_degree", self.max_degree, 1),
            ("min_degree", self.min_degree, 1),
            ("stride_base", self.stride_base, 2),
        ] {
            if v < min {
                return Err(config_error(
                    net,
                    format!("{name} = {v}; it must be at least {min}"),
                ));
            }
        }
        if self.dilations.is_empty() || self.dilations.contains(&0) {
            return Err(config_error(
                net,
                format!(
                    "dilations = {:?}; give at least one dilation, each ≥ 1, e.g. [1, 2, 3]",
                    self.dilations
                ),
            ));
        }
        for (name, [lo, hi]) in [
            ("alpha_range", self.alpha_range),
            ("gamma_range", self.gamma_range),
        ] {
            if !(lo.is_finite() && hi.is_finite() && 0.0 <= lo && lo <= hi) {
                return Err(config_error(
                    net,
                    format!("{name} = [{lo}, {hi}]; it must be finite with 0 ≤ low ≤ high"),
                ));
            }
        }
        for (name, p) in [("p_il", self.p_il), ("p_lo", self.p_lo)] {
            if !(0.0..=1.0).contains(&p) {
                return Err(config_error(
                    net,
                    format!("{name} = {p}; it must be a probability in [0, 1]"),
                ));
            }
        }
        let (i, l) = (self.in_shape, self.latent_shape);
        if i.contains(&0) || l.contains(&0) {
            return Err(config_error(
                net,
                format!("in_shape {i:?} and latent_shape {l:?} must be positive"),
            ));
        }
        if l[0] > i[0] || l[1] > i[1] {
            return Err(config_error(
                net,
                format!("latent_shape {l:?} is larger than in_shape {i:?}; the encoder only downsamples"),
            ));
        }
        let p = self.power();
        let s = self
            .stride_base
            .checked_pow(p as u32)
            .filter(|&s| s <= 1 << 16)
            .ok_or_else(|| config_error(net, format!("stride_base^{p} overflows")))?;
        if i != [l[0] * s, l[1] * s] {
            return Err(config_error(
                net,
                format!(
                    "latent_shape {l:?} must be in_shape {i:?} divided by stride_base^power = {}^{p} exactly, e.g. {:?}",
                    self.stride_base,
                    [(i[0] / s).max(1), (i[1] / s).max(1)]
                ),
            ));
        }
        Ok(())
    }

    /// alpha and gamma drawn uniformly from their ranges, then one seed per graph.
    fn draws(&self) -> (f64, f64, u64, u64) {
        let mut rng = StdRng::seed_from_u64(self.graph_seed);
        let [a0, a1] = self.alpha_range;
        let [g0, g1] = self.gamma_range;
        let alpha = a0 + (a1 - a0) * rng.random::<f64>();
        let gamma = g0 + (g1 - g0) * rng.random::<f64>();
        (alpha, gamma, rng.random(), rng.random())
    }

    /// The encoder (`decoder = false`) or decoder SMSNet configuration, with `graph` or a
    /// sampled graph.
    fn sms_config(&self, decoder: bool, graph: Option<SmsGraph>) -> Result<SmsNetConfig> {
        let net = self.net;
        let power = self.power();
        let (cin, cout, shape_in, shape_out, sizing) = if decoder {
            (
                self.out_channels,
                self.in_channels,
                self.latent_shape,
                self.in_shape,
                (0, power),
            )
        } else {
            (
                self.in_channels,
                self.out_channels,
                self.in_shape,
                self.latent_shape,
                (-power, 0),
            )
        };
        let which = if decoder {
            "decoder_graph"
        } else {
            "encoder_graph"
        };
        let graph = match graph {
            Some(g) => g,
            None => {
                let (alpha, gamma, enc_seed, dec_seed) = self.draws();
                let mut p = SmsGraphParams::new(self.depth, self.dilations.clone());
                p.hidden_out_channels = vec![self.hidden_channels];
                p.in_channels = cin;
                p.dims = SpatialDims::Two;
                p.ll_alpha = alpha;
                p.ll_gamma = Some(gamma);
                p.ll_min_degree = DegreeBound::Count(self.min_degree);
                p.ll_max_degree = Some(DegreeBound::Count(self.max_degree));
                p.il = self.p_il;
                p.lo = self.p_lo;
                p.io = self.io;
                p.sizing = SizingSettings {
                    stride_base: self.stride_base as u32,
                    min_power: sizing.0,
                    max_power: sizing.1,
                };
                p.in_size = shape_in[0];
                p.out_size = shape_out[0];
                let sampler = p
                    .check()
                    .map_err(|e| config_error(net, format!("{which}: {e}")))?;
                sampler.sample(if decoder { dec_seed } else { enc_seed })
            }
        };
        let out = graph.output();
        let want = if decoder { power } else { -power };
        let got = graph.node(out).map_or(0, |n| n.size);
        if got != want {
            return Err(config_error(
                net,
                format!(
                    "{which}: its output node {out} has size power {got}; mapping {shape_in:?} to {shape_out:?} needs {want}"
                ),
            ));
        }
        if let Some(n) = graph.nodes().iter().find(|n| {
            let (lo, hi) = if decoder { (0, power) } else { (-power, 0) };
            n.size < lo || n.size > hi
        }) {
            return Err(config_error(
                net,
                format!(
                    "{which}: node {} has size power {}, outside the range this shape ratio allows",
                    n.id, n.size
                ),
            ));
        }
        let mut cfg = SmsNetConfig::new(SpatialDims::Two, cin, cout, graph);
        cfg.in_shape = Some(shape_in.to_vec());
        cfg.stride_base = self.stride_base;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Checks a dropout probability in [0, 1).
fn check_dropout(net: &'static str, name: &str, p: f64) -> Result<()> {
    if !(0.0..1.0).contains(&p) {
        return Err(config_error(
            net,
            format!("{name} = {p}; it must be in [0, 1) (1 would drop everything)"),
        ));
    }
    Ok(())
}

fn check_classes(net: &'static str, n: usize) -> Result<()> {
    if n == 0 {
        return Err(config_error(net, "out_classes = 0; it must be at least 1"));
    }
    Ok(())
}

impl SparseAutoEncoderConfig {
    /// Checks every hyperparameter (and the given graphs) once.
    pub fn validate(&self) -> Result<()> {
        let b = self.backbone();
        b.validate()?;
        check_dropout(b.net, "dropout_p", self.dropout_p)?;
        if self.latent_sequence.is_empty() || self.latent_sequence.contains(&0) {
            return Err(config_error(
                b.net,
                format!(
                    "latent_sequence = {:?}; give at least one layer width, each ≥ 1, e.g. [32, 2]",
                    self.latent_sequence
                ),
            ));
        }
        self.resolved().map(|_| ())
    }

    /// The decoder SMSNet (`out_channels → in_channels`, `latent_shape → in_shape`).
    pub fn decoder_config(&self) -> Result<SmsNetConfig> {
        let b = self.backbone();
        b.validate()?;
        b.sms_config(true, self.decoder_graph.clone())
    }

    /// The configuration with both graphs explicit (sampled from `graph_seed` if absent).
    pub fn resolved(&self) -> Result<Self> {
        Ok(SparseAutoEncoderConfig {
            encoder_graph: Some(self.encoder_config()?.graph),
            decoder_graph: Some(self.decoder_config()?.graph),
            ..self.clone()
        })
    }
}

impl SparseAecConfig {
    /// Checks every hyperparameter (and the given graphs) once.
    pub fn validate(&self) -> Result<()> {
        let b = self.backbone();
        b.validate()?;
        check_dropout(b.net, "dropout_rate", self.dropout_rate)?;
        check_classes(b.net, self.out_classes)?;
        if self.n_latent() < 2 {
            return Err(config_error(
                b.net,
                "the latent image has 1 value; the classifier's hidden width n_latent/2 needs ≥ 2",
            ));
        }
        self.resolved().map(|_| ())
    }

    /// The decoder SMSNet (`out_channels → in_channels`, `latent_shape → in_shape`).
    pub fn decoder_config(&self) -> Result<SmsNetConfig> {
        let b = self.backbone();
        b.validate()?;
        b.sms_config(true, self.decoder_graph.clone())
    }

    /// The configuration with both graphs explicit (sampled from `graph_seed` if absent).
    pub fn resolved(&self) -> Result<Self> {
        Ok(SparseAecConfig {
            encoder_graph: Some(self.encoder_config()?.graph),
            decoder_graph: Some(self.decoder_config()?.graph),
            ..self.clone()
        })
    }
}

impl SparseLabelerConfig {
    /// Checks every hyperparameter (and the given graph) once.
    pub fn validate(&self) -> Result<()> {
        let b = self.backbone();
        b.validate()?;
        check_dropout(b.net, "dropout_rate", self.dropout_rate)?;
        check_classes(b.net, self.out_classes)?;
        self.resolved().map(|_| ())
    }

    /// The configuration with the graph explicit (sampled from `graph_seed` if absent).
    pub fn resolved(&self) -> Result<Self> {
        Ok(SparseLabelerConfig {
            encoder_graph: Some(self.encoder_config()?.graph),
            ..self.clone()
        })
    }
}
