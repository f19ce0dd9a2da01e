//! [`RunLog`]: the run's epoch records as `run.csv` and `run.jsonl`, and its curves as
//! `loss.svg` and `metric.svg`, rewritten atomically after every epoch.

use std::path::{Path, PathBuf};

use dlsia_analysis::plot::{training_curves_svg, Series};

use crate::callback::{Callback, Control, EpochEnd, RunInfo, TrainEnd};
use crate::error::{io_err, Result};
use crate::fsutil::write_atomic;
use crate::monitor::MetricKind;
use crate::record::EpochRecord;

/// CSV file name.
pub const RUN_CSV: &str = "run.csv";
/// JSON-lines file name.
pub const RUN_JSONL: &str = "run.jsonl";
/// Loss curve file name.
pub const LOSS_SVG: &str = "loss.svg";
/// Metric curve file name.
pub const METRIC_SVG: &str = "metric.svg";

/// Writes the run log and curves into a run directory.
pub struct RunLog {
    dir: PathBuf,
    plot: bool,
    metrics: Vec<MetricKind>,
    history: Vec<EpochRecord>,
}

impl RunLog {
    /// A log in `dir`; `plot` also draws the curves.
    pub fn new(dir: impl Into<PathBuf>, plot: bool) -> Self {
        Self {
            dir: dir.into(),
            plot,
            metrics: vec![MetricKind::Loss],
            history: vec![],
        }
    }

    fn write(&self) -> Result<()> {
        write_atomic(
            &self.dir.join(RUN_CSV),
            csv(&self.history, &self.metrics).as_bytes(),
        )?;
        let mut jsonl = String::new();
        for r in &self.history {
            let line = serde_json::to_string(r).map_err(|e| io_err(self.dir.join(RUN_JSONL), e))?;
            jsonl.push_str(&line);
            jsonl.push('\n');
        }
        write_atomic(&self.dir.join(RUN_JSONL), jsonl.as_bytes())?;
        if self.plot && !self.history.is_empty() {
            plot_curves(&self.dir, &self.history, &self.metrics)?;
        }
        Ok(())
    }
}

fn cell(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v}"))
}

/// The history as CSV: `epoch,lr,steps,seconds`, then `train_<metric>` and (if any epoch has
/// validation) `val_<metric>` columns; empty cells where a value is undefined.
pub fn csv(history: &[EpochRecord], metrics: &[MetricKind]) -> String {
    let has_val = history.iter().any(|r| r.validation.is_some());
    let mut out = String::from("epoch,lr,steps,seconds");
    let splits: &[&str] = if has_val {
        &["train", "val"]
    } else {
        &["train"]
    };
    for s in splits {
        for m in metrics {
            out.push_str(&format!(",{s}_{}", m.name()));
        }
    }
    out.push('\n');
    for r in history {
        out.push_str(&format!(
            "{},{},{},{:.3}",
            r.epoch, r.lr, r.steps, r.seconds
        ));
        for m in metrics {
            out.push(',');
            out.push_str(&cell(m.read(&r.train)));
        }
        if has_val {
            for m in metrics {
                out.push(',');
                out.push_str(&cell(r.validation.as_ref().and_then(|v| m.read(v))));
            }
        }
        out.push('\n');
    }
    out
}

fn points(history: &[EpochRecord], get: impl Fn(&EpochRecord) -> Option<f64>) -> Vec<(f64, f64)> {
    history
        .iter()
        .filter_map(|r| get(r).map(|v| (r.epoch as f64, v)))
        .filter(|p| p.1.is_finite())
        .collect()
}

/// Draws `loss.svg` (training and validation loss, log scale when all are positive) and, when
/// the task has a score, `metric.svg` (F1 macro and mean IoU, or Pearson) into `dir`.
pub fn plot_curves(dir: &Path, history: &[EpochRecord], metrics: &[MetricKind]) -> Result<()> {
    let train = points(history, |r| r.train.loss);
    let val = points(history, |r| r.validation.as_ref().and_then(|v| v.loss));
    let mut series = vec![];
    if !train.is_empty() {
        series.push(Series {
            name: "train",
            points: &train,
        });
    }
    if !val.is_empty() {
        series.push(Series {
            name: "validation",
            points: &val,
        });
    }
    if !series.is_empty() {
        let log_y = series.iter().all(|s| s.points.iter().all(|p| p.1 > 0.0));
        training_curves_svg(
            dir.join(LOSS_SVG),
            "loss",
            ("epoch", "loss"),
            &series,
            log_y,
        )?;
    }
    let scores: Vec<MetricKind> = metrics
        .iter()
        .copied()
        .filter(|m| {
            matches!(
                m,
                MetricKind::F1Macro | MetricKind::MeanIou | MetricKind::Pearson
            )
        })
        .collect();
    let mut data = vec![];
    for m in &scores {
        data.push((
            format!("train {}", m.name()),
            points(history, |r| m.read(&r.train)),
        ));
        data.push((
            format!("validation {}", m.name()),
            points(history, |r| r.validation.as_ref().and_then(|v| m.read(v))),
        ));
    }
    let series: Vec<Series<'_>> = data
        .iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(n, p)| Series { name: n, points: p })
        .collect();
    if !series.is_empty() {
        training_curves_svg(
            dir.join(METRIC_SVG),
            "metrics",
            ("epoch", "score"),
            &series,
            false,
        )?;
    }
    Ok(())
}

impl Callback for RunLog {
    fn on_train_start(&mut self, info: &RunInfo<'_>) -> Result<()> {
        self.metrics = info.task.metrics().to_vec();
        self.history = info.history.to_vec();
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| io_err(&self.dir, format!("cannot create: {e}")))?;
        self.write()
    }

    fn on_epoch_end(&mut self, e: &EpochEnd<'_>) -> Result<Control> {
        self.history.push(e.record.clone());
        self.write()?;
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, _end: &TrainEnd<'_>) -> Result<()> {
        Ok(())
    }
}
