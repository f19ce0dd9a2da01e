//! The backward kernel: for a set of units whose (masked) output gradients are final, add
//! their contributions to the gradients of a range of input channels and compute their weight
//! gradients, one (batch item, band of rows) job at a time.
//!
//! Input gradient (the adjoint of the forward gather): for every target row `q` of channel `c`,
//! the output rows that read `q` (exact inverse row lists, reflections included) are combined
//! with [`fma_rows`] into a column-padded accumulator row, whose margins are then folded back
//! onto the columns they mirror. Weight gradient: dot products of each output-gradient row
//! with the shifted, column-padded source rows ([`dot_rows`]).

use rayon::prelude::*;

use super::buf::Shared;
use super::forward::{fill_tile, needed_rows};
use super::geom::{Geom, Unit};
use super::plan::{jobs, Job};
use super::simd::{dispatch, dot_rows, fma_rows, Float, Level, Tap};

/// Padded output-gradient planes of the units of one block: slot `k`, batch item `b`, row `r`
/// starts at `((k·N + b)·rows + r)·(W + 4·pad)`, with `2·pad` zeros on each side of a row.
pub(crate) struct GradPad<T> {
    /// The rows.
    pub data: Vec<T>,
    /// Padded row length.
    pub row_len: usize,
}

impl<T: Float> GradPad<T> {
    /// Zeroed storage for `slots` units.
    pub(crate) fn new(g: &Geom, slots: usize) -> Self {
        let row_len = g.size[2] + 4 * g.col.pad;
        GradPad {
            data: vec![T::ZERO; slots * g.n * g.rows() * row_len],
            row_len,
        }
    }

    /// Start of row `r` of batch item `b` in slot `k`.
    #[inline]
    pub(crate) fn row(&self, g: &Geom, k: usize, b: usize, r: usize) -> usize {
        ((k * g.n + b) * g.rows() + r) * self.row_len
    }

    /// Copies the gradient planes `(b, src_slot)` of `grad` (layout `(N, stride, plane)`)
    /// into slot `k`.
    pub(crate) fn set(&mut self, g: &Geom, k: usize, grad: &[T], stride: usize, src_slot: usize) {
        let (w, p2) = (g.size[2], 2 * g.col.pad);
        let plane = g.plane();
        for b in 0..g.n {
            let src = &grad[(b * stride + src_slot) * plane..][..plane];
            for r in 0..g.rows() {
                let at = self.row(g, k, b, r);
                self.data[at + p2..at + p2 + w].copy_from_slice(&src[r * w..(r + 1) * w]);
            }
        }
    }
}

/// One parallel backward phase.
///
/// Partition: jobs write rows `r0..r1` of batch item `b` of the gradient planes of channels
/// `c0..c1` and their own weight-gradient partial sums; they read the forward buffer and the
/// padded unit gradients, which no job writes.
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
        let part_len = self.units.len() * (self.c1 - self.c0) * taps;
        let partials: Vec<Vec<f64>> = jobs(g.n, g.rows(), g.size[2])
            .into_par_iter()
            .map(|job| {
                let mut part = vec![0.0; part_len];
                bwd_job_dispatch::<T>(level, self, job, &mut part);
                part
            })
            .collect();
        let nc = self.c1 - self.c0;
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
    let (plane, w, wp) = (g.plane(), g.size[2], g.col.padded());
    let (kw, taps, p2) = (g.kernel[2], g.taps(), 2 * g.col.pad);
    let gp = p.gpad;
    let nc = p.c1 - p.c0;
    let (rows, slot) = needed_rows(g, p.units, job.r0, job.r1);
    let mut tile = vec![T::ZERO; rows.len() * wp];
    let mut ext = vec![T::ZERO; wp];
    let mut acc = vec![0.0f64; taps];
    let mut idx = Vec::with_capacity(taps);
    for c in p.c0..p.c1 {
        if p.units.iter().all(|u| u.prefix <= c) {
            continue;
        }
        let base = (job.b * g.channels + c) * plane;
        // SAFETY: the forward buffer is read-only during the phase.
        let src = unsafe { p.fwd.get(base, plane) };
        // SAFETY: this job's rows of target channel c (phase partition).
        let dst = unsafe { p.grad.get_mut(base + job.r0 * w, (job.r1 - job.r0) * w) };
        // Input gradient, one target row at a time.
        for q in job.r0..job.r1 {
            ext.fill(T::ZERO);
            for (k, u) in p.units.iter().enumerate() {
                if u.prefix <= c {
                    continue;
                }
                let wts = &p.weights[u.w_off + c * taps..][..taps];
                let shift = &g.plans[u.plan].adj_shift;
                let mut list: Vec<Tap<'_, T>> = Vec::with_capacity(taps);
                g.for_adj_rows(u.plan, q, |r, tr| {
                    let row = &gp.data[gp.row(g, p.gpad_slot[k], job.b, r)..][..gp.row_len];
                    for (tw, &sh) in shift.iter().enumerate() {
                        list.push(Tap {
                            src: &row[sh..],
                            w: wts[tr * kw + tw],
                        });
                    }
                });
                fma_rows::<T, FMA>(&mut ext, &list);
            }
            g.col.fold(&ext, &mut dst[(q - job.r0) * w..][..w]);
        }
        // Weight gradient.
        fill_tile(g, src, &rows, &mut tile);
        for (k, u) in p.units.iter().enumerate() {
            if u.prefix <= c {
                continue;
            }
            let shift = &g.plans[u.plan].col_shift;
            let out = &mut part[(k * nc + c - p.c0) * taps..][..taps];
            let mut list: Vec<&[T]> = Vec::with_capacity(taps);
            for r in job.r0..job.r1 {
                let grow = &gp.data[gp.row(g, p.gpad_slot[k], job.b, r) + p2..][..w];
                list.clear();
                idx.clear();
                g.for_fwd_rows(u.plan, r, |s, tr| {
                    let row = &tile[slot[s] as usize * wp..][..wp];
                    for (tw, &sh) in shift.iter().enumerate() {
                        list.push(&row[sh..sh + w]);
                        idx.push(tr * kw + tw);
                    }
                });
                let a = &mut acc[..list.len()];
                a.fill(0.0);
                dot_rows::<T, FMA>(grow, &list, a);
                for (&i, &v) in idx.iter().zip(a.iter()) {
                    out[i] += v;
                }
            }
        }
    }
}
