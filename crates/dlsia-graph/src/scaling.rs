//! dlsia's scaling tables (`scale_up_down.scaling_table`): stride and output padding for an
//! edge between nodes of size powers `A` and `B`.
//!
//! For each power p in `min_power ..= max_power` the size of one spatial axis is
//! `int((N + 2·pad − k)/s + 1)` with `s = base^(−p)`, `pad = (k−1)/2` for p ≤ 0 (a strided
//! convolution), and `base^p · N` for p > 0. The entry for `A → B` is `(base^(B−A), size_B −
//! ((size_A − 1)·s − 2·pad + k))` when B > A (a transposed convolution with that output
//! padding), otherwise `(base^(A−B), None)` (a convolution with that stride). A network builder
//! reads the kernel-3 table for hidden edges and the kernel-1 table for 1×1 and (in 2-D) input
//! edges, one table per axis.

use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};

/// One table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScaleStep {
    /// Convolution stride.
    pub stride: u64,
    /// `Some(output_padding)` for a transposed convolution (upsampling), `None` otherwise.
    pub output_padding: Option<i64>,
}

/// A scaling table for one axis and one kernel size.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScalingTable {
    /// Smallest power.
    pub min_power: i32,
    /// Largest power.
    pub max_power: i32,
    /// Axis length at each power, `min_power` first.
    pub sizes: Vec<i64>,
    /// Row-major entries, `[A − min_power][B − min_power]`.
    entries: Vec<ScaleStep>,
}

impl ScalingTable {
    /// dlsia's `scaling_table(input_size, stride_base, min_power, max_power, kernel)`.
    pub fn new(
        input_size: usize,
        stride_base: u32,
        min_power: i32,
        max_power: i32,
        kernel: usize,
    ) -> Result<Self> {
        if stride_base < 2 {
            return Err(invalid(
                "stride_base",
                format!("{stride_base}; must be ≥ 2"),
            ));
        }
        if min_power > max_power || max_power - min_power > 32 {
            return Err(invalid(
                "min_power/max_power",
                format!("{min_power}..={max_power}; need min_power ≤ max_power within 32 powers"),
            ));
        }
        if kernel == 0 {
            return Err(invalid("kernel", "0; kernels are ≥ 1"));
        }
        let base = i64::from(stride_base);
        let pow = |e: i32| -> Result<i64> {
            base.checked_pow(e.unsigned_abs())
                .ok_or_else(|| invalid("max_power", format!("{stride_base}^{e} overflows")))
        };
        let n = input_size as i64;
        let k = kernel as i64;
        let pad = (k - 1) / 2;
        let powers: Vec<i32> = (min_power..=max_power).collect();
        let mut sizes = Vec::with_capacity(powers.len());
        for &p in &powers {
            let s = pow(p)?;
            sizes.push(if p <= 0 {
                (((n + 2 * pad - (k - 1) - 1) as f64) / s as f64 + 1.0).trunc() as i64
            } else {
                s * n
            });
        }
        let mut entries = Vec::with_capacity(powers.len() * powers.len());
        for (a, &pa) in powers.iter().enumerate() {
            for (b, &pb) in powers.iter().enumerate() {
                let delta = pb - pa;
                let stride = pow(delta)?;
                let output_padding = (delta > 0)
                    .then(|| sizes[b] - ((sizes[a] - 1) * stride - 2 * pad + (k - 1) + 1));
                entries.push(ScaleStep {
                    stride: stride as u64,
                    output_padding,
                });
            }
        }
        Ok(Self {
            min_power,
            max_power,
            sizes,
            entries,
        })
    }

    /// The entry for an edge from power `from` to power `to`, if both are in range.
    pub fn get(&self, from: i32, to: i32) -> Option<ScaleStep> {
        let range = self.min_power..=self.max_power;
        if !range.contains(&from) || !range.contains(&to) {
            return None;
        }
        let w = (self.max_power - self.min_power + 1) as usize;
        Some(self.entries[(from - self.min_power) as usize * w + (to - self.min_power) as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dlsia_main_example_by_hand() {
        // scaling_table(64, 2, -1, 1, 3): sizes 32, 64, 128.
        let t = ScalingTable::new(64, 2, -1, 1, 3).unwrap();
        assert_eq!(t.sizes, vec![32, 64, 128]);
        assert_eq!(
            t.get(0, 0),
            Some(ScaleStep {
                stride: 1,
                output_padding: None
            })
        );
        assert_eq!(
            t.get(0, -1),
            Some(ScaleStep {
                stride: 2,
                output_padding: None
            })
        );
        // 32 → 64 by ConvT stride 2, k 3, pad 1: (32−1)·2 − 2 + 3 = 63, so output padding 1.
        assert_eq!(
            t.get(-1, 0),
            Some(ScaleStep {
                stride: 2,
                output_padding: Some(1)
            })
        );
        // 32 → 128 stride 4: (31)·4 − 2 + 3 = 125 → 3.
        assert_eq!(
            t.get(-1, 1),
            Some(ScaleStep {
                stride: 4,
                output_padding: Some(3)
            })
        );
        assert_eq!(t.get(2, 0), None);
    }
}
