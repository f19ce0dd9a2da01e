//! MSAE: dlsia's mixed-scale convolutional autoencoder (`dlsia.core.networks.msae.MSAE`), the
//! network of the shape-clustering workflow, weight-compatible in 2-D (3-D is an extension).
//!
//! Encoder: `depth` blocks `network_operator_sequence.i = Seq(MixedScaleWide, MaxPool 2)`, then
//! `final_operator = Linear(C·Y·X → latent)`. A `MixedScaleWide(in → out)` runs `max_dilation`
//! parallel stacks `"Dilation d"` of `ms_depth × [conv 3×3 dilation d → ReLU → BatchNorm]` (in
//! that order) and merges their concatenation with a 1×1 convolution `aggregate`. Decoder:
//! `first_operator = Linear(latent → C·Y·X)`, reshape, then for each level from the deepest up
//! `Seq(ConvTranspose 2×2 stride 2, MixedScaleWide)`, back to the input's channels.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use dlsia_nets::{Autoencoder, MsAutoencoder, MsaeConfig, Network};
//!
//! let net = MsAutoencoder::new(&MsaeConfig::new(&[1, 16, 16], 2, 4, 2.0, 3, 2, 1), 0, &Device::Cpu)?;
//! let x = Tensor::zeros((5, 1, 16, 16), DType::F32, &Device::Cpu)?;
//! let z = net.encode(&x, false)?;
//! assert_eq!(z.dims(), &[5, 3]);
//! assert_eq!(net.decode(&z, false)?.dims(), &[5, 1, 16, 16]);
//! # Ok::<(), dlsia_nets::Error>(())
//! ```

mod config;

pub use config::MsaeConfig;

use candle_core::{Device, Module, ModuleT, Tensor};
use dlsia_ops::nn::{Activation, BatchNorm, Conv, ConvTranspose, Linear};
use dlsia_ops::{
    conv_transpose, max_pool, ActOrder, ConvSpec, ConvTransposeSpec, FusedAct, ParamBuilder,
    ParamStore,
};

use crate::blocks::{output_padding, Pass};
use crate::error::{input_error, Result};
use crate::network::{Autoencoder, Network};
use crate::topology::Topology;
use config::NET;

/// dlsia's `single_stack`: `depth × [conv(dilation d) → ReLU → BatchNorm]` under `ops`.
#[derive(Debug, Clone)]
struct SingleStack {
    layers: Vec<(Conv, BatchNorm)>,
}

impl SingleStack {
    fn new(
        pb: &ParamBuilder,
        nd: usize,
        cin: usize,
        cout: usize,
        depth: usize,
        dil: usize,
    ) -> Result<Self> {
        let ops = pb.pp("ops");
        // dlsia pads by ((k − 1)·d + 1) // 2, which is d for k = 3: the size is kept.
        let spec = ConvSpec::uniform(nd, 1, dil, dil);
        let layers = (0..depth)
            .map(|j| {
                let c = if j == 0 { cin } else { cout };
                Ok((
                    Conv::new(&ops.pp(3 * j), c, cout, &vec![3; nd], spec.clone(), true)?,
                    BatchNorm::new(&ops.pp(3 * j + 2), cout)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(SingleStack { layers })
    }

    fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let mut h = x.clone();
        for (conv, bn) in &self.layers {
            if pass == Pass::Train {
                // conv → ReLU → BatchNorm as one fused op (same values and gradients).
                h = bn.forward_conv_fused(conv, &h, FusedAct::Relu, ActOrder::BeforeNorm)?;
                continue;
            }
            let a = pass.keep(pass.keep(conv.forward(&h)?).relu()?);
            h = pass.keep(bn.forward_t(&a, pass.train())?);
        }
        Ok(h)
    }
}

/// dlsia's `MixedScaleWide`: parallel stacks `"Dilation 1" … "Dilation w"`, concatenated and
/// merged by the 1×1 convolution `aggregate`.
#[derive(Debug, Clone)]
struct MixedScaleWide {
    stacks: Vec<SingleStack>,
    aggregate: Conv,
}

impl MixedScaleWide {
    fn new(
        pb: &ParamBuilder,
        nd: usize,
        cin: usize,
        cout: usize,
        cfg: &MsaeConfig,
    ) -> Result<Self> {
        let stacks = (1..=cfg.max_dilation)
            .map(|d| {
                SingleStack::new(
                    &pb.pp(format!("Dilation {d}")),
                    nd,
                    cin,
                    cout,
                    cfg.ms_depth,
                    d,
                )
            })
            .collect::<Result<_>>()?;
        let aggregate = Conv::new(
            &pb.pp("aggregate"),
            cout * cfg.max_dilation,
            cout,
            &vec![1; nd],
            ConvSpec::new(nd),
            true,
        )?;
        Ok(MixedScaleWide { stacks, aggregate })
    }

    fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let parts = self
            .stacks
            .iter()
            .map(|s| s.forward(x, pass))
            .collect::<Result<Vec<_>>>()?;
        let cat = pass.keep(Tensor::cat(&parts, 1)?);
        drop(parts);
        Ok(pass.keep(self.aggregate.forward(&cat)?))
    }
}

/// The mixed-scale autoencoder (see the [module documentation](self)).
#[derive(Debug, Clone)]
pub struct MsAutoencoder {
    cfg: MsaeConfig,
    store: ParamStore,
    /// Spatial sizes before each encoder block and after the last pooling.
    sizes: Vec<Vec<usize>>,
    /// Channels of the deepest feature map.
    bottom_channels: usize,
    encoder_blocks: Vec<MixedScaleWide>,
    encoder_linear: Linear,
    decoder_linear: Linear,
    /// `(ConvTranspose, MixedScaleWide)` from the deepest level up.
    decoder_blocks: Vec<(ConvTranspose, MixedScaleWide)>,
    final_act: Option<Activation>,
}

impl MsAutoencoder {
    /// Validates `cfg` and builds the network with f32 weights initialised from `seed`.
    pub fn new(cfg: &MsaeConfig, seed: u64, device: &Device) -> Result<Self> {
        Self::from_store(cfg, ParamStore::new(seed, device))
    }

    /// Validates `cfg` and builds the network in `store`.
    pub fn from_store(cfg: &MsaeConfig, store: ParamStore) -> Result<Self> {
        cfg.validate()?;
        let nd = cfg.spatial_dims();
        let seq = cfg.channel_sequence()?;
        let sizes = cfg.level_sizes();
        let bottom_channels = seq[cfg.depth - 1].1;
        let flat = bottom_channels * sizes[cfg.depth].iter().product::<usize>();
        let root = store.root();
        let enc = root.pp("encoder");
        let ops = enc.pp("network_operator_sequence");
        let encoder_blocks = seq
            .iter()
            .enumerate()
            .map(|(i, &(cin, cout))| MixedScaleWide::new(&ops.pp(i).pp(0), nd, cin, cout, cfg))
            .collect::<Result<_>>()?;
        let encoder_linear =
            Linear::new(&enc.pp("final_operator"), flat, cfg.latent_dimension, true)?;
        let dec = root.pp("decoder");
        let decoder_linear =
            Linear::new(&dec.pp("first_operator"), cfg.latent_dimension, flat, true)?;
        let ops = dec.pp("network_operator_sequence");
        let decoder_blocks = (0..cfg.depth)
            .rev()
            .enumerate()
            .map(|(j, i)| {
                let (cout, cin) = seq[i];
                let up = ConvTranspose::new(
                    &ops.pp(j).pp(0),
                    cin,
                    cin,
                    &vec![2; nd],
                    ConvTransposeSpec::uniform(nd, 2, 0, 0, 1),
                    true,
                )?;
                Ok((
                    up,
                    MixedScaleWide::new(&ops.pp(j).pp(1), nd, cin, cout, cfg)?,
                ))
            })
            .collect::<Result<_>>()?;
        Ok(MsAutoencoder {
            cfg: cfg.clone(),
            store,
            sizes,
            bottom_channels,
            encoder_blocks,
            encoder_linear,
            decoder_linear,
            decoder_blocks,
            final_act: cfg.final_action.map(|f| f.layer()),
        })
    }

    /// The configuration the network was built from.
    pub fn config(&self) -> &MsaeConfig {
        &self.cfg
    }

    /// The latent vectors of `x` in eval mode, without recording the autograd graph.
    pub fn latent(&self, x: &Tensor) -> Result<Tensor> {
        self.encode_pass(x, Pass::Infer)
    }

    fn encode_pass(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        self.check_input(x.dims())?;
        let nd = self.cfg.spatial_dims();
        let mut h = pass.keep(x.clone());
        for block in &self.encoder_blocks {
            let y = block.forward(&h, pass)?;
            h = pass.keep(max_pool(&y, &vec![2; nd], &vec![2; nd], &vec![0; nd])?);
        }
        let n = h.dim(0)?;
        Ok(pass.keep(self.encoder_linear.forward(&h.reshape((n, ()))?)?))
    }

    fn decode_pass(&self, z: &Tensor, pass: Pass) -> Result<Tensor> {
        let l = self.cfg.latent_dimension;
        if z.rank() != 2 || z.dim(1)? != l || z.dim(0)? == 0 {
            return Err(input_error(
                "MSAE decoder",
                z.dims(),
                format!("expected latent vectors of shape (N, {l}) with N ≥ 1"),
            ));
        }
        let n = z.dim(0)?;
        let d = self.cfg.depth;
        let shape = [vec![n, self.bottom_channels], self.sizes[d].clone()].concat();
        let mut h = pass.keep(
            self.decoder_linear
                .forward(&pass.keep(z.clone()))?
                .reshape(shape)?,
        );
        for (j, (up, wide)) in self.decoder_blocks.iter().enumerate() {
            let i = d - 1 - j;
            let mut spec = ConvTransposeSpec::uniform(self.cfg.spatial_dims(), 2, 0, 0, 1);
            spec.output_padding = output_padding(&self.sizes[i], &self.sizes[i + 1], 2);
            h = pass.keep(conv_transpose(&h, up.weight(), up.bias(), &spec)?);
            h = wide.forward(&h, pass)?;
        }
        Ok(match &self.final_act {
            Some(a) => pass.keep(a.forward(&h)?),
            None => h,
        })
    }
}

impl Autoencoder for MsAutoencoder {
    fn encode(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.encode_pass(x, Pass::of(train))
    }

    fn decode(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        self.decode_pass(z, Pass::of(train))
    }

    fn latent_dim(&self) -> usize {
        self.cfg.latent_dimension
    }
}

impl Network for MsAutoencoder {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.decode(&self.encode(x, train)?, train)
    }

    fn predict(&self, x: &Tensor) -> Result<Tensor> {
        self.decode_pass(&self.encode_pass(x, Pass::Infer)?, Pass::Infer)
    }

    fn topology(&self) -> Topology {
        Topology::MsAutoencoder(self.cfg.clone())
    }

    fn params(&self) -> &ParamStore {
        &self.store
    }

    fn spatial_dims(&self) -> usize {
        self.cfg.spatial_dims()
    }

    fn in_channels(&self) -> usize {
        self.cfg.input_shape[0]
    }

    fn out_channels(&self) -> usize {
        self.cfg.input_shape[0]
    }

    fn check_input(&self, shape: &[usize]) -> Result<()> {
        let want = &self.cfg.input_shape;
        if shape.len() != want.len() + 1 || shape[0] == 0 || &shape[1..] != want.as_slice() {
            return Err(input_error(
                NET,
                shape,
                format!(
                    "its fully connected latent layer fixes the input to (N, {}) with N ≥ 1",
                    want.iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        Ok(())
    }

    fn as_autoencoder(&self) -> Option<&dyn Autoencoder> {
        Some(self)
    }
}
