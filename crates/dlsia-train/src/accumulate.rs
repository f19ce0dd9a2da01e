//! [`EpochAccumulator`]: loss and metrics summed over every batch of an epoch, then turned into
//! [`EpochMetrics`] over all counted pixels.

use candle_core::{DType, Tensor};
use dlsia_losses::metrics::{ConfusionMatrix, Pearson};

use crate::error::Result;
use crate::record::EpochMetrics;
use crate::task::TaskConfig;

/// Sums of one split over one epoch.
#[derive(Debug, Clone)]
pub struct EpochAccumulator {
    loss_sum: f64,
    weight: f64,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Segmentation {
        confusion: ConfusionMatrix,
        threshold: f64,
    },
    Correlation(Pearson),
}

impl EpochAccumulator {
    /// An empty accumulator for `task`.
    pub fn new(task: &TaskConfig) -> Result<Self> {
        let kind = match task {
            TaskConfig::Segmentation {
                num_classes,
                ignore_label,
                threshold,
            } => Kind::Segmentation {
                confusion: ConfusionMatrix::new(*num_classes, *ignore_label)?,
                threshold: *threshold,
            },
            TaskConfig::Regression | TaskConfig::Autoencoder => Kind::Correlation(Pearson::new()),
        };
        Ok(Self {
            loss_sum: 0.0,
            weight: 0.0,
            kind,
        })
    }

    /// Adds one batch: the network output, the target and mask the loss saw, and the batch loss
    /// (a mean over the batch's counted pixels, which this weights by their number).
    pub fn update(
        &mut self,
        output: &Tensor,
        target: &Tensor,
        mask: Option<&Tensor>,
        loss: f64,
    ) -> Result<()> {
        let output = output.detach();
        let counted = match &mut self.kind {
            Kind::Segmentation {
                confusion,
                threshold,
            } => {
                let before = confusion.total();
                if output.dim(1)? == 1 {
                    let pred = output.squeeze(1)?.gt(*threshold)?.to_dtype(DType::I64)?;
                    confusion.update_from_labels(&pred, target)?;
                } else {
                    confusion.update_from_scores(&output, target)?;
                }
                (confusion.total() - before) as f64
            }
            Kind::Correlation(p) => {
                let before = p.weight();
                p.update(&output, target, mask)?;
                p.weight() - before
            }
        };
        self.loss_sum += loss * counted;
        self.weight += counted;
        Ok(())
    }

    /// The epoch's metrics.
    pub fn finish(&self) -> EpochMetrics {
        let finite = |v: f64| v.is_finite().then_some(v);
        let loss = (self.weight > 0.0)
            .then(|| self.loss_sum / self.weight)
            .and_then(finite);
        let mut m = EpochMetrics {
            loss,
            pixels: self.weight,
            ..EpochMetrics::default()
        };
        match &self.kind {
            Kind::Segmentation { confusion, .. } if confusion.total() > 0 => {
                m.f1_micro = finite(confusion.f1_micro());
                m.f1_macro = finite(confusion.f1_macro());
                m.mean_iou = finite(confusion.mean_iou());
            }
            Kind::Segmentation { .. } => {}
            Kind::Correlation(p) => m.pearson = p.compute().and_then(finite),
        }
        m
    }
}
