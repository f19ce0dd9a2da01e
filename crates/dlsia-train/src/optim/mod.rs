//! Optimizers with state that can be saved and restored: [`Adam`] (coupled L2 weight decay, or
//! decoupled as AdamW) and [`Sgd`] (momentum, dampening, Nesterov, weight decay).
//!
//! They follow PyTorch's update rules (`torch.optim.Adam`, `AdamW`, `SGD`; checked against
//! PyTorch on a committed fixture) and keep their moments as tensors named after the
//! parameters, so a checkpoint can store them and a resumed run continues bit for bit.
//! candle-nn's `AdamW` keeps its moments private and has no SGD momentum; these replace it.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use dlsia_train::optim::{NamedVar, OptimizerConfig};
//!
//! let w = Var::new(&[1.0f32, -2.0], &Device::Cpu)?;
//! let cfg: OptimizerConfig = toml::from_str("kind = \"sgd\"\nlr = 0.1\nmomentum = 0.9")?;
//! let mut opt = cfg.build(vec![NamedVar::new("w", w.clone())])?;
//! let grad = Tensor::new(&[0.5f32, 1.0], &Device::Cpu)?;
//! opt.step(&[Some(grad)])?;
//! assert_eq!(w.to_vec1::<f32>()?, vec![0.95, -2.1]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod adam;
mod config;
mod sgd;

use std::collections::BTreeMap;

use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

pub use adam::Adam;
pub use config::{AdamConfig, AdamWConfig, OptimizerConfig, SgdConfig};
pub use sgd::Sgd;

use crate::error::{state_err, Result};

/// A trainable variable and its `state_dict` name (the key of its optimizer state).
#[derive(Debug, Clone)]
pub struct NamedVar {
    /// The parameter's name, e.g. `"layer_0.conv_0.weight"`.
    pub name: String,
    /// The variable the optimizer updates in place.
    pub var: Var,
}

impl NamedVar {
    /// Pairs a name with a variable.
    pub fn new(name: impl Into<String>, var: Var) -> Self {
        Self {
            name: name.into(),
            var,
        }
    }
}

/// The trainable variables of a parameter store, in creation order, with their names.
pub fn trainable_vars(store: &dlsia_ops::ParamStore) -> Vec<NamedVar> {
    store
        .entries()
        .into_iter()
        .filter(|(_, kind, _)| *kind == dlsia_ops::ParamKind::Trainable)
        .filter_map(|(name, _, _)| store.get(&name).map(|v| NamedVar::new(name, v)))
        .collect()
}

/// Everything an optimizer needs to continue exactly where it stopped.
#[derive(Debug, Clone)]
pub struct OptimizerState {
    /// Scalars (kind, learning rate, momentum, step counts).
    pub meta: OptimizerMeta,
    /// Per-parameter buffers, keyed `"<slot>.<parameter name>"` (e.g. `"exp_avg.conv.weight"`).
    pub tensors: BTreeMap<String, Tensor>,
}

/// The scalar part of an [`OptimizerState`] (stored as JSON in a checkpoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptimizerMeta {
    /// `"adam"`, `"adamw"` or `"sgd"`.
    pub kind: String,
    /// The current learning rate.
    pub lr: f64,
    /// The current momentum (SGD momentum or Adam β₁).
    pub momentum: f64,
    /// Optimizer steps taken by each parameter (PyTorch counts per parameter; a parameter
    /// without a gradient in a step is skipped and does not count it).
    pub steps: BTreeMap<String, u64>,
}

/// A first-order optimizer over a fixed list of named variables.
pub trait Optimizer: Send {
    /// The variables, in the order [`Optimizer::step`] expects their gradients.
    fn vars(&self) -> &[NamedVar];
    /// Updates every variable whose gradient is `Some` (aligned with [`Optimizer::vars`]).
    fn step(&mut self, grads: &[Option<Tensor>]) -> Result<()>;
    /// The learning rate of the next step.
    fn learning_rate(&self) -> f64;
    /// Sets the learning rate of the next step (what a scheduler calls).
    fn set_learning_rate(&mut self, lr: f64);
    /// The momentum (SGD momentum or Adam β₁) of the next step.
    fn momentum(&self) -> f64;
    /// Sets the momentum (one-cycle schedules cycle it); an error where the optimizer has none.
    fn set_momentum(&mut self, momentum: f64) -> Result<()>;
    /// A deep copy of the optimizer's state.
    fn state(&self) -> Result<OptimizerState>;
    /// Restores a state saved by [`Optimizer::state`] of the same kind of optimizer over
    /// variables with the same names and shapes.
    fn load_state(&mut self, state: &OptimizerState) -> Result<()>;
}

/// Checks that `grads` has one entry per variable and the variables' shapes.
pub(crate) fn check_grads(
    what: &'static str,
    vars: &[NamedVar],
    grads: &[Option<Tensor>],
) -> Result<()> {
    if grads.len() != vars.len() {
        return Err(state_err(
            what,
            format!("{} gradients for {} variables", grads.len(), vars.len()),
        ));
    }
    for (v, g) in vars.iter().zip(grads) {
        if let Some(g) = g {
            if g.shape() != v.var.shape() {
                return Err(state_err(
                    what,
                    format!(
                        "gradient of {} has shape {:?}, the variable {:?}",
                        v.name,
                        g.dims(),
                        v.var.dims()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Reads the per-parameter buffers of slot `slot` from a saved state, checking names and
/// shapes; a parameter without a buffer (never stepped) gets `None`.
pub(crate) fn load_slot(
    what: &'static str,
    vars: &[NamedVar],
    state: &OptimizerState,
    slot: &str,
) -> Result<Vec<Option<Tensor>>> {
    let prefix = format!("{slot}.");
    for key in state.tensors.keys() {
        if let Some(name) = key.strip_prefix(&prefix) {
            if !vars.iter().any(|v| v.name == name) {
                return Err(state_err(
                    what,
                    format!(
                        "the saved state has `{key}` but the network has no parameter `{name}`"
                    ),
                ));
            }
        }
    }
    vars.iter()
        .map(|v| {
            let Some(t) = state.tensors.get(&format!("{prefix}{}", v.name)) else {
                return Ok(None);
            };
            if t.shape() != v.var.shape() {
                return Err(state_err(
                    what,
                    format!(
                        "`{slot}.{}` has shape {:?} but the parameter has {:?}",
                        v.name,
                        t.dims(),
                        v.var.dims()
                    ),
                ));
            }
            Ok(Some(
                t.to_device(v.var.device())?
                    .to_dtype(v.var.dtype())?
                    .copy()?,
            ))
        })
        .collect()
}

/// Per-parameter step counts in [`OptimizerMeta::steps`] form.
pub(crate) fn steps_map(vars: &[NamedVar], steps: &[u64]) -> BTreeMap<String, u64> {
    vars.iter()
        .zip(steps)
        .filter(|(_, s)| **s > 0)
        .map(|(v, s)| (v.name.clone(), *s))
        .collect()
}

/// Per-parameter step counts read back from [`OptimizerMeta::steps`].
pub(crate) fn steps_from_map(
    what: &'static str,
    vars: &[NamedVar],
    map: &BTreeMap<String, u64>,
) -> Result<Vec<u64>> {
    if let Some(k) = map.keys().find(|k| !vars.iter().any(|v| &v.name == *k)) {
        return Err(state_err(
            what,
            format!("the saved state counts steps of `{k}`, which the network does not have"),
        ));
    }
    Ok(vars
        .iter()
        .map(|v| map.get(&v.name).copied().unwrap_or(0))
        .collect())
}

/// Copies the buffers of one slot into `out` under `"<slot>.<name>"`.
pub(crate) fn save_slot(
    out: &mut BTreeMap<String, Tensor>,
    vars: &[NamedVar],
    slot: &str,
    bufs: &[Option<Tensor>],
) -> Result<()> {
    for (v, b) in vars.iter().zip(bufs) {
        if let Some(b) = b {
            out.insert(format!("{slot}.{}", v.name), b.copy()?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn var(v: &[f32]) -> Var {
        Var::new(v, &Device::Cpu).unwrap()
    }

    fn grads(k: usize) -> Vec<Option<Tensor>> {
        let g = [0.5f32, -1.0, 2.0].map(|x| x * (1.0 + k as f32 * 0.25));
        vec![Some(Tensor::new(&g, &Device::Cpu).unwrap()), None]
    }

    fn build(cfg: &str) -> (Box<dyn Optimizer>, Var, Var) {
        let (a, b) = (var(&[1.0, 2.0, -3.0]), var(&[7.0]));
        let cfg: OptimizerConfig = toml::from_str(cfg).unwrap();
        let opt = cfg
            .build(vec![
                NamedVar::new("a", a.clone()),
                NamedVar::new("b", b.clone()),
            ])
            .unwrap();
        (opt, a, b)
    }

    #[test]
    fn first_adam_step_moves_each_weight_by_lr() {
        // m̂ = g and √v̂ = |g| after one step: p − lr·g/(|g| + ε).
        let (mut opt, a, b) = build("kind = \"adam\"\nlr = 0.1");
        opt.step(&grads(0)).unwrap();
        let got = a.to_vec1::<f32>().unwrap();
        for (x, want) in got.iter().zip([0.9f32, 2.1, -3.1]) {
            assert!((x - want).abs() < 1e-6, "{got:?}");
        }
        assert_eq!(
            b.to_vec1::<f32>().unwrap(),
            vec![7.0],
            "no gradient, no step"
        );
    }

    #[test]
    fn sgd_momentum_and_nesterov_by_hand() {
        let (mut opt, a, _) = build("kind = \"sgd\"\nlr = 0.1\nmomentum = 0.5");
        opt.step(&grads(0)).unwrap(); // b = g
        opt.step(&grads(0)).unwrap(); // b = 0.5 g + g = 1.5 g
        let got = a.to_vec1::<f32>().unwrap();
        let want = [1.0 - 0.25 * 0.5, 2.0 + 0.25, -3.0 - 0.25 * 2.0];
        for (x, w) in got.iter().zip(want) {
            assert!((x - w).abs() < 1e-6, "{got:?}");
        }
        let (mut opt, a, _) = build("kind = \"sgd\"\nlr = 0.1\nmomentum = 0.5\nnesterov = true");
        opt.step(&grads(0)).unwrap(); // b = g; step g + 0.5 b = 1.5 g
        let got = a.to_vec1::<f32>().unwrap();
        let want = [1.0 - 0.075, 2.0 + 0.15, -3.0 - 0.3];
        for (x, w) in got.iter().zip(want) {
            assert!((x - w).abs() < 1e-6, "{got:?}");
        }
    }

    #[test]
    fn saved_state_continues_bit_for_bit() {
        for cfg in [
            "kind = \"adam\"\nlr = 0.05\nweight_decay = 0.1",
            "kind = \"adamw\"\nlr = 0.05",
            "kind = \"sgd\"\nlr = 0.05\nmomentum = 0.9\nnesterov = true",
        ] {
            let (mut x, xa, _) = build(cfg);
            for k in 0..3 {
                x.step(&grads(k)).unwrap();
            }
            let state = x.state().unwrap();
            let (mut y, ya, _) = build(cfg);
            ya.set(xa.as_tensor()).unwrap();
            y.load_state(&state).unwrap();
            for k in 3..5 {
                x.step(&grads(k)).unwrap();
                y.step(&grads(k)).unwrap();
            }
            assert_eq!(
                xa.to_vec1::<f32>().unwrap(),
                ya.to_vec1::<f32>().unwrap(),
                "{cfg}"
            );
            assert_eq!(state.meta.steps.get("a"), Some(&3));
            assert_eq!(state.meta.steps.get("b"), None);
        }
    }

    #[test]
    fn foreign_state_is_refused() {
        let (mut adam, _, _) = build("kind = \"adam\"");
        adam.step(&grads(0)).unwrap();
        let state = adam.state().unwrap();
        let (mut sgd, _, _) = build("kind = \"sgd\"\nlr = 0.1\nmomentum = 0.9");
        assert!(sgd
            .load_state(&state)
            .unwrap_err()
            .to_string()
            .contains("adam"));
        let (mut adamw, _, _) = build("kind = \"adamw\"");
        assert!(adamw.load_state(&state).is_err());
        let mut bad = state.clone();
        bad.tensors.insert(
            "exp_avg.zzz".into(),
            Tensor::new(&[1f32], &Device::Cpu).unwrap(),
        );
        let (mut adam2, _, _) = build("kind = \"adam\"");
        assert!(adam2
            .load_state(&bad)
            .unwrap_err()
            .to_string()
            .contains("zzz"));
        assert!(adam2.step(&[None]).is_err(), "one gradient per variable");
    }

    #[test]
    fn checked_hyperparameters() {
        for (cfg, key) in [
            ("kind = \"adam\"\nlr = -1.0", "optimizer.lr"),
            ("kind = \"adamw\"\nbetas = [0.9, 1.0]", "optimizer.betas"),
            (
                "kind = \"sgd\"\nlr = 0.1\nnesterov = true",
                "optimizer.nesterov",
            ),
            (
                "kind = \"sgd\"\nlr = 0.1\nweight_decay = -0.1",
                "optimizer.weight_decay",
            ),
        ] {
            let c: OptimizerConfig = toml::from_str(cfg).unwrap();
            let e = c.check().unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
        assert!(
            toml::from_str::<OptimizerConfig>("kind = \"sgd\"").is_err(),
            "SGD needs lr"
        );
        assert!(toml::from_str::<OptimizerConfig>("kind = \"rmsprop\"").is_err());
    }
}
