//! [`BestModel`]: a deep copy of the weights of the best epoch so far.
//!
//! The original's trainers keep `best_state_dict = net.state_dict()`, which references the live
//! tensors, so "restoring the best model" restores the last epoch. This keeps real copies
//! (`ParamStore::snapshot`), so later optimizer steps cannot change them.

use std::collections::BTreeMap;

use candle_core::Tensor;
use dlsia_ops::{LoadOptions, ParamStore};

use crate::error::Result;
use crate::monitor::Monitor;

/// The best epoch's weights and buffers by the monitored metric (ties keep the earlier epoch).
#[derive(Debug, Clone)]
pub struct BestModel {
    monitor: Monitor,
    epoch: Option<usize>,
    value: Option<f64>,
    weights: Option<BTreeMap<String, Tensor>>,
}

impl BestModel {
    /// Nothing tracked yet.
    pub fn new(monitor: Monitor) -> Self {
        Self {
            monitor,
            epoch: None,
            value: None,
            weights: None,
        }
    }

    /// A tracker that already holds `weights` of `epoch` with `value` (when resuming).
    pub fn with_weights(
        monitor: Monitor,
        epoch: usize,
        value: f64,
        weights: BTreeMap<String, Tensor>,
    ) -> Self {
        Self {
            monitor,
            epoch: Some(epoch),
            value: Some(value),
            weights: Some(weights),
        }
    }

    /// The metric.
    pub fn monitor(&self) -> Monitor {
        self.monitor
    }

    /// Epoch (from 1) of the best weights.
    pub fn epoch(&self) -> Option<usize> {
        self.epoch
    }

    /// The best monitored value.
    pub fn value(&self) -> Option<f64> {
        self.value
    }

    /// The best weights, by name.
    pub fn weights(&self) -> Option<&BTreeMap<String, Tensor>> {
        self.weights.as_ref()
    }

    /// Copies the network's tensors if `value` improves on the best; returns whether it did.
    pub fn update(
        &mut self,
        epoch: usize,
        value: Option<f64>,
        params: &ParamStore,
    ) -> Result<bool> {
        let Some(v) = value else {
            return Ok(false);
        };
        if !self.monitor.goal().improves(v, self.value, 0.0) {
            return Ok(false);
        }
        self.weights = Some(params.snapshot()?);
        self.epoch = Some(epoch);
        self.value = Some(v);
        Ok(true)
    }

    /// Loads the best weights into `params`; returns `false` if there are none.
    pub fn restore(&self, params: &ParamStore) -> Result<bool> {
        match &self.weights {
            Some(w) => {
                params.load_tensors(w, &LoadOptions::default())?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}
