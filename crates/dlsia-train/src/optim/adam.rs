//! Adam and AdamW, PyTorch's update rule (`torch.optim.Adam` / `AdamW`, `amsgrad=False`).

use candle_core::Tensor;

use super::{
    check_grads, load_slot, save_slot, steps_from_map, steps_map, NamedVar, Optimizer,
    OptimizerMeta, OptimizerState,
};
use crate::error::{state_err, Result};

/// Adam with L2 weight decay (`decoupled = false`) or AdamW (`decoupled = true`); built by
/// [`OptimizerConfig::build`](super::OptimizerConfig::build).
///
/// Per parameter with gradient `g` at its step `t`:
/// `g += wd·p` (Adam) or `p *= 1 − lr·wd` (AdamW); `m = β₁m + (1−β₁)g`; `v = β₂v + (1−β₂)g²`;
/// `p −= lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)`.
pub struct Adam {
    vars: Vec<NamedVar>,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    decoupled: bool,
    exp_avg: Vec<Option<Tensor>>,
    exp_avg_sq: Vec<Option<Tensor>>,
    steps: Vec<u64>,
}

impl Adam {
    pub(crate) fn new(
        vars: Vec<NamedVar>,
        lr: f64,
        betas: [f64; 2],
        eps: f64,
        weight_decay: f64,
        decoupled: bool,
    ) -> Self {
        let n = vars.len();
        Self {
            vars,
            lr,
            beta1: betas[0],
            beta2: betas[1],
            eps,
            weight_decay,
            decoupled,
            exp_avg: vec![None; n],
            exp_avg_sq: vec![None; n],
            steps: vec![0; n],
        }
    }

    fn kind(&self) -> &'static str {
        if self.decoupled {
            "adamw"
        } else {
            "adam"
        }
    }

    fn update(&mut self, i: usize, g: &Tensor) -> Result<()> {
        let var = &self.vars[i].var;
        let p = var.as_tensor().detach();
        let g = g.detach();
        self.steps[i] += 1;
        let t = self.steps[i] as i32;
        let (b1, b2) = (self.beta1, self.beta2);
        let wd = self.weight_decay;
        let (p, g) = if wd == 0.0 {
            (p, g)
        } else if self.decoupled {
            (p.affine(1.0 - self.lr * wd, 0.0)?, g)
        } else {
            let g = (&g + p.affine(wd, 0.0)?)?;
            (p, g)
        };
        let m = match &self.exp_avg[i] {
            Some(m) => (m.affine(b1, 0.0)? + g.affine(1.0 - b1, 0.0)?)?,
            None => g.affine(1.0 - b1, 0.0)?,
        };
        let g2 = g.sqr()?.affine(1.0 - b2, 0.0)?;
        let v = match &self.exp_avg_sq[i] {
            Some(v) => (v.affine(b2, 0.0)? + g2)?,
            None => g2,
        };
        let bc1 = 1.0 - b1.powi(t);
        let bc2 = 1.0 - b2.powi(t);
        let step_size = self.lr / bc1;
        let denom = v.sqrt()?.affine(1.0 / bc2.sqrt(), self.eps)?;
        let new_p = (p - (m.div(&denom)?.affine(step_size, 0.0))?)?;
        var.set(&new_p)?;
        self.exp_avg[i] = Some(m);
        self.exp_avg_sq[i] = Some(v);
        Ok(())
    }
}

impl Optimizer for Adam {
    fn vars(&self) -> &[NamedVar] {
        &self.vars
    }

    fn step(&mut self, grads: &[Option<Tensor>]) -> Result<()> {
        check_grads(self.kind(), &self.vars, grads)?;
        for (i, g) in grads.iter().enumerate() {
            if let Some(g) = g {
                self.update(i, g)?;
            }
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn momentum(&self) -> f64 {
        self.beta1
    }

    fn set_momentum(&mut self, momentum: f64) -> Result<()> {
        if !(0.0..1.0).contains(&momentum) {
            return Err(state_err(
                "adam",
                format!("β₁ must be in [0, 1), got {momentum}"),
            ));
        }
        self.beta1 = momentum;
        Ok(())
    }

    fn state(&self) -> Result<OptimizerState> {
        let mut tensors = Default::default();
        save_slot(&mut tensors, &self.vars, "exp_avg", &self.exp_avg)?;
        save_slot(&mut tensors, &self.vars, "exp_avg_sq", &self.exp_avg_sq)?;
        Ok(OptimizerState {
            meta: OptimizerMeta {
                kind: self.kind().to_string(),
                lr: self.lr,
                momentum: self.beta1,
                steps: steps_map(&self.vars, &self.steps),
            },
            tensors,
        })
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        let what = self.kind();
        if state.meta.kind != what {
            return Err(state_err(
                what,
                format!(
                    "the saved state is of a `{}` optimizer; configure the same optimizer kind to resume",
                    state.meta.kind
                ),
            ));
        }
        if let Some(k) = state
            .tensors
            .keys()
            .find(|k| !(k.starts_with("exp_avg.") || k.starts_with("exp_avg_sq.")))
        {
            return Err(state_err(what, format!("unexpected state tensor `{k}`")));
        }
        let m = load_slot(what, &self.vars, state, "exp_avg")?;
        let v = load_slot(what, &self.vars, state, "exp_avg_sq")?;
        let steps = steps_from_map(what, &self.vars, &state.meta.steps)?;
        for (i, s) in steps.iter().enumerate() {
            if (*s > 0) != (m[i].is_some() && v[i].is_some()) {
                return Err(state_err(
                    what,
                    format!(
                        "parameter `{}` has {s} steps but {} moments",
                        self.vars[i].name,
                        if m[i].is_some() || v[i].is_some() {
                            "incomplete"
                        } else {
                            "no"
                        }
                    ),
                ));
            }
        }
        self.set_momentum(state.meta.momentum)?;
        self.lr = state.meta.lr;
        self.exp_avg = m;
        self.exp_avg_sq = v;
        self.steps = steps;
        Ok(())
    }
}
