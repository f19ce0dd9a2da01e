//! [`OptimizerConfig`]: an optimizer chosen by `kind` with its hyperparameters (PyTorch's
//! defaults), checked once and built over a list of named variables.

use serde::{Deserialize, Serialize};

use super::{Adam, NamedVar, Optimizer, Sgd};
use crate::error::{config_err, Result};

fn default_lr() -> f64 {
    1e-3
}
fn default_betas() -> [f64; 2] {
    [0.9, 0.999]
}
fn default_eps() -> f64 {
    1e-8
}
fn default_adamw_decay() -> f64 {
    1e-2
}

/// Hyperparameters of Adam with coupled (L2) weight decay, `torch.optim.Adam`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamConfig {
    /// Learning rate (default 1e-3).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// `(β₁, β₂)`, each in `[0, 1)` (default `[0.9, 0.999]`).
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// Added to the denominator (default 1e-8).
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// L2 penalty added to the gradient (default 0).
    #[serde(default)]
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: default_lr(),
            betas: default_betas(),
            eps: default_eps(),
            weight_decay: 0.0,
        }
    }
}

/// Hyperparameters of AdamW (decoupled weight decay), `torch.optim.AdamW`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamWConfig {
    /// Learning rate (default 1e-3).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// `(β₁, β₂)`, each in `[0, 1)` (default `[0.9, 0.999]`).
    #[serde(default = "default_betas")]
    pub betas: [f64; 2],
    /// Added to the denominator (default 1e-8).
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Decoupled decay: every step multiplies the weights by `1 − lr·weight_decay`
    /// (default 0.01, PyTorch's).
    #[serde(default = "default_adamw_decay")]
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: default_lr(),
            betas: default_betas(),
            eps: default_eps(),
            weight_decay: default_adamw_decay(),
        }
    }
}

/// Hyperparameters of stochastic gradient descent, `torch.optim.SGD`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgdConfig {
    /// Learning rate (required: there is no sensible default).
    pub lr: f64,
    /// Momentum factor (default 0: plain SGD).
    #[serde(default)]
    pub momentum: f64,
    /// Dampening of the momentum (default 0).
    #[serde(default)]
    pub dampening: f64,
    /// Nesterov momentum (needs `momentum > 0` and `dampening = 0`).
    #[serde(default)]
    pub nesterov: bool,
    /// L2 penalty added to the gradient (default 0).
    #[serde(default)]
    pub weight_decay: f64,
}

/// An optimizer by `kind` (`"adam"`, `"adamw"`, `"sgd"`) with its hyperparameters; missing keys
/// take PyTorch's defaults, unknown keys are errors.
///
/// ```
/// use dlsia_train::optim::OptimizerConfig;
/// let cfg: OptimizerConfig = toml::from_str("kind = \"adamw\"\nlr = 3e-4").unwrap();
/// cfg.check().unwrap();
/// let bad: Result<OptimizerConfig, _> = toml::from_str("kind = \"adam\"\nlearning_rate = 1.0");
/// assert!(bad.unwrap_err().to_string().contains("learning_rate"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// [`Adam`] with L2 weight decay.
    Adam(AdamConfig),
    /// [`Adam`] with decoupled weight decay.
    #[serde(rename = "adamw")]
    AdamW(AdamWConfig),
    /// [`Sgd`].
    Sgd(SgdConfig),
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Adam(AdamConfig::default())
    }
}

fn check_lr(key: &str, lr: f64) -> Result<()> {
    if !(lr.is_finite() && lr > 0.0) {
        return Err(config_err(
            key,
            format!("the learning rate must be finite and > 0, got {lr}"),
        ));
    }
    Ok(())
}

fn check_decay(key: &str, wd: f64) -> Result<()> {
    if !(wd.is_finite() && wd >= 0.0) {
        return Err(config_err(
            key,
            format!("weight decay must be finite and >= 0, got {wd}"),
        ));
    }
    Ok(())
}

fn check_adam(lr: f64, betas: [f64; 2], eps: f64, wd: f64) -> Result<()> {
    check_lr("optimizer.lr", lr)?;
    for (i, b) in betas.iter().enumerate() {
        if !(0.0..1.0).contains(b) {
            return Err(config_err(
                "optimizer.betas",
                format!("β{} must be in [0, 1), got {b}", i + 1),
            ));
        }
    }
    if !(eps.is_finite() && eps > 0.0) {
        return Err(config_err(
            "optimizer.eps",
            format!("must be finite and > 0, got {eps}"),
        ));
    }
    check_decay("optimizer.weight_decay", wd)
}

impl OptimizerConfig {
    /// The configured (initial) learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Adam(c) => c.lr,
            OptimizerConfig::AdamW(c) => c.lr,
            OptimizerConfig::Sgd(c) => c.lr,
        }
    }

    /// The kind as written in a configuration file.
    pub fn kind(&self) -> &'static str {
        match self {
            OptimizerConfig::Adam(_) => "adam",
            OptimizerConfig::AdamW(_) => "adamw",
            OptimizerConfig::Sgd(_) => "sgd",
        }
    }

    /// Whether the optimizer has a momentum a one-cycle schedule can cycle.
    pub fn has_momentum(&self) -> bool {
        match self {
            OptimizerConfig::Sgd(c) => c.momentum > 0.0,
            _ => true,
        }
    }

    /// Checks every hyperparameter, naming the key of the first bad one.
    pub fn check(&self) -> Result<()> {
        match self {
            OptimizerConfig::Adam(c) => check_adam(c.lr, c.betas, c.eps, c.weight_decay),
            OptimizerConfig::AdamW(c) => check_adam(c.lr, c.betas, c.eps, c.weight_decay),
            OptimizerConfig::Sgd(c) => {
                check_lr("optimizer.lr", c.lr)?;
                check_decay("optimizer.weight_decay", c.weight_decay)?;
                if !(c.momentum.is_finite() && c.momentum >= 0.0) {
                    return Err(config_err(
                        "optimizer.momentum",
                        format!("must be finite and >= 0, got {}", c.momentum),
                    ));
                }
                if !(c.dampening.is_finite() && (0.0..=1.0).contains(&c.dampening)) {
                    return Err(config_err(
                        "optimizer.dampening",
                        format!("must be in [0, 1], got {}", c.dampening),
                    ));
                }
                if c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0) {
                    return Err(config_err(
                        "optimizer.nesterov",
                        format!(
                            "Nesterov momentum needs momentum > 0 and dampening = 0, got momentum {} and dampening {}",
                            c.momentum, c.dampening
                        ),
                    ));
                }
                Ok(())
            }
        }
    }

    /// Checks the hyperparameters and builds the optimizer over `vars`.
    pub fn build(&self, vars: Vec<NamedVar>) -> Result<Box<dyn Optimizer>> {
        self.check()?;
        Ok(match self {
            OptimizerConfig::Adam(c) => {
                Box::new(Adam::new(vars, c.lr, c.betas, c.eps, c.weight_decay, false))
            }
            OptimizerConfig::AdamW(c) => {
                Box::new(Adam::new(vars, c.lr, c.betas, c.eps, c.weight_decay, true))
            }
            OptimizerConfig::Sgd(c) => Box::new(Sgd::new(vars, c.clone())),
        })
    }
}
