//! The backward kernel: for a set of units whose output gradients are final (masked by the
//! ReLU), add their contributions to the gradients of a range of input channels and compute
//! their weight gradients, one (batch item, depth slice, band of rows) job at a time.
//!
//! Input gradient: the exact adjoint of the forward gather. Along depth, the output slices that
//! read a slice come from inverse index lists; rows and columns are handled in padded slabs: the
//! job accumulates `w · g` for every tap into a padded slab covering its band (plus the rows
//! beyond the image at the top and bottom bands) with [`fma_grid`], then folds the padding back
//! onto the pixels it mirrors. Weight gradient: dot products of the padded output gradient with
//! the shifted source slabs ([`dot_grid`]), summed per job in `f64`.

use rayon::prelude::*;

use super::buf::Shared;
use super::forward::{band_grid, source_slices, Tiles};
use super::geom::{Geom, Unit};
use super::plan::{jobs, Job};
use super::simd::{dispatch, dot_grid, fma_grid, Float, Grid, Level, Tap};

/// Padded output-gradient slabs of the units of one block: slot `k`, batch item `b`, slice
/// `d` is a `(h + 4·ph) × stride` slab with image pixel `(r, x)` at `(r + 2·ph, x + 2·pw)` and
/// zeros elsewhere.
pub(crate) struct GradPad<T> {
    /// The slabs.
    pub data: Vec<T>,
    /// Elements per slab.
    pub len: usize,
}

impl<T: Float> GradPad<T> {
    /// Zeroed storage for `slots` units.
    pub(crate) fn new(g: &Geom, slots: usize) -> Self {
        let len = g.slab.grad_rows() * g.slab.stride;
        GradPad {
            data: vec![T::ZERO; slots * g.n * g.size[0] * len],
            len,
        }
    }

    /// Start of the slab of slot `k`, batch item `b`, slice `d`.
    #[inline]
    pub(crate) fn at(&self, g: &Geom, k: usize, b: usize, d: usize) -> usize {
        ((k * g.n + b) * g.size[0] + d) * self.len
    }

    /// Copies the gradient plane `(b, src_slot)` of `grad` (layout `(N, stride, plane)`) into
    /// slot `k` for every batch item.
    pub(crate) fn set(&mut self, g: &Geom, k: usize, grad: &[T], stride: usize, src_slot: usize) {
        let (w, s, ph, pw) = (g.size[2], g.slab.stride, g.slab.ph, g.slab.pw);
        let (plane, slice) = (g.plane(), g.slice());
        for b in 0..g.n {
            for d in 0..g.size[0] {
                let src = &grad[(b * stride + src_slot) * plane + d * slice..][..slice];
                let at = self.at(g, k, b, d);
                for r in 0..g.size[1] {
                    let o = at + (r + 2 * ph) * s + 2 * pw;
                    self.data[o..o + w].copy_from_slice(&src[r * w..(r + 1) * w]);
                }
            }
        }
    }
}

/// One parallel backward phase.
///
/// Partition: jobs write their band of their slice of batch item `b` of the gradient planes of
/// channels `c0..c1` and their own weight-gradient partial sums; they read the forward buffer
/// and the padded unit gradients, which no job writes.
pub(crate) struct BwdPhase<'a, T> {
    pub geom: &'a Geom,
    /// The forward buffer `R`.
    pub fwd: Shared<'a, T>,
    /// The gradient buffer `G` (same layout as `R`).
    pub grad: Shared<'a, T>,
    /// Padded gradients of the units.
    pub gpad: &'a GradPad<T>,
    /// Slot of each unit in `gpad`.
    pub gpad_slot: Vec<usize>,
    /// The units.
    pub units: &'a [Unit],
    /// Packed weights.
    pub weights: &'a [T],
    /// Target channels.
    pub c0: usize,
    /// See `c0`.
    pub c1: usize,
}

impl<T: Float> BwdPhase<'_, T> {
    /// Runs every job in parallel and adds the weight gradients to `dw` (indexed like the
    /// packed weights), summing the jobs' partial sums in a fixed order.
    pub(crate) fn run(&self, level: Level, dw: &mut [f64]) {
        let g = self.geom;
        if self.c1 <= self.c0 {
            return;
        }
        let taps = g.taps();
        let nc = self.c1 - self.c0;
        let part_len = self.units.len() * nc * taps;
        let partials: Vec<Vec<f64>> = jobs(g.n, g.size[0], &g.slab)
            .into_par_iter()
            .map(|job| {
                let mut part = vec![0.0; part_len];
                bwd_job_dispatch::<T>(level, self, job, &mut part);
                part
            })
            .collect();
        for part in &partials {
            for (k, u) in self.units.iter().enumerate() {
                for c in self.c0..self.c1.min(u.prefix) {
                    let src = &part[(k * nc + c - self.c0) * taps..][..taps];
                    let dst = &mut dw[u.w_off + c * taps..][..taps];
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d += s;
                    }
                }
            }
        }
    }
}

dispatch!(bwd_job_dispatch, bwd_job, (p: &BwdPhase<'_, T>, job: Job, part: &mut [f64]));

#[inline(always)]
fn bwd_job<T: Float, const FMA: bool>(p: &BwdPhase<'_, T>, job: Job, part: &mut [f64]) {
    let g = p.geom;
    let (plane, slice, w, h) = (g.plane(), g.slice(), g.size[2], g.size[1]);
    let (s, ph, pw) = (g.slab.stride, g.slab.ph, g.slab.pw);
    let (taps, hw) = (g.taps(), g.hw_taps());
    let gp = p.gpad;
    let nc = p.c1 - p.c0;
    let nb = job.h1 - job.h0;
    let grid = band_grid(g, &job);
    let j0 = 2 * pw;
    // Rows of the padded input-gradient slab: the band, plus the rows beyond the image that
    // fold back into it at the top and bottom.
    let folds = g.slab.folds_rows();
    let e_top = if job.h0 == 0 && folds { ph } else { 0 };
    let e_bot = if job.h1 == h && folds { ph } else { 0 };
    let q0 = job.h0 as isize - e_top as isize;
    let ext_len = (nb + e_top + e_bot) * s;
    let mut ext = vec![T::ZERO; ext_len];
    let mut tiles = Tiles::new(g, source_slices(g, p.units, job.d), &job);
    let mut acc = vec![0.0f64; taps];
    let mut idx = Vec::with_capacity(taps);
    let mut list: Vec<Tap<'_, T>> = Vec::with_capacity(taps);
    for c in p.c0..p.c1 {
        if p.units.iter().all(|u| u.prefix <= c) {
            continue;
        }
        let base = (job.b * g.channels + c) * plane + job.d * slice;
        // Input gradient.
        ext.fill(T::ZERO);
        for (k, u) in p.units.iter().enumerate() {
            if u.prefix <= c {
                continue;
            }
            let wts = &p.weights[u.w_off + c * taps..][..taps];
            let plan = &g.plans[u.plan];
            list.clear();
            for &(pd, td) in &plan.d.adj[job.d] {
                let slab = &gp.data[gp.at(g, p.gpad_slot[k], job.b, pd)..][..gp.len];
                let origin = (q0 + 2 * ph as isize) * s as isize + pw as isize;
                for (thw, &off) in plan.hw.iter().enumerate() {
                    list.push(Tap {
                        src: &slab[(origin - off) as usize..],
                        w: wts[td * hw + thw],
                    });
                }
            }
            let ext_grid = Grid {
                rows: nb + e_top + e_bot,
                cols: w + 2 * pw,
                stride: s,
            };
            fma_grid::<T, FMA>(&mut ext[pw..], &list, ext_grid);
        }
        // SAFETY: this job's rows of target channel c (phase partition).
        let dst = unsafe { p.grad.get_mut(base + job.h0 * w, nb * w) };
        g.slab.fold(&ext, q0, job.h0, job.h1, dst);
        // Weight gradient.
        // SAFETY: the forward buffer is read-only during the phase.
        let src = unsafe { p.fwd.get((job.b * g.channels + c) * plane, plane) };
        tiles.fill(g, src, &job);
        for (k, u) in p.units.iter().enumerate() {
            if u.prefix <= c {
                continue;
            }
            let plan = &g.plans[u.plan];
            let gslab = &gp.data[gp.at(g, p.gpad_slot[k], job.b, job.d)..][..gp.len];
            let grow = &gslab[(job.h0 + 2 * ph) * s + j0..];
            let mut dots: Vec<&[T]> = Vec::with_capacity(taps);
            idx.clear();
            for &(sd, td) in &plan.d.fwd[job.d] {
                let slab = tiles.slab(sd);
                for (thw, &off) in plan.hw.iter().enumerate() {
                    let at = (j0 as isize + (ph * s) as isize + off) as usize;
                    dots.push(&slab[at..]);
                    idx.push(td * hw + thw);
                }
            }
            let a = &mut acc[..dots.len()];
            a.fill(0.0);
            dot_grid::<T, FMA>(grow, &dots, grid, a);
            let out = &mut part[(k * nc + c - p.c0) * taps..][..taps];
            for (&i, &v) in idx.iter().zip(a.iter()) {
                out[i] += v;
            }
        }
    }
}
