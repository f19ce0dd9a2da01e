//! Files written by `torch.save` (PyTorch ≥ 1.6): a zip archive holding `<name>/data.pkl` (the
//! pickled object), `<name>/byteorder` and one `<name>/data/<key>` entry per storage.
//!
//! ```no_run
//! use dlsia_cli::torch_file::TorchFile;
//! let mut file = TorchFile::open("net.pt")?;
//! let state = file.root().require("state_dict", "file")?;
//! let tensors = file.tensor_dict(&state, "state_dict")?; // [(name, candle Tensor)] in order
//! # Ok::<(), dlsia_cli::Error>(())
//! ```

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::error::{Error, Result};
use crate::pickle::{unpickle, TensorRef, Value};

/// An opened torch file: the unpickled root object and access to its storages.
pub struct TorchFile {
    path: PathBuf,
    archive: zip::ZipArchive<BufReader<File>>,
    /// The archive's top-level folder, with a trailing `/`.
    prefix: String,
    big_endian: bool,
    root: Value,
}

fn not_torch(path: &Path, msg: impl Into<String>) -> Error {
    Error::NotTorchFile {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// Element type of a torch storage class, and its size in bytes.
fn storage_dtype(storage_type: &str) -> Option<(StorageKind, usize)> {
    Some(match storage_type {
        "FloatStorage" => (StorageKind::F32, 4),
        "DoubleStorage" => (StorageKind::F64, 8),
        "HalfStorage" => (StorageKind::F16, 2),
        "BFloat16Storage" => (StorageKind::BF16, 2),
        "LongStorage" => (StorageKind::Int, 8),
        "IntStorage" => (StorageKind::Int, 4),
        "ShortStorage" => (StorageKind::Int, 2),
        "CharStorage" => (StorageKind::Int, 1),
        "ByteStorage" | "BoolStorage" => (StorageKind::U8, 1),
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StorageKind {
    F32,
    F64,
    F16,
    BF16,
    /// Signed integers of any width, read as i64.
    Int,
    U8,
}

/// IEEE half → f32.
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // subnormal: renormalise
            let mut e = 127 - 15 + 1;
            let mut f = f;
            while f & 0x400 == 0 {
                f <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((f & 0x3ff) << 13)
        }
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 127 - 15) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

impl TorchFile {
    /// Opens a torch zip file and unpickles its `data.pkl`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::Io {
            path: path.to_path_buf(),
            msg: format!("cannot open: {e}"),
        })?;
        let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| {
            not_torch(
                path,
                format!(
                    "not a zip archive ({e}); files from PyTorch before 1.6 use a legacy format \
                     this reader does not support: re-save them with a newer torch"
                ),
            )
        })?;
        let names: Vec<String> = archive
            .file_names()
            .filter_map(|n| n.ok().map(|n| n.into_owned()))
            .collect();
        let pkl: Vec<&String> = names
            .iter()
            .filter(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
            .collect();
        let prefix = match pkl.as_slice() {
            [one] => one.trim_end_matches("data.pkl").to_string(),
            [] => return Err(not_torch(path, "the archive has no <name>/data.pkl entry")),
            _ => return Err(not_torch(path, "the archive has several data.pkl entries")),
        };
        let big_endian = match read_entry(&mut archive, &format!("{prefix}byteorder")) {
            Ok(b) => match b.as_slice() {
                b"little" => false,
                b"big" => true,
                other => {
                    return Err(not_torch(
                        path,
                        format!("byteorder `{}`", String::from_utf8_lossy(other)),
                    ))
                }
            },
            Err(_) => false,
        };
        let data = read_entry(&mut archive, &format!("{prefix}data.pkl"))
            .map_err(|e| not_torch(path, format!("cannot read data.pkl: {e}")))?;
        let root = unpickle(&data).map_err(|e| match e {
            Error::UnknownGlobal { .. } | Error::Pickle { .. } => Error::Format {
                what: format!("{}", path.display()),
                msg: e.to_string(),
            },
            other => other,
        })?;
        Ok(TorchFile {
            path: path.to_path_buf(),
            archive,
            prefix,
            big_endian,
            root,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The unpickled object.
    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Reads one tensor's elements from its storage into a CPU tensor. Floating-point tensors
    /// come back as f32 (f64 stays f64), integer tensors as i64, bytes/bools as u8.
    pub fn tensor(&mut self, name: &str, t: &TensorRef) -> Result<Tensor> {
        let terr = |msg: String| Error::Tensor {
            name: name.to_string(),
            msg,
        };
        let (kind, size) = storage_dtype(&t.storage.storage_type).ok_or_else(|| {
            terr(format!(
                "storage type {} is not supported",
                t.storage.storage_type
            ))
        })?;
        let entry = format!("{}data/{}", self.prefix, t.storage.key);
        let bytes = read_entry(&mut self.archive, &entry)
            .map_err(|e| terr(format!("cannot read storage {entry}: {e}")))?;
        let numel = t.storage.numel;
        if bytes.len() < numel * size {
            return Err(terr(format!(
                "storage {entry} holds {} bytes, {} elements of {size} bytes need {}",
                bytes.len(),
                numel,
                numel * size
            )));
        }
        let n: usize = t.shape.iter().product();
        if n > 0 {
            let last = t.offset
                + t.shape
                    .iter()
                    .zip(&t.stride)
                    .map(|(&d, &s)| (d - 1) * s)
                    .sum::<usize>();
            if last >= numel {
                return Err(terr(format!(
                    "view (offset {}, shape {:?}, stride {:?}) reaches element {last} of a storage of {numel}",
                    t.offset, t.shape, t.stride
                )));
            }
        }
        // Gather the view's elements in C order.
        let mut raw = Vec::with_capacity(n * size);
        let mut idx = vec![0usize; t.shape.len()];
        for _ in 0..n {
            let off = t.offset + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>();
            let mut e = bytes[off * size..(off + 1) * size].to_vec();
            if self.big_endian {
                e.reverse();
            }
            raw.extend_from_slice(&e);
            for ax in (0..idx.len()).rev() {
                idx[ax] += 1;
                if idx[ax] < t.shape[ax] {
                    break;
                }
                idx[ax] = 0;
            }
        }
        let shape = t.shape.as_slice();
        let dev = &Device::Cpu;
        let chunks = raw.chunks_exact(size);
        Ok(match kind {
            StorageKind::F32 => Tensor::from_vec(
                chunks
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect::<Vec<_>>(),
                shape,
                dev,
            )?,
            StorageKind::F64 => Tensor::from_vec(
                chunks
                    .map(|c| {
                        let mut a = [0u8; 8];
                        a.copy_from_slice(c);
                        f64::from_le_bytes(a)
                    })
                    .collect::<Vec<_>>(),
                shape,
                dev,
            )?,
            StorageKind::F16 => Tensor::from_vec(
                chunks
                    .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                    .collect::<Vec<_>>(),
                shape,
                dev,
            )?,
            StorageKind::BF16 => Tensor::from_vec(
                chunks
                    .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
                    .collect::<Vec<_>>(),
                shape,
                dev,
            )?,
            StorageKind::Int => Tensor::from_vec(
                chunks
                    .map(|c| {
                        let fill = if c[c.len() - 1] & 0x80 != 0 { 0xff } else { 0 };
                        let mut a = [fill; 8];
                        a[..c.len()].copy_from_slice(c);
                        i64::from_le_bytes(a)
                    })
                    .collect::<Vec<_>>(),
                shape,
                dev,
            )?,
            StorageKind::U8 => Tensor::from_vec(raw, shape, dev)?,
        })
    }

    /// Reads a dict of tensors (a `state_dict`), in its order. `what` names the dict in errors.
    pub fn tensor_dict(&mut self, dict: &Value, what: &str) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for (k, v) in dict.as_dict(what)? {
            let name = k.as_str(&format!("{what} key"))?;
            match v {
                Value::Tensor(t) => {
                    let tensor = self.tensor(&name, &t)?;
                    out.push((name, tensor));
                }
                other => {
                    return Err(Error::Format {
                        what: format!("{what}[{name:?}]"),
                        msg: format!("expected a tensor, found {}", other.type_name()),
                    })
                }
            }
        }
        Ok(out)
    }
}

fn read_entry(
    archive: &mut zip::ZipArchive<BufReader<File>>,
    name: &str,
) -> std::result::Result<Vec<u8>, String> {
    let mut f = archive.by_name(name).map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(f.size().min(1 << 30) as usize);
    f.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_conversion_matches_known_values() {
        for (bits, v) in [
            (0x3c00u16, 1.0f32),
            (0xc000, -2.0),
            (0x3555, 0.333_251_95),
            (0x7bff, 65504.0),
            (0x0001, 5.960_464_5e-8),
            (0x0000, 0.0),
        ] {
            assert_eq!(f16_to_f32(bits), v, "{bits:#x}");
        }
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
    }
}
