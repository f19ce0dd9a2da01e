//! [`SparseAutoEncoder`]: dlsia's `sparsenet.SparseAutoEncoder`.

use candle_core::{Device, Module, Tensor};
use dlsia_ops::nn::Activation;
use dlsia_ops::ParamStore;

use super::config::SparseAutoEncoderConfig;
use super::fc::{flatten, FcStack};
use super::{check_image, check_vectors};
use crate::blocks::Pass;
use crate::error::Result;
use crate::network::{Autoencoder, Network};
use crate::smsnet::SmsNet;
use crate::topology::Topology;

const NET: &str = "SparseAutoEncoder";

/// An autoencoder on randomised sparse mixed-scale networks: `encode` (SMSNet, strided edges)
/// → flatten → `encoder_fc_layers` → latent vector → `decoder_fc_layers` → unflatten →
/// `decode` (SMSNet, transposed-convolution edges) → optional final transform.
///
/// Tensor names are the original's `state_dict` names (`encode.Edge_*`,
/// `encoder_fc_layers.{0,1,4}.*`, BatchNorm1d running statistics included). The SMSNets'
/// BatchNorms use batch statistics in evaluation too, as in the original. Dropout is
/// element-wise (`nn.Dropout`), as in the original.
#[derive(Debug, Clone)]
pub struct SparseAutoEncoder {
    cfg: SparseAutoEncoderConfig,
    store: ParamStore,
    encoder: SmsNet,
    decoder: SmsNet,
    encoder_fc: FcStack,
    decoder_fc: FcStack,
    final_act: Option<Activation>,
}

impl SparseAutoEncoder {
    /// Validates `cfg`, samples any graph it lacks from its `graph_seed`, and builds the
    /// network with f32 weights initialised like PyTorch's defaults from `seed`.
    pub fn new(cfg: &SparseAutoEncoderConfig, seed: u64, device: &Device) -> Result<Self> {
        Self::from_store(cfg, ParamStore::new(seed, device))
    }

    /// As [`SparseAutoEncoder::new`], in `store` (e.g. an f64 store for gradient checks).
    pub fn from_store(cfg: &SparseAutoEncoderConfig, store: ParamStore) -> Result<Self> {
        cfg.validate()?;
        let cfg = cfg.resolved()?;
        let root = store.root();
        let encoder = SmsNet::in_builder(&cfg.encoder_config()?, &root.pp("encode"))?;
        let decoder = SmsNet::in_builder(&cfg.decoder_config()?, &root.pp("decode"))?;
        let n = cfg.n_latent();
        let widths: Vec<usize> = std::iter::once(n)
            .chain(cfg.latent_sequence.iter().copied())
            .collect();
        let back: Vec<usize> = widths.iter().rev().copied().collect();
        let encoder_fc = FcStack::new(&root.pp("encoder_fc_layers"), &widths, cfg.dropout_p)?;
        let decoder_fc = FcStack::new(&root.pp("decoder_fc_layers"), &back, cfg.dropout_p)?;
        let net = SparseAutoEncoder {
            final_act: cfg.final_transform.map(|f| f.layer()),
            cfg,
            store,
            encoder,
            decoder,
            encoder_fc,
            decoder_fc,
        };
        super::check_buildable(
            NET,
            &net.encoder,
            Some(&net.decoder),
            net.cfg.in_shape,
            net.cfg.latent_shape,
        )?;
        Ok(net)
    }

    /// The configuration, with both graphs explicit.
    pub fn config(&self) -> &SparseAutoEncoderConfig {
        &self.cfg
    }

    /// The latent vectors of `x` in eval mode, without recording the autograd graph (dlsia's
    /// `latent_vector`).
    pub fn latent(&self, x: &Tensor) -> Result<Tensor> {
        self.encode_pass(x, Pass::Infer)
    }

    fn encode_pass(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        self.check_input(x.dims())?;
        let (_, h) = self.encoder.run(x, pass.train(), pass == Pass::Infer)?;
        self.encoder_fc.forward(&flatten(&h)?, pass)
    }

    fn decode_pass(&self, z: &Tensor, pass: Pass) -> Result<Tensor> {
        let l = self.latent_dim();
        check_vectors(NET, z, l)?;
        let h = self.decoder_fc.forward(z, pass)?;
        let [y, x] = self.cfg.latent_shape;
        let h = h.reshape((z.dim(0)?, self.cfg.out_channels, y, x))?;
        let (_, out) = self.decoder.run(&h, pass.train(), pass == Pass::Infer)?;
        Ok(match &self.final_act {
            Some(a) => pass.keep(a.forward(&out)?),
            None => out,
        })
    }
}

impl Autoencoder for SparseAutoEncoder {
    fn encode(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.encode_pass(x, Pass::of(train))
    }

    fn decode(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        self.decode_pass(z, Pass::of(train))
    }

    fn latent_dim(&self) -> usize {
        *self.cfg.latent_sequence.last().unwrap_or(&0)
    }
}

impl Network for SparseAutoEncoder {
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.decode(&self.encode(x, train)?, train)
    }

    fn predict(&self, x: &Tensor) -> Result<Tensor> {
        self.decode_pass(&self.encode_pass(x, Pass::Infer)?, Pass::Infer)
    }

    fn topology(&self) -> Topology {
        Topology::SparseAutoEncoder(self.cfg.clone())
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
