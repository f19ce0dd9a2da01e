//! Labelling against a breadth-first flood-fill oracle on random label volumes, for every
//! connectivity, block split and slab depth.

use std::collections::VecDeque;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::label::label_in_blocks;
use super::*;

/// Flood fill: scan in raster order, start a new component at every unlabelled foreground voxel
/// and spread it to all same-valued neighbours. Numbering is raster order of the first voxel, the
/// convention the labeller follows, so the outputs must be identical.
fn flood_fill(v: &[u8], [d, h, w]: [usize; 3], c: Connectivity) -> (Vec<u32>, u32) {
    let mut out = vec![0u32; v.len()];
    let mut next = 0;
    let mut queue = VecDeque::new();
    let mut offsets = Vec::new();
    for dz in -1i64..=1 {
        for dy in -1i64..=1 {
            for dx in -1i64..=1 {
                if c.connects(dz as i32, dy as i32, dx as i32) {
                    offsets.push((dz, dy, dx));
                }
            }
        }
    }
    for start in 0..v.len() {
        if v[start] == 0 || out[start] != 0 {
            continue;
        }
        next += 1;
        out[start] = next;
        queue.push_back(start);
        while let Some(i) = queue.pop_front() {
            let (z, y, x) = ((i / (h * w)) as i64, ((i / w) % h) as i64, (i % w) as i64);
            for &(dz, dy, dx) in &offsets {
                let (nz, ny, nx) = (z + dz, y + dy, x + dx);
                if nz < 0 || ny < 0 || nx < 0 || nz >= d as i64 || ny >= h as i64 || nx >= w as i64
                {
                    continue;
                }
                let j = (nz as usize * h + ny as usize) * w + nx as usize;
                if v[j] == v[i] && out[j] == 0 {
                    out[j] = next;
                    queue.push_back(j);
                }
            }
        }
    }
    (out, next)
}

/// Random volume: each voxel background with probability `p_bg`, else one of `n_values` values.
fn random_volume(rng: &mut StdRng, n: usize, p_bg: f64, n_values: u8) -> Vec<u8> {
    (0..n)
        .map(|_| {
            if rng.random_bool(p_bg) {
                0
            } else {
                rng.random_range(1..=n_values)
            }
        })
        .collect()
}

const ALL_3D: [Connectivity; 3] = [
    Connectivity::Six,
    Connectivity::Eighteen,
    Connectivity::TwentySix,
];

#[test]
fn matches_flood_fill_on_random_volumes_for_every_3d_connectivity() {
    let mut rng = StdRng::seed_from_u64(7);
    let shapes = [
        [1, 1, 1],
        [1, 1, 9],
        [7, 1, 1],
        [2, 9, 1],
        [5, 6, 7],
        [9, 13, 11],
        [16, 16, 16],
    ];
    for &shape in &shapes {
        for &(p_bg, n_values) in &[(0.5, 1), (0.3, 2), (0.2, 3), (0.0, 1), (0.7, 4)] {
            let n = shape.iter().product();
            let v = random_volume(&mut rng, n, p_bg, n_values);
            for c in ALL_3D {
                let (expected, n_expected) = flood_fill(&v, shape, c);
                for blocks in [1, 2, 3, 5] {
                    let got = label_in_blocks(&v, &shape, c, blocks).unwrap();
                    assert_eq!(got.n_components(), n_expected, "{shape:?} {c:?} {blocks}");
                    assert_eq!(
                        got.labels(),
                        &expected[..],
                        "{shape:?} {c:?} blocks {blocks}"
                    );
                }
            }
        }
    }
}

#[test]
fn matches_flood_fill_on_random_images_for_4_and_8_connectivity() {
    let mut rng = StdRng::seed_from_u64(11);
    for &(h, w) in &[(1, 1), (1, 17), (17, 1), (23, 31), (64, 64)] {
        for &(p_bg, n_values) in &[(0.5, 1), (0.3, 3), (0.0, 2)] {
            let v = random_volume(&mut rng, h * w, p_bg, n_values);
            for c in [Connectivity::Four, Connectivity::Eight] {
                let (expected, n_expected) = flood_fill(&v, [1, h, w], c);
                let got = connected_components(&v, &[h, w], c).unwrap();
                assert_eq!(got.n_components(), n_expected);
                assert_eq!(got.labels(), &expected[..], "{h}x{w} {c:?}");
            }
        }
    }
}

#[test]
fn matches_flood_fill_on_structured_volumes() {
    // Smooth blobs (a few values with spatial structure) make long chains of equivalences and
    // components spanning many blocks, which white noise rarely does.
    let mut rng = StdRng::seed_from_u64(3);
    let shape = [24, 20, 22];
    let centres: Vec<([f64; 3], u8)> = (0..12)
        .map(|_| {
            (
                [
                    rng.random_range(0.0..24.0),
                    rng.random_range(0.0..20.0),
                    rng.random_range(0.0..22.0),
                ],
                rng.random_range(0..4),
            )
        })
        .collect();
    let mut v = vec![0u8; shape.iter().product()];
    for z in 0..shape[0] {
        for y in 0..shape[1] {
            for x in 0..shape[2] {
                let p = [z as f64, y as f64, x as f64];
                let nearest = centres
                    .iter()
                    .min_by(|a, b| {
                        let da: f64 = (0..3).map(|k| (a.0[k] - p[k]).powi(2)).sum();
                        let db: f64 = (0..3).map(|k| (b.0[k] - p[k]).powi(2)).sum();
                        da.total_cmp(&db)
                    })
                    .unwrap();
                // Thin shells of background between cells, plus some noise.
                v[(z * shape[1] + y) * shape[2] + x] =
                    if rng.random_bool(0.05) { 0 } else { nearest.1 };
            }
        }
    }
    for c in ALL_3D {
        let (expected, _) = flood_fill(&v, shape, c);
        for blocks in [1, 2, 4, 7] {
            let got = label_in_blocks(&v, &shape, c, blocks).unwrap();
            assert_eq!(got.labels(), &expected[..], "{c:?} blocks {blocks}");
        }
    }
}

#[test]
fn slab_labelling_equals_whole_volume_labelling() {
    let mut rng = StdRng::seed_from_u64(5);
    let shape = [13, 10, 12];
    let v = random_volume(&mut rng, shape.iter().product(), 0.35, 2);
    let plane = 10 * 12;
    for c in ALL_3D {
        let whole = connected_components(&v, &shape, c).unwrap();
        for slab_depth in [1, 2, 3, 5, 13, 20] {
            for min_voxels in [0, 4] {
                let mut out = vec![u32::MAX; v.len()];
                let mut stats = StatisticsBuilder::new(0, [10, 12]);
                let opts = SlabOptions {
                    connectivity: c,
                    slab_depth,
                    min_voxels,
                    progress: false,
                };
                let res = label_slabs(
                    shape,
                    &opts,
                    |z0, buf: &mut [u8]| {
                        buf.copy_from_slice(&v[z0 * plane..z0 * plane + buf.len()]);
                        Ok::<(), String>(())
                    },
                    |z0, lab| {
                        out[z0 * plane..z0 * plane + lab.len()].copy_from_slice(lab);
                        stats.add_slab(z0, lab).map_err(|e| e.to_string())
                    },
                )
                .unwrap();
                let expected = if min_voxels > 1 {
                    whole.dust(min_voxels)
                } else {
                    whole.clone()
                };
                assert_eq!(res.n_components, expected.n_components());
                assert_eq!(&out[..], expected.labels(), "{c:?} slab {slab_depth}");
                assert_eq!(res.voxel_counts, expected.voxel_counts());
                assert_eq!(stats.finish(), expected.statistics());
            }
        }
    }
}

#[test]
fn slab_labelling_reports_reader_writer_and_repeatability_errors() {
    let shape = [4, 3, 3];
    let v: Vec<u8> = (0..36).map(|i| (i % 3) as u8).collect();
    let opts = SlabOptions::new(2);
    let err = label_slabs(
        shape,
        &opts,
        |_, _: &mut [u8]| Err("disk on fire"),
        |_, _| Ok(()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("disk on fire"), "{err}");
    let err = label_slabs(
        shape,
        &opts,
        |z0, buf: &mut [u8]| {
            buf.copy_from_slice(&v[z0 * 9..z0 * 9 + buf.len()]);
            Ok(())
        },
        |_, _| Err("full"),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        crate::Error::Callback {
            which: "writer",
            ..
        }
    ));
    let mut calls = 0;
    let err = label_slabs(
        shape,
        &opts,
        |z0, buf: &mut [u8]| {
            calls += 1;
            buf.copy_from_slice(&v[z0 * 9..z0 * 9 + buf.len()]);
            if calls > 2 {
                buf.fill(1); // a different volume on the second pass
            }
            Ok::<(), String>(())
        },
        |_, _| Ok(()),
    )
    .unwrap_err();
    assert!(err.to_string().contains("repeatable"), "{err}");
    assert!(label_slabs(
        shape,
        &SlabOptions::new(0),
        |_, _: &mut [u8]| Ok::<(), String>(()),
        |_, _| Ok(())
    )
    .is_err());
}

#[test]
fn bad_shapes_and_connectivities_are_errors() {
    let v = [1u8; 8];
    assert!(connected_components(&v, &[2, 2, 2], Connectivity::Four).is_err());
    assert!(connected_components(&v, &[2, 4], Connectivity::Six).is_err());
    assert!(connected_components(&v, &[3, 3], Connectivity::Four).is_err());
    assert!(connected_components(&v, &[8], Connectivity::Four).is_err());
    assert!(connected_components(&v, &[usize::MAX, 2, 2], Connectivity::Six).is_err());
    let e = connected_components::<u8>(&[], &[0, 5], Connectivity::Eight).unwrap();
    assert_eq!(e.n_components(), 0);
}

#[test]
fn bool_and_wide_integer_inputs_work() {
    let b = [true, false, false, true];
    let l = connected_components(&b, &[2, 2], Connectivity::Four).unwrap();
    assert_eq!(l.labels(), &[1, 0, 0, 2]);
    let l = connected_components(&b, &[2, 2], Connectivity::Eight).unwrap();
    assert_eq!(l.labels(), &[1, 0, 0, 1]);
    let l = connected_components(&[u64::MAX, u64::MAX, 1, 0], &[2, 2], Connectivity::Four).unwrap();
    assert_eq!(l.labels(), &[1, 1, 2, 0]);
    let l = connected_components(&[-1i32, 2, -1, 2], &[2, 2], Connectivity::Four).unwrap();
    assert_eq!(l.labels(), &[1, 2, 1, 2]);
}
