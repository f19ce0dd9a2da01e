//! Index plans of the fused kernels: which source row (and tap) every output row reads, the
//! inverse of that map for the adjoint, explicit column padding, and the partition of the work
//! into (batch item, band of rows) jobs.
//!
//! Spatial axes are normalised to `[D, H, W]` (1-D and 2-D problems have leading axes of
//! length 1 with a one-tap kernel). A "row" is a `(d, h)` pair; rows are handled through exact
//! per-axis index lists, so reflections at the top and bottom borders (and front and back in
//! 3-D) are exact in both directions. Columns (`W`) are handled by copying each source row into
//! a buffer padded by `pad` on both sides; the adjoint accumulates into such a padded row and
//! folds the margins back ([`ColumnPad::fold`]), which is the exact transpose of the padding.

use crate::PaddingMode;

/// The `(source index, tap)` pairs of one position on one axis.
pub(crate) type Pairs = Vec<(usize, usize)>;

/// Forward and inverse index lists of one axis for one dilation.
#[derive(Debug, Clone)]
pub(crate) struct AxisPlan {
    /// `fwd[p]`: for output position `p`, the `(source position, tap)` pairs it reads (taps
    /// that read a zero are left out).
    pub fwd: Vec<Pairs>,
    /// `adj[q]`: for source position `q`, the `(output position, tap)` pairs that read it.
    pub adj: Vec<Pairs>,
}

impl AxisPlan {
    /// Lists for an axis of length `n`, `taps` taps at `(t − taps/2)·dilation`.
    pub(crate) fn new(n: usize, taps: usize, dilation: usize, mode: PaddingMode) -> Self {
        let half = (taps / 2) as isize;
        let mut fwd = vec![Vec::with_capacity(taps); n];
        let mut adj = vec![Vec::new(); n];
        for (p, f) in fwd.iter_mut().enumerate() {
            for t in 0..taps {
                let i = p as isize + (t as isize - half) * dilation as isize;
                if let Some(q) = mode.source_index(i, n) {
                    f.push((q, t));
                    adj[q].push((p, t));
                }
            }
        }
        AxisPlan { fwd, adj }
    }
}

/// Explicit padding of the column axis.
#[derive(Debug, Clone)]
pub(crate) struct ColumnPad {
    /// Row length.
    pub w: usize,
    /// Margin on each side.
    pub pad: usize,
    /// For each margin position `e` (left margin first, then right), the column it mirrors.
    pub margin_src: Vec<Option<usize>>,
}

impl ColumnPad {
    /// Padding by `pad` columns (clamped to the row length for modes that allow any padding:
    /// beyond one row length they add nothing new).
    pub(crate) fn new(w: usize, pad: usize, mode: PaddingMode) -> Self {
        let pad = pad.min(w.max(1));
        let margin_src = (0..pad)
            .map(|e| e as isize - pad as isize)
            .chain((w..w + pad).map(|e| e as isize))
            .map(|i| mode.source_index(i, w))
            .collect();
        ColumnPad { w, pad, margin_src }
    }

    /// Length of a padded row.
    pub(crate) fn padded(&self) -> usize {
        self.w + 2 * self.pad
    }

    /// Writes `src` (length `w`) padded into `dst` (length `w + 2·pad`).
    #[inline]
    pub(crate) fn fill<T: Copy + Default>(&self, src: &[T], dst: &mut [T]) {
        let (w, p) = (self.w, self.pad);
        dst[p..p + w].copy_from_slice(&src[..w]);
        for (k, m) in self.margin_src.iter().enumerate() {
            let e = if k < p { k } else { w + k };
            dst[e] = m.map_or_else(T::default, |j| src[j]);
        }
    }

    /// Adds the padded row `ext` (length `w + 2·pad`) to `dst` (length `w`): the middle
    /// element by element, each margin element onto the column it mirrors.
    #[inline]
    pub(crate) fn fold<T: Copy + std::ops::AddAssign>(&self, ext: &[T], dst: &mut [T]) {
        let (w, p) = (self.w, self.pad);
        for (d, &e) in dst[..w].iter_mut().zip(&ext[p..p + w]) {
            *d += e;
        }
        for (k, m) in self.margin_src.iter().enumerate() {
            if let Some(j) = m {
                let e = if k < p { k } else { w + k };
                dst[*j] += ext[e];
            }
        }
    }

    /// The column offset of tap `t` of a `taps`-tap kernel at `dilation`, clamped to the
    /// padding (a clamped tap reads only margin values, which are the same).
    pub(crate) fn offset(&self, t: usize, taps: usize, dilation: usize) -> isize {
        let o = (t as isize - (taps / 2) as isize) * dilation as isize;
        o.clamp(-(self.pad as isize), self.pad as isize)
    }
}

/// A job: one batch item and a band of rows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Job {
    /// Batch item.
    pub b: usize,
    /// First row.
    pub r0: usize,
    /// One past the last row.
    pub r1: usize,
}

/// Rows per band: about 16 Ki elements of one plane, and at least 8 jobs where the image
/// allows. Depends only on the geometry, so results do not depend on the thread count.
pub(crate) fn jobs(n: usize, rows: usize, w: usize) -> Vec<Job> {
    let mut band = (16384 / w.max(1)).clamp(1, rows.max(1));
    while n * rows.div_ceil(band) < 8 && band > 1 {
        band = band.div_ceil(2);
    }
    let mut v = Vec::new();
    for b in 0..n {
        let mut r0 = 0;
        while r0 < rows {
            let r1 = (r0 + band).min(rows);
            v.push(Job { b, r0, r1 });
            r0 = r1;
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_plan_reflect_lists_are_mutual_inverses() {
        let p = AxisPlan::new(5, 3, 2, PaddingMode::Reflect);
        // position 0 reads -2 → 2, 0, 2
        assert_eq!(p.fwd[0], vec![(2, 0), (0, 1), (2, 2)]);
        for (q, l) in p.adj.iter().enumerate() {
            for &(o, t) in l {
                assert!(p.fwd[o].contains(&(q, t)));
            }
        }
        let total: usize = p.fwd.iter().map(Vec::len).sum();
        assert_eq!(total, p.adj.iter().map(Vec::len).sum::<usize>());
        let z = AxisPlan::new(5, 3, 2, PaddingMode::Zeros);
        assert_eq!(z.fwd[0], vec![(0, 1), (2, 2)]);
    }

    #[test]
    fn column_pad_fill_and_fold_are_adjoint() {
        for mode in [
            PaddingMode::Zeros,
            PaddingMode::Reflect,
            PaddingMode::Symmetric,
            PaddingMode::Replicate,
        ] {
            let c = ColumnPad::new(4, 3, mode);
            let x = [1.0, 2.0, 3.0, 4.0];
            let mut px = [0.0; 10];
            c.fill(&x, &mut px);
            let y: Vec<f64> = (0..10).map(|i| (i * i) as f64 * 0.5 - 1.0).collect();
            let mut fy = [0.0; 4];
            c.fold(&y, &mut fy);
            let lhs: f64 = px.iter().zip(&y).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.iter().zip(&fy).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-12, "{mode:?}");
        }
        let c = ColumnPad::new(4, 2, PaddingMode::Symmetric);
        let mut px = [0; 8];
        c.fill(&[1, 2, 3, 4], &mut px);
        assert_eq!(px, [2, 1, 1, 2, 3, 4, 4, 3]);
    }

    #[test]
    fn jobs_cover_every_row_once() {
        let j = jobs(2, 100, 512);
        assert!(j.len() >= 8);
        for b in 0..2 {
            let mut r = 0;
            for job in j.iter().filter(|j| j.b == b) {
                assert_eq!(job.r0, r);
                r = job.r1;
            }
            assert_eq!(r, 100);
        }
    }
}
