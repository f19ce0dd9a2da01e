//! Per-fiber length and direction from each component's principal axis.

use serde::{Deserialize, Serialize};

use crate::ccl::Labeling;
use crate::error::{invalid, Result};
use crate::linalg::symmetric_eigen;

/// One component measured as a fiber.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiberMeasurement {
    /// The component's label.
    pub label: u32,
    /// Its voxel count.
    pub voxel_count: u64,
    /// Centre of mass `[z, y, x]` in physical units (index × spacing).
    pub centroid: [f64; 3],
    /// Unit principal axis `[z, y, x]` (largest-variance direction), signed so that its first
    /// non-zero component is positive.
    pub direction: [f64; 3],
    /// End-to-end length: the extent of the union of its voxel boxes projected on the axis.
    pub length: f64,
    /// Variances along the three principal axes, largest first (`sqrt(values[1])` is about
    /// half the radius of a solid round fiber).
    pub axis_variances: [f64; 3],
}

/// Measures every component of a 3D labelling (a 2D one is treated as one plane) as a fiber.
/// `spacing` is the voxel size `[z, y, x]` (use `[1.0; 3]` for voxel units).
pub fn measure_fibers(labeling: &Labeling, spacing: [f64; 3]) -> Result<Vec<FiberMeasurement>> {
    if spacing.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err(invalid(
            "measure_fibers",
            format!("spacing {spacing:?} must be finite and positive"),
        ));
    }
    let [_, h, w] = labeling.dims();
    let n = labeling.n_components() as usize + 1;
    let labels = labeling.labels();
    let coord = |i: usize| -> [f64; 3] {
        [
            (i / (h * w)) as f64 * spacing[0],
            ((i / w) % h) as f64 * spacing[1],
            (i % w) as f64 * spacing[2],
        ]
    };
    // Pass 1: count, first and second moments.
    let mut count = vec![0u64; n];
    let mut sum = vec![[0.0f64; 3]; n];
    let mut outer = vec![[0.0f64; 6]; n];
    for (i, &l) in labels.iter().enumerate() {
        if l == 0 {
            continue;
        }
        let l = l as usize;
        let p = coord(i);
        count[l] += 1;
        for a in 0..3 {
            sum[l][a] += p[a];
        }
        let o = &mut outer[l];
        o[0] += p[0] * p[0];
        o[1] += p[0] * p[1];
        o[2] += p[0] * p[2];
        o[3] += p[1] * p[1];
        o[4] += p[1] * p[2];
        o[5] += p[2] * p[2];
    }
    let mut out: Vec<FiberMeasurement> = (1..n)
        .map(|l| {
            let c = count[l].max(1) as f64;
            let m = sum[l].map(|s| s / c);
            let o = outer[l];
            let cov = [
                o[0] / c - m[0] * m[0],
                o[1] / c - m[0] * m[1],
                o[2] / c - m[0] * m[2],
                o[1] / c - m[1] * m[0],
                o[3] / c - m[1] * m[1],
                o[4] / c - m[1] * m[2],
                o[2] / c - m[2] * m[0],
                o[4] / c - m[2] * m[1],
                o[5] / c - m[2] * m[2],
            ];
            let (vals, vecs) = symmetric_eigen(&cov, 3);
            let mut dir = [vecs[0][0], vecs[0][1], vecs[0][2]];
            if let Some(first) = dir.iter().find(|x| x.abs() > 1e-12) {
                if *first < 0.0 {
                    dir = dir.map(|x| -x);
                }
            }
            FiberMeasurement {
                label: l as u32,
                voxel_count: count[l],
                centroid: m,
                direction: dir,
                length: 0.0,
                axis_variances: [vals[0].max(0.0), vals[1].max(0.0), vals[2].max(0.0)],
            }
        })
        .collect();
    // Pass 2: extent of the voxel centres along the axis.
    let mut lo = vec![f64::INFINITY; n];
    let mut hi = vec![f64::NEG_INFINITY; n];
    for (i, &l) in labels.iter().enumerate() {
        if l == 0 {
            continue;
        }
        let l = l as usize;
        let p = coord(i);
        let d = out[l - 1].direction;
        let t = p[0] * d[0] + p[1] * d[1] + p[2] * d[2];
        lo[l] = lo[l].min(t);
        hi[l] = hi[l].max(t);
    }
    for f in &mut out {
        let l = f.label as usize;
        // A voxel box projects to a segment of length sum |d_a| * spacing_a around its centre.
        let box_extent: f64 = (0..3).map(|a| f.direction[a].abs() * spacing[a]).sum();
        f.length = if f.voxel_count == 0 {
            0.0
        } else {
            hi[l] - lo[l] + box_extent
        };
    }
    Ok(out)
}

/// Fiber measurements as CSV, one line per fiber.
pub fn fibers_to_csv(fibers: &[FiberMeasurement]) -> String {
    let mut s = String::from(
        "label,voxel_count,length,direction_z,direction_y,direction_x,centroid_z,centroid_y,centroid_x\n",
    );
    for f in fibers {
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{}\n",
            f.label,
            f.voxel_count,
            f.length,
            f.direction[0],
            f.direction[1],
            f.direction[2],
            f.centroid[0],
            f.centroid[1],
            f.centroid[2]
        ));
    }
    s
}
