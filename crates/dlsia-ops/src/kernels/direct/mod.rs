//! Register-blocked direct kernels for step-1 correlations in f32 (x86-64 AVX2 + FMA).
//!
//! No im2col buffer: each output row segment is accumulated in registers — `OB` output
//! channels × `PB` vectors of 8 positions — while looping over input channels and taps, reading
//! the input rows (packed per job into a zero-margined, cache-friendly band) at the taps'
//! offsets. This is the kernel of every stride-1 convolution's forward pass and input gradient
//! (including few-output-channel dilated convolutions, where im2col would build a
//! `C_in·taps·H·W` buffer for one output channel), and of the matching weight gradient. `conv`
//! dispatches here automatically for f32 on CPUs with AVX2 and FMA (`DLSIA_OPS_NO_SIMD=1`
//! forces the portable path).
//!
//! Other machines and f64 use the im2col + GEMM path in [`super::corr`].

mod forward;
mod weight_grad;

pub(crate) use forward::run;
pub(crate) use weight_grad::weight_grad;

use std::sync::OnceLock;

use super::corr::Corr;
use super::num_threads;

/// Whether the CPU has AVX2 and FMA (checked once; `DLSIA_OPS_NO_SIMD` disables the kernels).
pub(crate) fn available() -> bool {
    static A: OnceLock<bool> = OnceLock::new();
    *A.get_or_init(|| {
        std::env::var_os("DLSIA_OPS_NO_SIMD").is_none()
            && is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
    })
}

/// Per-row tap geometry: the taps of the two leading axes that stay inside the input.
pub(super) struct RowTaps {
    /// `(index of the first tap of this (d, h) tap row, input row index id·in_h + ih)`.
    pub(super) rows: Vec<(usize, usize)>,
}

impl Corr {
    pub(super) fn row_taps(&self, r: usize) -> RowTaps {
        let [ad, ah, aw] = &self.axes;
        let (od, oh) = (r / ah.out_len, r % ah.out_len);
        let tw = aw.offsets.len();
        let mut rows = Vec::with_capacity(ad.offsets.len() * ah.offsets.len());
        for (td, &fd) in ad.offsets.iter().enumerate() {
            let id = od as isize + fd;
            if id < 0 || id >= ad.in_len as isize {
                continue;
            }
            for (th, &fh) in ah.offsets.iter().enumerate() {
                let ih = oh as isize + fh;
                if ih < 0 || ih >= ah.in_len as isize {
                    continue;
                }
                let base = (td * ah.offsets.len() + th) * tw;
                rows.push((base, id as usize * ah.in_len + ih as usize));
            }
        }
        RowTaps { rows }
    }

    /// Output rows `(od, oh)` (flattened) ordered so that consecutive rows share input rows: by
    /// residue modulo the tap spacing of each axis first (dilated taps of row `h` read rows
    /// `h ± d`, which rows `h ± d` also read).
    fn row_order(&self) -> Vec<usize> {
        let spacing = |offs: &[isize]| -> usize {
            let g = offs
                .windows(2)
                .fold(0usize, |g, w| gcd(g, (w[1] - w[0]).unsigned_abs()));
            g.max(1)
        };
        let (sd, sh) = (
            spacing(&self.axes[0].offsets),
            spacing(&self.axes[1].offsets),
        );
        let oh = self.axes[1].out_len;
        let mut rows: Vec<usize> = (0..self.axes[0].out_len * oh).collect();
        rows.sort_by_key(|&r| (r / oh % sd, r % oh % sh, r / oh, r % oh));
        rows
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Scratch bytes a job's packed input band aims for.
const BAND_BYTES: usize = 1 << 20;

/// How a call's rows are split into jobs: `outer` (batch, group) blocks × `chunks` chunks of
/// `chunk` rows of `order`.
pub(super) struct Schedule {
    pub(super) outer: usize,
    pub(super) chunk: usize,
    pub(super) chunks: usize,
    pub(super) order: Vec<usize>,
}

impl Schedule {
    pub(super) fn new(c: &Corr, n: usize) -> Self {
        let rows_total = c.axes[0].out_len * c.axes[1].out_len;
        let outer = n * c.groups;
        let want = 4 * num_threads();
        let win = c.axes[2].in_len;
        let by_jobs = rows_total.div_ceil(want.div_ceil(outer).max(1)).max(1);
        let tap_rows = c.axes[0].offsets.len() * c.axes[1].offsets.len();
        let by_budget = (BAND_BYTES / (4 * c.ci * win * tap_rows).max(1)).max(1);
        let chunk = by_budget.min(by_jobs);
        Schedule {
            outer,
            chunk,
            chunks: rows_total.div_ceil(chunk),
            order: c.row_order(),
        }
    }
    /// Number of jobs.
    pub(super) fn jobs(&self) -> usize {
        self.outer * self.chunks
    }
    /// `(batch, group, output rows)` of a job.
    pub(super) fn job(&self, c: &Corr, job: usize) -> (usize, usize, &[usize]) {
        let (bg, ch) = (job / self.chunks, job % self.chunks);
        let end = ((ch + 1) * self.chunk).min(self.order.len());
        (
            bg / c.groups,
            bg % c.groups,
            &self.order[ch * self.chunk..end],
        )
    }
}

/// The input rows a job reads, packed channel-major with zero margins on both sides of every
/// row wide enough that every tap of every output column (rounded up to whole vectors) reads
/// inside the row: the kernels need no masks on loads. The channel stride is not a multiple of
/// 4 KiB (channel planes at large power-of-two distances thrash the L1 cache).
pub(super) struct Band {
    pub(super) data: Vec<f32>,
    cstride: usize,
    rowlen: usize,
    lpad: usize,
    slot: Vec<u32>,
}

impl Band {
    /// Packs the rows read by `row_taps` from the (batch, group) input block `xg`.
    pub(super) fn pack(c: &Corr, xg: &[f32], row_taps: &[RowTaps]) -> Self {
        let (win, in_plane) = (c.axes[2].in_len, c.in_plane());
        let wo = &c.axes[2].offsets;
        let lpad = wo.iter().map(|&o| -o).max().unwrap_or(0).max(0) as usize;
        let wpad = c.axes[2].out_len.div_ceil(8) * 8;
        let reach = wo.iter().copied().max().unwrap_or(0).max(0) as usize;
        let rowlen = lpad + win.max(wpad + reach);
        let mut slot = vec![u32::MAX; c.axes[0].in_len * c.axes[1].in_len];
        let mut used = Vec::new();
        for rt in row_taps {
            for &(_, ir) in &rt.rows {
                if slot[ir] == u32::MAX {
                    slot[ir] = used.len() as u32;
                    used.push(ir);
                }
            }
        }
        let cstride = (used.len() * rowlen).div_ceil(16) * 16 + 16;
        let mut data = Vec::with_capacity(c.ci * cstride);
        for ci in 0..c.ci {
            for &ir in &used {
                data.extend(std::iter::repeat_n(0f32, lpad));
                data.extend_from_slice(&xg[ci * in_plane + ir * win..][..win]);
                data.extend(std::iter::repeat_n(0f32, rowlen - lpad - win));
            }
            data.extend(std::iter::repeat_n(0f32, cstride - used.len() * rowlen));
        }
        Band {
            data,
            cstride,
            rowlen,
            lpad,
            slot,
        }
    }

    /// Writes the band offset of output column 0 for every valid (channel, tap) of a row into
    /// `offs` (channel-major, then tap rows, then last-axis taps); returns how many.
    pub(super) fn offsets(&self, c: &Corr, rt: &RowTaps, offs: &mut [isize]) -> usize {
        let mut k = 0;
        for ci in 0..c.ci {
            for &(_, ir) in &rt.rows {
                let roff =
                    (ci * self.cstride + self.slot[ir] as usize * self.rowlen + self.lpad) as isize;
                for &wo in &c.axes[2].offsets {
                    offs[k] = roff + wo;
                    k += 1;
                }
            }
        }
        k
    }
}
