//! Fixed-width histograms, as data (for CSV/JSON) and as input to [`crate::plot::histogram_svg`].

use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};

/// Counts of values in `bins` equal-width bins between `edges[0]` and `edges[bins]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// `bins + 1` increasing bin edges; bin `i` is `[edges[i], edges[i+1])`, the last one closed.
    pub edges: Vec<f64>,
    /// One count per bin.
    pub counts: Vec<u64>,
}

impl Histogram {
    /// Bins `values` into `bins` bins over `range` (default: the values' min..max). Values outside
    /// the range are not counted; NaN values are an error.
    pub fn new(values: &[f64], bins: usize, range: Option<(f64, f64)>) -> Result<Self> {
        const OP: &str = "Histogram::new";
        if bins == 0 {
            return Err(invalid(OP, "bins must be at least 1"));
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(invalid(
                OP,
                format!("value {i} is {}, values must be finite", values[i]),
            ));
        }
        let (lo, hi) = match range {
            Some((lo, hi)) if lo.is_finite() && hi.is_finite() && lo < hi => (lo, hi),
            Some((lo, hi)) => {
                return Err(invalid(
                    OP,
                    format!("range ({lo}, {hi}) must be finite with lo < hi"),
                ))
            }
            None if values.is_empty() => (0.0, 1.0),
            None => {
                let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if lo == hi {
                    (lo - 0.5, hi + 0.5)
                } else {
                    (lo, hi)
                }
            }
        };
        let width = (hi - lo) / bins as f64;
        let edges = (0..=bins).map(|i| lo + width * i as f64).collect();
        let mut counts = vec![0u64; bins];
        for &v in values {
            if v < lo || v > hi {
                continue;
            }
            let b = (((v - lo) / width) as usize).min(bins - 1);
            counts[b] += 1;
        }
        Ok(Self { edges, counts })
    }

    /// The histogram as CSV: `bin_start,bin_end,count`.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("bin_start,bin_end,count\n");
        for (i, c) in self.counts.iter().enumerate() {
            s.push_str(&format!("{},{},{}\n", self.edges[i], self.edges[i + 1], c));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_hand() {
        let h = Histogram::new(&[0.0, 0.1, 0.5, 0.99, 1.0, 2.0], 2, Some((0.0, 1.0))).unwrap();
        assert_eq!(h.edges, vec![0.0, 0.5, 1.0]);
        assert_eq!(h.counts, vec![2, 3]);
        let h = Histogram::new(&[3.0, 3.0], 4, None).unwrap();
        assert_eq!(h.counts.iter().sum::<u64>(), 2);
        assert!(Histogram::new(&[f64::NAN], 2, None).is_err());
        assert!(Histogram::new(&[1.0], 0, None).is_err());
        assert!(Histogram::new(&[1.0], 2, Some((1.0, 1.0))).is_err());
        assert!(h
            .to_csv()
            .starts_with("bin_start,bin_end,count\n2.5,2.75,0\n"));
    }
}
