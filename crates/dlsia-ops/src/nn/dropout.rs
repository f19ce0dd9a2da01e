//! Seeded dropout: element-wise (`nn.Dropout`) or channel-wise (`nn.Dropout2d/3d`).

use std::sync::Mutex;

use candle_core::{ModuleT, Tensor};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{invalid, Result};
use crate::params::ParamBuilder;

/// Zeroes each element (or each whole channel) with probability `p` in training and scales the
/// rest by `1/(1 − p)`; identity in eval mode. Masks come from the layer's own generator, so a
/// seed fixes every mask of a run.
#[derive(Debug)]
pub struct Dropout {
    p: f64,
    channel_wise: bool,
    rng: Mutex<StdRng>,
}

impl Clone for Dropout {
    fn clone(&self) -> Self {
        let rng = self.rng.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Dropout {
            p: self.p,
            channel_wise: self.channel_wise,
            rng: Mutex::new(rng),
        }
    }
}

impl Dropout {
    /// Element-wise dropout seeded from the store's generator (`ParamStore::next_seed`).
    pub fn new(pb: &ParamBuilder, p: f64) -> Result<Self> {
        Self::with_seed(p, pb.store().next_seed())
    }

    /// Element-wise dropout with an explicit seed.
    pub fn with_seed(p: f64, seed: u64) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(invalid(
                "Dropout",
                format!("probability must be in [0, 1], got {p}"),
            ));
        }
        Ok(Dropout {
            p,
            channel_wise: false,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        })
    }

    /// Channel-wise dropout (`Dropout2d/3d`: one draw per sample and channel) with a seed.
    pub fn channel_wise(p: f64, seed: u64) -> Result<Self> {
        Ok(Dropout {
            channel_wise: true,
            ..Self::with_seed(p, seed)?
        })
    }

    /// The drop probability.
    pub fn p(&self) -> f64 {
        self.p
    }
}

impl ModuleT for Dropout {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        if !train || self.p == 0.0 {
            return Ok(x.clone());
        }
        if self.p == 1.0 {
            return x * 0.0;
        }
        let shape: Vec<usize> = if self.channel_wise {
            if x.rank() < 2 {
                return Err(invalid(
                    "Dropout",
                    format!("channel-wise dropout needs (N, C, …), got {:?}", x.dims()),
                )
                .into());
            }
            let mut s = vec![1; x.rank()];
            s[0] = x.dim(0)?;
            s[1] = x.dim(1)?;
            s
        } else {
            x.dims().to_vec()
        };
        let n: usize = shape.iter().product();
        let scale = (1.0 / (1.0 - self.p)) as f32;
        let mask: Vec<f32> = {
            let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
            (0..n)
                .map(|_| {
                    if rng.random::<f64>() < self.p {
                        0.0
                    } else {
                        scale
                    }
                })
                .collect()
        };
        let mask = Tensor::from_vec(mask, shape, x.device())?.to_dtype(x.dtype())?;
        x.broadcast_mul(&mask)
    }
}
