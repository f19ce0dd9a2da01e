//! SMSNet: dlsia's sparse mixed-scale network (`smsnet.SMSNet`, `sms3d.SMSNet3D`,
//! `sms1d.SMSNet1D`), built from a [`dlsia_graph::SmsGraph`] exactly as the original builds it
//! (dlsia.md §2.6.2, §2.7):
//!
//! * one module `Edge_{u}_{v}` per edge, registered in action order (nodes in the graph's
//!   iteration order, each node's edges in adjacency order): a `k×k` convolution with reflect
//!   padding + BatchNorm *without running statistics* (batch statistics in training and
//!   evaluation alike) + ReLU, or a bias-free 1×1 convolution on edges into the output node —
//!   which edges are which differs between 2-D and 1-D/3-D ([`dlsia_graph::edge_op`]);
//! * edges between nodes of different size powers are strided convolutions (downsampling) or
//!   transposed convolutions (upsampling, zero padding), with the original's strides and output
//!   paddings, computed here from the actual input size;
//! * every edge's output is appended to its target node's stack in action order (which is why
//!   the node order matters), and `Last_Action` maps the output node's stack to the result.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use dlsia_graph::{SmsGraphParams, SpatialDims};
//! use dlsia_nets::{Network, SmsNet, SmsNetConfig};
//!
//! let mut p = SmsGraphParams::new(5, vec![1, 2]);
//! p.hidden_out_channels = vec![2];
//! let cfg = SmsNetConfig::new(SpatialDims::Two, 1, 3, p.check()?.sample(1));
//! let net = SmsNet::new(&cfg, 0, &Device::Cpu)?;
//! assert_eq!(net.num_parameters(), cfg.num_parameters()?);
//! let y = net.forward_t(&Tensor::ones((2, 1, 12, 10), DType::F32, &Device::Cpu)?, true)?;
//! assert_eq!(y.dims(), &[2, 3, 12, 10]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod ensemble;

pub use config::SmsNetConfig;
pub use ensemble::{SmsEnsemble, WEIGHT_SALT};

use candle_core::{Device, Module, ModuleT, Tensor};
use dlsia_graph::{EdgeOp, LastAction, SpatialDims};
use dlsia_ops::nn::{Activation, BatchNorm, BatchNormConfig};
use dlsia_ops::{
    conv, conv_transpose, ConvSpec, ConvTransposeSpec, Init, PaddingMode, ParamBuilder, ParamStore,
};

use crate::error::{config_error, input_error, Result};
use crate::network::Network;
use crate::topology::Topology;
use config::NET;

/// How an edge changes the resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scale {
    /// Stride-`s` convolution (`s = 1`: same size).
    Down(usize),
    /// Transposed convolution with stride `s`.
    Up(usize),
}

/// A convolution (or transposed convolution) with its weight laid out as PyTorch's.
#[derive(Debug, Clone)]
struct EdgeConv {
    weight: Tensor,
    bias: Option<Tensor>,
    kernel: usize,
    dilation: usize,
    scale: Scale,
    reflect: bool,
}

impl EdgeConv {
    #[allow(clippy::too_many_arguments)]
    fn new(
        pb: &ParamBuilder,
        nd: usize,
        cin: usize,
        cout: usize,
        kernel: usize,
        dilation: usize,
        scale: Scale,
        bias: bool,
        reflect: bool,
    ) -> Result<Self> {
        let kvol = kernel.pow(nd as u32);
        let (shape, fan_in) = match scale {
            Scale::Down(_) => ([vec![cout, cin], vec![kernel; nd]].concat(), cin * kvol),
            Scale::Up(_) => ([vec![cin, cout], vec![kernel; nd]].concat(), cout * kvol),
        };
        let weight = pb.param("weight", shape, Init::kaiming_uniform(fan_in))?;
        let bias = if bias {
            Some(pb.param("bias", cout, Init::kaiming_uniform(fan_in))?)
        } else {
            None
        };
        Ok(EdgeConv {
            weight,
            bias,
            kernel,
            dilation,
            scale,
            reflect,
        })
    }

    /// Output channels.
    fn out_channels(&self) -> usize {
        match self.scale {
            Scale::Down(_) => self.weight.dims()[0],
            Scale::Up(_) => self.weight.dims()[1],
        }
    }

    /// Runs the convolution from the spatial size of `x` to `target`.
    fn forward(&self, x: &Tensor, target: &[usize]) -> Result<Tensor> {
        let nd = target.len();
        let pad = self.dilation * (self.kernel - 1) / 2;
        Ok(match self.scale {
            Scale::Down(s) => {
                let mut spec = ConvSpec::uniform(nd, s, pad, self.dilation);
                if self.reflect {
                    spec = spec.with_padding_mode(PaddingMode::Reflect);
                }
                conv(x, &self.weight, self.bias.as_ref(), &spec)?
            }
            Scale::Up(s) => {
                let mut spec = ConvTransposeSpec::uniform(nd, s, pad, 0, self.dilation);
                spec.output_padding = x.dims()[2..]
                    .iter()
                    .zip(target)
                    .map(|(&i, &t)| t - ((i - 1) * s + 1))
                    .collect();
                conv_transpose(x, &self.weight, self.bias.as_ref(), &spec)?
            }
        })
    }
}

/// One `Edge_{u}_{v}` (or `Last_Action`) module.
#[derive(Debug, Clone)]
struct SmsModule {
    conv: EdgeConv,
    norm: Option<BatchNorm>,
    act: Option<Activation>,
}

impl SmsModule {
    fn forward(&self, x: &Tensor, target: &[usize], train: bool) -> Result<Tensor> {
        let mut y = self.conv.forward(x, target)?;
        if let Some(n) = &self.norm {
            y = n.forward_t(&y, train)?;
        }
        if let Some(a) = &self.act {
            y = a.forward(&y)?;
        }
        Ok(y)
    }
}

/// An edge of the graph and its module.
#[derive(Debug, Clone)]
struct SmsEdgeModule {
    from: usize,
    to: usize,
    module: SmsModule,
}

/// A sparse mixed-scale network (see the [module documentation](self)).
#[derive(Debug, Clone)]
pub struct SmsNet {
    cfg: SmsNetConfig,
    dims: SpatialDims,
    store: ParamStore,
    /// Edges in action order.
    edges: Vec<SmsEdgeModule>,
    last: Option<SmsModule>,
}

/// BatchNorm as dlsia's SMSNets use it: batch statistics always, affine parameters only.
fn batch_norm(pb: &ParamBuilder, channels: usize) -> Result<BatchNorm> {
    Ok(BatchNorm::with_config(
        pb,
        channels,
        BatchNormConfig {
            track_running_stats: false,
            ..BatchNormConfig::default()
        },
    )?)
}

impl SmsNet {
    /// Validates `cfg` and builds the network with f32 weights initialised like PyTorch's
    /// defaults from `seed`.
    pub fn new(cfg: &SmsNetConfig, seed: u64, device: &Device) -> Result<Self> {
        Self::from_store(cfg, ParamStore::new(seed, device))
    }

    /// Validates `cfg` and builds the network in `store` (e.g. an f64 store for gradient checks).
    pub fn from_store(cfg: &SmsNetConfig, store: ParamStore) -> Result<Self> {
        Self::in_builder(cfg, &store.root())
    }

    /// Builds the network's tensors under `root`'s prefix (e.g. `encode.` inside a larger
    /// network); [`Network::params`] is then the whole shared store.
    pub(crate) fn in_builder(cfg: &SmsNetConfig, root: &ParamBuilder) -> Result<Self> {
        cfg.validate()?;
        let dims = cfg.dims()?;
        let nd = cfg.spatial_dims;
        let k = cfg.kernel_size;
        let store = root.store().clone();
        let mut edges = Vec::new();
        for a in cfg.graph.actions(cfg.in_channels, dims) {
            let pb = root.pp(a.name());
            let scale = scale_of(cfg.stride_base, a.from_size, a.to_size)?;
            let module = match a.op {
                EdgeOp::ConvBnRelu { dilation } => SmsModule {
                    conv: EdgeConv::new(
                        &pb.pp(0),
                        nd,
                        a.in_channels,
                        a.out_channels,
                        k,
                        dilation,
                        scale,
                        true,
                        matches!(scale, Scale::Down(_)),
                    )?,
                    norm: Some(batch_norm(&pb.pp(1), a.out_channels)?),
                    act: Some(Activation::Relu),
                },
                EdgeOp::Linear => SmsModule {
                    conv: EdgeConv::new(
                        &pb.pp(0),
                        nd,
                        a.in_channels,
                        a.out_channels,
                        1,
                        1,
                        scale,
                        false,
                        false,
                    )?,
                    norm: None,
                    act: None,
                },
            };
            edges.push(SmsEdgeModule {
                from: a.from,
                to: a.to,
                module,
            });
        }
        let last_in = cfg.graph.channel_count(cfg.in_channels)[cfg.graph.output()];
        let pb = root.pp("Last_Action");
        let linear = |pb: &ParamBuilder| {
            EdgeConv::new(
                pb,
                nd,
                last_in,
                cfg.out_channels,
                1,
                1,
                Scale::Down(1),
                true,
                false,
            )
        };
        let last = match cfg.last_action {
            LastAction::Linear => Some(SmsModule {
                conv: linear(&pb.pp(0))?,
                norm: None,
                act: None,
            }),
            LastAction::LinearSigmoid => Some(SmsModule {
                conv: linear(&pb.pp(0))?,
                norm: None,
                act: Some(Activation::Sigmoid),
            }),
            LastAction::LinearBnRelu => Some(SmsModule {
                conv: linear(&pb.pp(0))?,
                norm: Some(batch_norm(&pb.pp(1), cfg.out_channels)?),
                act: Some(Activation::Relu),
            }),
            LastAction::Identity => None,
        };
        Ok(SmsNet {
            cfg: cfg.clone(),
            dims,
            store,
            edges,
            last,
        })
    }

    /// The configuration the network was built from.
    pub fn config(&self) -> &SmsNetConfig {
        &self.cfg
    }

    /// The spatial size of every node (by label) for an input of spatial size `input`.
    fn node_sizes(&self, input: &[usize]) -> Vec<Vec<usize>> {
        let base = self.cfg.stride_base;
        let mut sizes = vec![vec![]; self.cfg.graph.node_count()];
        for n in self.cfg.graph.nodes() {
            let p = n.size;
            sizes[n.id] = input
                .iter()
                .map(|&len| {
                    let s = base.pow(p.unsigned_abs());
                    if p <= 0 {
                        (len - 1) / s + 1
                    } else {
                        s * len
                    }
                })
                .collect();
        }
        sizes
    }

    /// The output node's stack (`C_last` channels) and the network output.
    pub fn forward_with_stack(&self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        self.run(x, train, false)
    }

    /// The forward pass; with `infer`, every edge output is detached as soon as it exists, so
    /// that no autograd graph keeps intermediate maps alive (eval-mode values, no gradients).
    pub(crate) fn run(&self, x: &Tensor, train: bool, infer: bool) -> Result<(Tensor, Tensor)> {
        self.check_input(x.dims())?;
        let keep = |t: Tensor| if infer { t.detach() } else { t };
        let g = &self.cfg.graph;
        let sizes = self.node_sizes(&x.dims()[2..]);
        let mut parts: Vec<Vec<Tensor>> = vec![vec![]; g.node_count()];
        parts[0].push(keep(x.clone()));
        let mut e = 0;
        for node in g.nodes() {
            if node.edges.is_empty() {
                continue;
            }
            let input = stack(&parts[node.id])?;
            parts[node.id].clear();
            while e < self.edges.len() && self.edges[e].from == node.id {
                let edge = &self.edges[e];
                let y = edge.module.forward(&input, &sizes[edge.to], train)?;
                parts[edge.to].push(keep(y));
                e += 1;
            }
        }
        let out_node = g.output();
        let h = stack(&parts[out_node])?;
        let y = match &self.last {
            Some(m) => keep(m.forward(&h, &sizes[out_node], train)?),
            None => h.clone(),
        };
        Ok((h, y))
    }
}

/// Concatenates a node's parts along the channel axis.
fn stack(parts: &[Tensor]) -> Result<Tensor> {
    Ok(match parts {
        [one] => one.clone(),
        many => Tensor::cat(many, 1)?,
    })
}

/// The scale change of an edge from size power `from` to `to`.
fn scale_of(base: usize, from: i32, to: i32) -> Result<Scale> {
    let s = base
        .checked_pow((to - from).unsigned_abs())
        .ok_or_else(|| config_error(NET, format!("stride {base}^{} overflows", to - from)))?;
    Ok(if to > from {
        Scale::Up(s)
    } else {
        Scale::Down(s)
    })
}

impl Network for SmsNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self.forward_with_stack(x, train)?.1)
    }

    fn predict(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.run(x, false, true)?.1)
    }

    fn topology(&self) -> Topology {
        Topology::SmsNet(self.cfg.clone())
    }

    fn params(&self) -> &ParamStore {
        &self.store
    }

    fn spatial_dims(&self) -> usize {
        self.dims.count() as usize
    }

    fn in_channels(&self) -> usize {
        self.cfg.in_channels
    }

    fn out_channels(&self) -> usize {
        self.cfg.out_channels
    }

    fn check_input(&self, shape: &[usize]) -> Result<()> {
        let nd = self.spatial_dims();
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
        // Reflect padding needs padding < size at the edge's source node.
        let sizes = self.node_sizes(&shape[2..]);
        for edge in &self.edges {
            let c = &edge.module.conv;
            let pad = c.dilation * (c.kernel - 1) / 2;
            let small = *sizes[edge.from].iter().min().unwrap_or(&0);
            if c.reflect && pad >= small {
                return Err(input_error(
                    NET,
                    shape,
                    format!(
                        "edge {}→{} pads by {pad} (dilation {}) with reflection, which needs node {}'s sizes {:?} to exceed {pad}; use a larger input",
                        edge.from, edge.to, c.dilation, edge.from, sizes[edge.from]
                    ),
                ));
            }
            if c.out_channels() == 0 {
                return Err(config_error(NET, "an edge without channels"));
            }
        }
        Ok(())
    }
}
