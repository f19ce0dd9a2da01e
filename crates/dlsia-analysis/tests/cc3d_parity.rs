//! Parity with cc3d (connected-components-3d 4.1.1) on fixtures made by
//! `tools/make_ccl_fixtures.py`: identical labels for every connectivity, the same dusted and
//! largest-k voxels, the same statistics.

use dlsia_analysis::ccl::{connected_components, Connectivity};

fn u32s(b: &[u8]) -> Vec<u32> {
    b.chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn f64s(b: &[u8]) -> Vec<f64> {
    b.chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

const VOLUME: &[u8] = include_bytes!("fixtures/cc3d_volume.bin");
const SHAPE: [usize; 3] = [20, 18, 16];

#[test]
fn volume_labels_are_identical_to_cc3d() {
    for (c, expected) in [
        (
            Connectivity::Six,
            &include_bytes!("fixtures/cc3d_volume_c6.bin")[..],
        ),
        (
            Connectivity::Eighteen,
            &include_bytes!("fixtures/cc3d_volume_c18.bin")[..],
        ),
        (
            Connectivity::TwentySix,
            &include_bytes!("fixtures/cc3d_volume_c26.bin")[..],
        ),
    ] {
        let got = connected_components(VOLUME, &SHAPE, c).unwrap();
        let expected = u32s(expected);
        assert_eq!(got.n_components(), *expected.iter().max().unwrap(), "{c:?}");
        assert_eq!(got.labels(), &expected[..], "{c:?}");
    }
}

#[test]
fn image_labels_are_identical_to_cc3d() {
    let image = include_bytes!("fixtures/cc3d_image.bin");
    for (c, expected) in [
        (
            Connectivity::Four,
            &include_bytes!("fixtures/cc3d_image_c4.bin")[..],
        ),
        (
            Connectivity::Eight,
            &include_bytes!("fixtures/cc3d_image_c8.bin")[..],
        ),
    ] {
        let got = connected_components(image, &[40, 36], c).unwrap();
        assert_eq!(got.labels(), &u32s(expected)[..], "{c:?}");
    }
}

#[test]
fn dust_and_largest_k_keep_the_same_voxels_as_cc3d() {
    let labels = connected_components(VOLUME, &SHAPE, Connectivity::TwentySix).unwrap();
    // cc3d.dust returns the input with small components zeroed.
    let dusted = labels.dust(4);
    let ours: Vec<u8> = VOLUME
        .iter()
        .zip(dusted.labels())
        .map(|(&v, &l)| if l == 0 { 0 } else { v })
        .collect();
    assert_eq!(
        &ours[..],
        include_bytes!("fixtures/cc3d_volume_dust4_c26.bin")
    );
    // cc3d.largest_k: compare which voxels are kept.
    let kept: Vec<u8> = labels
        .largest_k(5)
        .labels()
        .iter()
        .map(|&l| (l != 0) as u8)
        .collect();
    assert_eq!(
        &kept[..],
        include_bytes!("fixtures/cc3d_volume_largest5_c26.bin")
    );
}

#[test]
fn statistics_match_cc3d() {
    let labels = connected_components(VOLUME, &SHAPE, Connectivity::TwentySix).unwrap();
    let stats = labels.statistics();
    let counts: Vec<u64> = include_bytes!("fixtures/cc3d_stats_voxel_counts.bin")
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let centroids = f64s(include_bytes!("fixtures/cc3d_stats_centroids.bin"));
    assert_eq!(stats.background_voxels, counts[0]);
    assert_eq!(stats.components.len() + 1, counts.len());
    for c in &stats.components {
        let l = c.label as usize;
        assert_eq!(c.voxel_count, counts[l]);
        for a in 0..3 {
            assert!(
                (c.centroid[a] - centroids[3 * l + a]).abs() < 1e-9,
                "label {l}"
            );
        }
    }
}
