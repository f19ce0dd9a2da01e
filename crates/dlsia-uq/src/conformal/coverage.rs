//! Coverage reports: how often the prediction sets contain the true class, and how large they
//! are.

use std::fmt;

use crate::error::{invalid_config, Result};

/// Empirical coverage and set sizes over labelled pixels, mergeable across tiles and batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageReport {
    num_classes: usize,
    covered: Vec<u64>,
    labelled: Vec<u64>,
    size_histogram: Vec<u64>,
}

impl CoverageReport {
    /// An empty report for `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        Self {
            num_classes,
            covered: vec![0; num_classes],
            labelled: vec![0; num_classes],
            size_histogram: vec![0; num_classes + 1],
        }
    }

    pub(crate) fn record(&mut self, label: usize, covered: bool, size: usize) {
        self.labelled[label] += 1;
        self.covered[label] += covered as u64;
        self.size_histogram[size] += 1;
    }

    /// Adds another report (same number of classes).
    pub fn merge(&mut self, other: &CoverageReport) -> Result<()> {
        if other.num_classes != self.num_classes {
            return Err(invalid_config(
                "CoverageReport::merge",
                format!(
                    "cannot merge a {}-class report into a {}-class one",
                    other.num_classes, self.num_classes
                ),
            ));
        }
        let add = |a: &mut Vec<u64>, b: &Vec<u64>| a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
        add(&mut self.covered, &other.covered);
        add(&mut self.labelled, &other.labelled);
        add(&mut self.size_histogram, &other.size_histogram);
        Ok(())
    }

    /// Labelled pixels evaluated.
    pub fn labelled(&self) -> u64 {
        self.labelled.iter().sum()
    }

    /// Labelled pixels whose set contains the true class.
    pub fn covered(&self) -> u64 {
        self.covered.iter().sum()
    }

    /// Fraction of labelled pixels whose set contains the true class (`None` without pixels).
    pub fn coverage(&self) -> Option<f64> {
        let n = self.labelled();
        (n > 0).then(|| self.covered() as f64 / n as f64)
    }

    /// Coverage among the pixels of true class `c` (`None` if there are none).
    pub fn class_coverage(&self, c: usize) -> Option<f64> {
        let n = *self.labelled.get(c)?;
        (n > 0).then(|| self.covered[c] as f64 / n as f64)
    }

    /// Mean set size over the labelled pixels (`None` without pixels).
    pub fn mean_set_size(&self) -> Option<f64> {
        let n = self.labelled();
        let total: u64 = self
            .size_histogram
            .iter()
            .enumerate()
            .map(|(s, k)| s as u64 * k)
            .sum();
        (n > 0).then(|| total as f64 / n as f64)
    }

    /// `histogram[s]` = labelled pixels whose set has `s` classes (`s = 0 ..= C`).
    pub fn size_histogram(&self) -> &[u64] {
        &self.size_histogram
    }
}

impl fmt::Display for CoverageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{:.2} %", 100.0 * v));
        writeln!(
            f,
            "coverage {} over {} labelled pixels, mean set size {}",
            pct(self.coverage()),
            self.labelled(),
            self.mean_set_size()
                .map_or("n/a".to_string(), |v| format!("{v:.3}"))
        )?;
        for c in 0..self.num_classes {
            writeln!(
                f,
                "  class {c}: coverage {} ({} pixels)",
                pct(self.class_coverage(c)),
                self.labelled[c]
            )?;
        }
        write!(f, "  set sizes: {:?}", self.size_histogram)
    }
}
