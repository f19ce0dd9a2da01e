//! Named parameters and buffers of a network, with seeded PyTorch-style initialisation and
//! strict safetensors save/load.
//!
//! A [`ParamStore`] owns every tensor of a network under the names PyTorch's `state_dict()` would
//! give them (`"layer_0.conv_0.weight"`, `"Step Up 0.bias"`, `"normalization_3.running_mean"`).
//! Layers obtain their tensors through a [`ParamBuilder`], a store plus a name prefix, much like
//! candle-nn's `VarBuilder`, but initialisation draws from the store's own seeded generator
//! (Candle's CPU generator cannot be seeded), so the same seed gives the same weights.
//!
//! ```
//! use candle_core::Device;
//! use dlsia_ops::params::{Init, ParamStore};
//!
//! let store = ParamStore::new(42, &Device::Cpu);
//! let conv = store.root().pp("layer_0").pp("conv_0");
//! let w = conv.param("weight", (1, 3, 3, 3), Init::kaiming_uniform(27))?;
//! assert_eq!(w.dims(), &[1, 3, 3, 3]);
//! assert_eq!(store.num_trainable(), 27);
//! # Ok::<(), dlsia_ops::Error>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use candle_core::{DType, Device, Shape, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{invalid, Error, Result};

/// How a new tensor is filled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// All elements equal to the value.
    Const(f64),
    /// Uniform on `[lo, hi)`.
    Uniform {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
    },
    /// Normal with the given mean and standard deviation.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
}

impl Init {
    /// PyTorch's default for convolution and linear weights and biases:
    /// `kaiming_uniform_(a=√5)` is uniform on `±1/√fan_in`, and so is the bias.
    ///
    /// `fan_in` is `weight.size(1) · kernel volume` (for a transposed convolution that is
    /// `out_channels/groups · kernel volume`, because its weight is laid out `(in, out/g, k…)`).
    pub fn kaiming_uniform(fan_in: usize) -> Self {
        let b = if fan_in == 0 {
            0.0
        } else {
            1.0 / (fan_in as f64).sqrt()
        };
        Init::Uniform { lo: -b, hi: b }
    }
}

/// Whether an entry is trained by the optimizer or only carried along (BatchNorm statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// A parameter: receives gradients and is counted by [`ParamStore::num_trainable`].
    Trainable,
    /// A buffer: saved and loaded, never optimised (running mean/var, `num_batches_tracked`).
    Buffer,
}

#[derive(Debug)]
struct Entry {
    var: Var,
    kind: ParamKind,
}

#[derive(Debug)]
struct Inner {
    /// Names in creation order, which is PyTorch's registration order for ported networks.
    order: Vec<String>,
    entries: HashMap<String, Entry>,
    rng: StdRng,
}

/// The tensors of one network, by name. Cheap to clone: clones share the same tensors.
#[derive(Debug, Clone)]
pub struct ParamStore {
    inner: Arc<Mutex<Inner>>,
    device: Device,
    dtype: DType,
}

/// Options for [`ParamStore::load_tensors`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Tensors in the file whose names start with one of these prefixes are skipped instead of
    /// being reported as unexpected (e.g. the unused `Decode_1.` weights of a dlsia TUNet3+).
    pub ignore_prefixes: Vec<String>,
    /// Tolerate tensors the store lacks (otherwise an [`Error::UnexpectedTensor`]).
    pub allow_unexpected: bool,
    /// Tolerate store entries the file lacks (otherwise an [`Error::MissingTensor`]).
    pub allow_missing: bool,
}

impl ParamStore {
    /// An empty f32 store whose initialisation draws from a generator seeded with `seed`.
    pub fn new(seed: u64, device: &Device) -> Self {
        Self::with_dtype(seed, device, DType::F32)
    }

    /// An empty store for floating-point tensors of `dtype` (f32, or f64 for gradient checks).
    pub fn with_dtype(seed: u64, device: &Device, dtype: DType) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                order: Vec::new(),
                entries: HashMap::new(),
                rng: StdRng::seed_from_u64(seed),
            })),
            device: device.clone(),
            dtype,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-update; the map is still valid.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A builder at the root of the name hierarchy.
    pub fn root(&self) -> ParamBuilder {
        ParamBuilder {
            store: self.clone(),
            prefix: String::new(),
        }
    }

    /// The device the tensors live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The floating-point dtype of the tensors.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Draws a `u64` from the store's generator (for seeding dropout masks and the like, so
    /// that one seed fixes a whole network).
    pub fn next_seed(&self) -> u64 {
        self.lock().rng.random()
    }

    /// The trainable variables, in creation order (what an optimizer takes).
    pub fn trainable_vars(&self) -> Vec<Var> {
        let inner = self.lock();
        inner
            .order
            .iter()
            .filter_map(|n| {
                let e = &inner.entries[n];
                (e.kind == ParamKind::Trainable).then(|| e.var.clone())
            })
            .collect()
    }

    /// Every entry as `(name, kind, tensor)`, in creation order.
    pub fn entries(&self) -> Vec<(String, ParamKind, Tensor)> {
        let inner = self.lock();
        inner
            .order
            .iter()
            .map(|n| {
                let e = &inner.entries[n];
                (n.clone(), e.kind, e.var.as_tensor().clone())
            })
            .collect()
    }

    /// The variable stored under `name`, if any.
    pub fn get(&self, name: &str) -> Option<Var> {
        self.lock().entries.get(name).map(|e| e.var.clone())
    }

    /// Number of trainable scalars, the figure PyTorch's
    /// `sum(p.numel() for p in net.parameters() if p.requires_grad)` gives.
    pub fn num_trainable(&self) -> usize {
        let inner = self.lock();
        inner
            .entries
            .values()
            .filter(|e| e.kind == ParamKind::Trainable)
            .map(|e| e.var.elem_count())
            .sum()
    }

    /// A deep copy of every tensor, by name (for best-model tracking and checkpoints).
    pub fn snapshot(&self) -> Result<BTreeMap<String, Tensor>> {
        let inner = self.lock();
        inner
            .entries
            .iter()
            .map(|(n, e)| Ok((n.clone(), e.var.as_tensor().copy()?)))
            .collect()
    }

    /// Overwrites the store's tensors with `tensors` (strict by default: see [`LoadOptions`]).
    /// Values are converted to the store's dtype, except integer buffers which keep theirs.
    pub fn load_tensors(
        &self,
        tensors: &BTreeMap<String, Tensor>,
        opts: &LoadOptions,
    ) -> Result<()> {
        let inner = self.lock();
        // Check everything before writing anything, so a failed load leaves the store intact.
        for (name, t) in tensors {
            match inner.entries.get(name) {
                Some(e) => {
                    if e.var.shape() != t.shape() {
                        return Err(Error::TensorShapeMismatch {
                            name: name.clone(),
                            expected: e.var.shape().clone(),
                            found: t.shape().clone(),
                        });
                    }
                }
                None => {
                    let ignored = opts
                        .ignore_prefixes
                        .iter()
                        .any(|p| name.starts_with(p.as_str()));
                    if !ignored && !opts.allow_unexpected {
                        return Err(Error::UnexpectedTensor {
                            name: name.clone(),
                            shape: t.shape().clone(),
                        });
                    }
                }
            }
        }
        if !opts.allow_missing {
            for name in &inner.order {
                if !tensors.contains_key(name) {
                    return Err(Error::MissingTensor {
                        name: name.clone(),
                        expected: inner.entries[name].var.shape().clone(),
                    });
                }
            }
        }
        for (name, t) in tensors {
            if let Some(e) = inner.entries.get(name) {
                let t = t.to_device(&self.device)?.to_dtype(e.var.dtype())?;
                e.var.set(&t)?;
            }
        }
        Ok(())
    }

    /// Writes every tensor to a safetensors file under its state_dict name.
    pub fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let map: HashMap<String, Tensor> = self.snapshot()?.into_iter().collect();
        candle_core::safetensors::save(&map, path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })
    }

    /// Reads a safetensors file and loads it with [`ParamStore::load_tensors`].
    pub fn load_safetensors(&self, path: impl AsRef<Path>, opts: &LoadOptions) -> Result<()> {
        let path = path.as_ref();
        let tensors =
            candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| Error::Io {
                path: path.to_path_buf(),
                msg: format!("cannot read safetensors: {e}"),
            })?;
        self.load_tensors(&tensors.into_iter().collect(), opts)
    }

    fn create(
        &self,
        name: String,
        shape: Shape,
        init: Init,
        kind: ParamKind,
        dtype: DType,
    ) -> Result<Var> {
        let mut inner = self.lock();
        if let Some(e) = inner.entries.get(&name) {
            if e.var.shape() != &shape {
                return Err(Error::TensorShapeMismatch {
                    name,
                    expected: shape,
                    found: e.var.shape().clone(),
                });
            }
            return Ok(e.var.clone());
        }
        let n = shape.elem_count();
        let values: Vec<f64> = match init {
            Init::Const(c) => vec![c; n],
            Init::Uniform { lo, hi } => {
                if lo.is_nan() || hi.is_nan() || lo > hi {
                    return Err(invalid(
                        "Init::Uniform",
                        format!("need lo <= hi, got {lo} > {hi}"),
                    ));
                }
                (0..n)
                    .map(|_| {
                        if lo == hi {
                            lo
                        } else {
                            inner.rng.random_range(lo..hi)
                        }
                    })
                    .collect()
            }
            Init::Normal { mean, std } => {
                let d = rand_distr::Normal::new(mean, std).map_err(|e| {
                    invalid("Init::Normal", format!("std must be finite and >= 0: {e}"))
                })?;
                (0..n)
                    .map(|_| rand_distr::Distribution::sample(&d, &mut inner.rng))
                    .collect()
            }
        };
        let t = Tensor::from_vec(values, shape, &self.device)?.to_dtype(dtype)?;
        let var = Var::from_tensor(&t)?;
        inner.order.push(name.clone());
        inner.entries.insert(
            name,
            Entry {
                var: var.clone(),
                kind,
            },
        );
        Ok(var)
    }
}

/// A [`ParamStore`] plus a name prefix; layers take one of these to create their tensors.
#[derive(Debug, Clone)]
pub struct ParamBuilder {
    store: ParamStore,
    prefix: String,
}

impl ParamBuilder {
    /// A builder whose names are prefixed by `name.` (names may contain spaces, as dlsia's do).
    pub fn pp(&self, name: impl std::fmt::Display) -> Self {
        Self {
            store: self.store.clone(),
            prefix: self.path(&name.to_string()),
        }
    }

    /// The full name of `name` under this builder's prefix.
    pub fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{}", self.prefix, name)
        }
    }

    /// The name prefix of this builder (empty at the root), e.g. `"layer_0.conv_0"`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The store this builder writes into.
    pub fn store(&self) -> &ParamStore {
        &self.store
    }

    /// The device of the store.
    pub fn device(&self) -> &Device {
        self.store.device()
    }

    /// The floating-point dtype of the store.
    pub fn dtype(&self) -> DType {
        self.store.dtype()
    }

    /// A trainable parameter, created with `init` unless it already exists (then its shape must
    /// match). The returned tensor is the variable itself, so gradients flow to it.
    pub fn param(&self, name: &str, shape: impl Into<Shape>, init: Init) -> Result<Tensor> {
        let var = self.store.create(
            self.path(name),
            shape.into(),
            init,
            ParamKind::Trainable,
            self.store.dtype,
        )?;
        Ok(var.as_tensor().clone())
    }

    /// A non-trainable floating-point buffer (e.g. BatchNorm running statistics), updated in
    /// place through [`Var::set`].
    pub fn buffer(&self, name: &str, shape: impl Into<Shape>, init: Init) -> Result<Var> {
        self.store.create(
            self.path(name),
            shape.into(),
            init,
            ParamKind::Buffer,
            self.store.dtype,
        )
    }

    /// A non-trainable int64 buffer (e.g. BatchNorm's `num_batches_tracked`, a 0-d tensor).
    pub fn int_buffer(&self, name: &str, shape: impl Into<Shape>, value: i64) -> Result<Var> {
        self.store.create(
            self.path(name),
            shape.into(),
            Init::Const(value as f64),
            ParamKind::Buffer,
            DType::I64,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(seed: u64) -> ParamStore {
        let s = ParamStore::new(seed, &Device::Cpu);
        let r = s.root();
        r.pp("Step Up 0")
            .param("weight", (2, 3), Init::kaiming_uniform(4))
            .unwrap();
        r.pp("bn")
            .buffer("running_var", 3, Init::Const(1.0))
            .unwrap();
        r.pp("bn").int_buffer("num_batches_tracked", (), 0).unwrap();
        s
    }

    #[test]
    fn same_seed_same_values_and_pytorch_bounds() {
        let a = build(7).get("Step Up 0.weight").unwrap();
        let b = build(7).get("Step Up 0.weight").unwrap();
        let c = build(8).get("Step Up 0.weight").unwrap();
        let (a, b, c) = (
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            c.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().all(|v| v.abs() < 0.5), "1/sqrt(4) bound: {a:?}");
    }

    #[test]
    fn counts_only_trainable_and_keeps_order() {
        let s = build(1);
        assert_eq!(s.num_trainable(), 6);
        let names: Vec<_> = s.entries().into_iter().map(|e| e.0).collect();
        assert_eq!(
            names,
            [
                "Step Up 0.weight",
                "bn.running_var",
                "bn.num_batches_tracked"
            ]
        );
        assert_eq!(s.get("bn.num_batches_tracked").unwrap().dtype(), DType::I64);
    }

    #[test]
    fn strict_load_names_the_offending_key() {
        let s = build(1);
        let mut t = s.snapshot().unwrap();
        t.insert(
            "extra".into(),
            Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap(),
        );
        let e = s
            .load_tensors(&t, &LoadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("extra"), "{e}");
        t.remove("extra");
        t.insert(
            "bn.running_var".into(),
            Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap(),
        );
        let e = s
            .load_tensors(&t, &LoadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("bn.running_var") && e.contains("[3]") && e.contains("[4]"),
            "{e}"
        );
        let mut t = s.snapshot().unwrap();
        t.remove("Step Up 0.weight");
        let e = s
            .load_tensors(&t, &LoadOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("missing") && e.contains("Step Up 0.weight"),
            "{e}"
        );
    }

    #[test]
    fn safetensors_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.safetensors");
        let a = build(3);
        a.save_safetensors(&p).unwrap();
        let b = build(4);
        b.load_safetensors(&p, &LoadOptions::default()).unwrap();
        let (x, y) = (a.snapshot().unwrap(), b.snapshot().unwrap());
        for (k, v) in &x {
            let d = (v.to_dtype(DType::F64).unwrap() - y[k].to_dtype(DType::F64).unwrap())
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            assert_eq!(d, 0.0, "{k}");
        }
    }
}
