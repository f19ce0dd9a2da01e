//! Max pooling (PyTorch floor mode, implicit −∞ padding), forward and backward.
//!
//! The backward pass sends each window's gradient to one element: the first maximum in scan
//! order, or the last NaN if the window holds one — PyTorch's CPU rule. It recomputes the
//! winners from the input instead of storing indices.

use rayon::prelude::*;

use super::{volume, Real};

/// The geometry of one pooling, normalised to three spatial axes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PoolGeom {
    /// Number of spatial axes of the caller's tensors.
    pub ndim: usize,
    /// Batch size.
    pub n: usize,
    /// Channels.
    pub c: usize,
    /// Input spatial size.
    pub input: [usize; 3],
    /// Output spatial size.
    pub output: [usize; 3],
    /// Window size.
    pub kernel: [usize; 3],
    /// Stride.
    pub stride: [usize; 3],
    /// Padding before (and after) each axis.
    pub pad: [usize; 3],
}

impl PoolGeom {
    /// Dims of the output tensor.
    pub(crate) fn y_dims(&self) -> Vec<usize> {
        [vec![self.n, self.c], self.output[3 - self.ndim..].to_vec()].concat()
    }

    /// The input range of window `o` on axis `i` (clipped to the input).
    #[inline]
    fn window(&self, i: usize, o: usize) -> (usize, usize) {
        let start = (o * self.stride[i]) as isize - self.pad[i] as isize;
        let end = (start + self.kernel[i] as isize).min(self.input[i] as isize);
        (start.max(0) as usize, end.max(0) as usize)
    }

    /// Index (within the plane) and value of the winner of window `(od, oh, ow)`.
    #[inline]
    fn winner<T: Real>(&self, xp: &[T], od: usize, oh: usize, ow: usize) -> (usize, T) {
        let (d0, d1) = self.window(0, od);
        let (h0, h1) = self.window(1, oh);
        let (w0, w1) = self.window(2, ow);
        let (ih, iw) = (self.input[1], self.input[2]);
        let mut best = T::NEG_INFINITY;
        let mut arg = (d0 * ih + h0) * iw + w0;
        for d in d0..d1 {
            for h in h0..h1 {
                let row = (d * ih + h) * iw;
                for (w, &v) in xp[row + w0..row + w1].iter().enumerate() {
                    if v > best || v.is_nan_value() {
                        best = v;
                        arg = row + w0 + w;
                    }
                }
            }
        }
        (arg, best)
    }

    /// Non-overlapping windows without padding (kernel = stride, the U-Net case).
    fn is_tiled(&self) -> bool {
        self.kernel == self.stride && self.pad == [0; 3]
    }

    /// For output row `(od, oh)` of a tiled pooling: the winner's value and its index within
    /// the plane for every output column, scanning windows in PyTorch's order.
    #[inline]
    #[allow(clippy::needless_range_loop)]
    fn tiled_row<T: Real>(&self, xp: &[T], od: usize, oh: usize, val: &mut [T], arg: &mut [u32]) {
        let [kd, kh, kw] = self.kernel;
        let (ih, iw) = (self.input[1], self.input[2]);
        #[cfg(target_arch = "x86_64")]
        if kw == 2 && super::direct::available() {
            if let (Some(xp), Some(val)) = (super::as_f32(xp), super::as_f32_mut(val)) {
                let rows: Vec<usize> = (0..kd)
                    .flat_map(|a| (0..kh).map(move |b| ((od * kd + a) * ih + oh * kh + b) * iw))
                    .collect();
                // SAFETY: AVX2 checked; every row holds at least 2·val.len() elements.
                unsafe { pair_rows_avx2(xp, &rows, val, arg) };
                return;
            }
        }
        val.fill(T::NEG_INFINITY);
        let mut first = true;
        for a in 0..kd {
            for b in 0..kh {
                let row = ((od * kd + a) * ih + oh * kh + b) * iw;
                let src = &xp[row..row + iw];
                for c in 0..kw {
                    let n = val.len();
                    let src = &src[c..c + (n - 1) * kw + 1];
                    let base = (row + c) as u32;
                    if first {
                        for ow in 0..n {
                            val[ow] = src[ow * kw];
                            arg[ow] = base + (ow * kw) as u32;
                        }
                    } else {
                        // First maximum wins, a NaN always replaces (PyTorch's CPU rule);
                        // branch-free so that the loop vectorises.
                        for ow in 0..n {
                            let x = src[ow * kw];
                            let v = val[ow];
                            #[allow(clippy::eq_op)]
                            let take = (x > v) | (x != x);
                            val[ow] = if take { x } else { v };
                            arg[ow] = if take {
                                base + (ow * kw) as u32
                            } else {
                                arg[ow]
                            };
                        }
                    }
                    first = false;
                }
            }
        }
    }
}

/// `y = max_pool(x)`; `x` is `n·c` planes of `input`.
pub(crate) fn forward<T: Real>(g: &PoolGeom, x: &[T]) -> Vec<T> {
    let (ip, op) = (volume(&g.input), volume(&g.output));
    let mut y = super::zeroed::<T>(g.n * g.c * op);
    if op == 0 {
        return y;
    }
    if g.is_tiled() && ip <= i32::MAX as usize {
        let ow = g.output[2];
        y.par_chunks_mut(op)
            .zip(x.par_chunks(ip))
            .for_each(|(yp, xp)| {
                let mut arg = vec![0u32; ow];
                for (r, yrow) in yp.chunks_mut(ow).enumerate() {
                    g.tiled_row(xp, r / g.output[1], r % g.output[1], yrow, &mut arg);
                }
            });
        return y;
    }
    y.par_chunks_mut(op)
        .zip(x.par_chunks(ip.max(1)))
        .for_each(|(yp, xp)| {
            let mut k = 0;
            for od in 0..g.output[0] {
                for oh in 0..g.output[1] {
                    for ow in 0..g.output[2] {
                        yp[k] = g.winner(xp, od, oh, ow).1;
                        k += 1;
                    }
                }
            }
        });
    y
}

/// The input gradient of [`forward`] for the output gradient `dy`.
pub(crate) fn backward<T: Real>(g: &PoolGeom, x: &[T], dy: &[T]) -> Vec<T> {
    let (ip, op) = (volume(&g.input), volume(&g.output));
    let mut dx = super::zeroed::<T>(g.n * g.c * ip);
    if op == 0 || ip == 0 {
        return dx;
    }
    if g.is_tiled() && ip <= i32::MAX as usize {
        let ow = g.output[2];
        dx.par_chunks_mut(ip)
            .zip(x.par_chunks(ip).zip(dy.par_chunks(op)))
            .for_each(|(dxp, (xp, dyp))| {
                let (mut val, mut arg) = (vec![T::ZERO; ow], vec![0u32; ow]);
                for (r, dyrow) in dyp.chunks(ow).enumerate() {
                    g.tiled_row(xp, r / g.output[1], r % g.output[1], &mut val, &mut arg);
                    // Windows do not overlap: each input receives at most one gradient.
                    for (&i, &d) in arg.iter().zip(dyrow) {
                        dxp[i as usize] = d;
                    }
                }
            });
        return dx;
    }
    dx.par_chunks_mut(ip)
        .zip(x.par_chunks(ip).zip(dy.par_chunks(op)))
        .for_each(|(dxp, (xp, dyp))| {
            let mut k = 0;
            for od in 0..g.output[0] {
                for oh in 0..g.output[1] {
                    for ow in 0..g.output[2] {
                        let (arg, _) = g.winner(xp, od, oh, ow);
                        dxp[arg] += dyp[k];
                        k += 1;
                    }
                }
            }
        });
    dx
}

/// The tiled-row scan for windows two columns wide, 8 outputs at a time: `rows` are the
/// plane offsets of the window rows in scan order; for each output column the first maximum
/// (or last NaN) over the rows' column pairs, and its plane index.
///
/// # Safety
/// AVX2 available; each row offset addresses at least `2·val.len()` elements of `xp`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pair_rows_avx2(xp: &[f32], rows: &[usize], val: &mut [f32], arg: &mut [u32]) {
    use std::arch::x86_64::*;
    let n = val.len();
    let full = n / 8 * 8;
    let two = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    for o in (0..full).step_by(8) {
        let mut v = _mm256_setzero_ps();
        let mut idx = _mm256_setzero_si256();
        for (r, &row) in rows.iter().enumerate() {
            // SAFETY: 16 elements from row + 2·o are inside the row.
            let (a, b) = unsafe {
                let p = xp.as_ptr().add(row + 2 * o);
                (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)))
            };
            let ev = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(
                _mm256_shuffle_ps::<0b10_00_10_00>(a, b),
            )));
            let od = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(
                _mm256_shuffle_ps::<0b11_01_11_01>(a, b),
            )));
            let base = _mm256_add_epi32(_mm256_set1_epi32((row + 2 * o) as i32), two);
            for (c, x) in [ev, od].into_iter().enumerate() {
                let xi = _mm256_add_epi32(base, _mm256_set1_epi32(c as i32));
                if r == 0 && c == 0 {
                    v = x;
                    idx = xi;
                } else {
                    let take = _mm256_or_ps(
                        _mm256_cmp_ps::<_CMP_GT_OQ>(x, v),
                        _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x),
                    );
                    v = _mm256_blendv_ps(v, x, take);
                    idx = _mm256_castps_si256(_mm256_blendv_ps(
                        _mm256_castsi256_ps(idx),
                        _mm256_castsi256_ps(xi),
                        take,
                    ));
                }
            }
        }
        // SAFETY: outputs o..o+8 exist.
        unsafe {
            _mm256_storeu_ps(val.as_mut_ptr().add(o), v);
            _mm256_storeu_si256(arg.as_mut_ptr().add(o).cast(), idx);
        }
    }
    for o in full..n {
        let mut first = true;
        for &row in rows {
            for c in 0..2 {
                let i = row + 2 * o + c;
                let x = xp[i];
                if first || x > val[o] || x.is_nan() {
                    val[o] = x;
                    arg[o] = i as u32;
                }
                first = false;
            }
        }
    }
}
