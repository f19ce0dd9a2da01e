//! dlsia's ensemble builder (`construct_2dsms_ensembler` / `construct_3dsms_ensembler`), graphs
//! only: N graphs, each resampled until its network's parameter count lies strictly inside the
//! bounds. Unlike the original, which prints a warning after `max_trial` tries and then loops
//! forever, this gives up with [`Error::BoundsNotMet`].

use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::config::{DegreeBound, DilationMode, Quirks, SmsGraphParams};
use crate::error::{invalid, Error, Result};
use crate::graph::SmsGraph;
use crate::network::{NetworkType, SpatialDims};
use crate::params::{count_parameters, CountSpec};

/// The ensemble builder's arguments, with dlsia's names and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleParams {
    /// Number of networks.
    pub n_networks: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Hidden layers per network.
    pub layers: usize,
    /// `LL_alpha` (default 0: all edge lengths equally likely).
    pub alpha: f64,
    /// `LL_gamma` (default 0: all allowed degrees equally likely).
    pub gamma: f64,
    /// Hidden channel choices; `None` means dlsia's `[3·out_channels]`.
    pub hidden_channels: Option<Vec<usize>>,
    /// Dilation choices (default `[1, 2, 3, 4]`).
    pub dilation_choices: Vec<usize>,
    /// `P_IL` (default 0.995).
    pub p_il: f64,
    /// `P_LO` (default 0.995).
    pub p_lo: f64,
    /// `P_IO` (default true).
    pub p_io: bool,
    /// Exclusive bounds `(min, max)` on each network's parameter count.
    pub parameter_bounds: Option<(usize, usize)>,
    /// Graphs tried per member before giving up (default 100).
    pub max_trial: usize,
    /// Network type (decides the last action's parameters).
    pub network_type: NetworkType,
    /// 2-D (`construct_2dsms_ensembler`) or 3-D (`construct_3dsms_ensembler`).
    pub dims: SpatialDims,
    /// Sampler quirks (default: dlsia's).
    pub quirks: Quirks,
}

impl EnsembleParams {
    /// dlsia's defaults for the required arguments, 2-D.
    pub fn new(n_networks: usize, in_channels: usize, out_channels: usize, layers: usize) -> Self {
        Self {
            n_networks,
            in_channels,
            out_channels,
            layers,
            alpha: 0.0,
            gamma: 0.0,
            hidden_channels: None,
            dilation_choices: vec![1, 2, 3, 4],
            p_il: 0.995,
            p_lo: 0.995,
            p_io: true,
            parameter_bounds: None,
            max_trial: 100,
            network_type: NetworkType::Regression,
            dims: SpatialDims::Two,
            quirks: Quirks::DLSIA,
        }
    }

    /// The graph sampler parameters each member is drawn with (`LL_max_degree = layers`,
    /// `LL_min_degree = 1`, "Edges" dilation mode, default sizing), as dlsia builds them.
    pub fn graph_params(&self) -> SmsGraphParams {
        let mut p = SmsGraphParams::new(self.layers, self.dilation_choices.clone());
        p.hidden_out_channels = self
            .hidden_channels
            .clone()
            .unwrap_or_else(|| vec![3 * self.out_channels]);
        p.in_channels = self.in_channels;
        p.dims = self.dims;
        p.ll_alpha = self.alpha;
        p.ll_gamma = Some(self.gamma);
        p.ll_min_degree = DegreeBound::Count(1);
        p.ll_max_degree = Some(DegreeBound::Count(self.layers.max(1)));
        p.il = self.p_il;
        p.lo = self.p_lo;
        p.io = self.p_io;
        p.dilation_mode = DilationMode::Edges;
        p.quirks = self.quirks;
        p
    }

    /// The counting spec for a member network (kernel 3).
    pub fn count_spec(&self) -> CountSpec {
        CountSpec {
            last_action: self.network_type.last_action(self.dims),
            ..CountSpec::new(self.in_channels, self.out_channels, self.dims)
        }
    }
}

/// One ensemble member.
#[derive(Clone, Debug, PartialEq)]
pub struct EnsembleMember {
    /// Its graph.
    pub graph: SmsGraph,
    /// Its network's trainable parameter count.
    pub parameter_count: usize,
    /// How many graphs were drawn to find it (1 without bounds).
    pub trials: usize,
}

/// The seed of member `i`'s generator: members are independent of each other, so member `i`
/// is the same whatever `n_networks` is.
pub fn member_seed(seed: u64, i: usize) -> u64 {
    // SplitMix64 finaliser of (seed, i): well-spread seeds for consecutive members.
    let mut z = seed
        ^ (i as u64)
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Samples the ensemble's graphs from `seed`; member `i` draws from
/// `StdRng::seed_from_u64(member_seed(seed, i))`.
pub fn sample_ensemble(params: &EnsembleParams, seed: u64) -> Result<Vec<EnsembleMember>> {
    if params.n_networks == 0 {
        return Err(invalid("n_networks", "0; an ensemble needs ≥ 1 network"));
    }
    if params.max_trial == 0 {
        return Err(invalid("max_trial", "0; allow ≥ 1 trial per network"));
    }
    if let Some((a, b)) = params.parameter_bounds {
        let (lo, hi) = (a.min(b), a.max(b));
        if hi - lo < 2 {
            return Err(invalid(
                "parameter_bounds",
                format!("({a}, {b}) leaves no integer strictly between the bounds"),
            ));
        }
    }
    let sampler = params.graph_params().check()?;
    let spec = params.count_spec();
    let mut members = Vec::with_capacity(params.n_networks);
    for member in 0..params.n_networks {
        let mut rng = StdRng::seed_from_u64(member_seed(seed, member));
        let (mut lowest, mut highest) = (usize::MAX, 0);
        let mut found = None;
        for trial in 1..=params.max_trial {
            let graph = sampler.sample_with(&mut rng);
            let count = count_parameters(&graph, &spec)?;
            lowest = lowest.min(count);
            highest = highest.max(count);
            let inside = match params.parameter_bounds {
                None => true,
                Some((a, b)) => count > a.min(b) && count < a.max(b),
            };
            if inside {
                found = Some(EnsembleMember {
                    graph,
                    parameter_count: count,
                    trials: trial,
                });
                break;
            }
        }
        match found {
            Some(m) => members.push(m),
            None => {
                let (a, b) = params.parameter_bounds.unwrap_or((0, usize::MAX));
                return Err(Error::BoundsNotMet {
                    member,
                    trials: params.max_trial,
                    min: a.min(b),
                    max: a.max(b),
                    lowest,
                    highest,
                });
            }
        }
    }
    Ok(members)
}
