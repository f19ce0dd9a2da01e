//! [`ProgressBar`]: an indicatif bar per epoch (batches/s, loss, learning rate, ETA) and a
//! one-line summary after each epoch, as a [`Callback`].

use indicatif::{MultiProgress, ProgressDrawTarget, ProgressStyle};

use crate::callback::{BatchEnd, Callback, EpochEnd, RunInfo};
use crate::error::Result;
use crate::record::{EpochMetrics, EpochRecord};

/// Progress display on standard error. Where standard error is not a terminal the bar is
/// hidden and only the per-epoch summary lines are printed.
pub struct ProgressBar {
    prefix: String,
    multi: Option<MultiProgress>,
    bar: Option<indicatif::ProgressBar>,
    epochs: usize,
}

impl Default for ProgressBar {
    fn default() -> Self {
        Self::new()
    }
}

impl ProgressBar {
    /// A bar on standard error.
    pub fn new() -> Self {
        Self {
            prefix: String::new(),
            multi: None,
            bar: None,
            epochs: 0,
        }
    }

    /// A bar inside `multi` (several runs at once, e.g. ensemble members in threads), its lines
    /// starting with `prefix`.
    pub fn in_multi(multi: &MultiProgress, prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            multi: Some(multi.clone()),
            ..Self::new()
        }
    }

    fn new_bar(&self, len: usize, what: &str, epoch: usize) -> indicatif::ProgressBar {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(len as u64),
            ProgressDrawTarget::stderr(),
        );
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:28}] {pos}/{len} batches ({per_sec}, ETA {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        let sep = if self.prefix.is_empty() { "" } else { " " };
        bar.set_prefix(format!(
            "{}{sep}{what} {epoch}/{}",
            self.prefix, self.epochs
        ));
        match &self.multi {
            Some(m) => m.add(bar),
            None => bar,
        }
    }

    fn say(&self, line: String) {
        match (&self.multi, &self.bar) {
            (Some(m), _) if !m.is_hidden() => {
                let _ = m.println(line);
            }
            (None, Some(b)) if !b.is_hidden() => b.println(line),
            _ => eprintln!("{line}"),
        }
    }
}

fn fmt_metrics(name: &str, m: &EpochMetrics) -> String {
    let mut s = String::new();
    let mut add = |k: &str, v: Option<f64>| {
        if let Some(v) = v {
            s.push_str(&format!(" {name}{k} {v:.4}"));
        }
    };
    add("loss", m.loss);
    add("f1_macro", m.f1_macro);
    add("iou", m.mean_iou);
    add("pearson", m.pearson);
    s
}

/// One line summarising an epoch.
pub fn summary_line(r: &EpochRecord, epochs: usize) -> String {
    let mut s = format!("epoch {}/{epochs}:", r.epoch);
    s.push_str(&fmt_metrics("", &r.train));
    if let Some(v) = &r.validation {
        s.push_str(&fmt_metrics("val_", v));
    }
    s.push_str(&format!(" lr {:.3e} ({:.1} s)", r.lr, r.seconds));
    s
}

impl Callback for ProgressBar {
    fn on_train_start(&mut self, info: &RunInfo<'_>) -> Result<()> {
        self.epochs = info.epochs;
        if info.start_epoch > 0 {
            self.say(format!(
                "{}resuming after epoch {} of {}",
                if self.prefix.is_empty() {
                    String::new()
                } else {
                    format!("{} ", self.prefix)
                },
                info.start_epoch,
                info.epochs
            ));
        }
        Ok(())
    }

    fn on_epoch_start(&mut self, epoch: usize, batches: usize) -> Result<()> {
        self.bar = Some(self.new_bar(batches, "epoch", epoch));
        Ok(())
    }

    fn on_batch_end(&mut self, e: &BatchEnd) -> Result<()> {
        if let Some(b) = &self.bar {
            b.inc(1);
            b.set_message(format!("loss {:.4} lr {:.2e}", e.loss, e.lr));
        }
        Ok(())
    }

    fn on_validation_start(&mut self, _epoch: usize, batches: usize) -> Result<()> {
        if let Some(b) = &self.bar {
            b.set_message(format!("validating ({batches} batches)"));
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, e: &EpochEnd<'_>) -> Result<crate::Control> {
        let mut line = summary_line(e.record, e.epochs);
        if !self.prefix.is_empty() {
            line = format!("{} {line}", self.prefix);
        }
        if e.improved {
            line.push_str(" *");
        }
        if e.early_stop {
            line.push_str(" (early stop)");
        }
        self.say(line);
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        Ok(crate::Control::Continue)
    }
}
