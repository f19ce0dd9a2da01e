//! Atomic file writes and tensor files: a file is written under a temporary name in its final
//! directory, flushed to disk, then renamed into place, so a crash never leaves a half-written
//! file under the final name.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::Tensor;

use crate::error::{io_err, Result};

/// The temporary name used while writing `path`.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Writes `bytes` to `path` atomically (replacing an existing file).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, format!("cannot create: {e}")))?;
    }
    let tmp = temp_path(path);
    let result = (|| {
        let mut f =
            std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, format!("cannot create: {e}")))?;
        f.write_all(bytes)
            .map_err(|e| io_err(&tmp, format!("cannot write: {e}")))?;
        f.sync_all()
            .map_err(|e| io_err(&tmp, format!("cannot flush to disk: {e}")))?;
        drop(f);
        std::fs::rename(&tmp, path)
            .map_err(|e| io_err(path, format!("cannot rename {tmp:?} into place: {e}")))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Serialises named tensors (and optional string metadata) in the safetensors format.
pub(crate) fn safetensors_bytes(
    tensors: &BTreeMap<String, Tensor>,
    metadata: Option<HashMap<String, String>>,
    path: &Path,
) -> Result<Vec<u8>> {
    safetensors::serialize(tensors.iter(), metadata)
        .map_err(|e| io_err(path, format!("cannot serialise tensors: {e}")))
}

/// Reads a safetensors file: its tensors (on the CPU) and its string metadata.
pub(crate) fn read_safetensors(
    path: &Path,
) -> Result<(BTreeMap<String, Tensor>, HashMap<String, String>)> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, format!("cannot read: {e}")))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| io_err(path, format!("not a safetensors file: {e}")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let tensors = candle_core::safetensors::load_buffer(&bytes, &candle_core::Device::Cpu)
        .map_err(|e| io_err(path, format!("cannot read tensors: {e}")))?;
    Ok((tensors.into_iter().collect(), meta))
}
