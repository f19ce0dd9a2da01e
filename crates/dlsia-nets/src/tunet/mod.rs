//! TUNet: dlsia's tunable U-Net, 2-D and 3-D, weight-compatible with `dlsia.core.networks.tunet`.
//!
//! Layout (dlsia.md §2.3): encoder blocks `Encode_i` (two convolutions, each followed by the
//! optional normalisation and activation) joined by max pooling, a bottleneck
//! `Final_layer_{depth−1}`, and decoder blocks `Decode_i` fed with `cat([skip, up])`, where `up` is
//! the transposed convolution `Step Up i`; `Decode_0` ends in a 1×1 convolution to the classes.
//!
//! Unlike the original, whose transposed-convolution output padding is fixed at construction
//! from `image_shape`, the output padding is computed per axis from the actual input, so any
//! input whose spatial sizes survive `depth − 1` poolings runs. `image_shape` is kept in the
//! topology for compatibility.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use dlsia_nets::{Network, TuNet, TuNetConfig};
//!
//! let net = TuNet::new(&TuNetConfig::new(&[32, 32], 1, 2, 3, 4), 0, &Device::Cpu)?;
//! assert_eq!(net.num_parameters(), 7562); // dlsia's count for the same hyperparameters
//! let x = Tensor::zeros((1, 1, 20, 13), DType::F32, &Device::Cpu)?;
//! assert_eq!(net.forward_t(&x, false)?.dims(), &[1, 2, 20, 13]);
//! # Ok::<(), dlsia_nets::Error>(())
//! ```

mod config;

pub(crate) use config::{
    check_unet_common, default_dilation, default_growth, default_hidden, default_kernel,
    default_pool, UnetCommon,
};
pub use config::{TuNetConfig, UnetChannels};

use candle_core::{Device, Module, Tensor};
use dlsia_ops::nn::{Activation, ConvTranspose};
use dlsia_ops::{conv_transpose, max_pool, ConvTransposeSpec, ParamStore};

use crate::blocks::{
    check_unet_input, level_sizes, min_size, output_padding, BlockStyle, Pass, UnetBlock,
};
use crate::error::Result;
use crate::network::Network;
use crate::topology::Topology;
use config::NET;

/// A tunable U-Net (see the [module documentation](self)).
#[derive(Debug, Clone)]
pub struct TuNet {
    cfg: TuNetConfig,
    store: ParamStore,
    /// `Encode_0 … Encode_{depth−2}`, then `Final_layer_{depth−1}`.
    encoders: Vec<UnetBlock>,
    /// `Decode_0 … Decode_{depth−2}`.
    decoders: Vec<UnetBlock>,
    /// `Step Up 0 … Step Up {depth−2}`.
    step_up: Vec<ConvTranspose>,
    final_act: Option<Activation>,
}

impl TuNet {
    /// Validates `cfg` and builds the network with f32 weights initialised like PyTorch's
    /// defaults from `seed`.
    pub fn new(cfg: &TuNetConfig, seed: u64, device: &Device) -> Result<Self> {
        Self::from_store(cfg, ParamStore::new(seed, device))
    }

    /// Validates `cfg` and builds the network in `store` (e.g. an f64 store for gradient checks).
    pub fn from_store(cfg: &TuNetConfig, store: ParamStore) -> Result<Self> {
        cfg.validate()?;
        let ch = cfg.channels()?;
        let d = cfg.depth;
        let k = cfg.maxpool_kernel_size;
        let nd = cfg.spatial_dims();
        let style = BlockStyle {
            nd,
            kernel: cfg.conv_kernel_size,
            norm: cfg.normalization,
            act: cfg.activation,
        };
        let root = store.root();
        let (mut encoders, mut decoders, mut step_up) = (vec![], vec![], vec![]);
        // Registration order of the original, so that the store lists keys as state_dict does.
        for i in 0..d {
            if i + 1 < d {
                encoders.push(UnetBlock::new(
                    &root.pp(format!("Encode_{i}")),
                    &style,
                    ch.enc_in[i],
                    ch.enc_mid[i],
                    ch.enc_out[i],
                    None,
                )?);
                let head = (i == 0).then_some(cfg.out_channels);
                decoders.push(UnetBlock::new(
                    &root.pp(format!("Decode_{i}")),
                    &style,
                    2 * ch.enc_out[i],
                    ch.enc_out[i],
                    ch.enc_mid[i],
                    head,
                )?);
                let up_in = if i + 2 == d {
                    ch.enc_out[d - 1]
                } else {
                    ch.enc_mid[i + 1]
                };
                step_up.push(ConvTranspose::new(
                    &root.pp(format!("Step Up {i}")),
                    up_in,
                    ch.enc_out[i],
                    &vec![k; nd],
                    ConvTransposeSpec::uniform(nd, k, 0, 0, 1),
                    true,
                )?);
            } else {
                encoders.push(UnetBlock::new(
                    &root.pp(format!("Final_layer_{i}")),
                    &style,
                    ch.enc_in[i],
                    ch.enc_mid[i],
                    ch.enc_out[i],
                    None,
                )?);
            }
        }
        Ok(TuNet {
            cfg: cfg.clone(),
            store,
            encoders,
            decoders,
            step_up,
            final_act: cfg.final_activation.map(|f| f.layer()),
        })
    }

    /// The configuration the network was built from.
    pub fn config(&self) -> &TuNetConfig {
        &self.cfg
    }

    /// Upsamples `x` from level `i + 1` to the spatial size `target` of level `i`.
    fn step_up(&self, i: usize, x: &Tensor, target: &[usize], from: &[usize]) -> Result<Tensor> {
        let k = self.cfg.maxpool_kernel_size;
        let layer = &self.step_up[i];
        let mut spec = ConvTransposeSpec::uniform(self.cfg.spatial_dims(), k, 0, 0, 1);
        spec.output_padding = output_padding(target, from, k);
        Ok(conv_transpose(x, layer.weight(), layer.bias(), &spec)?)
    }
}

impl TuNet {
    fn run(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        self.check_input(x.dims())?;
        let d = self.cfg.depth;
        let k = self.cfg.maxpool_kernel_size;
        let nd = self.cfg.spatial_dims();
        let sizes = level_sizes(&x.dims()[2..], d, k);
        let mut skips = Vec::with_capacity(d - 1);
        let mut h = pass.keep(x.clone());
        for enc in &self.encoders[..d - 1] {
            let e = enc.forward(&h, pass)?;
            h = pass.keep(max_pool(&e, &vec![k; nd], &vec![k; nd], &vec![0; nd])?);
            skips.push(e);
        }
        h = self.encoders[d - 1].forward(&h, pass)?;
        for i in (0..d - 1).rev() {
            let up = pass.keep(self.step_up(i, &h, &sizes[i], &sizes[i + 1])?);
            let skip = skips.pop().expect("one skip per level");
            let cat = pass.keep(Tensor::cat(&[&skip, &up], 1)?);
            drop((skip, up));
            h = self.decoders[i].forward(&cat, pass)?;
        }
        Ok(match &self.final_act {
            Some(a) => pass.keep(a.forward(&h)?),
            None => h,
        })
    }
}

impl Network for TuNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.run(x, Pass::of(train))
    }

    fn predict(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, Pass::Infer)
    }

    fn topology(&self) -> Topology {
        Topology::TuNet(self.cfg.clone())
    }

    fn params(&self) -> &ParamStore {
        &self.store
    }

    fn spatial_dims(&self) -> usize {
        self.cfg.spatial_dims()
    }

    fn in_channels(&self) -> usize {
        self.cfg.in_channels
    }

    fn out_channels(&self) -> usize {
        self.cfg.out_channels
    }

    fn check_input(&self, shape: &[usize]) -> Result<()> {
        let (k, d) = (self.cfg.maxpool_kernel_size, self.cfg.depth);
        check_unet_input(
            NET,
            shape,
            self.spatial_dims(),
            self.cfg.in_channels,
            min_size(k, d - 1),
            &format!("{} max-poolings by {k}", d - 1),
        )
    }
}
