//! Per-component statistics: voxel count, bounding box and centroid, accumulated slab by slab so
//! that out-of-core labellings can be measured as they are written.

use serde::{Deserialize, Serialize};

use crate::error::{invalid, Result};

/// One component's statistics. Coordinates are `[z, y, x]` voxel indices (`z = 0` in 2D).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentStats {
    /// The component's label.
    pub label: u32,
    /// How many voxels it has.
    pub voxel_count: u64,
    /// Smallest `[z, y, x]` of its voxels.
    pub bbox_min: [usize; 3],
    /// Largest `[z, y, x]` of its voxels (inclusive).
    pub bbox_max: [usize; 3],
    /// Mean `[z, y, x]` of its voxels.
    pub centroid: [f64; 3],
}

/// Statistics of a whole labelling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statistics {
    /// Number of background (label 0) voxels.
    pub background_voxels: u64,
    /// One entry per label `1..=n`, in label order (`components[i].label == i + 1`).
    pub components: Vec<ComponentStats>,
}

impl Statistics {
    /// The statistics as CSV: a header, then one line per component.
    pub fn to_csv(&self) -> String {
        let mut s = String::from(
            "label,voxel_count,z_min,y_min,x_min,z_max,y_max,x_max,centroid_z,centroid_y,centroid_x\n",
        );
        for c in &self.components {
            s.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{}\n",
                c.label,
                c.voxel_count,
                c.bbox_min[0],
                c.bbox_min[1],
                c.bbox_min[2],
                c.bbox_max[0],
                c.bbox_max[1],
                c.bbox_max[2],
                c.centroid[0],
                c.centroid[1],
                c.centroid[2]
            ));
        }
        s
    }
}

/// Accumulates [`Statistics`] from consecutive slabs of planes (`h × w`, x fastest).
#[derive(Debug, Clone)]
pub struct StatisticsBuilder {
    plane: [usize; 2],
    counts: Vec<u64>,
    min: Vec<[usize; 3]>,
    max: Vec<[usize; 3]>,
    sums: Vec<[f64; 3]>,
}

impl StatisticsBuilder {
    /// A builder for planes of `[h, w]`, with room for labels `0..=n_components` (it grows when
    /// larger labels appear, so 0 is fine when the count is not known yet).
    pub fn new(n_components: u32, plane: [usize; 2]) -> Self {
        let n = n_components as usize + 1;
        Self {
            plane,
            counts: vec![0; n],
            min: vec![[usize::MAX; 3]; n],
            max: vec![[0; 3]; n],
            sums: vec![[0.0; 3]; n],
        }
    }

    fn grow(&mut self, n: usize) {
        self.counts.resize(n, 0);
        self.min.resize(n, [usize::MAX; 3]);
        self.max.resize(n, [0; 3]);
        self.sums.resize(n, [0.0; 3]);
    }

    /// Adds a slab of whole planes whose first plane is plane `z0` of the volume.
    pub fn add_slab(&mut self, z0: usize, labels: &[u32]) -> Result<()> {
        const OP: &str = "StatisticsBuilder::add_slab";
        let [h, w] = self.plane;
        let plane = h * w;
        if plane == 0 || labels.len() % plane != 0 {
            return Err(invalid(
                OP,
                format!(
                    "a slab must hold whole {h}×{w} planes, got {} labels",
                    labels.len()
                ),
            ));
        }
        for (zi, p) in labels.chunks_exact(plane).enumerate() {
            let z = z0 + zi;
            for y in 0..h {
                let row = &p[y * w..(y + 1) * w];
                for (x, &l) in row.iter().enumerate() {
                    let l = l as usize;
                    if l >= self.counts.len() {
                        self.grow(l + 1);
                    }
                    self.counts[l] += 1;
                    if l == 0 {
                        continue;
                    }
                    let (mn, mx, s) = (&mut self.min[l], &mut self.max[l], &mut self.sums[l]);
                    let c = [z, y, x];
                    for a in 0..3 {
                        mn[a] = mn[a].min(c[a]);
                        mx[a] = mx[a].max(c[a]);
                        s[a] += c[a] as f64;
                    }
                }
            }
        }
        Ok(())
    }

    /// The statistics of everything added. A label never seen has count 0, an empty box
    /// (`bbox_min = usize::MAX`) and a NaN centroid.
    pub fn finish(self) -> Statistics {
        let components = (1..self.counts.len())
            .map(|l| {
                let n = self.counts[l] as f64;
                ComponentStats {
                    label: l as u32,
                    voxel_count: self.counts[l],
                    bbox_min: self.min[l],
                    bbox_max: self.max[l],
                    centroid: self.sums[l].map(|s| s / n),
                }
            })
            .collect();
        Statistics {
            background_voxels: self.counts[0],
            components,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ccl::{connected_components, Connectivity};

    #[test]
    fn statistics_match_hand_computed_values() {
        // depth 2, 3×3: an L of value 4 across both planes and a single 9.
        #[rustfmt::skip]
        let v = [
            4u16, 4, 0,
            0, 0, 0,
            0, 0, 9,

            0, 4, 0,
            0, 4, 0,
            0, 0, 0,
        ];
        let l = connected_components(&v, &[2, 3, 3], Connectivity::Six).unwrap();
        let s = l.statistics();
        assert_eq!(s.background_voxels, 13);
        assert_eq!(s.components.len(), 2);
        let a = &s.components[0];
        assert_eq!(a.voxel_count, 4);
        assert_eq!(a.bbox_min, [0, 0, 0]);
        assert_eq!(a.bbox_max, [1, 1, 1]);
        // voxels (0,0,0) (0,0,1) (1,0,1) (1,1,1)
        assert_eq!(a.centroid, [0.5, 0.25, 0.75]);
        let b = &s.components[1];
        assert_eq!(
            (b.voxel_count, b.bbox_min, b.centroid),
            (1, [0, 2, 2], [0.0, 2.0, 2.0])
        );
        assert!(s
            .to_csv()
            .lines()
            .nth(2)
            .unwrap()
            .starts_with("2,1,0,2,2,0,2,2,"));
    }
}
