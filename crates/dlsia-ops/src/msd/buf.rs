//! A buffer shared by the jobs of one parallel phase.
//!
//! The jobs of a phase read some channels of a buffer and write other channels (or other rows)
//! of it; the phase's documentation states the partition. [`Shared`] hands out plain slices of
//! the regions a job touches, checking bounds; the caller guarantees the partition.

use std::marker::PhantomData;

/// A mutable buffer whose disjoint regions are accessed from several jobs.
#[derive(Debug)]
pub(crate) struct Shared<'a, T> {
    ptr: *mut T,
    len: usize,
    _life: PhantomData<&'a mut [T]>,
}

impl<T> Clone for Shared<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Shared<'_, T> {}

// SAFETY: a `Shared` is only used inside one parallel phase whose jobs touch disjoint regions
// (or only read); the buffer outlives the phase through the `'a` borrow.
unsafe impl<T: Send> Send for Shared<'_, T> {}
unsafe impl<T: Sync> Sync for Shared<'_, T> {}

impl<'a, T> Shared<'a, T> {
    /// Shares `buf` for one phase.
    pub(crate) fn new(buf: &'a mut [T]) -> Self {
        Shared {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
            _life: PhantomData,
        }
    }

    /// Shares a buffer that no job writes.
    ///
    /// [`Shared::get_mut`] must never be called on the result.
    pub(crate) fn read_only(buf: &'a [T]) -> Self {
        Shared {
            ptr: buf.as_ptr() as *mut T,
            len: buf.len(),
            _life: PhantomData,
        }
    }

    /// Elements `off..off + len` for reading.
    ///
    /// # Safety
    /// No job may write these elements while the returned slice lives.
    #[inline]
    pub(crate) unsafe fn get(&self, off: usize, len: usize) -> &'a [T] {
        assert!(off + len <= self.len, "shared buffer read out of bounds");
        // SAFETY: in bounds (checked); no concurrent writer (caller's contract).
        unsafe { std::slice::from_raw_parts(self.ptr.add(off), len) }
    }

    /// Elements `off..off + len` for writing.
    ///
    /// # Safety
    /// No other job may read or write these elements while the returned slice lives.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn get_mut(&self, off: usize, len: usize) -> &'a mut [T] {
        assert!(off + len <= self.len, "shared buffer write out of bounds");
        // SAFETY: in bounds (checked); exclusive for this job (caller's contract).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(off), len) }
    }
}
