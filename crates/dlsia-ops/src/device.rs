//! Devices: parsing `--device` arguments, the reduction-determinism switch of the CUDA
//! kernels, and [`test_device!`](crate::test_device) for tests that run on every device.
//!
//! Every op in this crate runs where its tensors live: Candle calls the op's CPU kernel for
//! CPU tensors and its CUDA kernel (crate feature `cuda`) for tensors on a CUDA device.
//!
//! ```
//! use dlsia_ops::device::device_from_str;
//!
//! assert!(device_from_str("cpu")?.is_cpu());
//! // "cuda" and "cuda:N" need the `cuda` feature and a GPU; otherwise they are errors.
//! assert!(device_from_str("gpu7").is_err());
//! # Ok::<(), dlsia_ops::Error>(())
//! ```

use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::Device;

use crate::error::{invalid, Result};

/// Whether this build of `dlsia-ops` has the CUDA kernels (crate feature `cuda`).
pub const CUDA_COMPILED: bool = cfg!(feature = "cuda");

/// Parses a device name: `cpu`, `cuda` (GPU 0) or `cuda:N`, and opens the device.
///
/// Errors name what was expected, and say when the binary was built without CUDA support or
/// the GPU cannot be opened.
pub fn device_from_str(name: &str) -> Result<Device> {
    const OP: &str = "device";
    let s = name.trim().to_ascii_lowercase();
    let ordinal = match s.as_str() {
        "cpu" => return Ok(Device::Cpu),
        "cuda" | "gpu" => 0,
        _ => match s.strip_prefix("cuda:") {
            Some(n) => n.parse::<usize>().map_err(|_| {
                invalid(
                    OP,
                    format!("`{name}`: the GPU index after `cuda:` must be a number, e.g. cuda:0"),
                )
            })?,
            None => {
                return Err(invalid(
                    OP,
                    format!("unknown device `{name}`; expected cpu, cuda or cuda:N"),
                ))
            }
        },
    };
    if !CUDA_COMPILED {
        return Err(invalid(
            OP,
            format!("`{name}`: this binary was built without CUDA support; rebuild with `--features cuda` (see `cargo xtask cuda`) or use cpu"),
        ));
    }
    Device::new_cuda(ordinal)
        .map_err(|e| invalid(OP, format!("cannot open CUDA device {ordinal}: {e}")))
}

static DETERMINISTIC: AtomicBool = AtomicBool::new(true);

/// Chooses how the CUDA kernels combine partial sums (weight gradients, per-channel sums,
/// overlapping max-pool windows): `true` (the default) uses ordered two-stage reductions, so
/// the same inputs give bit-identical results on every run; `false` lets them use atomic adds,
/// which are slightly faster but sum in a scheduling-dependent order. CPU kernels are always
/// deterministic for a given thread count.
pub fn set_deterministic_reductions(on: bool) {
    DETERMINISTIC.store(on, Ordering::Relaxed);
}

/// Whether reductions on CUDA are deterministic (see [`set_deterministic_reductions`]).
pub fn deterministic_reductions() -> bool {
    DETERMINISTIC.load(Ordering::Relaxed)
}

/// Generates one `#[test]` per device for a function `fn(&candle_core::Device)`: `$cpu` runs
/// it on the CPU; `$cuda` (only when `dlsia-ops` is built with feature `cuda`) runs it on GPU 0
/// and fails if no GPU can be opened.
///
/// ```ignore
/// fn doubles(dev: &candle_core::Device) { /* … */ }
/// dlsia_ops::test_device!(doubles, doubles_cpu, doubles_cuda);
/// ```
#[macro_export]
macro_rules! test_device {
    ($fn:ident, $cpu:ident, $cuda:ident) => {
        #[test]
        fn $cpu() {
            $fn(&$crate::__candle::Device::Cpu)
        }
        $crate::__if_cuda! {
            #[test]
            fn $cuda() {
                let dev = $crate::__candle::Device::new_cuda(0)
                    .expect("the `cuda` feature is on but no CUDA device could be opened");
                $fn(&dev)
            }
        }
    };
}

/// Expands its input only when `dlsia-ops` has the `cuda` feature (used by
/// [`test_device!`](crate::test_device); the feature is this crate's, not the caller's).
#[cfg(feature = "cuda")]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_cuda {
    ($($t:tt)*) => { $($t)* };
}

/// Expands its input only when `dlsia-ops` has the `cuda` feature.
#[cfg(not(feature = "cuda"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __if_cuda {
    ($($t:tt)*) => {};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert!(device_from_str("cpu").unwrap().is_cpu());
        assert!(device_from_str(" CPU ").unwrap().is_cpu());
        let e = device_from_str("tpu").unwrap_err().to_string();
        assert!(e.contains("expected cpu, cuda or cuda:N"), "{e}");
        let e = device_from_str("cuda:x").unwrap_err().to_string();
        assert!(e.contains("must be a number"), "{e}");
        if !CUDA_COMPILED {
            let e = device_from_str("cuda:1").unwrap_err().to_string();
            assert!(e.contains("--features cuda"), "{e}");
        }
    }

    #[test]
    fn determinism_switch_round_trips() {
        assert!(deterministic_reductions());
        set_deterministic_reductions(false);
        assert!(!deterministic_reductions());
        set_deterministic_reductions(true);
        assert!(deterministic_reductions());
    }
}
