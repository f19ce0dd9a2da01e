//! Clustering scores in an embedding.

use super::check_points;
use crate::embed::knn::nearest_neighbours;
use crate::error::{invalid, Result};

fn check_classes(op: &'static str, n: usize, classes: &[u32]) -> Result<()> {
    if classes.len() != n {
        return Err(invalid(
            op,
            format!(
                "{} classes for {n} points; give one per point",
                classes.len()
            ),
        ));
    }
    Ok(())
}

/// Leave-one-out k-NN classification accuracy: the fraction of points whose class is the
/// majority class among their `k` nearest other points (ties go to the class of the nearest
/// tied neighbour). 1 means every point sits among its own class.
pub fn knn_accuracy(embedding: &[f32], dim: usize, classes: &[u32], k: usize) -> Result<f64> {
    const OP: &str = "knn_accuracy";
    let n = check_points(OP, embedding, dim)?;
    check_classes(OP, n, classes)?;
    let (idx, _) = nearest_neighbours(embedding, dim, k, false)?;
    let mut correct = 0usize;
    for i in 0..n {
        let neigh = &idx[i * k..(i + 1) * k];
        let mut best = (0usize, usize::MAX, 0u32); // (votes, first position, class)
        for (pos, &j) in neigh.iter().enumerate() {
            let c = classes[j as usize];
            if neigh[..pos].iter().any(|&p| classes[p as usize] == c) {
                continue; // counted at its first position
            }
            let votes = neigh.iter().filter(|&&q| classes[q as usize] == c).count();
            if votes > best.0 || (votes == best.0 && pos < best.1) {
                best = (votes, pos, c);
            }
        }
        if best.2 == classes[i] {
            correct += 1;
        }
    }
    Ok(correct as f64 / n as f64)
}

/// Mean silhouette coefficient (Rousseeuw 1987, Euclidean): for each point,
/// `(b − a) / max(a, b)` with `a` its mean distance to its own class and `b` the smallest mean
/// distance to another class; points alone in their class score 0. Near 1: tight, separated
/// clusters. Needs at least two classes. `O(n²·dim)`.
pub fn silhouette(embedding: &[f32], dim: usize, classes: &[u32]) -> Result<f64> {
    use rayon::prelude::*;
    const OP: &str = "silhouette";
    let n = check_points(OP, embedding, dim)?;
    check_classes(OP, n, classes)?;
    let mut ids: Vec<u32> = classes.to_vec();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() < 2 {
        return Err(invalid(OP, "the silhouette needs at least two classes"));
    }
    let slot: std::collections::HashMap<u32, usize> =
        ids.iter().enumerate().map(|(s, &c)| (c, s)).collect();
    let mut sizes = vec![0usize; ids.len()];
    for c in classes {
        sizes[slot[c]] += 1;
    }
    let total: f64 = (0..n)
        .into_par_iter()
        .map(|i| {
            let p = &embedding[i * dim..(i + 1) * dim];
            let mut sums = vec![0.0f64; ids.len()];
            for j in 0..n {
                if j == i {
                    continue;
                }
                let d: f64 = p
                    .iter()
                    .zip(&embedding[j * dim..(j + 1) * dim])
                    .map(|(a, b)| ((a - b) as f64).powi(2))
                    .sum::<f64>()
                    .sqrt();
                sums[slot[&classes[j]]] += d;
            }
            let own = slot[&classes[i]];
            if sizes[own] < 2 {
                return 0.0;
            }
            let a = sums[own] / (sizes[own] - 1) as f64;
            let b = (0..ids.len())
                .filter(|&s| s != own)
                .map(|s| sums[s] / sizes[s] as f64)
                .fold(f64::INFINITY, f64::min);
            let m = a.max(b);
            if m == 0.0 {
                0.0
            } else {
                (b - a) / m
            }
        })
        .sum();
    Ok(total / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silhouette_by_hand() {
        // 1D: class 0 at {0, 2}, class 1 at {10}. Point 0: a = 2, b = 10 → 0.8.
        // Point 2: a = 2, b = 8 → 0.75. Point 10 is alone → 0. Mean = 1.55 / 3.
        let s = silhouette(&[0.0, 2.0, 10.0], 1, &[0, 0, 1]).unwrap();
        assert!((s - 1.55 / 3.0).abs() < 1e-12, "{s}");
        assert!(silhouette(&[0.0, 1.0], 1, &[3, 3]).is_err());
        assert!(silhouette(&[0.0, 1.0], 1, &[3]).is_err());
    }

    #[test]
    fn knn_accuracy_by_hand() {
        // 1D points 0, 1, 2 (class 0) and 2.6, 4 (class 1); k = 1.
        // Nearest of 2 is 2.6 (class 1): wrong. Nearest of 2.6 is 2 (class 0): wrong.
        let x = [0.0, 1.0, 2.0, 2.6, 4.0];
        let c = [0, 0, 0, 1, 1];
        assert!((knn_accuracy(&x, 1, &c, 1).unwrap() - 0.6).abs() < 1e-12);
        // k = 2 for point 4: neighbours 2.6 (1) and 2 (0): tie → nearest (class 1): right.
        // Point 2.6: neighbours 2 (0), 4 (1): tie → class 0: wrong. Point 2: 2.6 (1), 1 (0):
        // tie → class 1: wrong. Points 0, 1: right.
        assert!((knn_accuracy(&x, 1, &c, 2).unwrap() - 0.6).abs() < 1e-12);
    }
}
