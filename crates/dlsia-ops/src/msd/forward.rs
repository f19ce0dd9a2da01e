//! The forward kernel: new channels of a set of units accumulated from a range of input
//! channels, one (batch item, band of rows) job at a time.
//!
//! A job copies, channel by channel, the source rows its band needs into a column-padded tile
//! (so every column tap is a plain shifted slice) and adds `w · tile` into each unit's output
//! rows with [`fma_rows`]: 9 taps (3×3) or 27 (3×3×3) per pass over a row.

use rayon::prelude::*;

use super::buf::Shared;
use super::geom::{Geom, Unit};
use super::plan::{jobs, Job};
use super::simd::{dispatch, fma_rows, Float, Level, Tap};

/// One parallel forward phase.
///
/// Partition: jobs write rows `r0..r1` of batch item `b` of the units' output planes and read
/// input channels `c0..c1`; input channels are never output planes of the same phase.
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
    /// Packed weights of all units of the block.
    pub weights: &'a [T],
    /// Input channels.
    pub c0: usize,
    /// See `c0`.
    pub c1: usize,
    /// If set, output rows are first set to these per-unit values.
    pub init: Option<Vec<T>>,
    /// Apply ReLU to the output rows at the end.
    pub relu: bool,
}

impl<T: Float> FwdPhase<'_, T> {
    /// Runs every job in parallel.
    pub(crate) fn run(&self, level: Level) {
        let g = self.geom;
        jobs(g.n, g.rows(), g.size[2])
            .into_par_iter()
            .for_each(|job| fwd_job_dispatch::<T>(level, self, job));
    }
}

dispatch!(fwd_job_dispatch, fwd_job, (p: &FwdPhase<'_, T>, job: Job));

/// The sorted source rows that output rows `r0..r1` read through any of `units`' plans, and a
/// row → tile slot map.
pub(crate) fn needed_rows(
    g: &Geom,
    units: &[Unit],
    r0: usize,
    r1: usize,
) -> (Vec<usize>, Vec<u32>) {
    let mut slot = vec![u32::MAX; g.rows()];
    let mut seen_plans = Vec::new();
    for u in units {
        if seen_plans.contains(&u.plan) {
            continue;
        }
        seen_plans.push(u.plan);
        for r in r0..r1 {
            g.for_fwd_rows(u.plan, r, |s, _| slot[s] = 0);
        }
    }
    let rows: Vec<usize> = (0..g.rows()).filter(|&r| slot[r] == 0).collect();
    for (i, &r) in rows.iter().enumerate() {
        slot[r] = i as u32;
    }
    (rows, slot)
}

/// Copies channel plane `src` into the column-padded tile rows listed in `rows`.
pub(crate) fn fill_tile<T: Float>(g: &Geom, src: &[T], rows: &[usize], tile: &mut [T]) {
    let (w, wp) = (g.size[2], g.col.padded());
    for (i, &r) in rows.iter().enumerate() {
        g.col
            .fill(&src[r * w..(r + 1) * w], &mut tile[i * wp..(i + 1) * wp]);
    }
}

#[inline(always)]
fn fwd_job<T: Float, const FMA: bool>(p: &FwdPhase<'_, T>, job: Job) {
    let g = p.geom;
    let (plane, w, wp) = (g.plane(), g.size[2], g.col.padded());
    let (kw, taps) = (g.kernel[2], g.taps());
    let band = job.r0 * w..job.r1 * w;
    let out_plane = |k: usize| (job.b * p.out_stride + p.out_slot[k]) * plane;
    if let Some(init) = &p.init {
        for (k, &v) in init.iter().enumerate() {
            // SAFETY: this job's rows of unit k's output plane (phase partition).
            let o = unsafe { p.out.get_mut(out_plane(k) + band.start, band.len()) };
            o.fill(v);
        }
    }
    if p.c1 > p.c0 {
        let (rows, slot) = needed_rows(g, p.units, job.r0, job.r1);
        let mut tile = vec![T::ZERO; rows.len() * wp];
        for c in p.c0..p.c1 {
            if p.units.iter().all(|u| u.prefix <= c) {
                continue;
            }
            // SAFETY: input channels are not written during the phase.
            let src = unsafe { p.input.get((job.b * g.channels + c) * plane, plane) };
            fill_tile(g, src, &rows, &mut tile);
            for (k, u) in p.units.iter().enumerate() {
                if u.prefix <= c {
                    continue;
                }
                let wts = &p.weights[u.w_off + c * taps..][..taps];
                let shift = &g.plans[u.plan].col_shift;
                // SAFETY: this job's rows of unit k's output plane (phase partition).
                let out = unsafe { p.out.get_mut(out_plane(k) + band.start, band.len()) };
                let mut list: Vec<Tap<'_, T>> = Vec::with_capacity(taps);
                for r in job.r0..job.r1 {
                    list.clear();
                    g.for_fwd_rows(u.plan, r, |s, tr| {
                        let row = &tile[slot[s] as usize * wp..][..wp];
                        for (tw, &sh) in shift.iter().enumerate() {
                            list.push(Tap {
                                src: &row[sh..],
                                w: wts[tr * kw + tw],
                            });
                        }
                    });
                    let o = &mut out[(r - job.r0) * w..][..w];
                    fma_rows::<T, FMA>(o, &list);
                }
            }
        }
    }
    if p.relu {
        for k in 0..p.units.len() {
            // SAFETY: as above.
            let o = unsafe { p.out.get_mut(out_plane(k) + band.start, band.len()) };
            for v in o {
                *v = v.relu();
            }
        }
    }
}
