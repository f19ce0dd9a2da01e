//! Brute-force k nearest neighbours (Euclidean), parallel over query points: exact, and fast
//! enough for latent sets up to a few times 10⁴ points.

use rayon::prelude::*;

use super::check_points;
use crate::error::{invalid, Result};

/// The `k` nearest neighbours of every point, nearest first: `(indices, distances)`, each
/// `n × k` row-major. With `include_self` the point itself is its own first neighbour (at
/// distance 0), as UMAP expects; ties are broken by the smaller index.
pub fn nearest_neighbours(
    data: &[f32],
    dim: usize,
    k: usize,
    include_self: bool,
) -> Result<(Vec<u32>, Vec<f32>)> {
    const OP: &str = "nearest_neighbours";
    let n = check_points(OP, data, dim)?;
    let available = if include_self { n } else { n.saturating_sub(1) };
    if k == 0 || k > available {
        return Err(invalid(
            OP,
            format!("k = {k} must be between 1 and {available} for {n} points"),
        ));
    }
    if n > u32::MAX as usize {
        return Err(invalid(OP, "more than u32::MAX points"));
    }
    let rows: Vec<(Vec<u32>, Vec<f32>)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let p = &data[i * dim..(i + 1) * dim];
            let mut cand: Vec<(f32, u32)> = (0..n)
                .filter(|&j| include_self || j != i)
                .map(|j| {
                    let d2: f32 = if j == i {
                        0.0
                    } else {
                        p.iter()
                            .zip(&data[j * dim..(j + 1) * dim])
                            .map(|(a, b)| (a - b) * (a - b))
                            .sum()
                    };
                    // The point itself sorts first even among exact duplicates.
                    (if j == i { -1.0 } else { d2 }, j as u32)
                })
                .collect();
            let by = |a: &(f32, u32), b: &(f32, u32)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
            cand.select_nth_unstable_by(k - 1, by);
            cand.truncate(k);
            cand.sort_by(by);
            (
                cand.iter().map(|c| c.1).collect(),
                cand.iter().map(|c| c.0.max(0.0).sqrt()).collect(),
            )
        })
        .collect();
    let mut idx = Vec::with_capacity(n * k);
    let mut dist = Vec::with_capacity(n * k);
    for (i, d) in rows {
        idx.extend(i);
        dist.extend(d);
    }
    Ok((idx, dist))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_on_a_line() {
        let x = [0.0f32, 1.0, 3.0, 7.0];
        let (i, d) = nearest_neighbours(&x, 1, 2, false).unwrap();
        assert_eq!(i, vec![1, 2, 0, 2, 1, 0, 2, 1]);
        assert_eq!(d, vec![1.0, 3.0, 1.0, 2.0, 2.0, 3.0, 4.0, 6.0]);
        let (i, d) = nearest_neighbours(&x, 1, 2, true).unwrap();
        assert_eq!(&i[..2], &[0, 1]);
        assert_eq!(&d[..2], &[0.0, 1.0]);
        assert!(nearest_neighbours(&x, 1, 4, false).is_err());
        assert!(nearest_neighbours(&x, 1, 0, true).is_err());
        assert!(nearest_neighbours(&[1.0, f32::NAN], 1, 1, false).is_err());
    }
}
