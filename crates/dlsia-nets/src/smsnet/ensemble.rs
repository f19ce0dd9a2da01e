//! Ensembles of SMSNets (dlsia's `construct_2dsms_ensembler` / `construct_3dsms_ensembler`): N
//! networks on N independently sampled graphs, each resampled until its parameter count lies
//! strictly inside a budget. Graph sampling is `dlsia_graph::sample_ensemble` (which gives up
//! after `max_trial` draws where the original loops forever); this module turns the graphs into
//! networks with seeded weights.
//!
//! Member `i` is reproducible on its own: its graph comes from
//! `member_seed(seed, i)` and its weights from `member_seed(seed ^ WEIGHT_SALT, i)`, so the
//! first members of a larger ensemble equal a smaller ensemble built from the same seed.
//!
//! The ensemble is one predictor for `dlsia-uq`: wrap each member's evaluation forward pass in
//! a `dlsia_uq::LogitsFn` and hand the boxes to `dlsia_uq::Ensemble::new` (see
//! [`SmsEnsemble::into_members`]).
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use dlsia_graph::EnsembleParams;
//! use dlsia_nets::{Network, SmsEnsemble};
//!
//! let mut p = EnsembleParams::new(3, 1, 2, 6);
//! p.parameter_bounds = Some((1_000, 20_000));
//! let ens = SmsEnsemble::build(&p, 7, &Device::Cpu)?;
//! assert_eq!(ens.len(), 3);
//! assert!(ens.parameter_counts().iter().all(|&n| n > 1_000 && n < 20_000));
//! let outs = ens.forward_all(&Tensor::ones((1, 1, 16, 16), DType::F32, &Device::Cpu)?, false)?;
//! assert_eq!(outs[2].dims(), &[1, 2, 16, 16]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use candle_core::{Device, Tensor};
use dlsia_graph::{member_seed, sample_ensemble, EnsembleParams};

use super::{SmsNet, SmsNetConfig};
use crate::error::{config_error, Result};
use crate::network::Network;

const NET: &str = "SMSNet ensemble";

/// Mixed into the ensemble seed for the members' weights, so that weights and graphs draw from
/// different streams.
pub const WEIGHT_SALT: u64 = 0x5745_4947_4854_5321;

/// N SMSNets with the same inputs and outputs, on independently sampled graphs.
#[derive(Debug, Clone)]
pub struct SmsEnsemble {
    members: Vec<SmsNet>,
    trials: Vec<usize>,
}

impl SmsEnsemble {
    /// The setting of the dlsia paper's SMSNet ensembles: five 2-D networks of about 45 000
    /// parameters each — 16 hidden layers, dilations `[1, 2, 3, 4]`, `3·out_channels` hidden
    /// channels per edge, the ensemble builder's connection defaults (`alpha = gamma = 0`,
    /// `P_IL = P_LO = 0.995`, `P_IO`), and the budget `40 000 < parameters < 50 000` (the W4
    /// benchmark network, dlsia's seed-2 sample of the same setting, has 45 748).
    pub fn paper_params(in_channels: usize, out_channels: usize) -> EnsembleParams {
        let mut p = EnsembleParams::new(5, in_channels, out_channels, 16);
        p.parameter_bounds = Some((40_000, 50_000));
        p
    }

    /// The paper's five ~45 k-parameter networks ([`Self::paper_params`]) from `seed`.
    pub fn paper(
        in_channels: usize,
        out_channels: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        Self::build(&Self::paper_params(in_channels, out_channels), seed, device)
    }

    /// Samples `params.n_networks` graphs within `params.parameter_bounds` (an error names the
    /// member, the bounds and the range of counts seen when `max_trial` draws were not enough)
    /// and builds each member with PyTorch-default initialisation.
    pub fn build(params: &EnsembleParams, seed: u64, device: &Device) -> Result<Self> {
        let sampled =
            sample_ensemble(params, seed).map_err(|e| config_error(NET, e.to_string()))?;
        let last_action = params.network_type.last_action(params.dims);
        let mut members = Vec::with_capacity(sampled.len());
        let mut trials = Vec::with_capacity(sampled.len());
        for (i, m) in sampled.into_iter().enumerate() {
            let cfg = SmsNetConfig {
                last_action,
                ..SmsNetConfig::new(
                    params.dims,
                    params.in_channels,
                    params.out_channels,
                    m.graph,
                )
            };
            let net = SmsNet::new(&cfg, member_seed(seed ^ WEIGHT_SALT, i), device)?;
            if net.num_parameters() != m.parameter_count {
                return Err(config_error(
                    NET,
                    format!(
                        "member {i} has {} parameters but its graph was counted at {}",
                        net.num_parameters(),
                        m.parameter_count
                    ),
                ));
            }
            members.push(net);
            trials.push(m.trials);
        }
        Ok(Self { members, trials })
    }

    /// An ensemble of existing networks (e.g. loaded from model directories): at least one,
    /// all with the same dimensionality and input and output channels.
    pub fn from_members(members: Vec<SmsNet>) -> Result<Self> {
        let Some(first) = members.first() else {
            return Err(config_error(NET, "an ensemble needs at least one network"));
        };
        let key = |n: &SmsNet| (n.spatial_dims(), n.in_channels(), n.out_channels());
        let k0 = key(first);
        if let Some((i, n)) = members.iter().enumerate().find(|(_, n)| key(n) != k0) {
            return Err(config_error(
                NET,
                format!(
                    "member {i} is (dims, in, out) = {:?} but member 0 is {k0:?}; members must agree",
                    key(n)
                ),
            ));
        }
        let trials = vec![1; members.len()];
        Ok(Self { members, trials })
    }

    /// Number of networks.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the ensemble is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The networks, in member order.
    pub fn members(&self) -> &[SmsNet] {
        &self.members
    }

    /// The networks, e.g. to train each or to wrap each as a `dlsia_uq::Predictor`:
    /// `LogitsFn::new(classes, move |x: &Tensor| net.forward_t(x, false))`.
    pub fn into_members(self) -> Vec<SmsNet> {
        self.members
    }

    /// Each member's trainable parameter count.
    pub fn parameter_counts(&self) -> Vec<usize> {
        self.members.iter().map(|n| n.num_parameters()).collect()
    }

    /// How many graphs were drawn to find each member (1 for [`Self::from_members`]).
    pub fn trials(&self) -> &[usize] {
        &self.trials
    }

    /// Every member's output for `x` (train or evaluation mode), in member order.
    pub fn forward_all(&self, x: &Tensor, train: bool) -> Result<Vec<Tensor>> {
        self.members
            .iter()
            .map(|n| {
                n.check_input(x.dims())?;
                n.forward_t(x, train)
            })
            .collect()
    }
}
