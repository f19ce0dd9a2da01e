//! Padding modes shared by convolutions, the fused MSD op and explicit padding.

use serde::{Deserialize, Serialize};

/// How values beyond the border of an image are defined.
///
/// For an axis of length `n` and a position `i` outside `0..n`:
/// * `Zeros`: the value is 0;
/// * `Reflect` (numpy/PyTorch "reflect"): mirror without repeating the edge, `-i` and `2n-2-i`;
/// * `Replicate`: the nearest edge value;
/// * `Symmetric` (numpy "symmetric"): mirror repeating the edge, `-i-1` and `2n-1-i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaddingMode {
    /// Pad with zeros (PyTorch's `padding_mode="zeros"`).
    #[default]
    Zeros,
    /// Mirror without repeating the edge pixel (PyTorch's `"reflect"`).
    Reflect,
    /// Repeat the edge pixel (PyTorch's `"replicate"`).
    Replicate,
    /// Mirror repeating the edge pixel (numpy's `"symmetric"`).
    Symmetric,
}

impl PaddingMode {
    /// Maps a position `i` (possibly outside `0..n`) to the source index it reads, or `None`
    /// for a zero. Valid only when a single reflection suffices: `-n < i < 2n` for the mirror
    /// modes, which [`PaddingMode::max_padding`] guarantees.
    #[inline]
    pub fn source_index(self, i: isize, n: usize) -> Option<usize> {
        let n = n as isize;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        let j = match self {
            PaddingMode::Zeros => return None,
            PaddingMode::Replicate => i.clamp(0, n - 1),
            PaddingMode::Reflect => {
                if i < 0 {
                    -i
                } else {
                    2 * n - 2 - i
                }
            }
            PaddingMode::Symmetric => {
                if i < 0 {
                    -i - 1
                } else {
                    2 * n - 1 - i
                }
            }
        };
        Some(j as usize)
    }

    /// The largest padding this mode can serve on an axis of length `n` with one reflection:
    /// unlimited for zeros and replicate, `n - 1` for reflect (PyTorch's limit), `n` for symmetric.
    pub fn max_padding(self, n: usize) -> usize {
        match self {
            PaddingMode::Zeros | PaddingMode::Replicate => usize::MAX,
            PaddingMode::Reflect => n.saturating_sub(1),
            PaddingMode::Symmetric => n,
        }
    }

    /// The PyTorch/numpy name of the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            PaddingMode::Zeros => "zeros",
            PaddingMode::Reflect => "reflect",
            PaddingMode::Replicate => "replicate",
            PaddingMode::Symmetric => "symmetric",
        }
    }
}

impl std::str::FromStr for PaddingMode {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "zeros" | "zero" | "constant" => Ok(PaddingMode::Zeros),
            "reflect" => Ok(PaddingMode::Reflect),
            "replicate" | "edge" => Ok(PaddingMode::Replicate),
            "symmetric" => Ok(PaddingMode::Symmetric),
            other => Err(crate::error::invalid(
                "padding mode",
                format!("unknown padding mode `{other}`; expected zeros, reflect, replicate or symmetric"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_index_matches_numpy_conventions() {
        // numpy.pad(arange(4), 2, mode) for positions -2..6
        let cases = [
            (PaddingMode::Reflect, [2, 1, 0, 1, 2, 3, 2, 1]),
            (PaddingMode::Symmetric, [1, 0, 0, 1, 2, 3, 3, 2]),
            (PaddingMode::Replicate, [0, 0, 0, 1, 2, 3, 3, 3]),
        ];
        for (mode, want) in cases {
            let got: Vec<usize> = (-2..6).map(|i| mode.source_index(i, 4).unwrap()).collect();
            assert_eq!(got, want, "{mode:?}");
        }
        assert_eq!(PaddingMode::Zeros.source_index(-1, 4), None);
        assert_eq!(PaddingMode::Zeros.source_index(2, 4), Some(2));
    }

    #[test]
    fn parses_names_and_rejects_unknown() {
        assert_eq!(
            "reflect".parse::<PaddingMode>().unwrap(),
            PaddingMode::Reflect
        );
        let err = "circular".parse::<PaddingMode>().unwrap_err().to_string();
        assert!(err.contains("circular"), "{err}");
    }
}
