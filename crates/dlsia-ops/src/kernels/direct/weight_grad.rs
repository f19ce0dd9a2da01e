//! Weight-gradient direct kernel: for every valid (input channel, tap) the dot product of an
//! output-gradient row with the input row at the tap's offset, `OB` output channels × `KB`
//! (channel, tap) pairs in registers, 8 columns at a time.

use std::arch::x86_64::*;

use rayon::prelude::*;

use super::{available, Band, RowTaps, Schedule};
use crate::kernels::corr::Corr;

/// Above this many weights per group GEMM over im2col is the better weight gradient.
const MAX_WEIGHTS: usize = 32 * 1024;
/// Output channels per block: 2 channels × 6 (channel, tap) pairs = 12 accumulators, with 2 + 1
/// vectors for the operands, fits AVX2's 16 registers and needs 8 loads per 12 FMAs.
const WG_OB: usize = 2;

struct WgCtx<'a> {
    /// The job's packed input band.
    x: *const f32,
    /// Band offsets of output column 0 for each valid (channel, tap).
    offs: &'a [isize],
    /// Output-gradient row of the block's first channel.
    dy: *const f32,
    dy_plane: usize,
    wout: usize,
}

/// Accumulates `OB × KB` dot products over a whole row and adds them (as 8-lane partial sums)
/// to `part[(j·k_full + kfull[k0 + kk])·8 ..]`.
///
/// # Safety
/// AVX2/FMA available; `k0 + KB <= offs.len()`; the band covers every tap of the row's columns
/// rounded up to whole vectors; `part` addresses `OB·k_full·8` floats owned by the caller.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::needless_range_loop)]
unsafe fn block<const OB: usize, const KB: usize>(
    cx: &WgCtx,
    k0: usize,
    kfull: &[usize],
    k_full: usize,
    part: *mut f32,
) {
    let mut acc = [[_mm256_setzero_ps(); KB]; OB];
    let mut offs = [0isize; KB];
    offs.copy_from_slice(&cx.offs[k0..k0 + KB]);
    let full = cx.wout / 8;
    let mut dys = [std::ptr::null::<f32>(); OB];
    for j in 0..OB {
        dys[j] = cx.dy.wrapping_add(j * cx.dy_plane);
    }
    for s in 0..full {
        // SAFETY: columns 8s..8s+8 of the gradient rows exist; the band covers their taps.
        unsafe {
            let mut dyv = [_mm256_setzero_ps(); OB];
            for j in 0..OB {
                dyv[j] = _mm256_loadu_ps(dys[j].add(8 * s));
            }
            for kk in 0..KB {
                let xv = _mm256_loadu_ps(cx.x.offset(offs[kk]).add(8 * s));
                for j in 0..OB {
                    acc[j][kk] = _mm256_fmadd_ps(dyv[j], xv, acc[j][kk]);
                }
            }
        }
    }
    let rest = cx.wout - 8 * full;
    if rest > 0 {
        // The gradient's tail is masked (beyond it lies other data); band reads stay inside.
        let mask = _mm256_cmpgt_epi32(
            _mm256_set1_epi32(rest as i32),
            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
        );
        // SAFETY: the first `rest` columns after the full vectors exist; masked lanes are not
        // read; the band covers the rounded-up row.
        unsafe {
            let mut dyv = [_mm256_setzero_ps(); OB];
            for j in 0..OB {
                dyv[j] = _mm256_maskload_ps(dys[j].add(8 * full), mask);
            }
            for kk in 0..KB {
                let xv = _mm256_loadu_ps(cx.x.offset(offs[kk]).add(8 * full));
                for j in 0..OB {
                    acc[j][kk] = _mm256_fmadd_ps(dyv[j], xv, acc[j][kk]);
                }
            }
        }
    }
    for j in 0..OB {
        for kk in 0..KB {
            // SAFETY: inside the caller's partial buffer.
            unsafe {
                let p = part.add((j * k_full + kfull[k0 + kk]) * 8);
                _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), acc[j][kk]));
            }
        }
    }
}

/// Runs all (channel, tap) entries of a row for one output-channel block.
///
/// # Safety
/// As for [`block`].
#[target_feature(enable = "avx2,fma")]
unsafe fn row<const OB: usize, const KB: usize>(
    cx: &WgCtx,
    kfull: &[usize],
    k_full: usize,
    part: *mut f32,
) {
    let kn = cx.offs.len();
    let mut k0 = 0;
    // SAFETY: forwarded; every block lies inside 0..kn.
    unsafe {
        while k0 + KB <= kn {
            block::<OB, KB>(cx, k0, kfull, k_full, part);
            k0 += KB;
        }
        while k0 < kn {
            block::<OB, 1>(cx, k0, kfull, k_full, part);
            k0 += 1;
        }
    }
}

/// [`Corr::weight_grad`] for f32 with all steps 1 and small filters, if the CPU allows.
/// Each job keeps 8-lane partial sums; jobs are added in a fixed order (deterministic).
pub(crate) fn weight_grad(c: &Corr, n: usize, input: &[f32], dy: &[f32], dw: &mut [f32]) -> bool {
    let k_full = c.k();
    if !available() || c.axes.iter().any(|ax| ax.step != 1) || c.co * k_full > MAX_WEIGHTS {
        return false;
    }
    let (in_plane, out_plane) = (c.in_plane(), c.out_plane());
    let wout = c.axes[2].out_len;
    dw.fill(0.0);
    if out_plane == 0 || n == 0 || c.co == 0 {
        return true;
    }
    let sched = Schedule::new(c, n);
    let (taps, ntw) = (c.taps(), c.axes[2].offsets.len());
    let partials: Vec<Vec<f32>> = (0..sched.jobs())
        .into_par_iter()
        .map(|job| {
            let (b, g, rows) = sched.job(c, job);
            let xg = &input[(b * c.groups + g) * c.ci * in_plane..][..c.ci * in_plane];
            let dyg = &dy[(b * c.groups + g) * c.co * out_plane..][..c.co * out_plane];
            let row_taps: Vec<RowTaps> = rows.iter().map(|&r| c.row_taps(r)).collect();
            let band = Band::pack(c, xg, &row_taps);
            let mut offs: Vec<isize> = vec![0; k_full];
            let mut kfull: Vec<usize> = vec![0; k_full];
            let mut part = vec![0f32; c.co * k_full * 8];
            for (&r, rt) in rows.iter().zip(&row_taps) {
                let kn = band.offsets(c, rt, &mut offs);
                let mut k = 0;
                for ci in 0..c.ci {
                    for &(tb, _) in &rt.rows {
                        for tw in 0..ntw {
                            kfull[k] = ci * taps + tb + tw;
                            k += 1;
                        }
                    }
                }
                let mut o0 = 0;
                while o0 < c.co {
                    let ob = (c.co - o0).min(WG_OB);
                    let cx = WgCtx {
                        x: band.data.as_ptr(),
                        offs: &offs[..kn],
                        dy: dyg[o0 * out_plane + r * wout..].as_ptr(),
                        dy_plane: out_plane,
                        wout,
                    };
                    let pp = part[o0 * k_full * 8..].as_mut_ptr();
                    // SAFETY: AVX2/FMA checked; `pp` addresses this job's partials for channels
                    // o0..o0+ob.
                    unsafe {
                        match ob {
                            4 => row::<4, 2>(&cx, &kfull, k_full, pp),
                            3 => row::<3, 3>(&cx, &kfull, k_full, pp),
                            2 => row::<2, 6>(&cx, &kfull, k_full, pp),
                            _ => row::<1, 8>(&cx, &kfull, k_full, pp),
                        }
                    }
                    o0 += ob;
                }
            }
            part
        })
        .collect();
    for (job, p) in partials.iter().enumerate() {
        let g = sched.job(c, job).1;
        let dwg = &mut dw[g * c.co * k_full..][..c.co * k_full];
        for (d, lanes) in dwg.iter_mut().zip(p.chunks_exact(8)) {
            *d += lanes.iter().sum::<f32>();
        }
    }
    true
}
