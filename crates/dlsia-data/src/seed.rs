//! Deriving independent seeds from one user seed.

/// SplitMix64 finaliser: a bijective mix of 64 bits.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed derived from `seed` and a stream index `k` (epoch, sample index, ...): different `k`
/// give unrelated seeds, the same pair always the same seed.
pub fn mix_seed(seed: u64, k: u64) -> u64 {
    splitmix64(splitmix64(seed) ^ k.rotate_left(17) ^ 0xD1B5_4A32_D192_ED03)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_streams() {
        let mut seen = std::collections::HashSet::new();
        for s in 0..20 {
            for k in 0..20 {
                assert!(seen.insert(mix_seed(s, k)));
            }
        }
        assert_eq!(mix_seed(3, 4), mix_seed(3, 4));
    }
}
