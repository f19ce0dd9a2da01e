//! The result of a labelling: `u32` labels with their shape and component count.

use super::stats::{Statistics, StatisticsBuilder};

/// Component labels `0..=n_components` (0 is background) in the input's shape and layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labeling {
    labels: Vec<u32>,
    shape: Vec<usize>,
    n_components: u32,
}

impl Labeling {
    /// Wraps labels that are already consecutive `1..=n_components` (crate-internal: the
    /// labelling functions guarantee it).
    pub(crate) fn new(labels: Vec<u32>, shape: Vec<usize>, n_components: u32) -> Self {
        Self {
            labels,
            shape,
            n_components,
        }
    }

    /// The labels, x fastest.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }

    /// The labels, consuming the labelling.
    pub fn into_labels(self) -> Vec<u32> {
        self.labels
    }

    /// The shape: `[h, w]` or `[d, h, w]`.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of components (the largest label).
    pub fn n_components(&self) -> u32 {
        self.n_components
    }

    /// `[d, h, w]`, with `d = 1` for 2D images.
    pub fn dims(&self) -> [usize; 3] {
        match self.shape[..] {
            [h, w] => [1, h, w],
            [d, h, w] => [d, h, w],
            _ => unreachable!("Labeling shapes are checked to be 2D or 3D"),
        }
    }

    /// Voxel count of every label, indexed by label (`[0]` is the background).
    pub fn voxel_counts(&self) -> Vec<u64> {
        let mut counts = vec![0u64; self.n_components as usize + 1];
        for &l in &self.labels {
            counts[l as usize] += 1;
        }
        counts
    }

    /// Per-component voxel count, bounding box and centroid (one pass).
    pub fn statistics(&self) -> Statistics {
        let [_, h, w] = self.dims();
        let mut b = StatisticsBuilder::new(self.n_components, [h, w]);
        b.add_slab(0, &self.labels)
            .expect("a labelling's own labels and shape are consistent");
        b.finish()
    }

    /// Applies a label map (`map[old] = new`, `map[0] = 0`) whose new labels are `1..=n`.
    pub(crate) fn remapped(&self, map: &[u32], n: u32) -> Labeling {
        use rayon::prelude::*;
        let labels = self.labels.par_iter().map(|&l| map[l as usize]).collect();
        Labeling::new(labels, self.shape.clone(), n)
    }
}
