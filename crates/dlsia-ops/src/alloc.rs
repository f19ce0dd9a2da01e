//! Process-wide allocator tuning for training throughput (opt-in, for binaries).
//!
//! Every Candle op returns a freshly allocated tensor, and the backward pass allocates more
//! (gradient accumulators, sums). With glibc's defaults, buffers above the dynamic mmap
//! threshold are mapped for each allocation and unmapped when freed, so every training step
//! page-faults its way through hundreds of megabytes again: on the op benchmarks in
//! `BENCHMARKS.md` that is 30–60 % of the CPU time of a forward + backward pass. Keeping freed
//! memory in the process removes that cost at the price of a resident set that stays at its
//! peak.
//!
//! ```
//! // At the start of a training binary:
//! let tuned = dlsia_ops::alloc::tune_for_throughput();
//! # let _ = tuned;
//! ```

/// Raises glibc's mmap and trim thresholds so that large freed buffers are reused instead of
/// being returned to the kernel and faulted in again. Returns whether the allocator accepted
/// the settings (always `false` off glibc, where this does nothing). Affects the whole process;
/// call it once, early, from a binary — never from library code.
pub fn tune_for_throughput() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // Buffers up to 1 GiB come from the heap; older glibc versions cap the threshold at
        // HEAP_MAX_SIZE/2 (32 MiB) and refuse more, so fall back to that.
        // SAFETY: mallopt only adjusts allocator parameters; it is thread-safe in glibc.
        unsafe {
            let mmap = libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30) == 1
                || libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1;
            mmap && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
