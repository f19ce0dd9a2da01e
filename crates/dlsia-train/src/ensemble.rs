//! Ensembles: N networks (e.g. dlsia's SMSNet ensembles) trained on the same data, one after the
//! other or in parallel threads.
//!
//! Member `k` runs the shared configuration with seed `mix_seed(seed, k)` (its own batch order
//! and augmentation) and, when the run writes files, in `output.dir/member-KK`. Members are
//! independent runs: a member in a thread gives the same weights as the same member trained
//! alone.
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use dlsia_data::Batch;
//! use dlsia_nets::{Topology, TuNetConfig};
//! use dlsia_train::{build_members, train_ensemble, EnsembleMode, TaskConfig, TrainConfig};
//!
//! let topo = Topology::TuNet(TuNetConfig::new(&[8, 8], 1, 2, 2, 2));
//! let nets = build_members(&topo, 2, 42, &Device::Cpu)?;
//! let image = Tensor::rand(0f32, 1.0, (2, 1, 8, 8), &Device::Cpu)?;
//! let target = image.gt(0.5)?.to_dtype(DType::I64)?.squeeze(1)?;
//! let data = vec![Batch { image, target: Some(target), mask: None }];
//! let mut cfg = TrainConfig::new(2, TaskConfig::segmentation(2));
//! cfg.progress = false;
//! let reports = train_ensemble(&cfg, &nets, &data, None, EnsembleMode::Threads)?;
//! assert_eq!(reports.len(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use candle_core::Device;
use dlsia_data::seed::mix_seed;
use dlsia_nets::{Network, Topology};
use indicatif::MultiProgress;
use serde::{Deserialize, Serialize};

use crate::batches::Batches;
use crate::config::TrainConfig;
use crate::error::{Error, Result};
use crate::progress::ProgressBar;
use crate::trainer::{TrainReport, Trainer};

/// How the members are scheduled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnsembleMode {
    /// One after the other (least memory).
    #[default]
    Sequential,
    /// All at once, one thread per member (memory of all members at once; the convolution
    /// kernels share the rayon pool).
    Threads,
}

/// Builds `n` networks of one topology with seeds `mix_seed(seed, k)`.
pub fn build_members(
    topology: &Topology,
    n: usize,
    seed: u64,
    device: &Device,
) -> Result<Vec<Box<dyn Network>>> {
    (0..n)
        .map(|k| Ok(topology.build(mix_seed(seed, k as u64), device)?))
        .collect()
}

/// The configuration of member `k`: its own seed and output subdirectory.
pub fn member_config(config: &TrainConfig, k: usize) -> TrainConfig {
    let mut c = config.clone();
    c.seed = mix_seed(config.seed, k as u64);
    if let Some(o) = c.output.as_mut() {
        o.dir = o.dir.join(format!("member-{k:02}"));
    }
    c
}

fn wrap(member: usize) -> impl Fn(Error) -> Error {
    move |e| Error::Member {
        member,
        source: Box::new(e),
    }
}

/// Trains every member with [`member_config`]; returns their reports in member order.
pub fn train_ensemble(
    config: &TrainConfig,
    members: &[Box<dyn Network>],
    train: &dyn Batches,
    validation: Option<&dyn Batches>,
    mode: EnsembleMode,
) -> Result<Vec<TrainReport>> {
    config.check()?;
    let n = members.len();
    let configs: Vec<TrainConfig> = (0..n).map(|k| member_config(config, k)).collect();
    match mode {
        EnsembleMode::Sequential => members
            .iter()
            .enumerate()
            .map(|(k, net)| {
                let progress = config.progress.then(|| {
                    ProgressBar::in_multi(&MultiProgress::new(), format!("member {}/{n}", k + 1))
                });
                Trainer::new(&configs[k], net.as_ref())
                    .and_then(|t| t.with_progress(progress).fit(train, validation))
                    .map_err(wrap(k))
            })
            .collect(),
        EnsembleMode::Threads => {
            let multi = MultiProgress::new();
            std::thread::scope(|s| {
                let handles: Vec<_> = members
                    .iter()
                    .enumerate()
                    .map(|(k, net)| {
                        let cfg = &configs[k];
                        let progress = config.progress.then(|| {
                            ProgressBar::in_multi(&multi, format!("member {}/{n}", k + 1))
                        });
                        s.spawn(move || {
                            Trainer::new(cfg, net.as_ref())
                                .and_then(|t| t.with_progress(progress).fit(train, validation))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .enumerate()
                    .map(|(k, h)| {
                        h.join()
                            .unwrap_or_else(|_| {
                                Err(Error::Thread(format!(
                                    "member {k}'s training thread panicked"
                                )))
                            })
                            .map_err(wrap(k))
                    })
                    .collect()
            })
        }
    }
}
