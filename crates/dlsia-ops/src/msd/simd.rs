//! The two innermost loops of the fused MSD kernels, written so that they vectorise, and the
//! run-time choice of instruction set.
//!
//! The callers pad their data explicitly, so every tap is a constant offset in a flat buffer: an
//! update is `out[j] += Σ_t w_t · src_t[j]` over a window of rows ([`fma_grid`]) and a
//! weight gradient is `acc_t += Σ_j g[j] · src_t[j]` ([`dot_grid`]). Both are instantiated for
//! up to [`MAX_TAPS`] sources at once with const generics, so the tap loop unrolls and the `j`
//! loop becomes SIMD code. The dot products keep `LANES` independent partial sums per tap, which
//! lets them vectorise without reassociating floating-point additions (results are identical
//! on every run).
//!
//! The kernels are compiled three times: for AVX-512F, for AVX2+FMA and for the baseline
//! target; [`Level::detect`] picks one at run time.

use super::super::kernels::Real;

/// Taps fused into one pass over a row (a 3×3 kernel in 2-D is 9 taps).
pub(crate) const MAX_TAPS: usize = 9;
/// Independent partial sums per tap in [`dot_grid`].
const LANES: usize = 8;
/// Taps per pass of [`dot_grid`]: one vector accumulator each must stay in a register.
const DOT_TAPS: usize = 5;

/// Floating-point element types of the fused kernels.
pub(crate) trait Float: Real + Into<f64> {
    /// `a·b + c`, as one fused instruction when `FMA` is set (and the caller is compiled with
    /// the `fma` target feature), otherwise as a multiply and an add.
    fn madd<const FMA: bool>(a: Self, b: Self, c: Self) -> Self;
    /// `max(self, 0)`, NaN passed through (as PyTorch's ReLU does).
    fn relu(self) -> Self;
    /// Conversion from `f64`.
    fn of(v: f64) -> Self;
}

impl Float for f32 {
    #[inline(always)]
    fn madd<const FMA: bool>(a: Self, b: Self, c: Self) -> Self {
        if FMA {
            a.mul_add(b, c)
        } else {
            a * b + c
        }
    }
    #[inline(always)]
    fn relu(self) -> Self {
        if self <= 0.0 {
            0.0
        } else {
            self
        }
    }
    #[inline(always)]
    fn of(v: f64) -> Self {
        v as f32
    }
}

impl Float for f64 {
    #[inline(always)]
    fn madd<const FMA: bool>(a: Self, b: Self, c: Self) -> Self {
        if FMA {
            a.mul_add(b, c)
        } else {
            a * b + c
        }
    }
    #[inline(always)]
    fn relu(self) -> Self {
        if self <= 0.0 {
            0.0
        } else {
            self
        }
    }
    #[inline(always)]
    fn of(v: f64) -> Self {
        v
    }
}

/// The instruction set the kernels run with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// AVX-512F (with FMA).
    Avx512,
    /// AVX2 with FMA.
    Avx2,
    /// The compilation target's baseline (SSE2 on x86-64).
    Baseline,
}

impl Level {
    /// The best level this CPU supports.
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Level::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Level::Avx2;
            }
        }
        Level::Baseline
    }
}

/// Generates a dispatcher `$name(level, args…)` that runs the `#[inline(always)]` generic body
/// `$body::<T, FMA>(args…)` compiled for the chosen instruction set.
macro_rules! dispatch {
    ($name:ident, $body:ident, ($($arg:ident : $ty:ty),* $(,)?)) => {
        pub(crate) fn $name<T: $crate::msd::simd::Float>(
            level: $crate::msd::simd::Level,
            $($arg: $ty),*
        ) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512<T: $crate::msd::simd::Float>($($arg: $ty),*) {
                    $body::<T, true>($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2<T: $crate::msd::simd::Float>($($arg: $ty),*) {
                    $body::<T, true>($($arg),*)
                }
                match level {
                    // SAFETY: `Level::detect` found these features on this CPU.
                    $crate::msd::simd::Level::Avx512 => return unsafe { avx512::<T>($($arg),*) },
                    // SAFETY: as above.
                    $crate::msd::simd::Level::Avx2 => return unsafe { avx2::<T>($($arg),*) },
                    $crate::msd::simd::Level::Baseline => {}
                }
            }
            let _ = level;
            $body::<T, false>($($arg),*)
        }
    };
}
pub(crate) use dispatch;

/// One source of an update: a slice starting at the element that meets `out[0]` (same row
/// stride as the output), and its weight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tap<'a, T> {
    /// The source.
    pub src: &'a [T],
    /// The weight.
    pub w: T,
}

/// A `rows × cols` window with row stride `stride` inside flat buffers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    /// Rows.
    pub rows: usize,
    /// Columns per row.
    pub cols: usize,
    /// Distance between rows.
    pub stride: usize,
}

impl Grid {
    /// Elements a buffer needs to hold the window.
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.stride + self.cols
        }
    }
}

/// `out[r·stride + x] += Σ_t taps[t].w · taps[t].src[r·stride + x]` over the window.
#[inline(always)]
pub(crate) fn fma_grid<T: Float, const FMA: bool>(out: &mut [T], taps: &[Tap<'_, T>], g: Grid) {
    let ext = g.extent();
    assert!(out.len() >= ext, "fma_grid: output shorter than the window");
    for t in taps {
        assert!(
            t.src.len() >= ext,
            "fma_grid: a tap is shorter than the window"
        );
    }
    for chunk in taps.chunks(MAX_TAPS) {
        match chunk.len() {
            1 => fma_n::<T, FMA, 1>(out, chunk, g),
            2 => fma_n::<T, FMA, 2>(out, chunk, g),
            3 => fma_n::<T, FMA, 3>(out, chunk, g),
            4 => fma_n::<T, FMA, 4>(out, chunk, g),
            5 => fma_n::<T, FMA, 5>(out, chunk, g),
            6 => fma_n::<T, FMA, 6>(out, chunk, g),
            7 => fma_n::<T, FMA, 7>(out, chunk, g),
            8 => fma_n::<T, FMA, 8>(out, chunk, g),
            _ => fma_n::<T, FMA, 9>(out, chunk, g),
        }
    }
}

/// Caller ([`fma_grid`]) has checked that `out` and every tap hold the window.
#[inline(always)]
fn fma_n<T: Float, const FMA: bool, const N: usize>(out: &mut [T], taps: &[Tap<'_, T>], g: Grid) {
    let mut src = [std::ptr::null::<T>(); N];
    let mut w = [T::ZERO; N];
    for i in 0..N {
        src[i] = taps[i].src.as_ptr();
        w[i] = taps[i].w;
    }
    let o = out.as_mut_ptr();
    for r in 0..g.rows {
        let base = r * g.stride;
        for x in base..base + g.cols {
            // SAFETY: x < (rows − 1)·stride + cols = extent ≤ every length (checked by
            // fma_grid); `out` is exclusively borrowed and never aliases a tap.
            unsafe {
                // Three partial sums: a chain of 9 dependent FMAs would make the loop
                // latency-bound.
                let mut a = [*o.add(x), T::ZERO, T::ZERO];
                for i in 0..N {
                    a[i % 3] = T::madd::<FMA>(w[i], *src[i].add(x), a[i % 3]);
                }
                *o.add(x) = a[0] + a[1] + a[2];
            }
        }
    }
}

/// `acc[t] += Σ g[r·stride + x] · taps[t][r·stride + x]` over the window, with the partial
/// sums of each call added to `acc` in `f64`.
#[inline(always)]
pub(crate) fn dot_grid<T: Float, const FMA: bool>(
    g: &[T],
    taps: &[&[T]],
    grid: Grid,
    acc: &mut [f64],
) {
    let ext = grid.extent();
    assert!(g.len() >= ext && acc.len() >= taps.len());
    for t in taps {
        assert!(t.len() >= ext, "dot_grid: a tap is shorter than the window");
    }
    #[cfg(target_arch = "x86_64")]
    if FMA && T::DTYPE == candle_core::DType::F32 {
        // SAFETY: T is f32 (checked through its dtype), so the slices reinterpret exactly;
        // FMA is only set inside functions compiled with the avx2 and fma features.
        unsafe {
            let g32 = std::slice::from_raw_parts(g.as_ptr().cast::<f32>(), g.len());
            let mut t32: Vec<&[f32]> = Vec::with_capacity(taps.len());
            for t in taps {
                t32.push(std::slice::from_raw_parts(
                    t.as_ptr().cast::<f32>(),
                    t.len(),
                ));
            }
            let mut start = 0;
            for chunk in t32.chunks(6) {
                let a = &mut acc[start..start + chunk.len()];
                match chunk.len() {
                    1 => x86::dot_f32::<1>(g32, chunk, grid, a),
                    2 => x86::dot_f32::<2>(g32, chunk, grid, a),
                    3 => x86::dot_f32::<3>(g32, chunk, grid, a),
                    4 => x86::dot_f32::<4>(g32, chunk, grid, a),
                    5 => x86::dot_f32::<5>(g32, chunk, grid, a),
                    _ => x86::dot_f32::<6>(g32, chunk, grid, a),
                }
                start += chunk.len();
            }
        }
        return;
    }
    let mut start = 0;
    for chunk in taps.chunks(DOT_TAPS) {
        let a = &mut acc[start..start + chunk.len()];
        match chunk.len() {
            1 => dot_n::<T, FMA, 1>(g, chunk, grid, a),
            2 => dot_n::<T, FMA, 2>(g, chunk, grid, a),
            3 => dot_n::<T, FMA, 3>(g, chunk, grid, a),
            4 => dot_n::<T, FMA, 4>(g, chunk, grid, a),
            _ => dot_n::<T, FMA, 5>(g, chunk, grid, a),
        }
        start += chunk.len();
    }
}

/// `a·b + c` lane by lane.
#[inline(always)]
fn madd_lanes<T: Float, const FMA: bool>(
    a: [T; LANES],
    b: [T; LANES],
    c: [T; LANES],
) -> [T; LANES] {
    // A plain loop, not `array::from_fn`: a closure would not inherit the caller's target
    // features and `mul_add` would become a library call.
    let mut r = c;
    for l in 0..LANES {
        r[l] = T::madd::<FMA>(a[l], b[l], c[l]);
    }
    r
}

/// Caller ([`dot_grid`]) has checked that `g` and every tap hold the window.
#[inline(always)]
fn dot_n<T: Float, const FMA: bool, const N: usize>(
    g: &[T],
    taps: &[&[T]],
    grid: Grid,
    acc: &mut [f64],
) {
    let mut lanes = [[T::ZERO; LANES]; N];
    let mut tail = [0.0f64; N];
    let body = grid.cols - grid.cols % LANES;
    for r in 0..grid.rows {
        let base = r * grid.stride;
        let gr = &g[base..base + grid.cols];
        let mut sr: [&[T]; N] = [gr; N];
        for i in 0..N {
            sr[i] = &taps[i][base..base + grid.cols];
        }
        let mut x = 0;
        while x < body {
            // SAFETY: x + LANES ≤ body ≤ cols = the length of every row slice.
            let gv: [T; LANES] =
                unsafe { gr.as_ptr().add(x).cast::<[T; LANES]>().read_unaligned() };
            for i in 0..N {
                // SAFETY: as above.
                let sv: [T; LANES] =
                    unsafe { sr[i].as_ptr().add(x).cast::<[T; LANES]>().read_unaligned() };
                lanes[i] = madd_lanes::<T, FMA>(gv, sv, lanes[i]);
            }
            x += LANES;
        }
        for x in body..grid.cols {
            for i in 0..N {
                tail[i] += (gr[x] * sr[i][x]).into();
            }
        }
    }
    for (i, lane) in lanes.iter().enumerate() {
        let mut s = tail[i];
        for &v in lane {
            s += v.into();
        }
        acc[i] += s;
    }
}

/// Explicit AVX2 code for the f32 dot products (the auto-vectoriser sometimes vectorises
/// across taps instead of along the row, with shuffles).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Grid;

    /// `acc[t] += Σ g · taps[t]` over the window, one vector accumulator per tap.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA, and `g` and every tap must hold the window.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) unsafe fn dot_f32<const N: usize>(
        g: &[f32],
        taps: &[&[f32]],
        grid: Grid,
        acc: &mut [f64],
    ) {
        let mut a = [_mm256_setzero_ps(); N];
        let mut tail = [0.0f64; N];
        let body = grid.cols - grid.cols % 8;
        let gp = g.as_ptr();
        let mut sp = [gp; N];
        for i in 0..N {
            sp[i] = taps[i].as_ptr();
        }
        for r in 0..grid.rows {
            let base = r * grid.stride;
            let mut x = 0;
            while x < body {
                // SAFETY: base + x + 8 ≤ extent ≤ every length (caller's contract).
                unsafe {
                    let gv = _mm256_loadu_ps(gp.add(base + x));
                    for i in 0..N {
                        a[i] = _mm256_fmadd_ps(gv, _mm256_loadu_ps(sp[i].add(base + x)), a[i]);
                    }
                }
                x += 8;
            }
            for x in body..grid.cols {
                // SAFETY: as above.
                unsafe {
                    let gv = *gp.add(base + x);
                    for i in 0..N {
                        tail[i] += f64::from(gv * *sp[i].add(base + x));
                    }
                }
            }
        }
        for i in 0..N {
            let mut v = [0f32; 8];
            // SAFETY: v holds 8 floats.
            unsafe { _mm256_storeu_ps(v.as_mut_ptr(), a[i]) };
            acc[i] += tail[i] + v.iter().map(|&x| f64::from(x)).sum::<f64>();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    dispatch!(fma_dispatch, fma_body, (out: &mut [f32], taps: &[Tap<'_, f32>], g: Grid));
    #[inline(always)]
    fn fma_body<T: Float, const FMA: bool>(out: &mut [f32], taps: &[Tap<'_, f32>], g: Grid) {
        fma_grid::<f32, FMA>(out, taps, g)
    }

    #[test]
    fn fma_grid_matches_scalar_for_every_tap_count_and_level() {
        let g = Grid {
            rows: 3,
            cols: 70,
            stride: 75,
        };
        let src: Vec<Vec<f32>> = (0..20)
            .map(|t| (0..240).map(|j| ((t * 37 + j) % 11) as f32 - 5.0).collect())
            .collect();
        for ntaps in 1..=20 {
            let taps: Vec<Tap<'_, f32>> = (0..ntaps)
                .map(|t| Tap {
                    src: &src[t][1 + t..],
                    w: 0.5 * t as f32 - 2.0,
                })
                .collect();
            for level in [Level::Baseline, Level::detect()] {
                let mut out = vec![1.0f32; 230];
                fma_dispatch::<f32>(level, &mut out, &taps, g);
                for (j, &o) in out.iter().enumerate() {
                    let inside = j / 75 < 3 && j % 75 < 70;
                    let want: f32 = if inside {
                        1.0 + taps.iter().map(|t| t.w * t.src[j]).sum::<f32>()
                    } else {
                        1.0
                    };
                    assert_eq!(o, want, "taps {ntaps} level {level:?} j {j}");
                }
            }
        }
    }

    #[test]
    fn dot_grid_matches_scalar() {
        let grid = Grid {
            rows: 2,
            cols: 29,
            stride: 33,
        };
        let g: Vec<f64> = (0..62).map(|j| (j % 7) as f64 - 3.0).collect();
        let src: Vec<Vec<f64>> = (0..12)
            .map(|t| (0..70).map(|j| ((t + 2 * j) % 5) as f64).collect())
            .collect();
        let taps: Vec<&[f64]> = src.iter().map(|s| &s[2..]).collect();
        let mut acc = vec![0.5; 12];
        dot_grid::<f64, false>(&g, &taps, grid, &mut acc);
        for t in 0..12 {
            let want: f64 = 0.5
                + (0..2)
                    .flat_map(|r| (0..29).map(move |x| r * 33 + x))
                    .map(|j| g[j] * taps[t][j])
                    .sum::<f64>();
            assert_eq!(acc[t], want);
        }
    }
}
