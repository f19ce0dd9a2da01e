//! [`Monitor`]: the epoch metric that chooses the best model, stops early and drives
//! reduce-on-plateau, written as `"val_loss"`, `"val_f1_macro"`, `"train_pearson"`…

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{config_err, Error, Result};
use crate::record::{EpochMetrics, EpochRecord};

/// Whether smaller or larger values of a metric are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Goal {
    /// Losses.
    Minimize,
    /// Scores (F1, IoU, Pearson).
    Maximize,
}

impl Goal {
    /// Whether `value` improves on `best` by more than `min_delta` (any finite value improves
    /// on no best at all; NaN never improves).
    pub fn improves(self, value: f64, best: Option<f64>, min_delta: f64) -> bool {
        if !value.is_finite() {
            return false;
        }
        match (self, best) {
            (_, None) => true,
            (Goal::Minimize, Some(b)) => value < b - min_delta,
            (Goal::Maximize, Some(b)) => value > b + min_delta,
        }
    }
}

/// Which pass over the data a metric comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The training batches of the epoch (train mode, before each step's update).
    Train,
    /// The validation batches after the epoch (eval mode).
    Validation,
}

/// An epoch metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// The loss, averaged over every counted pixel of the epoch.
    Loss,
    /// Micro-averaged F1 (segmentation).
    F1Micro,
    /// Macro-averaged F1 (segmentation).
    F1Macro,
    /// Mean intersection over union (segmentation).
    MeanIou,
    /// Pearson correlation (regression, autoencoder).
    Pearson,
}

impl MetricKind {
    const ALL: [(MetricKind, &'static str); 5] = [
        (MetricKind::Loss, "loss"),
        (MetricKind::F1Micro, "f1_micro"),
        (MetricKind::F1Macro, "f1_macro"),
        (MetricKind::MeanIou, "mean_iou"),
        (MetricKind::Pearson, "pearson"),
    ];

    /// The metric's name in configurations and logs.
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("loss", |(_, n)| n)
    }

    /// Whether the metric is minimised or maximised.
    pub fn goal(self) -> Goal {
        match self {
            MetricKind::Loss => Goal::Minimize,
            _ => Goal::Maximize,
        }
    }

    /// Reads the metric from one split's metrics.
    pub fn read(self, m: &EpochMetrics) -> Option<f64> {
        match self {
            MetricKind::Loss => m.loss,
            MetricKind::F1Micro => m.f1_micro,
            MetricKind::F1Macro => m.f1_macro,
            MetricKind::MeanIou => m.mean_iou,
            MetricKind::Pearson => m.pearson,
        }
    }
}

/// A metric of a split, e.g. `"val_loss"` (also `"validation_loss"`), `"train_f1_macro"`,
/// `"val_mean_iou"`, `"val_pearson"`.
///
/// ```
/// use dlsia_train::monitor::{Goal, Monitor};
/// let m: Monitor = "val_f1_macro".parse()?;
/// assert_eq!(m.goal(), Goal::Maximize);
/// assert_eq!(m.to_string(), "val_f1_macro");
/// assert!("val_accuracy".parse::<Monitor>().is_err());
/// # Ok::<(), dlsia_train::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Monitor {
    /// The split.
    pub split: Split,
    /// The metric.
    pub metric: MetricKind,
}

impl Monitor {
    /// The validation loss.
    pub const VAL_LOSS: Monitor = Monitor {
        split: Split::Validation,
        metric: MetricKind::Loss,
    };
    /// The training loss.
    pub const TRAIN_LOSS: Monitor = Monitor {
        split: Split::Train,
        metric: MetricKind::Loss,
    };

    /// Whether the metric is minimised or maximised.
    pub fn goal(&self) -> Goal {
        self.metric.goal()
    }

    /// The value in an epoch record (`None` if the split or the metric is absent).
    pub fn value(&self, record: &EpochRecord) -> Option<f64> {
        let m = match self.split {
            Split::Train => Some(&record.train),
            Split::Validation => record.validation.as_ref(),
        };
        m.and_then(|m| self.metric.read(m))
    }
}

impl fmt::Display for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self.split {
            Split::Train => "train",
            Split::Validation => "val",
        };
        write!(f, "{s}_{}", self.metric.name())
    }
}

impl FromStr for Monitor {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            config_err(
                "monitor",
                format!(
                    "unknown metric `{s}`; use train_ or val_ followed by one of loss, f1_micro, f1_macro, mean_iou, pearson (e.g. \"val_loss\")"
                ),
            )
        };
        let (split, rest) = if let Some(r) = s.strip_prefix("train_") {
            (Split::Train, r)
        } else if let Some(r) = s
            .strip_prefix("val_")
            .or_else(|| s.strip_prefix("validation_"))
        {
            (Split::Validation, r)
        } else {
            return Err(bad());
        };
        let metric = MetricKind::ALL
            .iter()
            .find(|(_, n)| *n == rest)
            .map(|(k, _)| *k)
            .ok_or_else(bad)?;
        Ok(Monitor { split, metric })
    }
}

impl TryFrom<String> for Monitor {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Monitor> for String {
    fn from(m: Monitor) -> String {
        m.to_string()
    }
}
