//! The two innermost loops of the fused MSD kernels, written so that they vectorise, and the
//! run-time choice of instruction set.
//!
//! Every column in the kernels is "plain" (the callers pad rows explicitly), so a row update is
//! `out[j] += Σ_t w_t · src_t[j]` over equally long slices ([`fma_rows`]) and a weight-gradient
//! row is `acc_t += Σ_j g[j] · src_t[j]` ([`dot_rows`]). Both are instantiated for up to
//! [`MAX_TAPS`] sources at once with const generics, so the tap loop unrolls and the `j` loop
//! becomes SIMD code. The dot products keep `LANES` independent partial sums per tap, which
//! lets them vectorise without reassociating floating-point additions (results are identical
//! on every run).
//!
//! The kernels are compiled three times: for AVX-512F, for AVX2+FMA and for the baseline
//! target; [`Level::detect`] picks one at run time.

use super::super::kernels::Real;

/// Taps fused into one pass over a row (a 3×3 kernel in 2-D is 9 taps).
pub(crate) const MAX_TAPS: usize = 9;
/// Independent partial sums per tap in [`dot_rows`].
const LANES: usize = 8;

/// Floating-point element types of the fused kernels.
pub(crate) trait Float: Real + Into<f64> {
    /// `a·b + c`, as one fused instruction when `FMA` is set (and the caller is compiled with
    /// the `fma` target feature), otherwise as a multiply and an add.
    fn madd<const FMA: bool>(a: Self, b: Self, c: Self) -> Self;
    /// `max(self, 0)`.
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
        if self > 0.0 {
            self
        } else {
            0.0
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
        if self > 0.0 {
            self
        } else {
            0.0
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

/// One source of a row update: a row slice starting at the tap's shift, and its weight.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tap<'a, T> {
    /// The source, starting at the element that meets `out[0]`.
    pub src: &'a [T],
    /// The weight.
    pub w: T,
}

/// `out[j] += Σ_t taps[t].w · taps[t].src[j]` for `j < out.len()`.
#[inline(always)]
pub(crate) fn fma_rows<T: Float, const FMA: bool>(out: &mut [T], taps: &[Tap<'_, T>]) {
    for chunk in taps.chunks(MAX_TAPS) {
        match chunk.len() {
            1 => fma_n::<T, FMA, 1>(out, chunk),
            2 => fma_n::<T, FMA, 2>(out, chunk),
            3 => fma_n::<T, FMA, 3>(out, chunk),
            4 => fma_n::<T, FMA, 4>(out, chunk),
            5 => fma_n::<T, FMA, 5>(out, chunk),
            6 => fma_n::<T, FMA, 6>(out, chunk),
            7 => fma_n::<T, FMA, 7>(out, chunk),
            8 => fma_n::<T, FMA, 8>(out, chunk),
            _ => fma_n::<T, FMA, 9>(out, chunk),
        }
    }
}

#[inline(always)]
fn fma_n<T: Float, const FMA: bool, const N: usize>(out: &mut [T], taps: &[Tap<'_, T>]) {
    let len = out.len();
    let src: [&[T]; N] = std::array::from_fn(|i| &taps[i].src[..len]);
    let w: [T; N] = std::array::from_fn(|i| taps[i].w);
    for j in 0..len {
        let mut a = out[j];
        for i in 0..N {
            a = T::madd::<FMA>(w[i], src[i][j], a);
        }
        out[j] = a;
    }
}

/// `acc[t] += Σ_j g[j] · taps[t][j]` over `j < g.len()`, accumulated in `f64` per row.
#[inline(always)]
pub(crate) fn dot_rows<T: Float, const FMA: bool>(g: &[T], taps: &[&[T]], acc: &mut [f64]) {
    debug_assert_eq!(taps.len(), acc.len());
    let mut start = 0;
    for chunk in taps.chunks(MAX_TAPS) {
        let a = &mut acc[start..start + chunk.len()];
        match chunk.len() {
            1 => dot_n::<T, FMA, 1>(g, chunk, a),
            2 => dot_n::<T, FMA, 2>(g, chunk, a),
            3 => dot_n::<T, FMA, 3>(g, chunk, a),
            4 => dot_n::<T, FMA, 4>(g, chunk, a),
            5 => dot_n::<T, FMA, 5>(g, chunk, a),
            6 => dot_n::<T, FMA, 6>(g, chunk, a),
            7 => dot_n::<T, FMA, 7>(g, chunk, a),
            8 => dot_n::<T, FMA, 8>(g, chunk, a),
            _ => dot_n::<T, FMA, 9>(g, chunk, a),
        }
        start += chunk.len();
    }
}

#[inline(always)]
fn dot_n<T: Float, const FMA: bool, const N: usize>(g: &[T], taps: &[&[T]], acc: &mut [f64]) {
    let len = g.len();
    let src: [&[T]; N] = std::array::from_fn(|i| &taps[i][..len]);
    let mut lanes = [[T::ZERO; LANES]; N];
    let body = len - len % LANES;
    let mut j = 0;
    while j < body {
        let gj: &[T; LANES] = g[j..j + LANES].try_into().expect("LANES elements");
        for i in 0..N {
            let sj: &[T; LANES] = src[i][j..j + LANES].try_into().expect("LANES elements");
            for l in 0..LANES {
                lanes[i][l] = T::madd::<FMA>(gj[l], sj[l], lanes[i][l]);
            }
        }
        j += LANES;
    }
    for (i, lane) in lanes.iter().enumerate() {
        let mut s: f64 = 0.0;
        for &v in lane {
            s += v.into();
        }
        for jj in body..len {
            s += (g[jj] * src[i][jj]).into();
        }
        acc[i] += s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    dispatch!(fma_dispatch, fma_body, (out: &mut [f32], taps: &[Tap<'_, f32>]));
    #[inline(always)]
    fn fma_body<T: Float, const FMA: bool>(out: &mut [f32], taps: &[Tap<'_, f32>]) {
        fma_rows::<f32, FMA>(out, taps)
    }

    #[test]
    fn fma_rows_matches_scalar_for_every_tap_count_and_level() {
        let src: Vec<Vec<f32>> = (0..20)
            .map(|t| (0..37).map(|j| ((t * 37 + j) % 11) as f32 - 5.0).collect())
            .collect();
        for ntaps in 1..=20 {
            let taps: Vec<Tap<'_, f32>> = (0..ntaps)
                .map(|t| Tap {
                    src: &src[t][1..],
                    w: 0.5 * t as f32 - 2.0,
                })
                .collect();
            for level in [Level::Baseline, Level::detect()] {
                let mut out = vec![1.0f32; 33];
                fma_dispatch::<f32>(level, &mut out, &taps);
                for (j, &o) in out.iter().enumerate() {
                    let want: f32 = 1.0 + taps.iter().map(|t| t.w * t.src[j]).sum::<f32>();
                    assert_eq!(o, want, "taps {ntaps} level {level:?} j {j}");
                }
            }
        }
    }

    #[test]
    fn dot_rows_matches_scalar() {
        let g: Vec<f64> = (0..29).map(|j| (j % 7) as f64 - 3.0).collect();
        let src: Vec<Vec<f64>> = (0..12)
            .map(|t| (0..31).map(|j| ((t + 2 * j) % 5) as f64).collect())
            .collect();
        let taps: Vec<&[f64]> = src.iter().map(|s| &s[2..]).collect();
        let mut acc = vec![0.5; 12];
        dot_rows::<f64, false>(&g, &taps, &mut acc);
        for t in 0..12 {
            let want: f64 = 0.5 + (0..29).map(|j| g[j] * taps[t][j]).sum::<f64>();
            assert_eq!(acc[t], want);
        }
    }
}
