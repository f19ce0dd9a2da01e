//! [`SparseAec`]: dlsia's `sparsenet.SparseAEC`, an SMS autoencoder with a classifier on its
//! latent image.

use candle_core::{Device, Module, Tensor};
use dlsia_ops::nn::{BatchNorm, Dropout, Linear};
use dlsia_ops::ParamStore;

use super::config::SparseAecConfig;
use super::fc::{flatten, FcBn};
use super::{check_image, check_vectors};
use crate::blocks::Pass;
use crate::error::Result;
use crate::network::{Autoencoder, Network};
use crate::smsnet::SmsNet;
use crate::topology::Topology;

const NET: &str = "SparseAEC";

/// An SMS autoencoder whose latent image also feeds a classifier.
///
/// * [`SparseAec::forward_both`] is the original's `forward`: `(reconstruction, logits)`;
/// * [`Network::forward_t`] gives the reconstruction only (an image, like every other
///   [`Network`] of this crate, so the autoencoder trainer and `predict` work unchanged), and
///   [`SparseAec::classify`] the logits only;
/// * [`Autoencoder::encode`] is the original's `latent(x)`: the flattened latent image
///   (`n_latent` values), and [`Autoencoder::decode`] maps it back to an image.
///
/// Names: `encode.*`, `decode.*`, `bn1`, `fc1`, `bn2`, `fc2`, `fc3` (the original's unused
/// `dropout1` has no tensors). Its `Dropout1d` layers, applied to `(N, features)` vectors,
/// drop whole samples in PyTorch (it reads the batch as channels); here dropout is
/// element-wise over the features, which is what a feature dropout means. Evaluation and
/// dropout-free training are unaffected.
#[derive(Debug, Clone)]
pub struct SparseAec {
    cfg: SparseAecConfig,
    store: ParamStore,
    encoder: SmsNet,
    decoder: SmsNet,
    layer1: FcBn,
    layer2: FcBn,
    fc3: Linear,
    dropout2: Dropout,
    dropout3: Dropout,
}

impl SparseAec {
    /// Validates `cfg`, samples any graph it lacks from its `graph_seed`, and builds the
    /// network with f32 weights initialised like PyTorch's defaults from `seed`.
    pub fn new(cfg: &SparseAecConfig, seed: u64, device: &Device) -> Result<Self> {
        Self::from_store(cfg, ParamStore::new(seed, device))
    }

    /// As [`SparseAec::new`], in `store` (e.g. an f64 store for gradient checks).
    pub fn from_store(cfg: &SparseAecConfig, store: ParamStore) -> Result<Self> {
        cfg.validate()?;
        let cfg = cfg.resolved()?;
        let root = store.root();
        let encoder = SmsNet::in_builder(&cfg.encoder_config()?, &root.pp("encode"))?;
        let decoder = SmsNet::in_builder(&cfg.decoder_config()?, &root.pp("decode"))?;
        let n = cfg.n_latent();
        let half = n / 2;
        // Registration order of the original: bn1, fc1, dropout1, bn2, fc2, dropout2, fc3.
        let bn1 = BatchNorm::new(&root.pp("bn1"), half)?;
        let fc1 = Linear::new(&root.pp("fc1"), n, half, true)?;
        let bn2 = BatchNorm::new(&root.pp("bn2"), half)?;
        let fc2 = Linear::new(&root.pp("fc2"), half, half, true)?;
        let dropout2 = Dropout::new(&root, cfg.dropout_rate)?;
        let fc3 = Linear::new(&root.pp("fc3"), half, cfg.out_classes, true)?;
        let dropout3 = Dropout::new(&root, cfg.dropout_rate)?;
        super::check_buildable(
            NET,
            &encoder,
            Some(&decoder),
            cfg.in_shape,
            cfg.latent_shape,
        )?;
        Ok(SparseAec {
            cfg,
            store,
            encoder,
            decoder,
            layer1: FcBn {
                linear: fc1,
                bn: bn1,
            },
            layer2: FcBn {
                linear: fc2,
                bn: bn2,
            },
            fc3,
            dropout2,
            dropout3,
        })
    }

    /// The configuration, with both graphs explicit.
    pub fn config(&self) -> &SparseAecConfig {
        &self.cfg
    }

    /// The original's `forward`: the reconstruction `(N, C, Y, X)` and the class logits
    /// `(N, out_classes)`.
    pub fn forward_both(&self, x: &Tensor, train: bool) -> Result<(Tensor, Tensor)> {
        let pass = Pass::of(train);
        let latent = self.latent_image(x, pass)?;
        let logits = self.head(&flatten(&latent)?, pass)?;
        Ok((self.decode_image(&latent, pass)?, logits))
    }

    /// The class logits `(N, out_classes)` alone.
    pub fn classify(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let pass = Pass::of(train);
        self.head(&flatten(&self.latent_image(x, pass)?)?, pass)
    }

    fn latent_image(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        self.check_input(x.dims())?;
        Ok(self.encoder.run(x, pass.train(), pass == Pass::Infer)?.1)
    }

    fn decode_image(&self, latent: &Tensor, pass: Pass) -> Result<Tensor> {
        Ok(self
            .decoder
            .run(latent, pass.train(), pass == Pass::Infer)?
            .1)
    }

    fn head(&self, flat: &Tensor, pass: Pass) -> Result<Tensor> {
        let h = self.layer1.forward(flat, Some(&self.dropout2), pass)?;
        let h = self.layer2.forward(&h, Some(&self.dropout3), pass)?;
        Ok(pass.keep(self.fc3.forward(&h)?))
    }
}

impl Autoencoder for SparseAec {
    fn encode(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        flatten(&self.latent_image(x, Pass::of(train))?)
    }

    fn decode(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        check_vectors(NET, z, self.latent_dim())?;
        let [y, x] = self.cfg.latent_shape;
        let img = z.reshape((z.dim(0)?, self.cfg.out_channels, y, x))?;
        self.decode_image(&img, Pass::of(train))
    }

    fn latent_dim(&self) -> usize {
        self.cfg.n_latent()
    }
}

impl Network for SparseAec {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let pass = Pass::of(train);
        self.decode_image(&self.latent_image(x, pass)?, pass)
    }

    fn predict(&self, x: &Tensor) -> Result<Tensor> {
        self.decode_image(&self.latent_image(x, Pass::Infer)?, Pass::Infer)
    }

    fn topology(&self) -> Topology {
        Topology::SparseAec(self.cfg.clone())
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
        // The reconstruction has the input's channels.
        self.in_channels()
    }

    fn check_input(&self, shape: &[usize]) -> Result<()> {
        check_image(NET, shape, self.cfg.in_channels, self.cfg.in_shape)
    }

    fn as_autoencoder(&self) -> Option<&dyn Autoencoder> {
        Some(self)
    }
}
