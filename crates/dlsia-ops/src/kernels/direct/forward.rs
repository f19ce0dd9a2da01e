//! Forward direct kernel: `OB` output channels × `PB` vectors of 8 columns in registers.

use std::arch::x86_64::*;

use rayon::prelude::*;

use super::{available, Band, RowTaps, Schedule};
use crate::kernels::corr::Corr;
use crate::kernels::SyncPtr;

/// Largest output-channel block: 6 channels × 2 vectors = 12 accumulators, 2 input vectors and
/// a broadcast fit AVX2's 16 registers (a spilled accumulator costs a store-forward per step).
const MAX_OB: usize = 6;

/// Output-channel blocks of one group: `(first channel, block size, weights)` with weights laid
/// out `[(c·T + t)·ob + j]` so that a block's values for one (channel, tap) are contiguous.
fn pack_blocks(c: &Corr, a: &[f32], g: usize) -> Vec<(usize, usize, Vec<f32>)> {
    let (t, k) = (c.taps(), c.k());
    let mut out = Vec::new();
    let mut o0 = 0;
    while o0 < c.co {
        let ob = (c.co - o0).min(MAX_OB);
        let mut w = vec![0f32; c.ci * t * ob];
        for j in 0..ob {
            let row = &a[(g * c.co + o0 + j) * k..][..k];
            for (q, &v) in row.iter().enumerate() {
                w[q * ob + j] = v;
            }
        }
        out.push((o0, ob, w));
        o0 += ob;
    }
    out
}

/// Arguments shared by the tiles of one output row.
struct RowCtx<'a> {
    /// The job's packed input band.
    x: *const f32,
    /// For each reduction step `k` (valid (channel, tap) pair): the band offset of output
    /// column 0.
    offs: &'a [isize],
    /// Output position of column 0 of this row for the block's first channel.
    y: *mut f32,
    y_plane: usize,
}

/// `OB` channels × `PB`·8 columns starting at `p`; with `TAIL`, only the first `valid` columns
/// of the last vector are stored (the end of the row).
///
/// # Safety
/// AVX2/FMA available; the band holds every tap of columns `p..p+8·PB` (its rows have zero
/// margins); `w` holds `OB` values per reduction step; the outputs are this caller's.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::needless_range_loop)] // index loops: iterator adapters are not inlined here
unsafe fn tile<const OB: usize, const PB: usize, const TAIL: bool>(
    cx: &RowCtx,
    w: *const f32,
    p: usize,
    valid: usize,
) {
    let mut acc = [[_mm256_setzero_ps(); PB]; OB];
    let x = cx.x.wrapping_add(p);
    for k in 0..cx.offs.len() {
        // SAFETY: band rows cover every tap of these columns; `w` holds OB values per step.
        unsafe {
            let xp = x.offset(*cx.offs.get_unchecked(k));
            let wt = w.add(k * OB);
            if OB == 1 {
                // One broadcast, PB accumulators: loads fold into the FMAs.
                let wb = _mm256_broadcast_ss(&*wt);
                for i in 0..PB {
                    acc[0][i] = _mm256_fmadd_ps(wb, _mm256_loadu_ps(xp.add(8 * i)), acc[0][i]);
                }
            } else {
                let mut xv = [_mm256_setzero_ps(); PB];
                for i in 0..PB {
                    xv[i] = _mm256_loadu_ps(xp.add(8 * i));
                }
                for j in 0..OB {
                    let wb = _mm256_broadcast_ss(&*wt.add(j));
                    for i in 0..PB {
                        acc[j][i] = _mm256_fmadd_ps(wb, xv[i], acc[j][i]);
                    }
                }
            }
        }
    }
    let mask = _mm256_cmpgt_epi32(
        _mm256_set1_epi32(valid as i32),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
    );
    for j in 0..OB {
        for i in 0..PB {
            // SAFETY: output columns p..p+8·PB (the first `valid` of the last vector with
            // TAIL) of channel j of this row are the caller's.
            unsafe {
                let dst = cx.y.add(j * cx.y_plane + p + 8 * i);
                if TAIL && i == PB - 1 {
                    _mm256_maskstore_ps(dst, mask, acc[j][i]);
                } else {
                    _mm256_storeu_ps(dst, acc[j][i]);
                }
            }
        }
    }
}

/// Runs one block over a whole output row of `wout` columns: the widest register tiles, then
/// narrower ones, then a masked-store tail.
///
/// # Safety
/// As for [`tile`].
#[target_feature(enable = "avx2,fma")]
unsafe fn block_row<const OB: usize, const PB: usize>(cx: &RowCtx, w: &[f32], wout: usize) {
    let wp = w.as_ptr();
    let mut p = 0;
    // SAFETY: forwarded; every tile lies inside the band's rows and the output row.
    unsafe {
        while p + 8 * PB <= wout {
            tile::<OB, PB, false>(cx, wp, p, 8);
            p += 8 * PB;
        }
        // Narrower tiles for the rest, keeping several accumulators.
        if PB > 4 && p + 32 <= wout {
            tile::<OB, 4, false>(cx, wp, p, 8);
            p += 32;
        }
        if PB > 2 && p + 16 <= wout {
            tile::<OB, 2, false>(cx, wp, p, 8);
            p += 16;
        }
        while p + 8 <= wout {
            tile::<OB, 1, false>(cx, wp, p, 8);
            p += 8;
        }
        if p < wout {
            tile::<OB, 1, true>(cx, wp, p, wout - p);
        }
    }
}

/// [`Corr::run`] for f32 with all steps 1 and a dense destination, if the CPU allows.
pub(crate) fn run(c: &Corr, n: usize, input: &[f32], a: &[f32], dst: &mut [f32]) -> bool {
    if !available() || c.axes.iter().any(|ax| ax.step != 1) {
        return false;
    }
    let (in_plane, out_plane) = (c.in_plane(), c.out_plane());
    let wout = c.axes[2].out_len;
    if out_plane == 0 || n == 0 || c.co == 0 {
        return true;
    }
    let blocks: Vec<_> = (0..c.groups).map(|g| pack_blocks(c, a, g)).collect();
    let sched = Schedule::new(c, n);
    let dptr = SyncPtr::new(dst);
    let (taps, ntw) = (c.taps(), c.axes[2].offsets.len());
    (0..sched.jobs()).into_par_iter().for_each(|job| {
        let (b, g, rows) = sched.job(c, job);
        let xg = &input[(b * c.groups + g) * c.ci * in_plane..][..c.ci * in_plane];
        let row_taps: Vec<RowTaps> = rows.iter().map(|&r| c.row_taps(r)).collect();
        let band = Band::pack(c, xg, &row_taps);
        let mut offs: Vec<isize> = vec![0; c.k()];
        let mut wrow: Vec<f32> = Vec::new();
        for (&r, rt) in rows.iter().zip(&row_taps) {
            let kn = band.offsets(c, rt, &mut offs);
            let all_rows = rt.rows.len() * ntw == taps;
            for (o0, ob, w) in &blocks[g] {
                // Border rows lack some taps: gather the weights of the valid ones.
                let wk: &[f32] = if all_rows {
                    w
                } else {
                    wrow.clear();
                    for ci in 0..c.ci {
                        for &(tb, _) in &rt.rows {
                            let q = (ci * taps + tb) * ob;
                            wrow.extend_from_slice(&w[q..q + ntw * ob]);
                        }
                    }
                    &wrow
                };
                let cx = RowCtx {
                    x: band.data.as_ptr(),
                    offs: &offs[..kn],
                    // SAFETY: row r of channel (b, g·co + o0): this job's rows.
                    y: unsafe {
                        dptr.get()
                            .add(((b * c.groups + g) * c.co + o0) * out_plane + r * wout)
                    },
                    y_plane: out_plane,
                };
                // SAFETY: AVX2/FMA checked by `available`; the band covers every tap.
                unsafe {
                    match ob {
                        6 => block_row::<6, 2>(&cx, wk, wout),
                        5 => block_row::<5, 2>(&cx, wk, wout),
                        4 => block_row::<4, 2>(&cx, wk, wout),
                        3 => block_row::<3, 3>(&cx, wk, wout),
                        2 => block_row::<2, 4>(&cx, wk, wout),
                        _ => block_row::<1, 8>(&cx, wk, wout),
                    }
                }
            }
        }
    });
    true
}
