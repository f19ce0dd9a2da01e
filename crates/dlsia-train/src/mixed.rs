//! Mixed-precision training: master weights in the network the trainer was given (f32; the
//! optimizer updates them), a compute copy of the network in a narrower dtype (bf16 or f16 on a
//! GPU) that runs the forward and backward passes.
//!
//! Per step: the input is cast to the compute dtype, the compute network runs, its output is
//! cast back to the master dtype (so the loss, the metrics and every reduction after the
//! network run in f32); the backward pass goes through that cast into the compute network; the
//! gradients of its parameters are cast to the master dtype ([`MixedPrecision::master_gradients`])
//! and the optimizer updates the masters; then [`MixedPrecision::sync_from_master`] rounds the
//! new masters into the compute copy. Running statistics that the compute network updates in a
//! training forward pass are copied back to the masters, so evaluation, checkpoints and saved
//! models use the f32 network. bf16 keeps f32's exponent range and needs no loss scaling; f16
//! does (the trainer turns on a [`LossScaler`](crate::LossScaler) for it).
//!
//! The mechanism is dtype-generic: its tests run on the CPU with f64 masters and an f32 compute
//! copy standing in for f32/bf16.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use dlsia_nets::Network;
use dlsia_ops::ParamKind;

use crate::error::{Error, Result};
use crate::grads::Gradients;
use crate::optim::NamedVar;

/// A compute copy of a network in a narrower dtype, tied to the master network's variables.
pub struct MixedPrecision {
    compute: Box<dyn Network>,
    dtype: DType,
    master_dtype: DType,
    /// `name → (master, compute)` of the trainable parameters.
    trainable: HashMap<String, (Var, Var)>,
    /// `(master, compute)` of the buffers (running statistics, batch counters).
    buffers: Vec<(Var, Var)>,
}

impl MixedPrecision {
    /// Builds the compute copy of `master` in `dtype` on the master's device and copies the
    /// masters into it. Errors when the network cannot be built in `dtype` or the two
    /// networks' parameters do not correspond.
    pub fn new(master: &dyn Network, dtype: DType) -> Result<Self> {
        let store = master.params();
        let master_dtype = store.dtype();
        let compute = master
            .topology()
            .build_in(0, store.device(), dtype)
            .map_err(|e| Error::Incompatible {
                what: "mixed precision",
                msg: format!("cannot build the {dtype:?} compute copy of the network: {e}"),
            })?;
        let mut trainable = HashMap::new();
        let mut buffers = Vec::new();
        for (name, kind, _) in store.entries() {
            let (Some(m), Some(c)) = (store.get(&name), compute.params().get(&name)) else {
                return Err(Error::Incompatible {
                    what: "mixed precision",
                    msg: format!("the {dtype:?} compute copy has no parameter `{name}`"),
                });
            };
            if m.shape() != c.shape() {
                return Err(Error::Incompatible {
                    what: "mixed precision",
                    msg: format!(
                        "`{name}` has shape {:?} in the master network and {:?} in the compute copy",
                        m.dims(),
                        c.dims()
                    ),
                });
            }
            match kind {
                ParamKind::Trainable => {
                    trainable.insert(name, (m, c));
                }
                _ => buffers.push((m, c)),
            }
        }
        let mp = Self {
            compute,
            dtype,
            master_dtype,
            trainable,
            buffers,
        };
        mp.sync_from_master()?;
        for (m, c) in &mp.buffers {
            c.set(&m.as_tensor().to_dtype(c.dtype())?)?;
        }
        Ok(mp)
    }

    /// The compute dtype.
    pub fn compute_dtype(&self) -> DType {
        self.dtype
    }

    /// The compute copy of the network.
    pub fn network(&self) -> &dyn Network {
        self.compute.as_ref()
    }

    /// Runs the compute copy on `x` (cast to the compute dtype) and returns its output cast to
    /// the master dtype. After a training-mode pass the buffers it updated (running statistics)
    /// are copied back to the masters.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let y = self
            .compute
            .forward_t(&x.to_dtype(self.dtype)?, train)?
            .to_dtype(self.master_dtype)?;
        if train {
            for (m, c) in &self.buffers {
                m.set(&c.as_tensor().to_dtype(m.dtype())?)?;
            }
        }
        Ok(y)
    }

    /// The gradients of the compute copy's parameters in `store`, cast to the master dtype and
    /// aligned with the optimizer's (master) variables `vars`.
    pub fn master_gradients(&self, vars: &[NamedVar], store: &mut GradStore) -> Result<Gradients> {
        let grads = vars
            .iter()
            .map(|v| {
                let Some((_, c)) = self.trainable.get(&v.name) else {
                    return Err(Error::Incompatible {
                        what: "mixed precision",
                        msg: format!("the optimizer's variable `{}` has no compute copy", v.name),
                    });
                };
                store
                    .remove(c.as_tensor())
                    .map(|g| g.to_dtype(self.master_dtype).map_err(Error::from))
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Gradients::from_vec(grads))
    }

    /// Rounds every trainable master into its compute copy (after each optimizer step, and
    /// after restoring a checkpoint).
    pub fn sync_from_master(&self) -> Result<()> {
        for (m, c) in self.trainable.values() {
            c.set(&m.as_tensor().to_dtype(self.dtype)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use dlsia_nets::{MsdNet, MsdNetConfig, TuNet, TuNetConfig};
    use dlsia_ops::ParamStore;

    fn input(shape: &[usize], phase: f64) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n).map(|i| ((i as f64) * 0.37 + phase).sin()).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn named(net: &dyn Network) -> Vec<NamedVar> {
        net.params()
            .entries()
            .into_iter()
            .filter(|(_, k, _)| *k == ParamKind::Trainable)
            .map(|(n, _, _)| NamedVar::new(n.clone(), net.params().get(&n).unwrap()))
            .collect()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    /// f64 masters with an f32 compute copy: the output, every gradient (cast to f64) and the
    /// running statistics match a pure f64 pass to f32 rounding, and a master update reaches
    /// the compute copy.
    #[test]
    fn f32_compute_matches_f64_masters() {
        let cfg = MsdNetConfig::new(1, 2, 4, 1, 3);
        let master =
            MsdNet::from_store(&cfg, ParamStore::with_dtype(5, &Device::Cpu, DType::F64)).unwrap();
        let reference =
            MsdNet::from_store(&cfg, ParamStore::with_dtype(5, &Device::Cpu, DType::F64)).unwrap();
        let mp = MixedPrecision::new(&master, DType::F32).unwrap();
        assert_eq!(mp.compute_dtype(), DType::F32);
        assert_eq!(mp.network().params().dtype(), DType::F32);
        let x = input(&[2, 1, 9, 8], 0.2);
        let g = input(&[2, 2, 9, 8], 1.3);
        let y = mp.forward_t(&x, true).unwrap();
        assert_eq!(y.dtype(), DType::F64);
        let yr = reference.forward_t(&x, true).unwrap();
        assert!(max_abs_diff(&y, &yr) < 1e-5);
        let mut store = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let mut store_r = (&yr * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let vars = named(&master);
        let grads = mp.master_gradients(&vars, &mut store).unwrap();
        let grads_r = Gradients::from_store(&named(&reference), &mut store_r);
        assert_eq!(grads.as_slice().len(), vars.len());
        for ((v, a), b) in vars.iter().zip(grads.as_slice()).zip(grads_r.as_slice()) {
            let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
            assert_eq!(a.dtype(), DType::F64, "{}", v.name);
            let scale = 1.0 + max_abs_diff(b, &b.zeros_like().unwrap());
            assert!(max_abs_diff(a, b) < 1e-4 * scale, "{}", v.name);
        }
        // Running statistics flowed back to the masters.
        let rm = "normalization_0.running_mean";
        let (m, r) = (
            master.params().get(rm).unwrap(),
            reference.params().get(rm).unwrap(),
        );
        assert!(max_abs_diff(m.as_tensor(), r.as_tensor()) < 1e-6);
        assert!(max_abs_diff(m.as_tensor(), &m.zeros_like().unwrap()) > 1e-3);
        // A master update (what the optimizer does) reaches the compute copy after a sync.
        let w = "layer_2.conv_0.weight";
        let mv = master.params().get(w).unwrap();
        mv.set(&(mv.as_tensor() + 0.25).unwrap()).unwrap();
        let cv = mp.network().params().get(w).unwrap();
        assert!(max_abs_diff(cv.as_tensor(), mv.as_tensor()) > 0.2);
        mp.sync_from_master().unwrap();
        assert!(max_abs_diff(cv.as_tensor(), mv.as_tensor()) < 1e-6);
    }

    /// bf16 compute on the CPU (Candle's bf16 element-wise ops; the dlsia-ops convolutions run
    /// in f32 inside): the forward pass and the gradients follow the f32 ones to bf16 accuracy.
    #[test]
    fn bf16_compute_follows_f32_masters() {
        let cfg = TuNetConfig::new(&[16, 16], 1, 2, 2, 4);
        let master = TuNet::new(&cfg, 1, &Device::Cpu).unwrap();
        let mp = MixedPrecision::new(&master, DType::BF16).unwrap();
        let x = input(&[1, 1, 16, 16], 0.0).to_dtype(DType::F32).unwrap();
        let y = mp.forward_t(&x, true).unwrap();
        let yr = master.forward_t(&x, true).unwrap();
        assert_eq!(y.dtype(), DType::F32);
        let scale = 1.0 + max_abs_diff(&yr, &yr.zeros_like().unwrap());
        assert!(max_abs_diff(&y, &yr) < 0.05 * scale);
        let mut store = y.sqr().unwrap().mean_all().unwrap().backward().unwrap();
        let grads = mp.master_gradients(&named(&master), &mut store).unwrap();
        assert!(grads
            .as_slice()
            .iter()
            .all(|g| g.as_ref().is_some_and(|g| g.dtype() == DType::F32)));
        assert!(grads.global_norm().unwrap().is_finite());
    }

    #[test]
    fn lean_msdnet_has_no_bf16_copy() {
        let net = dlsia_nets::LeanMsdNet::new(
            &dlsia_nets::LeanMsdConfig::new(2, 1, 2, 3, 1, 3),
            0,
            &Device::Cpu,
        )
        .unwrap();
        let e = MixedPrecision::new(&net, DType::BF16)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("f32 only"), "{e}");
    }
}
