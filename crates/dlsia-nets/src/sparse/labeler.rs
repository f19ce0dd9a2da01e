//! [`SparseLabeler`]: dlsia's `sparsenet.SparseLabeler`, an SMSNet encoder with a classifier.

use candle_core::{Device, ModuleT, Tensor};
use dlsia_ops::nn::{BatchNorm, Dropout, Linear};
use dlsia_ops::ParamStore;

use super::check_image;
use super::config::SparseLabelerConfig;
use super::fc::{flatten, FcBn};
use crate::blocks::Pass;
use crate::error::Result;
use crate::network::Network;
use crate::smsnet::SmsNet;
use crate::topology::Topology;

const NET: &str = "SparseLabeler";

/// Class logits of an image: `bn2(fc2(dropout(ReLU(bn1(fc1(dropout(flatten(encode(x)))))))))`
/// with `fc1: n_latent → n_latent` and `fc2: n_latent → out_classes`; its forward output is
/// `(N, out_classes)` (so [`Network::out_channels`] is `out_classes`).
///
/// Names: `encode.*`, `bn1`, `fc1`, `bn2`, `fc2`. The original's `Dropout1d` on
/// `(N, features)` vectors drops whole samples (PyTorch reads the batch as channels); here
/// dropout is element-wise over the features. Evaluation and dropout-free training are
/// unaffected.
#[derive(Debug, Clone)]
pub struct SparseLabeler {
    cfg: SparseLabelerConfig,
    store: ParamStore,
    encoder: SmsNet,
    dropout1: Dropout,
    layer1: FcBn,
    dropout2: Dropout,
    layer2: FcBn,
}

impl SparseLabeler {
    /// Validates `cfg`, samples its graph from `graph_seed` if absent, and builds the network
    /// with f32 weights initialised like PyTorch's defaults from `seed`.
    pub fn new(cfg: &SparseLabelerConfig, seed: u64, device: &Device) -> Result<Self> {
        Self::from_store(cfg, ParamStore::new(seed, device))
    }

    /// As [`SparseLabeler::new`], in `store` (e.g. an f64 store for gradient checks).
    pub fn from_store(cfg: &SparseLabelerConfig, store: ParamStore) -> Result<Self> {
        cfg.validate()?;
        let cfg = cfg.resolved()?;
        let root = store.root();
        let encoder = SmsNet::in_builder(&cfg.encoder_config()?, &root.pp("encode"))?;
        let n = cfg.n_latent();
        // Registration order of the original: do1, bn1, fc1, do2, bn2, fc2.
        let dropout1 = Dropout::new(&root, cfg.dropout_rate)?;
        let bn1 = BatchNorm::new(&root.pp("bn1"), n)?;
        let fc1 = Linear::new(&root.pp("fc1"), n, n, true)?;
        let dropout2 = Dropout::new(&root, cfg.dropout_rate)?;
        let bn2 = BatchNorm::new(&root.pp("bn2"), cfg.out_classes)?;
        let fc2 = Linear::new(&root.pp("fc2"), n, cfg.out_classes, true)?;
        super::check_buildable(NET, &encoder, None, cfg.in_shape, cfg.latent_shape)?;
        Ok(SparseLabeler {
            cfg,
            store,
            encoder,
            dropout1,
            layer1: FcBn {
                linear: fc1,
                bn: bn1,
            },
            dropout2,
            layer2: FcBn {
                linear: fc2,
                bn: bn2,
            },
        })
    }

    /// The configuration, with the graph explicit.
    pub fn config(&self) -> &SparseLabelerConfig {
        &self.cfg
    }

    /// Number of classes (the length of a logit vector).
    pub fn out_classes(&self) -> usize {
        self.cfg.out_classes
    }

    fn run(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        self.check_input(x.dims())?;
        let latent = self.encoder.run(x, pass.train(), pass == Pass::Infer)?.1;
        let flat = pass.keep(self.dropout1.forward_t(&flatten(&latent)?, pass.train())?);
        let h = self.layer1.forward(&flat, Some(&self.dropout2), pass)?;
        self.layer2.forward(&h, None, pass)
    }
}

impl Network for SparseLabeler {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.run(x, Pass::of(train))
    }

    fn predict(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, Pass::Infer)
    }

    fn topology(&self) -> Topology {
        Topology::SparseLabeler(self.cfg.clone())
    }

    fn params(&self) -> &ParamStore {
        &self.store
    }

    fn spatial_dims(&self) -> usize {
        2
    }

    fn in_channels(&self) -> usize {
        self.cfg.in_channels
    }

    fn out_channels(&self) -> usize {
        // The logits `(N, out_classes)`.
        self.out_classes()
    }

    fn check_input(&self, shape: &[usize]) -> Result<()> {
        check_image(NET, shape, self.cfg.in_channels, self.cfg.in_shape)
    }
}
