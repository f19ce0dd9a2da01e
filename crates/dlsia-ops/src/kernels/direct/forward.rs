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
    /// Channel 0 of the (batch, group) input block.
    x: *const f32,
    /// For each reduction step `k` (valid (channel, tap) pair): the input offset of output
    /// column 0 (channel plane + row + tap column offset).
    offs: &'a [isize],
    /// For each `k`, the index of its last-axis tap (for the border masks).
    ktw: &'a [usize],
    /// Last-axis tap offsets.
    woffs: &'a [isize],
    /// Input row length.
    win: isize,
    /// Output position of column 0 of this row for the block's first channel.
    y: *mut f32,
    y_plane: usize,
}

/// `OB` channels × `PB`·8 columns starting at `p`, all taps inside the input.
///
/// # Safety
/// AVX2/FMA available; every tap of columns `p..p+8·PB` inside the input rows; `w` holds
/// `ci·taps·OB` values; the outputs are this caller's.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::needless_range_loop)] // index loops: iterator adapters are not inlined here
unsafe fn tile<const OB: usize, const PB: usize>(cx: &RowCtx, w: *const f32, p: usize) {
    let mut acc = [[_mm256_setzero_ps(); PB]; OB];
    let x = cx.x.wrapping_add(p);
    for k in 0..cx.offs.len() {
        // SAFETY: interior columns: every tap of columns p..p+8·PB lies inside its input row;
        // `w` holds OB values per reduction step.
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
    for j in 0..OB {
        for i in 0..PB {
            // SAFETY: output columns p..p+8·PB of channel j of this row.
            unsafe { _mm256_storeu_ps(cx.y.add(j * cx.y_plane + p + 8 * i), acc[j][i]) };
        }
    }
}

/// Largest number of last-axis taps the masked tile handles (more use [`column`]).
const MAX_W_TAPS: usize = 16;

/// `OB` channels × 8 columns from `p` (the first `valid` of them are written), with per-tap
/// lane masks for taps that leave the input: the borders and the tail of a row.
///
/// # Safety
/// AVX2/FMA available; `cx.woffs.len() <= MAX_W_TAPS`; `w` holds `ci·taps·OB` values; the
/// outputs are this caller's; `valid <= 8`.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::needless_range_loop)]
unsafe fn tile_masked<const OB: usize>(cx: &RowCtx, w: *const f32, p: usize, valid: usize) {
    let iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let out_mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid as i32), iota);
    let ntw = cx.woffs.len();
    let mut masks = [_mm256_setzero_si256(); MAX_W_TAPS];
    for tw in 0..ntw.min(MAX_W_TAPS) {
        let col = _mm256_add_epi32(_mm256_set1_epi32((p as isize + cx.woffs[tw]) as i32), iota);
        let inside = _mm256_and_si256(
            _mm256_cmpgt_epi32(col, _mm256_set1_epi32(-1)),
            _mm256_cmpgt_epi32(_mm256_set1_epi32(cx.win as i32), col),
        );
        masks[tw] = _mm256_and_si256(inside, out_mask);
    }
    // Two interleaved accumulator sets hide the FMA latency when OB is small.
    let mut acc = [[_mm256_setzero_ps(); OB]; 2];
    let x = cx.x.wrapping_add(p);
    for k in 0..cx.offs.len() {
        // SAFETY: masked lanes are not read; addresses are formed with wrapping arithmetic.
        unsafe {
            let xv = _mm256_maskload_ps(
                x.wrapping_offset(*cx.offs.get_unchecked(k)),
                masks[*cx.ktw.get_unchecked(k)],
            );
            let wt = w.add(k * OB);
            let a = &mut acc[k & 1];
            for j in 0..OB {
                a[j] = _mm256_fmadd_ps(_mm256_broadcast_ss(&*wt.add(j)), xv, a[j]);
            }
        }
    }
    let acc: [__m256; OB] = std::array::from_fn(|j| _mm256_add_ps(acc[0][j], acc[1][j]));
    for j in 0..OB {
        // SAFETY: the first `valid` output columns from p of channel j are the caller's.
        unsafe { _mm256_maskstore_ps(cx.y.add(j * cx.y_plane + p), out_mask, acc[j]) };
    }
}

/// One output column of a block, any taps (rows with more than [`MAX_W_TAPS`] last-axis taps).
///
/// # Safety
/// `w` holds `offs.len()·ob` values (`ob <= MAX_OB`); output column `q` of the block is the caller's.
#[allow(clippy::needless_range_loop)]
unsafe fn column(cx: &RowCtx, w: &[f32], ob: usize, q: usize) {
    let mut s = [0f32; MAX_OB];
    for k in 0..cx.offs.len() {
        let col = q as isize + cx.woffs[cx.ktw[k]];
        if col < 0 || col >= cx.win {
            continue;
        }
        // SAFETY: (channel, row, col) inside the input.
        let v = unsafe { *cx.x.offset(cx.offs[k] + q as isize) };
        for j in 0..ob {
            s[j] += w[k * ob + j] * v;
        }
    }
    for j in 0..ob {
        // SAFETY: the caller's output column.
        unsafe { *cx.y.add(j * cx.y_plane + q) = s[j] };
    }
}

/// Runs one block over a whole output row of `wout` columns: masked tiles on the borders and
/// the tail, the widest register tiles in the interior `[lo, hi)`.
///
/// # Safety
/// As for [`tile`] and [`tile_masked`].
#[target_feature(enable = "avx2,fma")]
unsafe fn block_row<const OB: usize, const PB: usize>(
    cx: &RowCtx,
    w: &[f32],
    lo: usize,
    hi: usize,
    wout: usize,
) {
    let wp = w.as_ptr();
    if cx.woffs.len() > MAX_W_TAPS {
        for q in 0..wout {
            // SAFETY: forwarded.
            unsafe { column(cx, w, OB, q) };
        }
        return;
    }
    let mut p = 0;
    // SAFETY: forwarded; interior tiles lie inside [lo, hi), the rest is masked.
    unsafe {
        while p < lo {
            tile_masked::<OB>(cx, wp, p, (wout - p).min(8));
            p += 8;
        }
        while p + 8 * PB <= hi {
            tile::<OB, PB>(cx, wp, p);
            p += 8 * PB;
        }
        // Narrower tiles for the rest of the interior, keeping several accumulators.
        if PB > 4 && p + 32 <= hi {
            tile::<OB, 4>(cx, wp, p);
            p += 32;
        }
        if PB > 2 && p + 16 <= hi {
            tile::<OB, 2>(cx, wp, p);
            p += 16;
        }
        while p + 8 <= hi {
            tile::<OB, 1>(cx, wp, p);
            p += 8;
        }
        while p < wout {
            tile_masked::<OB>(cx, wp, p, (wout - p).min(8));
            p += 8;
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
    let win = c.axes[2].in_len as isize;
    let (taps, ntw) = (c.taps(), c.axes[2].offsets.len());
    (0..sched.jobs()).into_par_iter().for_each(|job| {
        let (b, g, rows) = sched.job(c, job);
        let xg = &input[(b * c.groups + g) * c.ci * in_plane..][..c.ci * in_plane];
        let row_taps: Vec<RowTaps> = rows.iter().map(|&r| c.row_taps(r)).collect();
        let band = Band::pack(c, xg, &row_taps);
        let ktw: Vec<usize> = (0..c.k()).map(|k| k % ntw).collect();
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
                    ktw: &ktw[..kn],
                    woffs: &c.axes[2].offsets,
                    win,
                    // SAFETY: row r of channel (b, g·co + o0): this job's rows.
                    y: unsafe {
                        dptr.get()
                            .add(((b * c.groups + g) * c.co + o0) * out_plane + r * wout)
                    },
                    y_plane: out_plane,
                };
                // SAFETY: AVX2/FMA checked by `available`; [lo, hi) are interior columns.
                unsafe {
                    match ob {
                        6 => block_row::<6, 2>(&cx, wk, rt.lo, rt.hi, wout),
                        5 => block_row::<5, 2>(&cx, wk, rt.lo, rt.hi, wout),
                        4 => block_row::<4, 2>(&cx, wk, rt.lo, rt.hi, wout),
                        3 => block_row::<3, 3>(&cx, wk, rt.lo, rt.hi, wout),
                        2 => block_row::<2, 4>(&cx, wk, rt.lo, rt.hi, wout),
                        _ => block_row::<1, 8>(&cx, wk, rt.lo, rt.hi, wout),
                    }
                }
            }
        }
    });
    true
}
