//! Convolution forward, input gradient and weight gradient through the correlation engine.
//!
//! The input gradient of a strided convolution is split into `stride_d·stride_h·stride_w`
//! phases: input positions `i ≡ r (mod s)` receive exactly the taps `k` with
//! `(r + p − k·d) mod s = 0`, each reading the output gradient at `i/s + (r + p − k·d)/s`. Every
//! phase is then a dense step-1 correlation written to an interleaved grid, so no work is
//! spent on the zeros a "dilate the gradient, then convolve" scheme would multiply. A
//! transposed convolution's forward pass is this input gradient.

use rayon::prelude::*;

use super::corr::{segments, Axis, Corr, Placement};
use super::matmul::{matmul, Mat, MatMut};
use super::{volume, Real};

/// The geometry of one convolution, normalised to three spatial axes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConvGeom {
    /// Number of spatial axes of the caller's tensors (1, 2 or 3).
    pub ndim: usize,
    /// Batch size.
    pub n: usize,
    /// Input channels (all groups).
    pub c_in: usize,
    /// Output channels (all groups).
    pub c_out: usize,
    /// Number of groups.
    pub groups: usize,
    /// Input spatial size `[d, h, w]`.
    pub input: [usize; 3],
    /// Output spatial size.
    pub output: [usize; 3],
    /// Kernel size.
    pub kernel: [usize; 3],
    /// Stride.
    pub stride: [usize; 3],
    /// Zero padding before each axis (the amount after is implied by the output size).
    pub pad: [usize; 3],
    /// Dilation.
    pub dil: [usize; 3],
}

impl ConvGeom {
    fn spatial(&self, s: &[usize; 3]) -> Vec<usize> {
        s[3 - self.ndim..].to_vec()
    }
    /// Dims of the input tensor.
    pub(crate) fn x_dims(&self) -> Vec<usize> {
        [vec![self.n, self.c_in], self.spatial(&self.input)].concat()
    }
    /// Dims of the output tensor.
    pub(crate) fn y_dims(&self) -> Vec<usize> {
        [vec![self.n, self.c_out], self.spatial(&self.output)].concat()
    }
    /// Dims of the weight tensor `(c_out, c_in/groups, k…)`.
    pub(crate) fn w_dims(&self) -> Vec<usize> {
        [
            vec![self.c_out, self.c_in / self.groups],
            self.spatial(&self.kernel),
        ]
        .concat()
    }
    /// Elements of the kernel.
    pub(crate) fn kernel_volume(&self) -> usize {
        volume(&self.kernel)
    }

    /// The forward correlation: taps `k·d − p`, step = stride.
    pub(crate) fn forward_corr(&self) -> Corr {
        let axis = |i: usize| Axis {
            in_len: self.input[i],
            step: self.stride[i],
            offsets: (0..self.kernel[i])
                .map(|k| (k * self.dil[i]) as isize - self.pad[i] as isize)
                .collect(),
            out_len: self.output[i],
        };
        Corr {
            axes: [axis(0), axis(1), axis(2)],
            groups: self.groups,
            ci: self.c_in / self.groups,
            co: self.c_out / self.groups,
        }
    }

    /// Non-overlapping windows: kernel = stride > 1 on some axis, no padding, no dilation (the
    /// U-Net up-sampling transposed convolution).
    fn is_patch(&self) -> bool {
        self.kernel == self.stride
            && self.pad == [0; 3]
            && self.dil == [1; 3]
            && self.stride != [1; 3]
    }

    /// Taps `(k, offset)` of stride phase `r` on axis `i` and the number of input positions of
    /// that phase.
    fn phase_taps(&self, i: usize, r: usize) -> (Vec<(usize, isize)>, usize) {
        let (s, p, d) = (
            self.stride[i] as isize,
            self.pad[i] as isize,
            self.dil[i] as isize,
        );
        let taps = (0..self.kernel[i])
            .filter_map(|k| {
                let v = r as isize + p - k as isize * d;
                (v.rem_euclid(s) == 0).then(|| (k, v.div_euclid(s)))
            })
            .collect();
        let len = self.input[i];
        let count = if r < len {
            (len - r).div_ceil(self.stride[i])
        } else {
            0
        };
        (taps, count)
    }
}

/// `y = conv(x, w)`: `x` is `n × c_in × input`, `w` is `c_out × c_in/g × kernel`.
pub(crate) fn forward<T: Real>(g: &ConvGeom, x: &[T], w: &[T]) -> Vec<T> {
    let mut y = super::zeroed::<T>(g.n * g.c_out * volume(&g.output));
    g.forward_corr()
        .run(g.n, x, w, &mut y, &Placement::dense(g.output));
    y
}

/// The input gradient `dx` for the output gradient `dy` (the transposed convolution of `dy`).
pub(crate) fn data_grad<T: Real>(g: &ConvGeom, dy: &[T], w: &[T]) -> Vec<T> {
    if g.is_patch() {
        return patch_data_grad(g, dy, w);
    }
    let mut dx = super::zeroed::<T>(g.n * g.c_in * volume(&g.input));
    let (cig, cog) = (g.c_in / g.groups, g.c_out / g.groups);
    let kvol = g.kernel_volume();
    for rd in 0..g.stride[0] {
        for rh in 0..g.stride[1] {
            for rw in 0..g.stride[2] {
                let r = [rd, rh, rw];
                let phase: Vec<_> = (0..3).map(|i| g.phase_taps(i, r[i])).collect();
                if phase.iter().any(|(t, c)| t.is_empty() || *c == 0) {
                    continue; // no tap reaches this phase: its positions stay zero
                }
                let axis = |i: usize| Axis {
                    in_len: g.output[i],
                    step: 1,
                    offsets: phase[i].0.iter().map(|&(_, o)| o).collect(),
                    out_len: phase[i].1,
                };
                let corr = Corr {
                    axes: [axis(0), axis(1), axis(2)],
                    groups: g.groups,
                    ci: cog,
                    co: cig,
                };
                // Kernel index of every tap, in the correlation's tap order.
                let mut kidx = Vec::with_capacity(corr.taps());
                for &(kd, _) in &phase[0].0 {
                    for &(kh, _) in &phase[1].0 {
                        for &(kw, _) in &phase[2].0 {
                            kidx.push((kd * g.kernel[1] + kh) * g.kernel[2] + kw);
                        }
                    }
                }
                let t = kidx.len();
                let mut a = vec![T::ZERO; g.groups * cig * cog * t];
                for gr in 0..g.groups {
                    for c in 0..cig {
                        let row = &mut a[(gr * cig + c) * cog * t..][..cog * t];
                        for o in 0..cog {
                            let wo = &w[((gr * cog + o) * cig + c) * kvol..][..kvol];
                            for (ti, &k) in kidx.iter().enumerate() {
                                row[o * t + ti] = wo[k];
                            }
                        }
                    }
                }
                let place = Placement {
                    size: g.input,
                    start: r,
                    step: g.stride,
                };
                corr.run(g.n, dy, &a, &mut dx, &place);
            }
        }
    }
    dx
}

/// [`data_grad`] for non-overlapping windows: one GEMM per tile, `Z = Wᵀ·dy` with a row per
/// (input channel, tap), then each row written to its place in `dx` ("depth to space"), every
/// input position receiving exactly one value.
fn patch_data_grad<T: Real>(g: &ConvGeom, dy: &[T], w: &[T]) -> Vec<T> {
    let mut dx = super::zeroed::<T>(g.n * g.c_in * volume(&g.input));
    let (cig, cog, kv) = (g.c_in / g.groups, g.c_out / g.groups, g.kernel_volume());
    let (p_len, in_plane) = (volume(&g.output), volume(&g.input));
    let rows = cig * kv;
    if p_len == 0 || rows == 0 || g.n == 0 {
        return dx;
    }
    let per = (rows * std::mem::size_of::<T>()).max(1);
    let mut tl = ((256 << 10) / per).max(64).min(p_len);
    let outer = g.n * g.groups;
    let want = 4 * super::num_threads();
    if outer * p_len.div_ceil(tl) < want {
        tl = p_len.div_ceil(want.div_ceil(outer)).max(1);
    }
    let tiles = p_len.div_ceil(tl);
    let par = super::matmul::inner_parallelism(outer * tiles);
    let dptr = super::SyncPtr::new(&mut dx);
    let [kd, kh, kw] = g.kernel;
    let [sd, sh, sw] = g.stride;
    let [_, ih, iw] = g.input;
    (0..outer * tiles)
        .into_par_iter()
        .for_each_init(Vec::<T>::new, |z, job| {
            let (bg, tile) = (job / tiles, job % tiles);
            let gr = bg % g.groups;
            let m0 = tile * tl;
            let len = tl.min(p_len - m0);
            if z.len() < rows * len {
                z.resize(rows * len, T::ZERO);
            }
            // Z[(c, k), p] = Σ_o w[g·cog + o, c, k] · dy[o, p]
            let lhs = Mat {
                ptr: w[gr * cog * rows..].as_ptr(),
                rs: 1,
                cs: rows as isize,
            };
            let rhs = Mat {
                ptr: dy[bg * cog * p_len + m0..].as_ptr(),
                rs: p_len as isize,
                cs: 1,
            };
            let out = MatMut {
                ptr: z.as_mut_ptr(),
                rs: len as isize,
                cs: 1,
            };
            // SAFETY: all views lie inside their buffers; `z` is this job's.
            unsafe { matmul(rows, len, cog, out, false, lhs, rhs, par) };
            let segs = segments(m0, len, g.output[1], g.output[2]);
            for c in 0..cig {
                // SAFETY: channel (bg, c) of dx; the positions written belong to this tile only.
                let dxc = unsafe { dptr.get().add((bg * cig + c) * in_plane) };
                for a in 0..kd {
                    for b in 0..kh {
                        let zr = &z[(c * kv + (a * kh + b) * kw) * len..];
                        for sg in &segs {
                            let row = ((sg.md * sd + a) * ih + sg.mh * sh + b) * iw + sg.mw0 * sw;
                            for j in 0..sg.len {
                                for e in 0..kw {
                                    // SAFETY: inside dx's plane (the window lies in the input).
                                    unsafe {
                                        *dxc.add(row + j * sw + e) = zr[e * len + sg.coff + j]
                                    };
                                }
                            }
                        }
                    }
                }
            }
        });
    dx
}

/// The weight gradient `dw` (`c_out × c_in/g × kernel`) for input `x` and output gradient `dy`.
pub(crate) fn weight_grad<T: Real>(g: &ConvGeom, x: &[T], dy: &[T]) -> Vec<T> {
    let mut dw = vec![T::ZERO; g.c_out * (g.c_in / g.groups) * g.kernel_volume()];
    g.forward_corr().weight_grad(g.n, x, dy, &mut dw);
    dw
}
