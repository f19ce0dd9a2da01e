//! The Python classes and functions a dlsia model file may name (dlsia.md §2.11), and which of
//! them the machine evaluates itself.
//!
//! Anything else is refused at its `GLOBAL` opcode with [`crate::Error::UnknownGlobal`]: this
//! reader never runs code, and an unknown class means a file it could not interpret anyway.

use super::value::Global;

/// How the machine treats a known global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// `collections.OrderedDict`: becomes a [`super::Value::Dict`].
    OrderedDict,
    /// `set` / `frozenset`: becomes a [`super::Value::Set`].
    Set,
    /// `_codecs.encode(str, 'latin1')`: protocol 2's way of writing bytes.
    CodecsEncode,
    /// `numpy.core.multiarray.scalar(dtype, bytes)`: becomes an int, float or bool.
    NumpyScalar,
    /// `torch._utils._rebuild_tensor_v2`: becomes a [`super::Value::Tensor`].
    RebuildTensor,
    /// `torch._utils._rebuild_parameter`: the tensor it wraps.
    RebuildParameter,
    /// A class or function kept as an [`super::Object`] or [`super::Value::Global`] for the
    /// importer to interpret (torch modules, numpy arrays and dtypes, networkx graphs, dlsia
    /// SMSNet building blocks, `functools.partial`).
    Opaque,
}

/// torch storage classes (`torch.FloatStorage`, …).
pub const STORAGE_TYPES: &[&str] = &[
    "FloatStorage",
    "DoubleStorage",
    "HalfStorage",
    "BFloat16Storage",
    "LongStorage",
    "IntStorage",
    "ShortStorage",
    "CharStorage",
    "ByteStorage",
    "BoolStorage",
];

/// Sub-modules of `torch.nn.modules` whose classes may appear (as classes or instances).
const TORCH_NN_MODULES: &[&str] = &[
    "activation",
    "batchnorm",
    "conv",
    "dropout",
    "instancenorm",
    "linear",
    "normalization",
    "pooling",
    "upsampling",
];

/// Classifies a global, or `None` if a dlsia model file has no business naming it.
pub fn check_global(g: &Global) -> Option<Known> {
    let (m, n) = (g.module.as_str(), g.name.as_str());
    Some(match (m, n) {
        ("collections", "OrderedDict") => Known::OrderedDict,
        ("builtins" | "__builtin__", "set" | "frozenset") => Known::Set,
        ("_codecs", "encode") => Known::CodecsEncode,
        ("numpy.core.multiarray" | "numpy._core.multiarray", "scalar") => Known::NumpyScalar,
        ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => Known::Opaque,
        ("numpy", "dtype" | "ndarray") => Known::Opaque,
        ("torch._utils", "_rebuild_tensor_v2") => Known::RebuildTensor,
        ("torch._utils", "_rebuild_parameter") => Known::RebuildParameter,
        ("torch", s) if STORAGE_TYPES.contains(&s) => Known::Opaque,
        ("functools", "partial") => Known::Opaque,
        ("networkx.classes.digraph", "DiGraph") => Known::Opaque,
        ("networkx.classes.coreviews", _) | ("networkx.classes.reportviews", _) => Known::Opaque,
        ("dlsia.core.networks.smsnet" | "dlsia.core.networks.sms3d", _) => Known::Opaque,
        _ => {
            let sub = m.strip_prefix("torch.nn.modules.")?;
            if TORCH_NN_MODULES.contains(&sub) {
                Known::Opaque
            } else {
                return None;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(m: &str, n: &str) -> Global {
        Global {
            module: m.into(),
            name: n.into(),
        }
    }

    #[test]
    fn the_globals_of_dlsia_files_are_known_and_others_are_not() {
        for (m, n) in [
            ("collections", "OrderedDict"),
            ("torch._utils", "_rebuild_tensor_v2"),
            ("torch", "FloatStorage"),
            ("torch", "LongStorage"),
            ("torch.nn.modules.activation", "ReLU"),
            ("torch.nn.modules.batchnorm", "BatchNorm2d"),
            ("torch.nn.modules.conv", "Conv2d"),
            ("__builtin__", "set"),
            ("torch.nn.modules.conv", "ConvTranspose2d"),
            ("torch.nn.modules.pooling", "MaxPool2d"),
            ("torch.nn.modules.upsampling", "Upsample"),
            ("networkx.classes.digraph", "DiGraph"),
            ("networkx.classes.reportviews", "NodeView"),
            ("networkx.classes.coreviews", "AdjacencyView"),
            ("numpy", "dtype"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy.core.multiarray", "scalar"),
            ("_codecs", "encode"),
            ("dlsia.core.networks.smsnet", "Conv2DReLU"),
            ("dlsia.core.networks.sms3d", "Linear3D"),
        ] {
            assert!(check_global(&g(m, n)).is_some(), "{m}.{n}");
        }
        for (m, n) in [
            ("os", "system"),
            ("builtins", "eval"),
            ("torch.nn.modules.module", "Module"),
            ("torch", "load"),
            ("subprocess", "Popen"),
        ] {
            assert!(check_global(&g(m, n)).is_none(), "{m}.{n}");
        }
    }
}
