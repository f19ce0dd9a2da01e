//! Dusting (dropping small components) and keeping the largest k.

use super::labeling::Labeling;

impl Labeling {
    /// Removes every component with fewer than `min_voxels` voxels (it becomes background) and
    /// renumbers the rest `1..` keeping their order (raster order of first voxel). cc3d's
    /// `dust(threshold)` keeps the same components.
    pub fn dust(&self, min_voxels: u64) -> Labeling {
        let counts = self.voxel_counts();
        let mut map = vec![0u32; counts.len()];
        let mut next = 0;
        for l in 1..counts.len() {
            if counts[l] >= min_voxels {
                next += 1;
                map[l] = next;
            }
        }
        self.remapped(&map, next)
    }

    /// Keeps the `k` largest components, relabelled `1..=k` from largest to smallest (equal
    /// sizes: the earlier label first); the rest become background. `k` larger than the
    /// component count keeps all of them (reordered by size).
    pub fn largest_k(&self, k: usize) -> Labeling {
        let counts = self.voxel_counts();
        let mut order: Vec<u32> = (1..counts.len() as u32).collect();
        order.sort_by(|&a, &b| counts[b as usize].cmp(&counts[a as usize]).then(a.cmp(&b)));
        let mut map = vec![0u32; counts.len()];
        let kept = k.min(order.len());
        for (rank, &l) in order.iter().take(kept).enumerate() {
            map[l as usize] = rank as u32 + 1;
        }
        self.remapped(&map, kept as u32)
    }
}

#[cfg(test)]
mod tests {
    use crate::ccl::{connected_components, Connectivity};

    fn sample() -> crate::ccl::Labeling {
        // Components (4-connected): A size 3 (value 1), B size 1 (value 2), C size 4 (value 1),
        // D size 1 (value 7).
        let img = [
            1u8, 1, 0, 2, //
            1, 0, 0, 0, //
            0, 0, 1, 1, //
            7, 0, 1, 1,
        ];
        connected_components(&img, &[4, 4], Connectivity::Four).unwrap()
    }

    #[test]
    fn dust_removes_only_small_components_and_keeps_order() {
        let l = sample();
        assert_eq!(l.n_components(), 4);
        let d = l.dust(3);
        assert_eq!(d.n_components(), 2);
        assert_eq!(
            d.labels(),
            &[1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 2, 2, 0, 0, 2, 2]
        );
        // Threshold 1 keeps everything; threshold 5 drops everything.
        assert_eq!(l.dust(1), l);
        assert_eq!(l.dust(5).n_components(), 0);
        assert!(l.dust(5).labels().iter().all(|&x| x == 0));
    }

    #[test]
    fn largest_k_orders_by_size_then_label() {
        let l = sample();
        let k2 = l.largest_k(2);
        assert_eq!(k2.n_components(), 2);
        assert_eq!(
            k2.labels(),
            &[2, 2, 0, 0, 2, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1]
        );
        let k3 = l.largest_k(3);
        // B (label 2) and D (label 4) both have one voxel: B comes first.
        assert_eq!(k3.labels()[3], 3);
        assert_eq!(k3.labels()[12], 0);
        assert_eq!(l.largest_k(0).n_components(), 0);
        assert_eq!(l.largest_k(10).n_components(), 4);
    }
}
