//! Non-conformity scores and the prediction sets they define.

use serde::{Deserialize, Serialize};

fn yes() -> bool {
    true
}

/// The non-conformity score of a conformal method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "name", rename_all = "snake_case", deny_unknown_fields)]
pub enum ScoreMethod {
    /// Least ambiguous set-valued classifier: `s(x, y) = 1 − p̂_y` (the original's method).
    #[default]
    Lac,
    /// Adaptive prediction sets: `s(x, y)` = mass of the classes ranked above `y` plus
    /// `u·p̂_y`, with `u ~ U(0, 1)` (randomised, exact coverage in expectation) or `u = 1`
    /// (deterministic, conservative).
    Aps {
        /// Randomise the last class's contribution (default true).
        #[serde(default = "yes")]
        randomized: bool,
    },
}

impl ScoreMethod {
    /// Whether the score uses a random `u` per pixel.
    pub(crate) fn uses_u(&self) -> bool {
        matches!(self, ScoreMethod::Aps { randomized: true })
    }

    /// The score of class `y` for a pixel with probabilities `p` and random number `u`.
    pub(crate) fn score(&self, p: &[f64], y: usize, u: f64) -> f64 {
        match self {
            ScoreMethod::Lac => 1.0 - p[y],
            ScoreMethod::Aps { randomized } => {
                let py = p[y];
                let above: f64 = p
                    .iter()
                    .enumerate()
                    .filter(|&(k, &pk)| pk > py || (pk == py && k < y))
                    .map(|(_, pk)| pk)
                    .sum();
                above + if *randomized { u * py } else { py }
            }
        }
    }

    /// Marks in `set` the classes whose score is at most `qhat`; returns the set size.
    pub(crate) fn set(&self, p: &[f64], qhat: f64, u: f64, set: &mut [bool]) -> usize {
        let mut size = 0;
        for (c, s) in set.iter_mut().enumerate() {
            *s = self.score(p, c, u) <= qhat;
            size += *s as usize;
        }
        size
    }
}
