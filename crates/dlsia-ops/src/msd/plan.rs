//! Index plans of the fused kernels.
//!
//! Spatial axes are normalised to `[D, H, W]` (1-D and 2-D problems have leading axes of
//! length 1 and a one-tap kernel there). Work is split into jobs of one batch item, one depth
//! slice `d` and a band of rows `h0..h1`.
//!
//! * The depth axis uses exact index lists ([`AxisPlan`]): which source slices an output slice
//!   reads, and which output slices read a source slice (reflections included).
//! * Rows and columns use explicit padding: a job copies the rows `h0 − ph .. h1 + ph` of a
//!   source slice into a [`Slab`] whose rows have `2·pw` extra columns on each side (outside
//!   values follow the padding mode, columns beyond `pw` are zero). Every tap is then a constant
//!   offset in the flattened slab, and a whole band is one long SIMD loop. The adjoint
//!   accumulates into such a slab and [`Slab::fold`]s the margins back onto the pixels they
//!   mirror — the exact transpose of the padding.

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

/// The padded layout of the rows and columns of one slice.
#[derive(Debug, Clone)]
pub(crate) struct Slab {
    /// Rows of the image.
    pub h: usize,
    /// Columns of the image.
    pub w: usize,
    /// Row padding (the largest row reach, clamped to `h`).
    pub ph: usize,
    /// Column padding (the largest column reach, clamped to `w`).
    pub pw: usize,
    /// Row stride of every slab: `w + 4·pw` (column `x` of the image is at `x + 2·pw`).
    pub stride: usize,
    /// Source column of each padded column `i` in `pw..w + 3·pw` (index `i − pw`).
    cols: Vec<Option<usize>>,
    mode: PaddingMode,
}

impl Slab {
    /// The layout for an `h × w` slice whose taps reach `reach` pixels.
    pub(crate) fn new(h: usize, w: usize, reach: usize, row_taps: bool, mode: PaddingMode) -> Self {
        let ph = if row_taps { reach.min(h) } else { 0 };
        let pw = reach.min(w);
        let cols = (-(pw as isize)..(w + pw) as isize)
            .map(|x| mode.source_index(x, w))
            .collect();
        Slab {
            h,
            w,
            ph,
            pw,
            stride: w + 4 * pw,
            cols,
            mode,
        }
    }

    /// Flat offset of tap `(oh, ow)` (row and column offsets, already clamped).
    #[inline]
    pub(crate) fn tap(&self, oh: isize, ow: isize) -> isize {
        oh * self.stride as isize + ow
    }

    /// Clamps a row offset to the row padding (a clamped tap reads only padding rows, which
    /// hold the same values: zeros or the replicated edge).
    pub(crate) fn clamp_h(&self, o: isize) -> isize {
        o.clamp(-(self.ph as isize), self.ph as isize)
    }
    /// Clamps a column offset to the column padding.
    pub(crate) fn clamp_w(&self, o: isize) -> isize {
        o.clamp(-(self.pw as isize), self.pw as isize)
    }

    /// Copies image rows `h0 − ph .. h1 + ph` of the slice `src` (`h × w`) into `dst`
    /// (`(h1 − h0 + 2·ph) × stride`), padded.
    pub(crate) fn fill<T: Copy + Default>(&self, src: &[T], h0: usize, h1: usize, dst: &mut [T]) {
        let (w, pw, s) = (self.w, self.pw, self.stride);
        for (t, row) in dst
            .chunks_exact_mut(s)
            .take(h1 - h0 + 2 * self.ph)
            .enumerate()
        {
            let q = h0 as isize - self.ph as isize + t as isize;
            match self.mode.source_index(q, self.h) {
                None => row.fill(T::default()),
                Some(r) => {
                    let sr = &src[r * w..(r + 1) * w];
                    row[..pw].fill(T::default());
                    row[3 * pw + w..].fill(T::default());
                    row[2 * pw..2 * pw + w].copy_from_slice(sr);
                    for k in 0..pw {
                        row[pw + k] = self.cols[k].map_or_else(T::default, |j| sr[j]);
                        row[2 * pw + w + k] =
                            self.cols[pw + w + k].map_or_else(T::default, |j| sr[j]);
                    }
                }
            }
        }
    }

    /// Adds the padded slab `ext` (image rows `q0..q0 + rows`, `rows × stride`) onto the rows
    /// `h0..h1` of `dst` (the rows of the slice from `h0`, `(h1 − h0) × w`): every padded
    /// position onto the pixel it mirrors. Positions whose pixel lies outside `h0..h1` must
    /// hold zeros (they are skipped).
    pub(crate) fn fold<T: Copy + std::ops::AddAssign>(
        &self,
        ext: &[T],
        q0: isize,
        h0: usize,
        h1: usize,
        dst: &mut [T],
    ) {
        let (w, pw, s) = (self.w, self.pw, self.stride);
        for (t, row) in ext.chunks_exact(s).enumerate() {
            let Some(r) = self.mode.source_index(q0 + t as isize, self.h) else {
                continue;
            };
            if r < h0 || r >= h1 {
                continue;
            }
            let d = &mut dst[(r - h0) * w..(r - h0 + 1) * w];
            for (dv, &e) in d.iter_mut().zip(&row[2 * pw..2 * pw + w]) {
                *dv += e;
            }
            for k in 0..pw {
                if let Some(j) = self.cols[k] {
                    d[j] += row[pw + k];
                }
                if let Some(j) = self.cols[pw + w + k] {
                    d[j] += row[2 * pw + w + k];
                }
            }
        }
    }

    /// Rows of the padded output-gradient slabs: `h + 4·ph` (image row `r` at `r + 2·ph`).
    pub(crate) fn grad_rows(&self) -> usize {
        self.h + 4 * self.ph
    }

    /// Whether the adjoint of a band that starts at row 0 or ends at row `h` must accumulate
    /// the padding rows beyond the image (all modes but zeros).
    pub(crate) fn folds_rows(&self) -> bool {
        self.mode != PaddingMode::Zeros && self.ph > 0
    }
}

/// A job: one batch item, one depth slice and a band of rows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Job {
    /// Batch item.
    pub b: usize,
    /// Depth slice.
    pub d: usize,
    /// First row.
    pub h0: usize,
    /// One past the last row.
    pub h1: usize,
}

/// Bands of about 64 Ki padded elements (at least `ph + 1` rows, so that the rows reflected at
/// the top and bottom fold back into the first and last band) and at least 8 jobs where the
/// image allows (large bands re-read fewer halo rows). Depends only on the geometry, so results
/// do not depend on the thread count.
pub(crate) fn jobs(n: usize, depth: usize, slab: &Slab) -> Vec<Job> {
    let h = slab.h.max(1);
    let min = (slab.ph + 1).min(h);
    let mut target = (65536 / slab.stride).max(min);
    while n * depth * (h / target.min(h)).max(1) < 8 && target > min {
        target = (target / 2).max(min);
    }
    let bands = (h / target.min(h)).max(1);
    let mut v = Vec::with_capacity(n * depth * bands);
    for b in 0..n {
        for d in 0..depth {
            for k in 0..bands {
                v.push(Job {
                    b,
                    d,
                    h0: k * h / bands,
                    h1: (k + 1) * h / bands,
                });
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODES: [PaddingMode; 4] = [
        PaddingMode::Zeros,
        PaddingMode::Reflect,
        PaddingMode::Symmetric,
        PaddingMode::Replicate,
    ];

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
        let z = AxisPlan::new(5, 3, 2, PaddingMode::Zeros);
        assert_eq!(z.fwd[0], vec![(0, 1), (2, 2)]);
    }

    #[test]
    fn slab_fill_matches_numpy_pad() {
        let s = Slab::new(3, 4, 2, true, PaddingMode::Symmetric);
        let src: Vec<i32> = (0..12).collect();
        let mut dst = vec![-1; (3 + 4) * s.stride];
        s.fill(&src, 0, 3, &mut dst);
        // row -1 mirrors row 0 (symmetric), row -2 mirrors row 1; columns: 0 at 2·pw = 4
        let row = |t: usize| dst[t * s.stride..(t + 1) * s.stride].to_vec();
        assert_eq!(row(0), vec![0, 0, 5, 4, 4, 5, 6, 7, 7, 6, 0, 0]);
        assert_eq!(row(2), vec![0, 0, 1, 0, 0, 1, 2, 3, 3, 2, 0, 0]);
    }

    #[test]
    fn slab_fill_and_fold_are_adjoint() {
        for mode in MODES {
            let s = Slab::new(5, 4, 3, true, mode);
            let src: Vec<f64> = (0..20).map(|i| (i * 7 % 11) as f64 - 4.0).collect();
            let rows = 5 + 2 * s.ph;
            let mut px = vec![0.0; rows * s.stride];
            s.fill(&src, 0, 5, &mut px);
            let y: Vec<f64> = (0..px.len())
                .map(|i| ((i * i) % 13) as f64 * 0.5 - 2.0)
                .collect();
            let mut fy = vec![0.0; 20];
            s.fold(&y, -(s.ph as isize), 0, 5, &mut fy);
            // columns beyond pw are zero in the fill, so they must not fold anywhere: compare
            // only the inner product over what fill defines.
            let lhs: f64 = px.iter().zip(&y).map(|(a, b)| a * b).sum();
            let rhs: f64 = src.iter().zip(&fy).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-9, "{mode:?}: {lhs} vs {rhs}");
        }
    }

    #[test]
    fn jobs_cover_every_row_once_with_wide_enough_border_bands() {
        let s = Slab::new(100, 512, 10, true, PaddingMode::Reflect);
        let j = jobs(2, 1, &s);
        assert!(j.len() >= 8);
        for b in 0..2 {
            let mut r = 0;
            for job in j.iter().filter(|j| j.b == b) {
                assert_eq!(job.h0, r);
                assert!(job.h1 - job.h0 > s.ph);
                r = job.h1;
            }
            assert_eq!(r, 100);
        }
    }
}
