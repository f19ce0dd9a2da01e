//! The lean MSDNet: a mixed-scale dense network whose memory grows linearly with depth.
//!
//! All layers are one fused operation ([`dlsia_ops::msd::MsdBlock`]): the input and every new
//! channel live in one buffer that the layers append to, the backward pass sweeps it in reverse
//! with one gradient buffer, and a 1×1 head maps the buffer to the outputs. A 100-layer network
//! on 4×1×256² trains in about a tenth of the original's memory traffic and a small fraction of
//! its memory (see `BENCHMARKS.md`).
//!
//! Tensors (safetensors names): `msd.weight` (all layer kernels packed, unit after unit, each in
//! PyTorch's `(1, C_in, k, k[, k])` order), `msd.bias` (one per new channel), with BatchNorm
//! `msd.norm.{weight, bias, running_mean, running_var, num_batches_tracked}` (one entry per new
//! channel), and the head `head.weight` `(out, C)`, `head.bias` `(out,)`.
//! [`convert`] maps them to and from a dlsia `MixedScaleDenseNetwork` `state_dict` where the two
//! networks compute the same function.
//!
//! ```
//! use candle_core::{Device, Tensor};
//! use dlsia_nets::{LeanMsdConfig, LeanMsdNet, Network};
//!
//! let net = LeanMsdNet::new(&LeanMsdConfig::new(2, 1, 2, 20, 1, 5), 0, &Device::Cpu)?;
//! let x = Tensor::rand(0f32, 1., (2, 1, 32, 24), &Device::Cpu)?;
//! assert_eq!(net.forward_t(&x, true)?.dims(), &[2, 2, 32, 24]);
//! assert_eq!(net.predict(&x)?.dims(), &[2, 2, 32, 24]); // no gradient tracking
//! # Ok::<(), dlsia_nets::Error>(())
//! ```

mod config;
pub mod convert;

pub use config::LeanMsdConfig;

use candle_core::{DType, Device, Module, Tensor, Var};
use dlsia_ops::msd::{MsdBlock, MsdStats};
use dlsia_ops::{Init, ParamStore};

use crate::choices::Norm;
use crate::error::{input_error, Result};
use crate::network::Network;
use crate::topology::Topology;
use config::NET;

/// Per-new-channel BatchNorm tensors.
#[derive(Debug, Clone)]
struct NormTensors {
    gamma: Tensor,
    beta: Tensor,
    running_mean: Var,
    running_var: Var,
    num_batches_tracked: Var,
}

/// A mixed-scale dense network built on the fused block. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct LeanMsdNet {
    cfg: LeanMsdConfig,
    block: MsdBlock,
    store: ParamStore,
    weight: Tensor,
    bias: Tensor,
    norm: Option<NormTensors>,
    head_weight: Tensor,
    head_bias: Tensor,
}

/// Values uniform on `±1/√fan_in` for each `(length, fan_in)` segment, drawn from `seed`.
fn kaiming_segments(segments: &[(usize, usize)], seed: u64, dev: &Device) -> Result<Tensor> {
    let scratch = ParamStore::new(seed, dev);
    let parts = segments
        .iter()
        .enumerate()
        .map(|(i, &(len, fan_in))| {
            Ok(scratch
                .root()
                .param(&i.to_string(), len, Init::kaiming_uniform(fan_in))?)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&parts, 0)?)
}

impl LeanMsdNet {
    /// Builds the network with f32 weights drawn like PyTorch's defaults for the equivalent
    /// convolutions (uniform on `±1/√fan_in` per layer kernel, bias and head) from `seed`.
    pub fn new(cfg: &LeanMsdConfig, seed: u64, device: &Device) -> Result<Self> {
        cfg.validate()?;
        let block = MsdBlock::new(cfg.block_spec())?;
        let store = ParamStore::new(seed, device);
        let root = store.root();
        let msd = root.pp("msd");
        let units = block.units();
        let taps = block.taps();
        let weight = msd.param("weight", block.weight_len(), Init::Const(0.0))?;
        let bias = msd.param("bias", units, Init::Const(0.0))?;
        let (w_seg, b_seg): (Vec<_>, Vec<_>) = (0..units)
            .map(|u| {
                let fan = block.unit_in_channels(u) * taps;
                ((block.unit_weights(u).len(), fan), (1, fan))
            })
            .unzip();
        let set = |name: &str, t: Tensor| -> Result<()> {
            store
                .get(name)
                .expect("created above")
                .set(&t)
                .map_err(Into::into)
        };
        set(
            "msd.weight",
            kaiming_segments(&w_seg, store.next_seed(), device)?,
        )?;
        set(
            "msd.bias",
            kaiming_segments(&b_seg, store.next_seed(), device)?,
        )?;
        let norm = if cfg.normalization == Norm::Batch {
            let nb = msd.pp("norm");
            Some(NormTensors {
                gamma: nb.param("weight", units, Init::Const(1.0))?,
                beta: nb.param("bias", units, Init::Const(0.0))?,
                running_mean: nb.buffer("running_mean", units, Init::Const(0.0))?,
                running_var: nb.buffer("running_var", units, Init::Const(1.0))?,
                num_batches_tracked: nb.int_buffer("num_batches_tracked", (), 0)?,
            })
        } else {
            None
        };
        let c = cfg.buffer_channels();
        let head = root.pp("head");
        let head_weight = head.param("weight", (cfg.out_channels, c), Init::kaiming_uniform(c))?;
        let head_bias = head.param("bias", cfg.out_channels, Init::kaiming_uniform(c))?;
        Ok(LeanMsdNet {
            cfg: cfg.clone(),
            block,
            store,
            weight,
            bias,
            norm,
            head_weight,
            head_bias,
        })
    }

    /// The hyperparameters.
    pub fn config(&self) -> &LeanMsdConfig {
        &self.cfg
    }

    /// The fused block (dilations, packed-weight layout).
    pub fn block(&self) -> &MsdBlock {
        &self.block
    }

    /// Sets the layers processed per sweep over the feature buffer (a speed setting; results
    /// agree up to rounding).
    pub fn set_layers_per_pass(&mut self, lpp: usize) {
        self.block = self.block.clone().with_layers_per_pass(lpp);
    }

    /// Inference without gradient tracking: only the feature buffer is allocated, and it is
    /// freed as soon as the head has read it. Uses running statistics.
    pub fn predict(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, false, false)
    }

    fn run(&self, x: &Tensor, train: bool, track: bool) -> Result<Tensor> {
        self.check_input(x.dims())?;
        let x = if self.cfg.relu_input {
            x.relu()?
        } else {
            x.clone()
        };
        let (w, b) = if track {
            (self.weight.clone(), self.bias.clone())
        } else {
            (self.weight.detach(), self.bias.detach())
        };
        let buf = match &self.norm {
            None if track => self.block.forward(&x, &w, &b)?,
            None => self.block.infer(&x, &w, &b)?,
            Some(nt) => {
                let p = Tensor::stack(&[&b, &nt.gamma, &nt.beta], 0)?;
                let p = if track { p } else { p.detach() };
                let mean = nt
                    .running_mean
                    .as_tensor()
                    .to_dtype(DType::F64)?
                    .to_vec1()?;
                let var = nt.running_var.as_tensor().to_dtype(DType::F64)?.to_vec1()?;
                let stats = if train {
                    MsdStats::Batch
                } else {
                    MsdStats::Running {
                        mean: &mean,
                        var: &var,
                    }
                };
                let (buf, used) = if track {
                    self.block.forward_normalized(&x, &w, &p, stats)?
                } else {
                    self.block.infer_normalized(&x, &w, &p, stats)?
                };
                if train {
                    self.update_running(nt, &used)?;
                }
                buf
            }
        };
        let y = self.head(&buf, track)?;
        Ok(match self.cfg.final_activation {
            Some(f) => f.layer().forward(&y)?,
            None => y,
        })
    }

    /// The 1×1 head as a matrix product on `(N, C, pixels)`.
    fn head(&self, buf: &Tensor, track: bool) -> Result<Tensor> {
        let d = buf.dims().to_vec();
        let (n, c) = (d[0], d[1]);
        let pixels: usize = d[2..].iter().product();
        let (w, b) = if track {
            (self.head_weight.clone(), self.head_bias.clone())
        } else {
            (self.head_weight.detach(), self.head_bias.detach())
        };
        let out = self.cfg.out_channels;
        let y = w
            .broadcast_left(n)?
            .matmul(&buf.reshape((n, c, pixels))?)?
            .broadcast_add(&b.reshape((1, out, 1))?)?;
        let mut shape = vec![n, out];
        shape.extend_from_slice(&d[2..]);
        Ok(y.reshape(shape)?)
    }

    /// PyTorch's running-statistics update from the batch statistics of one forward pass.
    fn update_running(&self, nt: &NormTensors, s: &dlsia_ops::msd::BatchStats) -> Result<()> {
        let nb = nt
            .num_batches_tracked
            .as_tensor()
            .to_dtype(DType::I64)?
            .to_scalar::<i64>()?
            + 1;
        nt.num_batches_tracked
            .set(&Tensor::new(nb, nt.num_batches_tracked.device())?)?;
        let f = self
            .block
            .spec()
            .norm
            .and_then(|n| n.momentum)
            .unwrap_or(1.0 / nb as f64);
        let unbias = if s.count > 1 {
            s.count as f64 / (s.count - 1) as f64
        } else {
            1.0
        };
        let upd = |v: &Var, batch: Vec<f64>| -> Result<()> {
            let dev = v.device().clone();
            let b = Tensor::from_vec(batch, v.dims(), &dev)?.to_dtype(v.dtype())?;
            v.set(&((v.as_tensor() * (1.0 - f))? + (b * f)?)?)?;
            Ok(())
        };
        upd(&nt.running_mean, s.mean.clone())?;
        upd(&nt.running_var, s.var.iter().map(|v| v * unbias).collect())
    }
}

impl Network for LeanMsdNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.run(x, train, true)
    }
    fn topology(&self) -> Topology {
        Topology::LeanMsdNet(self.cfg.clone())
    }
    fn params(&self) -> &ParamStore {
        &self.store
    }
    fn spatial_dims(&self) -> usize {
        self.cfg.spatial_dims
    }
    fn in_channels(&self) -> usize {
        self.cfg.in_channels
    }
    fn out_channels(&self) -> usize {
        self.cfg.out_channels
    }
    fn check_input(&self, shape: &[usize]) -> Result<()> {
        let nd = self.cfg.spatial_dims;
        if shape.len() != nd + 2 || shape[1] != self.cfg.in_channels || shape[0] == 0 {
            return Err(input_error(
                NET,
                shape,
                format!(
                    "expected (N ≥ 1, {}, {}) for a {nd}-D network",
                    self.cfg.in_channels,
                    if nd == 2 { "H, W" } else { "D, H, W" }
                ),
            ));
        }
        self.block
            .spec()
            .check_spatial(&shape[2..])
            .map_err(|e| input_error(NET, shape, e.to_string()))
    }
}
