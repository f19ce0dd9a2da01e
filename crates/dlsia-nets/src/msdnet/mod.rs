//! MSDNet: dlsia's mixed-scale dense network (`msdnet.MixedScaleDenseNetwork`), 1-D, 2-D and 3-D,
//! weight-compatible with the original and computing exactly its function, quirks included
//! (dlsia.md §2.1):
//!
//! * the activation (when it is a single module) and the `final_layer` are also applied to the
//!   raw input, in that order, before everything else;
//! * every layer concatenates one dilated `k×k` convolution per new channel to the stack, and
//!   then applies the activation and the normalisation to the **whole** stack, so carried
//!   channels are re-activated and re-normalised after every layer;
//! * optional dropouts (initial, after every layer, before the final 1×1 convolution).
//!
//! Two implementations compute this function:
//!
//! * the *stack operation* (`stack` module): for ReLU or no activation, BatchNorm or no
//!   normalisation, zero padding and no hidden dropout in training (the defaults, and the paper's
//!   networks). It stores the raw maps only and recomputes every activation, so memory grows
//!   linearly with depth, and it fuses the whole-stack activation and normalisation into the
//!   passes the convolutions need anyway;
//! * the *reference* composition of layers (`cat`, activation, normalisation per layer with
//!   autograd), for every other configuration, exactly as the original is built.
//!
//! [`MsdNet::forward_reference`] runs the reference on any configuration (the tests check that
//! both agree in values and gradients).
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use dlsia_nets::{MsdNet, MsdNetConfig, Network};
//!
//! let net = MsdNet::new(&MsdNetConfig::new(1, 2, 3, 2, 3), 0, &Device::Cpu)?;
//! assert_eq!(net.num_parameters(), 214); // dlsia's count (dlsia.md §2.1)
//! let x = Tensor::rand(0f32, 1., (2, 1, 12, 9), &Device::Cpu)?;
//! let y = net.forward_t(&x, true)?;
//! assert_eq!(y.dims(), &[2, 2, 12, 9]);
//! assert!(net.params().get("normalization_2.running_mean").is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod stack;

pub use config::{CustomDilations, MsdActivation, MsdNetConfig, MsdPlan};

use std::sync::Arc;

use candle_core::{DType, Device, Module, ModuleT, Tensor, Var};
use dlsia_ops::nn::{BatchNorm, Conv, Dropout};
use dlsia_ops::{ConvSpec, PaddingMode, ParamStore};

use crate::choices::{Act, Norm, NormLayer};
use crate::error::{input_error, Result};
use crate::network::Network;
use crate::topology::Topology;
use config::NET;
use stack::{StackNorm, StackOp, StackSpec};

/// One layer's convolutions `layer_i.conv_j`.
#[derive(Debug, Clone)]
struct MsdLayer {
    convs: Vec<Conv>,
}

/// dlsia's three dropouts.
#[derive(Debug, Clone)]
struct Dropouts {
    initial: Dropout,
    hidden: Vec<Dropout>,
    last: Dropout,
}

/// A mixed-scale dense network (see the [module documentation](self)).
#[derive(Debug, Clone)]
pub struct MsdNet {
    cfg: MsdNetConfig,
    plan: MsdPlan,
    store: ParamStore,
    layers: Vec<MsdLayer>,
    norms: Vec<Option<NormLayer>>,
    final_conv: Conv,
    dropouts: Option<Dropouts>,
    /// The stack operation's structure, when the configuration allows it.
    stack: Option<Arc<StackSpec>>,
}

impl MsdNet {
    /// Validates `cfg` and builds the network with f32 weights initialised like PyTorch's
    /// defaults from `seed`.
    pub fn new(cfg: &MsdNetConfig, seed: u64, device: &Device) -> Result<Self> {
        Self::from_store(cfg, ParamStore::new(seed, device))
    }

    /// Validates `cfg` and builds the network in `store` (e.g. an f64 store for gradient checks).
    pub fn from_store(cfg: &MsdNetConfig, store: ParamStore) -> Result<Self> {
        let plan = cfg.plan()?;
        let nd = cfg.spatial_dims;
        let k = cfg.conv_kernel_size;
        let root = store.root();
        let mut layers = Vec::with_capacity(plan.layers());
        let mut norms = Vec::with_capacity(plan.layers());
        // Registration order of the original: layer_i's convolutions, then normalization_i.
        for (i, dil) in plan.dilations.iter().enumerate() {
            let lp = root.pp(format!("layer_{i}"));
            let convs = dil
                .iter()
                .enumerate()
                .map(|(j, &d)| {
                    let spec = ConvSpec::uniform(nd, 1, config::same_padding(k, d), d)
                        .with_padding_mode(cfg.padding_mode);
                    Conv::new(
                        &lp.pp(format!("conv_{j}")),
                        plan.channels[i],
                        1,
                        &vec![k; nd],
                        spec,
                        true,
                    )
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            layers.push(MsdLayer { convs });
            norms.push(
                cfg.normalization
                    .layer(&root.pp(format!("normalization_{i}")), plan.channels[i + 1])?,
            );
        }
        let final_conv = Conv::new(
            &root.pp("final_convolution"),
            plan.total_channels(),
            cfg.out_channels,
            &vec![1; nd],
            ConvSpec::new(nd),
            true,
        )?;
        // Dropout seeds are drawn after every parameter, so weights do not depend on them.
        let dropouts = match cfg.dropout {
            Some([p0, p1, p2]) => Some(Dropouts {
                initial: Dropout::new(&root, p0)?,
                hidden: (0..plan.layers())
                    .map(|_| Dropout::new(&root, p1))
                    .collect::<std::result::Result<_, _>>()?,
                last: Dropout::new(&root, p2)?,
            }),
            None => None,
        };
        let stack = Self::stack_spec(cfg, &plan).map(Arc::new);
        Ok(MsdNet {
            cfg: cfg.clone(),
            plan,
            store,
            layers,
            norms,
            final_conv,
            dropouts,
            stack,
        })
    }

    /// The stack operation's structure, if the configuration is one it computes.
    fn stack_spec(cfg: &MsdNetConfig, plan: &MsdPlan) -> Option<StackSpec> {
        let relu = match cfg.activation {
            MsdActivation::One(Act::Relu) => true,
            MsdActivation::One(Act::None) => false,
            _ => return None,
        };
        let norm_eps = match cfg.normalization {
            Norm::Batch => Some(1e-5),
            Norm::None => None,
            _ => return None,
        };
        if cfg.padding_mode != PaddingMode::Zeros {
            return None;
        }
        Some(StackSpec {
            nd: cfg.spatial_dims,
            kernel: cfg.conv_kernel_size,
            dilations: plan.dilations.clone(),
            channels: plan.channels.clone(),
            relu,
            norm_eps,
        })
    }

    /// The configuration the network was built from.
    pub fn config(&self) -> &MsdNetConfig {
        &self.cfg
    }

    /// The layer plan (dilations and channel counts).
    pub fn plan(&self) -> &MsdPlan {
        &self.plan
    }

    /// Whether [`Network::forward_t`] in this mode runs the memory-lean stack operation (else
    /// the reference composition of layers).
    pub fn uses_stack_op(&self, train: bool) -> bool {
        let hidden_dropout = train && self.cfg.dropout.is_some_and(|p| p[1] > 0.0);
        self.stack.is_some() && !hidden_dropout && self.store.device().is_cpu()
    }

    /// The input processing dlsia applies before layer 0: the activation (single module), the
    /// final layer, then the initial dropout.
    fn prologue(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut h = x.clone();
        if let Some(a) = self.cfg.activation.on_input().and_then(|a| a.layer()) {
            h = a.forward(&h)?;
        }
        if let Some(f) = self.cfg.final_activation {
            h = f.layer().forward(&h)?;
        }
        if let Some(d) = &self.dropouts {
            h = d.initial.forward_t(&h, train)?;
        }
        Ok(h)
    }

    /// Final dropout, 1×1 convolution and final activation.
    fn epilogue(&self, h: &Tensor, train: bool) -> Result<Tensor> {
        let h = match &self.dropouts {
            Some(d) => d.last.forward_t(h, train)?,
            None => h.clone(),
        };
        let y = self.final_conv.forward(&h)?;
        Ok(match self.cfg.final_activation {
            Some(f) => f.layer().forward(&y)?,
            None => y,
        })
    }

    /// The network as the original composes it: per layer `cat` of the convolutions, dropout,
    /// activation(s) and normalisation of the whole stack, each an autograd operation. Memory
    /// grows with the square of the depth; [`Network::forward_t`] uses it only for
    /// configurations the stack operation does not cover.
    pub fn forward_reference(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.check_input(x.dims())?;
        let mut h = self.prologue(x, train)?;
        let acts: Vec<_> = self
            .cfg
            .activation
            .per_layer()
            .iter()
            .filter_map(Act::layer)
            .collect();
        for (i, layer) in self.layers.iter().enumerate() {
            let mut parts = vec![h.clone()];
            for c in &layer.convs {
                parts.push(c.forward(&h)?);
            }
            h = Tensor::cat(&parts, 1)?;
            if let Some(d) = &self.dropouts {
                h = d.hidden[i].forward_t(&h, train)?;
            }
            for a in &acts {
                h = a.forward(&h)?;
            }
            if let Some(n) = &self.norms[i] {
                h = n.forward_t(&h, train)?;
            }
        }
        self.epilogue(&h, train)
    }

    /// The stack operation's packed weights (every convolution's weight, then its bias).
    fn packed_weights(&self) -> Result<Tensor> {
        let mut parts = Vec::new();
        for l in &self.layers {
            for c in &l.convs {
                parts.push(c.weight().flatten_all()?);
                if let Some(b) = c.bias() {
                    parts.push(b.clone());
                }
            }
        }
        Ok(Tensor::cat(&parts, 0)?)
    }

    /// The batch norms of every layer (only called when the normalisation is BatchNorm).
    fn batch_norms(&self) -> Vec<&BatchNorm> {
        self.norms
            .iter()
            .filter_map(|n| match n {
                Some(NormLayer::Batch(b)) => Some(b),
                _ => None,
            })
            .collect()
    }

    fn forward_stack(&self, spec: &Arc<StackSpec>, x: &Tensor, train: bool) -> Result<Tensor> {
        let h = self.prologue(x, train)?;
        let w = self.packed_weights()?;
        let bns = self.batch_norms();
        let dtype = h.dtype();
        let (params, norm) = if spec.norm_eps.is_some() {
            let mut parts = Vec::with_capacity(2 * bns.len());
            for i in 0..bns.len() {
                for name in ["weight", "bias"] {
                    let v = self
                        .store
                        .get(&format!("normalization_{i}.{name}"))
                        .ok_or_else(|| {
                            crate::error::config_error(
                                NET,
                                format!("normalization_{i} has no affine parameter `{name}`"),
                            )
                        })?;
                    parts.push(v.as_tensor().clone());
                }
            }
            let norm = if train {
                StackNorm::Batch
            } else {
                let stats = bns
                    .iter()
                    .map(|bn| -> Result<(Vec<f64>, Vec<f64>)> {
                        let v = |t: Option<&Tensor>| -> Result<Vec<f64>> {
                            Ok(t.map(|t| t.to_dtype(DType::F64)?.to_vec1::<f64>())
                                .transpose()?
                                .unwrap_or_default())
                        };
                        Ok((v(bn.running_mean())?, v(bn.running_var())?))
                    })
                    .collect::<Result<Vec<_>>>()?;
                StackNorm::Running(Arc::new(stats))
            };
            (Tensor::cat(&parts, 0)?, norm)
        } else {
            (Tensor::zeros(1, dtype, h.device())?, StackNorm::Batch)
        };
        let (stack, stats) = StackOp::new(spec.clone(), norm).apply(&h, &w, &params)?;
        if train && spec.norm_eps.is_some() {
            let count = (h.elem_count() / h.dim(1)?) as f64;
            for (i, (mean, var)) in stats.iter().enumerate() {
                update_running(&self.store, i, mean, var, count)?;
            }
        }
        self.epilogue(&stack, train)
    }
}

/// PyTorch's running-statistics update of `normalization_{i}` (momentum 0.1, unbiased variance).
fn update_running(
    store: &ParamStore,
    i: usize,
    mean: &[f64],
    var: &[f64],
    count: f64,
) -> Result<()> {
    let get = |n: &str| store.get(&format!("normalization_{i}.{n}"));
    let (Some(rm), Some(rv), Some(nb)) = (
        get("running_mean"),
        get("running_var"),
        get("num_batches_tracked"),
    ) else {
        return Ok(());
    };
    let momentum = 0.1;
    let unbiased = if count > 1.0 {
        count / (count - 1.0)
    } else {
        1.0
    };
    let upd = |r: &Var, batch: &[f64], f: f64| -> Result<()> {
        let old = r.as_tensor().to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let new: Vec<f64> = old
            .iter()
            .zip(batch)
            .map(|(o, b)| (1.0 - momentum) * o + momentum * b * f)
            .collect();
        let t = Tensor::from_vec(new, old.len(), r.device())?.to_dtype(r.dtype())?;
        Ok(r.set(&t)?)
    };
    upd(&rm, mean, 1.0)?;
    upd(&rv, var, unbiased)?;
    let n = nb.as_tensor().to_dtype(DType::I64)?.to_scalar::<i64>()? + 1;
    nb.set(&Tensor::new(n, nb.device())?)?;
    Ok(())
}

impl Network for MsdNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        match (&self.stack, self.uses_stack_op(train)) {
            (Some(spec), true) => {
                self.check_input(x.dims())?;
                self.forward_stack(spec, x, train)
            }
            _ => self.forward_reference(x, train),
        }
    }

    fn topology(&self) -> Topology {
        Topology::MsdNet(self.cfg.clone())
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
        if shape.len() != nd + 2 {
            return Err(input_error(
                NET,
                shape,
                format!("expected rank {} (N, C and {nd} spatial axes)", nd + 2),
            ));
        }
        if shape[0] == 0 || shape[2..].contains(&0) {
            return Err(input_error(
                NET,
                shape,
                "the batch and every spatial size must be non-empty",
            ));
        }
        if shape[1] != self.cfg.in_channels {
            return Err(input_error(
                NET,
                shape,
                format!(
                    "expected {} input channels, got {}",
                    self.cfg.in_channels, shape[1]
                ),
            ));
        }
        let pad = (self.cfg.conv_kernel_size - 1) * self.plan.max_dilation() / 2;
        let limit = self
            .cfg
            .padding_mode
            .max_padding(*shape[2..].iter().min().unwrap_or(&0));
        if pad > limit {
            return Err(input_error(
                NET,
                shape,
                format!(
                    "{} padding of {pad} (dilation {}) needs every spatial size to be at least {}",
                    self.cfg.padding_mode.as_str(),
                    self.plan.max_dilation(),
                    match self.cfg.padding_mode {
                        PaddingMode::Reflect => pad + 1,
                        _ => pad,
                    }
                ),
            ));
        }
        Ok(())
    }
}
