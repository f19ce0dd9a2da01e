//! CPU kernels on contiguous buffers, generic over `f32`/`f64`.
//!
//! Every kernel works on 3-D spatial geometry: 1-D and 2-D problems are 3-D problems whose
//! leading spatial axes have length 1 (kernel 1, stride 1, no padding). Each operation keeps its
//! CPU kernel in a function of its own so that a CUDA version can be added beside it.

pub(crate) mod channel;
pub(crate) mod conv_gemm;
pub(crate) mod corr;
#[cfg(target_arch = "x86_64")]
pub(crate) mod direct;
pub(crate) mod matmul;
pub(crate) mod norm_act;
pub(crate) mod pool;
pub(crate) mod remap;

use candle_core::{CpuStorage, Layout, WithDType};

/// The floating-point element types the kernels run on.
pub(crate) trait Real: WithDType + Default {
    /// Additive identity.
    const ZERO: Self;
    /// Multiplicative identity.
    const ONE: Self;
    /// The value below every other (initial maximum).
    const NEG_INFINITY: Self;
    /// Whether the value is NaN.
    fn is_nan_value(self) -> bool;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INFINITY: Self = f32::NEG_INFINITY;
    #[inline(always)]
    fn is_nan_value(self) -> bool {
        self.is_nan()
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NEG_INFINITY: Self = f64::NEG_INFINITY;
    #[inline(always)]
    fn is_nan_value(self) -> bool {
        self.is_nan()
    }
}

/// A raw pointer that may cross threads. Jobs that share one write disjoint elements.
#[derive(Debug)]
pub(crate) struct SyncPtr<T>(*mut T);

impl<T> Clone for SyncPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SyncPtr<T> {}

// SAFETY: the pointer is only dereferenced by jobs that write disjoint index sets of a buffer
// that outlives the parallel section (each use site documents its partition).
unsafe impl<T: Send> Send for SyncPtr<T> {}
unsafe impl<T: Send> Sync for SyncPtr<T> {}

impl<T> SyncPtr<T> {
    /// Wraps the start of a mutable slice.
    pub(crate) fn new(s: &mut [T]) -> Self {
        Self(s.as_mut_ptr())
    }
    /// The pointer (a method, so that closures capture the whole `Send` wrapper).
    #[inline(always)]
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

/// The contiguous elements of a CPU tensor of type `T`.
pub(crate) fn slice_of<'a, T: WithDType>(
    s: &'a CpuStorage,
    l: &Layout,
    op: &str,
) -> candle_core::Result<&'a [T]> {
    let data = T::cpu_storage_as_slice(s)?;
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: input is not contiguous (internal error: the op wrapper makes inputs contiguous)"),
    }
}

/// `s` as `&[f32]` if `T` is `f32` (for the f32-only SIMD kernels).
#[cfg(target_arch = "x86_64")]
pub(crate) fn as_f32<T: Real>(s: &[T]) -> Option<&[f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        // SAFETY: T is f32.
        .then(|| unsafe { std::slice::from_raw_parts(s.as_ptr().cast::<f32>(), s.len()) })
}

/// `s` as `&mut [f32]` if `T` is `f32`.
#[cfg(target_arch = "x86_64")]
pub(crate) fn as_f32_mut<T: Real>(s: &mut [T]) -> Option<&mut [f32]> {
    (std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>())
        // SAFETY: T is f32.
        .then(|| unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<f32>(), s.len()) })
}

/// A zeroed output buffer of `n` elements, zeroed in parallel (a serial `calloc` on reused
/// heap memory would be one single-threaded pass over the buffer). Large buffers are marked for
/// transparent huge pages (where the kernel offers them on request), so that filling them costs
/// a few page faults instead of one per 4 KiB.
pub(crate) fn zeroed<T: Real>(n: usize) -> Vec<T> {
    if n < PAR_MIN {
        return vec![T::ZERO; n];
    }
    par_output(n, PAR_CHUNK, |_, out| {
        for o in out {
            o.write(T::ZERO);
        }
    })
    .0
}

/// Below this many elements an output buffer is filled on one thread.
const PAR_MIN: usize = 1 << 16;
/// Elements per job when a buffer is zeroed in parallel.
const PAR_CHUNK: usize = 1 << 15;

/// Marks the whole 2 MiB pages inside `[ptr, ptr + bytes)` for transparent huge pages.
fn advise_huge(ptr: *const u8, bytes: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const HUGE: usize = 2 << 20;
        if bytes >= 2 * HUGE {
            let start = ptr as usize;
            let lo = start.next_multiple_of(HUGE);
            let hi = (start + bytes) / HUGE * HUGE;
            if hi > lo {
                // SAFETY: [lo, hi) lies inside the buffer's allocation; MADV_HUGEPAGE only
                // changes how future faults are served and cannot invalidate any contents.
                unsafe { libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE) };
            }
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = (ptr, bytes);
}

/// A new buffer of `n` elements written in parallel chunks of `chunk` elements (the last may be
/// shorter) by `f(chunk index, chunk)`, which must initialise every element of its chunk; also
/// returns what each call of `f` returned, in chunk order. No serial zeroing pass precedes the
/// writes.
pub(crate) fn par_output<T: Real, R: Send>(
    n: usize,
    chunk: usize,
    f: impl Fn(usize, &mut [std::mem::MaybeUninit<T>]) -> R + Sync + Send,
) -> (Vec<T>, Vec<R>) {
    use rayon::prelude::*;
    let mut v: Vec<T> = Vec::with_capacity(n);
    advise_huge(v.as_ptr().cast(), n * std::mem::size_of::<T>());
    let per_chunk: Vec<R> = v.spare_capacity_mut()[..n]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .map(|(i, c)| f(i, c))
        .collect();
    // SAFETY: the chunks cover [0, n) and `f` initialised every element of each.
    unsafe { v.set_len(n) };
    (v, per_chunk)
}

/// Number of worker threads the kernels plan for.
pub(crate) fn num_threads() -> usize {
    rayon::current_num_threads().max(1)
}

/// Row-major strides of a 3-D grid: `[d, h, w]` → plane size and row length.
#[inline]
pub(crate) fn volume(s: &[usize; 3]) -> usize {
    s[0] * s[1] * s[2]
}

/// Pads a per-axis list of length 1–3 to three axes with `fill` in front.
pub(crate) fn to3(v: &[usize], fill: usize) -> [usize; 3] {
    let mut out = [fill; 3];
    let off = 3 - v.len();
    out[off..].copy_from_slice(v);
    out
}
