//! TUNet3+: dlsia's U-Net3+ with full-scale skip connections, 2-D and 3-D, weight-compatible
//! with `dlsia.core.networks.tunet3plus`.
//!
//! The encoder is TUNet's (`Encode_i`, `Final_layer_{depth−1}`). Every decoder level `out`
//! concatenates one skip connection `Skip_connection_{in}_to_{out}` from each level `in`:
//! the encoder output of a shallower or equal level (max-pooled by `pool^(out−in)`), the
//! bottleneck, or an already built deeper decoder tensor (upsampled to level `out`'s size), each
//! squeezed to `carryover` channels by `conv → [norm] → [act]`. `Decode_0` turns the level-0
//! tensor into the output.
//!
//! Differences from the original, both for inputs the original cannot take:
//! * upsampling sizes and transposed-convolution output paddings come from the actual input,
//!   not from `image_shape`, so any size the depth allows runs;
//! * `Decode_1 … Decode_{depth−2}` are built by dlsia but never used in its forward pass (their
//!   gradients are `None`): this port does not build them, ignores those tensors when loading a
//!   dlsia `state_dict`, and reports their size in [`TuNet3Plus::dlsia_unused_parameters`] so
//!   that `num_parameters() + dlsia_unused_parameters()` equals dlsia's count.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use dlsia_nets::{Network, TuNet3Plus, TuNet3PlusConfig};
//!
//! let net = TuNet3Plus::new(&TuNet3PlusConfig::new(&[32, 32], 1, 2, 3, 4), 0, &Device::Cpu)?;
//! assert_eq!(net.num_parameters() + net.dlsia_unused_parameters(), 8110); // dlsia's count
//! let x = Tensor::zeros((1, 1, 24, 19), DType::F32, &Device::Cpu)?;
//! assert_eq!(net.forward_t(&x, false)?.dims(), &[1, 2, 24, 19]);
//! # Ok::<(), dlsia_nets::Error>(())
//! ```

mod config;

pub use config::{TuNet3PlusConfig, Upsampling};

use candle_core::{Device, Module, Tensor};
use dlsia_ops::nn::{Activation, ConvTranspose};
use dlsia_ops::{conv_transpose, max_pool, upsample_nearest, ConvTransposeSpec, ParamStore};

use crate::blocks::{
    check_unet_input, level_sizes, min_size, output_padding, BlockStyle, ConvNormAct, Pass,
    SeqIndex, UnetBlock,
};
use crate::error::Result;
use crate::network::Network;
use crate::topology::Topology;
use config::NET;

/// How one skip connection changes scale.
#[derive(Debug, Clone)]
enum Resample {
    /// Same level: no resampling.
    Identity,
    /// Max pooling with kernel = stride = the factor.
    Pool(usize),
    /// Nearest-neighbour resize to the target level's size.
    Nearest,
    /// Transposed convolution with kernel = stride = the factor.
    ConvT(ConvTranspose, usize),
}

/// `Skip_connection_{in}_to_{out}`: `[resample] → conv → [norm] → [act]`.
#[derive(Debug, Clone)]
struct Skip {
    resample: Resample,
    squeeze: ConvNormAct,
}

impl Skip {
    fn forward(&self, x: &Tensor, target: &[usize], pass: Pass) -> Result<Tensor> {
        let nd = target.len();
        let y = match &self.resample {
            Resample::Identity => x.clone(),
            Resample::Pool(f) => max_pool(x, &vec![*f; nd], &vec![*f; nd], &vec![0; nd])?,
            Resample::Nearest => upsample_nearest(x, target)?,
            Resample::ConvT(layer, f) => {
                let mut spec = ConvTransposeSpec::uniform(nd, *f, 0, 0, 1);
                spec.output_padding = output_padding(target, &x.dims()[2..], *f);
                conv_transpose(x, layer.weight(), layer.bias(), &spec)?
            }
        };
        self.squeeze.forward(&pass.keep(y), pass)
    }
}

/// A U-Net3+ (see the [module documentation](self)).
#[derive(Debug, Clone)]
pub struct TuNet3Plus {
    cfg: TuNet3PlusConfig,
    store: ParamStore,
    /// `Encode_0 … Encode_{depth−2}`, then `Final_layer_{depth−1}`.
    encoders: Vec<UnetBlock>,
    /// `Decode_0`, the output block.
    decode0: UnetBlock,
    /// `skips[in][out]`.
    skips: Vec<Vec<Skip>>,
    final_act: Option<Activation>,
}

impl TuNet3Plus {
    /// Validates `cfg` and builds the network with f32 weights initialised from `seed`.
    pub fn new(cfg: &TuNet3PlusConfig, seed: u64, device: &Device) -> Result<Self> {
        Self::from_store(cfg, ParamStore::new(seed, device))
    }

    /// Validates `cfg` and builds the network in `store`.
    pub fn from_store(cfg: &TuNet3PlusConfig, store: ParamStore) -> Result<Self> {
        cfg.validate()?;
        let ch = cfg.channels()?;
        let (d, k, nd, cc) = (
            cfg.depth,
            cfg.maxpool_kernel_size,
            cfg.spatial_dims(),
            cfg.carryover(),
        );
        let style = BlockStyle {
            nd,
            kernel: cfg.conv_kernel_size,
            norm: cfg.normalization,
            act: cfg.activation,
        };
        let root = store.root();
        let mut encoders = vec![];
        let mut decode0 = None;
        for i in 0..d {
            let name = if i + 1 < d {
                format!("Encode_{i}")
            } else {
                format!("Final_layer_{i}")
            };
            encoders.push(UnetBlock::new(
                &root.pp(name),
                &style,
                ch.enc_in[i],
                ch.enc_mid[i],
                ch.enc_out[i],
                None,
            )?);
            if i == 0 {
                decode0 = Some(UnetBlock::new(
                    &root.pp("Decode_0"),
                    &style,
                    cc * d,
                    cc,
                    cc,
                    Some(cfg.out_channels),
                )?);
            }
        }
        let mut skips = vec![];
        for from in 0..d {
            let mut row = vec![];
            for to in 0..d - 1 {
                let pb = root.pp(format!("Skip_connection_{from}_to_{to}"));
                let mut idx = SeqIndex::default();
                let cin = if from <= to || from + 1 == d {
                    ch.enc_out[from]
                } else {
                    cc * d
                };
                let factor = k.pow(from.abs_diff(to) as u32);
                let resample = if from == to {
                    Resample::Identity
                } else if from < to {
                    idx.next();
                    Resample::Pool(factor)
                } else {
                    match cfg.upsampling {
                        Upsampling::Nearest => {
                            idx.next();
                            Resample::Nearest
                        }
                        Upsampling::ConvTranspose => Resample::ConvT(
                            ConvTranspose::new(
                                &pb.pp(idx.next()),
                                cin,
                                cin,
                                &vec![factor; nd],
                                ConvTransposeSpec::uniform(nd, factor, 0, 0, 1),
                                true,
                            )?,
                            factor,
                        ),
                    }
                };
                let squeeze = ConvNormAct::new(&pb, &mut idx, &style, cin, cc)?;
                row.push(Skip { resample, squeeze });
            }
            skips.push(row);
        }
        Ok(TuNet3Plus {
            cfg: cfg.clone(),
            store,
            encoders,
            decode0: decode0.expect("depth ≥ 2 builds Decode_0"),
            skips,
            final_act: cfg.final_activation.map(|f| f.layer()),
        })
    }

    /// The configuration the network was built from.
    pub fn config(&self) -> &TuNet3PlusConfig {
        &self.cfg
    }

    /// Trainable scalars of dlsia's unused `Decode_1 … Decode_{depth−2}` blocks, which this port
    /// does not build.
    pub fn dlsia_unused_parameters(&self) -> usize {
        self.cfg.dlsia_unused_parameters()
    }
}

impl TuNet3Plus {
    fn run(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        self.check_input(x.dims())?;
        let (d, k, nd) = (
            self.cfg.depth,
            self.cfg.maxpool_kernel_size,
            self.cfg.spatial_dims(),
        );
        let sizes = level_sizes(&x.dims()[2..], d, k);
        let mut enc = Vec::with_capacity(d - 1);
        let mut h = pass.keep(x.clone());
        for block in &self.encoders[..d - 1] {
            let e = block.forward(&h, pass)?;
            h = pass.keep(max_pool(&e, &vec![k; nd], &vec![k; nd], &vec![0; nd])?);
            enc.push(e);
        }
        // dec[l] for l > out: the decoder tensor of level l (the bottleneck at depth − 1).
        let mut dec: Vec<Option<Tensor>> = vec![None; d];
        dec[d - 1] = Some(self.encoders[d - 1].forward(&h, pass)?);
        for to in (0..d - 1).rev() {
            let parts = (0..d)
                .map(|from| {
                    let src = if from <= to {
                        &enc[from]
                    } else {
                        dec[from].as_ref().expect("deeper levels are built first")
                    };
                    self.skips[from][to].forward(src, &sizes[to], pass)
                })
                .collect::<Result<Vec<_>>>()?;
            dec[to] = Some(pass.keep(Tensor::cat(&parts, 1)?));
        }
        let y = self
            .decode0
            .forward(dec[0].as_ref().expect("level 0 is built"), pass)?;
        Ok(match &self.final_act {
            Some(a) => pass.keep(a.forward(&y)?),
            None => y,
        })
    }
}

impl Network for TuNet3Plus {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.run(x, Pass::of(train))
    }

    fn predict(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, Pass::Infer)
    }

    fn topology(&self) -> Topology {
        Topology::TuNet3Plus(self.cfg.clone())
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

/// Name prefixes of dlsia's unused `Decode_1 … Decode_{depth−2}` tensors, skipped on load.
pub(crate) fn dlsia_unused_prefixes(cfg: &TuNet3PlusConfig) -> Vec<String> {
    (1..cfg.depth.saturating_sub(1))
        .map(|i| format!("Decode_{i}."))
        .collect()
}
