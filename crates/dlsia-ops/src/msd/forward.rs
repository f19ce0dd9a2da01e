//! The forward kernel: new channels of a set of units accumulated from a range of input
//! channels, one (batch item, depth slice, band of rows) job at a time.
//!
//! For every input channel the job copies the source slices its band reads into padded slabs
//! ([`Slab::fill`](super::plan::Slab::fill)); each unit then adds all its taps (9 for 3×3, 27 for
//! 3×3×3) to a padded accumulator with [`fma_grid`], SIMD loops over the whole band.
//! The accumulators start from the bias (or the values of an earlier phase) and are copied to
//! the output rows, through the ReLU if asked, at the end.

use rayon::prelude::*;

use super::buf::Shared;
use super::geom::{Geom, Unit};
use super::plan::{jobs, Job};
use super::simd::{dispatch, fma_grid, Float, Grid, Level, Tap};

/// How a phase starts its accumulators.
pub(crate) enum Start<T> {
    /// From one value per unit (the bias).
    Values(Vec<T>),
    /// From the output rows as they are.
    Output,
}

/// One parallel forward phase.
///
/// Partition: jobs write their band of their slice of batch item `b` of the units' output
/// planes and read input channels `c0..c1`, which are never output planes of the same phase.
pub(crate) struct FwdPhase<'a, T> {
    pub geom: &'a Geom,
    /// The buffer holding the input channels (layout `(N, channels, plane)`).
    pub input: Shared<'a, T>,
    /// The buffer holding the output planes.
    pub out: Shared<'a, T>,
    /// Output plane of unit `k` in batch item `b`: `(b·out_stride + out_slot[k])·plane`.
    pub out_stride: usize,
    /// See `out_stride`.
    pub out_slot: Vec<usize>,
    /// The units.
    pub units: &'a [Unit],
    /// Packed weights of all units.
    pub weights: &'a [T],
    /// Input channels.
    pub c0: usize,
    /// See `c0`.
    pub c1: usize,
    /// Initial accumulator values.
    pub start: Start<T>,
    /// Per unit: apply ReLU when writing its output (its last contribution is in this phase).
    pub relu: Vec<bool>,
}

impl<T: Float> FwdPhase<'_, T> {
    /// Runs every job in parallel.
    pub(crate) fn run(&self, level: Level) {
        let g = self.geom;
        jobs(g.n, g.size[0], &g.slab)
            .into_par_iter()
            .for_each(|job| fwd_job_dispatch::<T>(level, self, job));
    }
}

dispatch!(fwd_job_dispatch, fwd_job, (p: &FwdPhase<'_, T>, job: Job));

/// The source slices that output slice `d` reads through any of `units`' plans.
pub(crate) fn source_slices(g: &Geom, units: &[Unit], d: usize) -> Vec<usize> {
    let mut v: Vec<usize> = units
        .iter()
        .flat_map(|u| g.plans[u.plan].d.fwd[d].iter().map(|&(s, _)| s))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Slabs of the source slices `slices` of channel `c` of batch item `b` for rows `h0..h1`.
pub(crate) struct Tiles<T> {
    /// The slabs, one after another.
    pub data: Vec<T>,
    /// Elements per slab.
    pub len: usize,
    /// The source slice of each slab.
    pub slices: Vec<usize>,
}

impl<T: Float> Tiles<T> {
    pub(crate) fn new(g: &Geom, slices: Vec<usize>, job: &Job) -> Self {
        let len = (job.h1 - job.h0 + 2 * g.slab.ph) * g.slab.stride;
        Tiles {
            data: vec![T::ZERO; len * slices.len()],
            len,
            slices,
        }
    }

    /// Fills the slabs from `plane` (one channel plane).
    pub(crate) fn fill(&mut self, g: &Geom, plane: &[T], job: &Job) {
        let sl = g.slice();
        for (k, &s) in self.slices.iter().enumerate() {
            g.slab.fill(
                &plane[s * sl..(s + 1) * sl],
                job.h0,
                job.h1,
                &mut self.data[k * self.len..(k + 1) * self.len],
            );
        }
    }

    /// The slab of source slice `s`.
    pub(crate) fn slab(&self, s: usize) -> &[T] {
        let k = self
            .slices
            .iter()
            .position(|&v| v == s)
            .expect("source slice planned for this job");
        &self.data[k * self.len..(k + 1) * self.len]
    }
}

/// The pixels of a band in a padded accumulator: rows of `w` columns, starting at `2·pw`.
pub(crate) fn band_grid(g: &Geom, job: &Job) -> Grid {
    Grid {
        rows: job.h1 - job.h0,
        cols: g.size[2],
        stride: g.slab.stride,
    }
}

#[inline(always)]
fn fwd_job<T: Float, const FMA: bool>(p: &FwdPhase<'_, T>, job: Job) {
    let g = p.geom;
    let (plane, slice, w) = (g.plane(), g.slice(), g.size[2]);
    let (s, ph, pw) = (g.slab.stride, g.slab.ph, g.slab.pw);
    let (taps, hw) = (g.taps(), g.hw_taps());
    let nb = job.h1 - job.h0;
    let grid = band_grid(g, &job);
    let j0 = 2 * pw;
    let acc_len = nb * s;
    let mut acc = vec![T::ZERO; p.units.len() * acc_len];
    let out_rows =
        |k: usize| (job.b * p.out_stride + p.out_slot[k]) * plane + job.d * slice + job.h0 * w;
    for (k, a) in acc.chunks_exact_mut(acc_len).enumerate() {
        match &p.start {
            Start::Values(v) => a.fill(v[k]),
            Start::Output => {
                // SAFETY: this job's rows of unit k's output plane (phase partition).
                let o = unsafe { p.out.get(out_rows(k), nb * w) };
                for r in 0..nb {
                    a[r * s + 2 * pw..][..w].copy_from_slice(&o[r * w..(r + 1) * w]);
                }
            }
        }
    }
    if p.c1 > p.c0 {
        let mut tiles = Tiles::new(g, source_slices(g, p.units, job.d), &job);
        for c in p.c0..p.c1 {
            if p.units.iter().all(|u| u.prefix <= c) {
                continue;
            }
            // SAFETY: input channels are not written during the phase.
            let src = unsafe { p.input.get((job.b * g.channels + c) * plane, plane) };
            tiles.fill(g, src, &job);
            for (k, u) in p.units.iter().enumerate() {
                if u.prefix <= c {
                    continue;
                }
                let wts = &p.weights[u.w_off + c * taps..][..taps];
                let plan = &g.plans[u.plan];
                let mut list: Vec<Tap<'_, T>> = Vec::with_capacity(taps);
                for &(sd, td) in &plan.d.fwd[job.d] {
                    let slab = tiles.slab(sd);
                    for (thw, &off) in plan.hw.iter().enumerate() {
                        let at = (j0 as isize + (ph * s) as isize + off) as usize;
                        list.push(Tap {
                            src: &slab[at..],
                            w: wts[td * hw + thw],
                        });
                    }
                }
                fma_grid::<T, FMA>(&mut acc[k * acc_len + j0..(k + 1) * acc_len], &list, grid);
            }
        }
    }
    for (k, a) in acc.chunks_exact(acc_len).enumerate() {
        // SAFETY: this job's rows of unit k's output plane (phase partition).
        let o = unsafe { p.out.get_mut(out_rows(k), nb * w) };
        for r in 0..nb {
            let src = &a[r * s + 2 * pw..][..w];
            let dst = &mut o[r * w..(r + 1) * w];
            if p.relu[k] {
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = v.relu();
                }
            } else {
                dst.copy_from_slice(src);
            }
        }
    }
}
