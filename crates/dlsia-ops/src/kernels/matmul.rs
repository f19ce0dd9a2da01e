//! A thin wrapper over the `gemm` crate (the pure-Rust GEMM Candle itself uses).

use gemm::Parallelism;

use super::Real;

/// A strided matrix view: element `(i, j)` is at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<T> {
    pub ptr: *const T,
    pub rs: isize,
    pub cs: isize,
}

/// A strided mutable matrix view.
#[derive(Clone, Copy)]
pub(crate) struct MatMut<T> {
    pub ptr: *mut T,
    pub rs: isize,
    pub cs: isize,
}

/// `dst (m×n) = [dst +] lhs (m×k) · rhs (k×n)`.
///
/// # Safety
/// Every view must be valid for the elements its shape and strides address, `dst` must not
/// alias `lhs` or `rhs`, and no other thread may touch `dst`'s elements during the call.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn matmul<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: MatMut<T>,
    accumulate: bool,
    lhs: Mat<T>,
    rhs: Mat<T>,
    parallelism: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    // SAFETY: (i, j) is inside dst's shape.
                    unsafe { *dst.ptr.offset(i as isize * dst.rs + j as isize * dst.cs) = T::ZERO };
                }
            }
        }
        return;
    }
    // SAFETY: forwarded from the caller's contract.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr,
            dst.cs,
            dst.rs,
            accumulate,
            lhs.ptr,
            lhs.cs,
            lhs.rs,
            rhs.ptr,
            rhs.cs,
            rhs.rs,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// The parallelism to give one GEMM when `jobs` independent GEMMs are about to run.
pub(crate) fn inner_parallelism(jobs: usize) -> Parallelism {
    let t = super::num_threads();
    if jobs >= t || t == 1 {
        Parallelism::None
    } else {
        Parallelism::Rayon(t)
    }
}
