//! The generic gather-correlation engine behind every convolution: tiled im2col into GEMM.
//!
//! For a group `g`, output channel `o` and output grid position `m = (md, mh, mw)`:
//!
//! ```text
//! out[g·co + o, m] = Σ_{ci, taps t} A[g][o][ci·T + t] · in[g·ci_n + ci, m·step + offset_t]
//! ```
//!
//! with zeros outside the input. Taps are the product of per-axis offset lists. A forward
//! convolution uses offsets `k·dilation − padding` and the stride as step; each stride phase of
//! the input gradient is a step-1 correlation of the output gradient with the taps that land on
//! that phase (see [`super::conv_gemm`]). The output grid is written into a destination array
//! with a per-axis start and step ([`Placement`]), which lets the phases interleave.

use std::mem::size_of;

use rayon::prelude::*;

use super::matmul::{inner_parallelism, matmul, Mat, MatMut};
use super::{num_threads, volume, Real, SyncPtr};

/// Bytes of im2col buffer a tile aims for (fits the L2 cache next to the GEMM's packing).
const TILE_BYTES: usize = 384 * 1024;
/// The fewest output positions in a tile (below that the GEMM runs inefficiently).
const MIN_TILE: usize = 64;

/// One spatial axis of a correlation.
#[derive(Debug, Clone)]
pub(crate) struct Axis {
    /// Length of the input along this axis.
    pub in_len: usize,
    /// Input positions advanced per output position.
    pub step: usize,
    /// Input offsets of the taps.
    pub offsets: Vec<isize>,
    /// Length of the output grid along this axis.
    pub out_len: usize,
}

/// A grouped correlation: geometry plus channel counts per group.
#[derive(Debug, Clone)]
pub(crate) struct Corr {
    /// Axes `[d, h, w]`.
    pub axes: [Axis; 3],
    /// Number of groups.
    pub groups: usize,
    /// Input channels per group.
    pub ci: usize,
    /// Output channels per group.
    pub co: usize,
}

/// Where the output grid lands in the destination array (per axis: `start + step·m`).
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    /// Spatial size of the destination.
    pub size: [usize; 3],
    /// Destination position of output index 0.
    pub start: [usize; 3],
    /// Destination positions advanced per output index.
    pub step: [usize; 3],
}

impl Placement {
    /// The destination is exactly the output grid.
    pub(crate) fn dense(size: [usize; 3]) -> Self {
        Placement {
            size,
            start: [0; 3],
            step: [1; 3],
        }
    }
}

/// A run of output positions on one output row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    /// Offset of the run inside the tile.
    pub coff: usize,
    /// Output position (depth, row, first column) of the run.
    pub md: usize,
    pub mh: usize,
    pub mw0: usize,
    /// Number of positions.
    pub len: usize,
}

/// The row runs of the flattened output positions `m0..m0 + len` of a grid `(·, oh, ow)`.
pub(crate) fn segments(m0: usize, len: usize, oh: usize, ow: usize) -> Vec<Segment> {
    let mut v = Vec::new();
    let (mut m, end) = (m0, m0 + len);
    while m < end {
        let mw = m % ow;
        let r = m / ow;
        let l = (ow - mw).min(end - m);
        v.push(Segment {
            coff: m - m0,
            md: r / oh,
            mh: r % oh,
            mw0: mw,
            len: l,
        });
        m += l;
    }
    v
}

impl Corr {
    /// Number of taps.
    pub(crate) fn taps(&self) -> usize {
        self.axes.iter().map(|a| a.offsets.len()).product()
    }
    /// Length of the reduction (rows of the im2col buffer).
    pub(crate) fn k(&self) -> usize {
        self.ci * self.taps()
    }
    /// Input positions per channel.
    pub(crate) fn in_plane(&self) -> usize {
        self.axes.iter().map(|a| a.in_len).product()
    }
    /// Output positions per channel.
    pub(crate) fn out_plane(&self) -> usize {
        self.axes.iter().map(|a| a.out_len).product()
    }
    fn out_grid(&self) -> [usize; 3] {
        [
            self.axes[0].out_len,
            self.axes[1].out_len,
            self.axes[2].out_len,
        ]
    }
    /// A 1×1 correlation whose input is the im2col buffer itself.
    pub(crate) fn is_pointwise(&self) -> bool {
        self.axes.iter().all(|a| {
            a.offsets.len() == 1 && a.offsets[0] == 0 && a.step == 1 && a.out_len == a.in_len
        })
    }
    fn is_dense(&self, p: &Placement) -> bool {
        p.start == [0; 3] && p.step == [1; 3] && p.size == self.out_grid()
    }

    /// Output positions per tile, given `outer` independent (batch, group) problems.
    fn tile_len<T>(&self, outer: usize) -> usize {
        let m = self.out_plane().max(1);
        let per = (self.k() * size_of::<T>()).max(1);
        let mut tl = (TILE_BYTES / per).max(MIN_TILE).min(m);
        let want_jobs = 4 * num_threads();
        if outer * m.div_ceil(tl) < want_jobs {
            let tiles_per_outer = want_jobs.div_ceil(outer.max(1));
            tl = m.div_ceil(tiles_per_outer).max(MIN_TILE.min(m));
        }
        tl.max(1)
    }

    fn segments(&self, m0: usize, len: usize) -> Vec<Segment> {
        segments(m0, len, self.axes[1].out_len, self.axes[2].out_len)
    }

    /// Fills `col` (`k × len`, row-major) with the taps of the tile starting at `m0`.
    fn im2col<T: Real>(&self, x: &[T], segs: &[Segment], len: usize, col: &mut [T]) {
        let [ad, ah, aw] = &self.axes;
        let in_plane = self.in_plane();
        let mut row = 0;
        for ci in 0..self.ci {
            let xp = &x[ci * in_plane..(ci + 1) * in_plane];
            for &od in &ad.offsets {
                for &oh in &ah.offsets {
                    for &ow in &aw.offsets {
                        let dst = &mut col[row * len..(row + 1) * len];
                        for s in segs {
                            let out = &mut dst[s.coff..s.coff + s.len];
                            let id = (s.md * ad.step) as isize + od;
                            let ih = (s.mh * ah.step) as isize + oh;
                            if id < 0
                                || ih < 0
                                || id >= ad.in_len as isize
                                || ih >= ah.in_len as isize
                            {
                                out.fill(T::ZERO);
                                continue;
                            }
                            let base = (id as usize * ah.in_len + ih as usize) * aw.in_len;
                            gather_row(out, &xp[base..base + aw.in_len], s.mw0, aw.step, ow);
                        }
                        row += 1;
                    }
                }
            }
        }
    }

    /// Writes the `co × len` tile `tmp` to its placed positions (`dst` points at channel 0 of
    /// the (batch, group) block).
    ///
    /// # Safety
    /// `dst` must address a destination of `co` channels of `volume(place.size)` elements that
    /// no other thread writes at these positions.
    unsafe fn scatter<T: Real>(
        &self,
        place: &Placement,
        segs: &[Segment],
        tmp: &[T],
        len: usize,
        dst: *mut T,
    ) {
        let plane = volume(&place.size);
        for s in segs {
            let d = place.start[0] + place.step[0] * s.md;
            let h = place.start[1] + place.step[1] * s.mh;
            let w0 = place.start[2] + place.step[2] * s.mw0;
            let base = (d * place.size[1] + h) * place.size[2] + w0;
            let sw = place.step[2];
            for o in 0..self.co {
                let src = &tmp[o * len + s.coff..o * len + s.coff + s.len];
                for (j, &v) in src.iter().enumerate() {
                    // SAFETY: inside the placed grid of channel o (caller's contract).
                    unsafe { *dst.add(o * plane + base + j * sw) = v };
                }
            }
        }
    }

    /// Runs the correlation for `n` batch items: `input` is `n × (groups·ci) × in_plane`, `a`
    /// is `groups × co × k`, `dst` is `n × (groups·co) × volume(place.size)`. Positions of `dst`
    /// outside the placed grid are left untouched.
    pub(crate) fn run<T: Real>(
        &self,
        n: usize,
        input: &[T],
        a: &[T],
        dst: &mut [T],
        place: &Placement,
    ) {
        let (in_plane, out_plane, k, co) = (self.in_plane(), self.out_plane(), self.k(), self.co);
        let dst_plane = volume(&place.size);
        let dst_ch = self.groups * co;
        debug_assert_eq!(input.len(), n * self.groups * self.ci * in_plane);
        debug_assert_eq!(a.len(), self.groups * co * k);
        debug_assert_eq!(dst.len(), n * dst_ch * dst_plane);
        if out_plane == 0 || co == 0 || n == 0 {
            return;
        }
        let dense = self.is_dense(place);
        let pointwise = self.is_pointwise();
        #[cfg(target_arch = "x86_64")]
        if dense && !pointwise {
            if let (Some(x), Some(a), Some(d)) = (
                super::as_f32(input),
                super::as_f32(a),
                super::as_f32_mut(dst),
            ) {
                if super::direct::run(self, n, x, a, d) {
                    return;
                }
            }
        }
        let tl = self.tile_len::<T>(n * self.groups);
        let tiles = out_plane.div_ceil(tl);
        let jobs = n * self.groups * tiles;
        let par = inner_parallelism(jobs);
        let dptr = SyncPtr::new(dst);
        (0..jobs).into_par_iter().for_each_init(
            || (Vec::<T>::new(), Vec::<T>::new()),
            |(col, tmp), job| {
                let tile = job % tiles;
                let g = (job / tiles) % self.groups;
                let b = job / tiles / self.groups;
                let m0 = tile * tl;
                let len = tl.min(out_plane - m0);
                let xg = &input[(b * self.groups + g) * self.ci * in_plane..][..self.ci * in_plane];
                let segs = self.segments(m0, len);
                let rhs = if pointwise {
                    Mat {
                        ptr: xg[m0..].as_ptr(),
                        rs: in_plane as isize,
                        cs: 1,
                    }
                } else {
                    if col.len() < k * len {
                        col.resize(k * len, T::ZERO);
                    }
                    self.im2col(xg, &segs, len, &mut col[..k * len]);
                    Mat {
                        ptr: col.as_ptr(),
                        rs: len as isize,
                        cs: 1,
                    }
                };
                let lhs = Mat {
                    ptr: a[g * co * k..].as_ptr(),
                    rs: k as isize,
                    cs: 1,
                };
                let block = (b * dst_ch + g * co) * dst_plane;
                if dense {
                    let out = MatMut {
                        // SAFETY: rows o of this (b, g) block, columns m0..m0+len: this job's.
                        ptr: unsafe { dptr.get().add(block + m0) },
                        rs: dst_plane as isize,
                        cs: 1,
                    };
                    // SAFETY: views are in bounds (shapes checked above); this job owns `out`.
                    unsafe { matmul(co, len, k, out, false, lhs, rhs, par) };
                } else {
                    if tmp.len() < co * len {
                        tmp.resize(co * len, T::ZERO);
                    }
                    let out = MatMut {
                        ptr: tmp.as_mut_ptr(),
                        rs: len as isize,
                        cs: 1,
                    };
                    // SAFETY: tmp holds co × len elements; lhs/rhs are in bounds.
                    unsafe {
                        matmul(co, len, k, out, false, lhs, rhs, par);
                        self.scatter(place, &segs, &tmp[..co * len], len, dptr.get().add(block));
                    }
                }
            },
        );
    }

    /// The gradient of [`Corr::run`] (dense placement) with respect to `a`: `dw` (`groups × co ×
    /// k`) receives `Σ_m dy[g·co + o, m] · col[ci·T + t, m]`, summed over the batch.
    ///
    /// The work is split into a fixed number of contiguous chunks whose partial sums are added
    /// in order, so the result is the same on every run with the same thread count.
    pub(crate) fn weight_grad<T: Real>(&self, n: usize, input: &[T], dy: &[T], dw: &mut [T]) {
        let (in_plane, out_plane, k, co) = (self.in_plane(), self.out_plane(), self.k(), self.co);
        debug_assert_eq!(input.len(), n * self.groups * self.ci * in_plane);
        debug_assert_eq!(dy.len(), n * self.groups * co * out_plane);
        debug_assert_eq!(dw.len(), self.groups * co * k);
        let pointwise = self.is_pointwise();
        #[cfg(target_arch = "x86_64")]
        if !pointwise {
            if let (Some(x), Some(g), Some(d)) = (
                super::as_f32(input),
                super::as_f32(dy),
                super::as_f32_mut(dw),
            ) {
                if super::direct::weight_grad(self, n, x, g, d) {
                    return;
                }
            }
        }
        dw.fill(T::ZERO);
        if out_plane == 0 || n == 0 || co == 0 {
            return;
        }
        let tl = self.tile_len::<T>(n * self.groups);
        let tiles = out_plane.div_ceil(tl);
        let jobs = n * self.groups * tiles;
        let chunks = num_threads().min(jobs);
        let par = inner_parallelism(chunks);
        let partials: Vec<Vec<T>> = (0..chunks)
            .into_par_iter()
            .map(|chunk| {
                let mut acc = vec![T::ZERO; dw.len()];
                let mut col = Vec::<T>::new();
                for job in chunk * jobs / chunks..(chunk + 1) * jobs / chunks {
                    let tile = job % tiles;
                    let g = (job / tiles) % self.groups;
                    let b = job / tiles / self.groups;
                    let m0 = tile * tl;
                    let len = tl.min(out_plane - m0);
                    let xg =
                        &input[(b * self.groups + g) * self.ci * in_plane..][..self.ci * in_plane];
                    let rhs = if pointwise {
                        Mat {
                            ptr: xg[m0..].as_ptr(),
                            rs: 1,
                            cs: in_plane as isize,
                        }
                    } else {
                        if col.len() < k * len {
                            col.resize(k * len, T::ZERO);
                        }
                        let segs = self.segments(m0, len);
                        self.im2col(xg, &segs, len, &mut col[..k * len]);
                        Mat {
                            ptr: col.as_ptr(),
                            rs: 1,
                            cs: len as isize,
                        }
                    };
                    let lhs = Mat {
                        ptr: dy[(b * self.groups + g) * co * out_plane + m0..].as_ptr(),
                        rs: out_plane as isize,
                        cs: 1,
                    };
                    let out = MatMut {
                        ptr: acc[g * co * k..].as_mut_ptr(),
                        rs: k as isize,
                        cs: 1,
                    };
                    // SAFETY: all views in bounds; `acc` is owned by this chunk.
                    unsafe { matmul(co, k, len, out, true, lhs, rhs, par) };
                }
                acc
            })
            .collect();
        for p in &partials {
            for (d, &v) in dw.iter_mut().zip(p) {
                *d += v;
            }
        }
    }
}

/// Copies one input row into a run of im2col outputs: `out[j] = src[(mw0 + j)·step + off]`,
/// zero outside the row.
#[inline]
fn gather_row<T: Real>(out: &mut [T], src: &[T], mw0: usize, step: usize, off: isize) {
    let w = src.len() as isize;
    let len = out.len() as isize;
    if step == 1 {
        let start = mw0 as isize + off;
        let lo = (-start).clamp(0, len);
        let hi = (w - start).clamp(lo, len);
        out[..lo as usize].fill(T::ZERO);
        if lo < hi {
            out[lo as usize..hi as usize]
                .copy_from_slice(&src[(start + lo) as usize..(start + hi) as usize]);
        }
        out[hi as usize..].fill(T::ZERO);
    } else {
        // Input index of out[j] is start + j·step; find the j range inside the row.
        let (s, start) = (step as isize, (mw0 * step) as isize + off);
        let lo = ((-start).max(0) + s - 1) / s;
        let lo = lo.min(len);
        let hi = if w - start > 0 {
            (w - start + s - 1) / s
        } else {
            0
        }
        .clamp(lo, len);
        out[..lo as usize].fill(T::ZERO);
        if lo < hi {
            let first = (start + lo * s) as usize;
            for (o, &v) in out[lo as usize..hi as usize]
                .iter_mut()
                .zip(src[first..].iter().step_by(step))
            {
                *o = v;
            }
        }
        out[hi as usize..].fill(T::ZERO);
    }
}
