//! Fiber statistics recover the lengths and directions of synthetic cylinders.

use dlsia_analysis::ccl::{connected_components, Connectivity};
use dlsia_analysis::fiber::{
    measure_fibers, orientation_distribution, OrientationOptions, SphereGrid,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn normalise(v: [f64; 3]) -> [f64; 3] {
    let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
    v.map(|x| x / n)
}

fn angle_deg(a: [f64; 3], b: [f64; 3]) -> f64 {
    let dot: f64 = (0..3).map(|k| a[k] * b[k]).sum::<f64>().abs();
    dot.min(1.0).acos().to_degrees()
}

/// Sets to `value` every voxel whose centre lies within `radius` of the segment that starts at
/// `start` and runs `length` along `dir` (flat caps).
fn draw_cylinder(
    vol: &mut [u8],
    [d, h, w]: [usize; 3],
    start: [f64; 3],
    dir: [f64; 3],
    length: f64,
    radius: f64,
    value: u8,
) {
    for z in 0..d {
        for y in 0..h {
            for x in 0..w {
                let p = [
                    z as f64 - start[0],
                    y as f64 - start[1],
                    x as f64 - start[2],
                ];
                let t: f64 = (0..3).map(|k| p[k] * dir[k]).sum();
                if !(0.0..=length).contains(&t) {
                    continue;
                }
                let r2: f64 = (0..3).map(|k| (p[k] - t * dir[k]).powi(2)).sum();
                if r2 <= radius * radius {
                    vol[(z * h + y) * w + x] = value;
                }
            }
        }
    }
}

#[test]
fn lengths_and_directions_of_separate_cylinders() {
    let shape = [64, 64, 64];
    let mut vol = vec![0u8; 64 * 64 * 64];
    // (start, direction, length): an axis-aligned, a body-diagonal and a tilted in-plane fiber.
    let fibers = [
        ([8.0, 8.0, 10.0], [0.0, 0.0, 1.0], 40.0),
        ([20.0, 30.0, 8.0], normalise([1.0, 1.0, 1.0]), 30.0),
        ([50.0, 8.0, 20.0], normalise([0.0, 0.6, 0.8]), 35.0),
    ];
    for (s, dir, len) in fibers {
        draw_cylinder(&mut vol, shape, s, dir, len, 2.5, 1);
    }
    let labels = connected_components(&vol, &shape, Connectivity::TwentySix).unwrap();
    assert_eq!(labels.n_components(), 3);
    let measured = measure_fibers(&labels, [1.0; 3]).unwrap();
    for (s, dir, len) in fibers {
        // Find the component whose centroid is nearest to this fiber's midpoint.
        let mid: Vec<f64> = (0..3).map(|k| s[k] + dir[k] * len / 2.0).collect();
        let f = measured
            .iter()
            .min_by(|a, b| {
                let da: f64 = (0..3).map(|k| (a.centroid[k] - mid[k]).powi(2)).sum();
                let db: f64 = (0..3).map(|k| (b.centroid[k] - mid[k]).powi(2)).sum();
                da.total_cmp(&db)
            })
            .unwrap();
        let err_len = f.length - len;
        // The voxelised cylinder spans its length plus up to one voxel box.
        assert!(
            (-0.5..=2.0).contains(&err_len),
            "length {} vs {len}",
            f.length
        );
        let a = angle_deg(f.direction, dir);
        assert!(a < 2.0, "direction {:?} vs {dir:?}: {a}°", f.direction);
        // Radius 2.5: the cross-section variance is about r²/4.
        assert!(
            (f.axis_variances[1] - 2.5f64.powi(2) / 4.0).abs() < 0.6,
            "{:?}",
            f.axis_variances
        );
    }
    // Anisotropic spacing stretches lengths along that axis.
    let stretched = measure_fibers(&labels, [1.0, 1.0, 2.0]).unwrap();
    let along_x = stretched
        .iter()
        .find(|f| angle_deg(f.direction, [0.0, 0.0, 1.0]) < 1.0)
        .unwrap();
    assert!((along_x.length - 82.0).abs() < 0.01, "{}", along_x.length);
    assert!(measure_fibers(&labels, [1.0, 0.0, 1.0]).is_err());
}

#[test]
fn orientation_distribution_peaks_along_parallel_fibers() {
    let shape = [96, 96, 96];
    let mut vol = vec![0u8; 96 * 96 * 96];
    let axis = normalise([0.3, 0.5, 0.8]);
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..14 {
        let c = [
            rng.random_range(20.0..76.0),
            rng.random_range(20.0..76.0),
            rng.random_range(20.0..76.0),
        ];
        let start = [0, 1, 2].map(|k| c[k] - axis[k] * 35.0);
        draw_cylinder(&mut vol, shape, start, axis, 70.0, 2.0, 1);
    }
    let opts = OrientationOptions {
        max_samples: 4000,
        ..Default::default()
    };
    let dist = orientation_distribution(&vol, shape, &opts).unwrap();
    assert_eq!(dist.values.len(), 36 * 72);
    let peak = dist.peak_direction();
    let a = angle_deg(peak, axis);
    assert!(a < 6.0, "peak {peak:?} vs axis {axis:?}: {a}°");
    // Perpendicular directions see (almost) only other fibers.
    let peak_value = dist.values.iter().copied().fold(0.0, f64::max);
    let perp = normalise([0.0, 0.8, -0.5]);
    let (lon, lat) = SphereGrid::lon_lat(perp);
    let (r, c) = dist.grid.cell_of(lon, lat);
    assert!(dist.values[r * 72 + c] < 0.25 * peak_value);
    // Same seed, same result; and the estimate is symmetric.
    assert_eq!(orientation_distribution(&vol, shape, &opts).unwrap(), dist);
    let (ar, ac) = dist.grid.antipode(r, c);
    assert_eq!(dist.values[r * 72 + c], dist.values[ar * 72 + ac]);
}

#[test]
fn orientation_distribution_rejects_bad_input() {
    let vol = vec![0u8; 8 * 8 * 8];
    let opts = OrientationOptions {
        radius: 3.0,
        ..Default::default()
    };
    assert!(orientation_distribution(&vol, [8, 8, 8], &opts).is_err()); // no foreground
    let mut one = vol.clone();
    one[0] = 1;
    assert!(orientation_distribution(&one, [8, 8, 7], &opts).is_err()); // wrong shape
    let far = OrientationOptions {
        radius: 30.0,
        ..Default::default()
    };
    assert!(orientation_distribution(&one, [8, 8, 8], &far).is_err()); // radius too large
    let bad = OrientationOptions {
        radius: f64::NAN,
        ..Default::default()
    };
    assert!(orientation_distribution(&one, [8, 8, 8], &bad).is_err());
}
