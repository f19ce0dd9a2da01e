//! PCA and UMAP of four well-separated Gaussian clusters score near 1; bad input is an error.

use dlsia_analysis::embed::{knn_accuracy, silhouette, Pca};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

const DIM: usize = 10;

/// Four clusters of `per` points, unit-variance Gaussian noise around centres 12 apart.
fn four_clusters(per: usize, seed: u64) -> (Vec<f32>, Vec<u32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let noise = Normal::new(0.0f32, 1.0).unwrap();
    let mut data = Vec::new();
    let mut classes = Vec::new();
    for c in 0..4u32 {
        for _ in 0..per {
            for d in 0..DIM {
                let centre = if d == c as usize { 12.0 } else { 0.0 };
                data.push(centre + noise.sample(&mut rng));
            }
            classes.push(c);
        }
    }
    (data, classes)
}

#[test]
fn pca_separates_four_gaussian_clusters() {
    let (data, classes) = four_clusters(50, 1);
    let pca = Pca::fit(&data, DIM, 3).unwrap();
    let y = pca.transform(&data).unwrap();
    assert_eq!(knn_accuracy(&y, 3, &classes, 5).unwrap(), 1.0);
    let s = silhouette(&y, 3, &classes).unwrap();
    assert!(s > 0.75, "silhouette {s}");
    // The raw 10-D data as a baseline, and scrambled classes as a negative control.
    let scrambled: Vec<u32> = (0..200).map(|i| (i % 4) as u32).collect();
    assert!(knn_accuracy(&y, 3, &scrambled, 5).unwrap() < 0.5);
    assert!(silhouette(&y, 3, &scrambled).unwrap() < 0.1);
}

#[cfg(feature = "umap")]
mod umap_tests {
    use super::*;
    use dlsia_analysis::embed::{umap, UmapParams};

    fn params() -> UmapParams {
        UmapParams {
            n_epochs: Some(200),
            seed: 3,
            ..Default::default()
        }
    }

    #[test]
    fn umap_separates_four_gaussian_clusters_reproducibly() {
        let (data, classes) = four_clusters(50, 2);
        let y = umap(&data, DIM, &params()).unwrap();
        assert_eq!(y.len(), 200 * 2);
        let acc = knn_accuracy(&y, 2, &classes, 5).unwrap();
        assert!(acc >= 0.99, "k-NN accuracy {acc}");
        let s = silhouette(&y, 2, &classes).unwrap();
        assert!(s > 0.7, "silhouette {s}");
        assert_eq!(
            umap(&data, DIM, &params()).unwrap(),
            y,
            "same seed, same embedding"
        );
        let other = UmapParams {
            seed: 4,
            ..params()
        };
        assert_ne!(umap(&data, DIM, &other).unwrap(), y);
    }

    #[test]
    fn umap_rejects_bad_input_instead_of_panicking() {
        let (mut data, _) = four_clusters(5, 0);
        let p = UmapParams {
            n_neighbors: 5,
            ..params()
        };
        assert!(umap(&data, DIM, &p).is_ok());
        let too_many = UmapParams {
            n_neighbors: 20,
            ..params()
        };
        assert!(umap(&data, DIM, &too_many).is_err());
        for bad in [
            UmapParams {
                n_neighbors: 1,
                ..p.clone()
            },
            UmapParams {
                min_dist: 2.0,
                ..p.clone()
            },
            UmapParams {
                spread: 0.0,
                ..p.clone()
            },
            UmapParams {
                learning_rate: f32::NAN,
                ..p.clone()
            },
            UmapParams {
                n_components: 0,
                ..p.clone()
            },
            UmapParams {
                n_epochs: Some(0),
                ..p.clone()
            },
            UmapParams {
                repulsion_strength: -1.0,
                ..p.clone()
            },
        ] {
            assert!(umap(&data, DIM, &bad).is_err(), "{bad:?}");
        }
        assert!(umap(&data[..25], DIM, &p).is_err()); // not whole rows
        assert!(umap(&vec![1.0; 20 * DIM], DIM, &p).is_err()); // all identical
        data[7] = f32::INFINITY;
        assert!(umap(&data, DIM, &p).is_err());
    }
}
