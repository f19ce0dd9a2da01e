//! Stochastic gradient descent with momentum, dampening, Nesterov and weight decay, PyTorch's
//! update rule (`torch.optim.SGD`).

use candle_core::Tensor;

use super::{
    check_grads, load_slot, save_slot, steps_from_map, steps_map, NamedVar, Optimizer,
    OptimizerMeta, OptimizerState, SgdConfig,
};
use crate::error::{state_err, Result};

/// SGD; built by [`OptimizerConfig::build`](super::OptimizerConfig::build).
///
/// Per parameter with gradient `g`: `g += wd·p`; with momentum μ, `b = g` at the first step and
/// `b = μb + (1−dampening)g` after, then `g = g + μb` (Nesterov) or `g = b`; `p −= lr·g`.
pub struct Sgd {
    vars: Vec<NamedVar>,
    cfg: SgdConfig,
    momentum_buffer: Vec<Option<Tensor>>,
    steps: Vec<u64>,
}

impl Sgd {
    pub(crate) fn new(vars: Vec<NamedVar>, cfg: SgdConfig) -> Self {
        let n = vars.len();
        Self {
            vars,
            cfg,
            momentum_buffer: vec![None; n],
            steps: vec![0; n],
        }
    }

    fn update(&mut self, i: usize, g: &Tensor) -> Result<()> {
        let var = &self.vars[i].var;
        let p = var.as_tensor().detach();
        let mut g = g.detach();
        let c = &self.cfg;
        if c.weight_decay != 0.0 {
            g = (g + p.affine(c.weight_decay, 0.0)?)?;
        }
        if c.momentum != 0.0 {
            let buf = match &self.momentum_buffer[i] {
                Some(b) => (b.affine(c.momentum, 0.0)? + g.affine(1.0 - c.dampening, 0.0)?)?,
                None => g.copy()?,
            };
            g = if c.nesterov {
                (g + buf.affine(c.momentum, 0.0)?)?
            } else {
                buf.clone()
            };
            self.momentum_buffer[i] = Some(buf);
        }
        var.set(&(p - g.affine(c.lr, 0.0)?)?)?;
        self.steps[i] += 1;
        Ok(())
    }
}

impl Optimizer for Sgd {
    fn vars(&self) -> &[NamedVar] {
        &self.vars
    }

    fn step(&mut self, grads: &[Option<Tensor>]) -> Result<()> {
        check_grads("sgd", &self.vars, grads)?;
        for (i, g) in grads.iter().enumerate() {
            if let Some(g) = g {
                self.update(i, g)?;
            }
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.cfg.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    fn momentum(&self) -> f64 {
        self.cfg.momentum
    }

    fn set_momentum(&mut self, momentum: f64) -> Result<()> {
        if self.cfg.momentum == 0.0 {
            return Err(state_err(
                "sgd",
                "this SGD has no momentum to cycle; configure `momentum > 0` or turn off momentum cycling",
            ));
        }
        if !(momentum.is_finite() && momentum > 0.0) {
            return Err(state_err(
                "sgd",
                format!("momentum must be finite and > 0, got {momentum}"),
            ));
        }
        self.cfg.momentum = momentum;
        Ok(())
    }

    fn state(&self) -> Result<OptimizerState> {
        let mut tensors = Default::default();
        save_slot(
            &mut tensors,
            &self.vars,
            "momentum_buffer",
            &self.momentum_buffer,
        )?;
        Ok(OptimizerState {
            meta: OptimizerMeta {
                kind: "sgd".into(),
                lr: self.cfg.lr,
                momentum: self.cfg.momentum,
                steps: steps_map(&self.vars, &self.steps),
            },
            tensors,
        })
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        if state.meta.kind != "sgd" {
            return Err(state_err(
                "sgd",
                format!(
                    "the saved state is of a `{}` optimizer; configure the same optimizer kind to resume",
                    state.meta.kind
                ),
            ));
        }
        if let Some(k) = state
            .tensors
            .keys()
            .find(|k| !k.starts_with("momentum_buffer."))
        {
            return Err(state_err("sgd", format!("unexpected state tensor `{k}`")));
        }
        let bufs = load_slot("sgd", &self.vars, state, "momentum_buffer")?;
        let steps = steps_from_map("sgd", &self.vars, &state.meta.steps)?;
        let momentum = state.meta.momentum;
        if (momentum == 0.0) != (self.cfg.momentum == 0.0) {
            return Err(state_err(
                "sgd",
                format!(
                    "the saved state has momentum {momentum} but this SGD has {}",
                    self.cfg.momentum
                ),
            ));
        }
        self.cfg.momentum = momentum;
        self.cfg.lr = state.meta.lr;
        self.momentum_buffer = bufs;
        self.steps = steps;
        Ok(())
    }
}
