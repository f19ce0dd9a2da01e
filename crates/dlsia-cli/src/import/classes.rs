//! PyTorch classes and module instances inside a dlsia `topo_dict`, turned into dlsia-rs
//! choices: convolution classes fix the dimensionality, activation instances become [`Act`],
//! normalisation classes (or a `functools.partial(nn.GroupNorm, groups)`) become [`Norm`].

use dlsia_nets::{Act, FinalAct, Norm};

use crate::error::{format_err, unsupported, Result};
use crate::pickle::{Global, Value};

const NN: &str = "torch.nn.modules.";

/// The torch.nn class a value names (`torch.nn.modules.conv.Conv2d` → `("conv", "Conv2d")`).
fn nn_class(v: &Value) -> Option<(String, String)> {
    let g = v.as_global()?;
    let sub = g.module.strip_prefix(NN)?;
    Some((sub.to_string(), g.name))
}

/// Spatial dimensionality from a class argument such as `nn.Conv3d` or `nn.MaxPool2d`: the
/// class must be `<family><n>d` in the module `torch.nn.modules.<module>`.
pub fn class_dims(v: &Value, module: &str, family: &str, what: &str) -> Result<usize> {
    let expected = format!("{NN}{module}.{family}2d or {family}3d");
    let (m, name) = nn_class(v).ok_or_else(|| {
        format_err(
            what,
            format!("expected the class {expected}, found {}", v.type_name()),
        )
    })?;
    let dims = name
        .strip_prefix(family)
        .and_then(|rest| rest.strip_suffix('d'))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|_| m == module)
        .ok_or_else(|| {
            format_err(
                what,
                format!("expected the class {expected}, found {NN}{m}.{name}"),
            )
        })?;
    match dims {
        2 | 3 => Ok(dims),
        1 => Err(unsupported(
            what,
            format!("{family}1d: 1-D networks are not supported by dlsia-rs (2-D and 3-D are)"),
        )),
        n => Err(format_err(
            what,
            format!("{family}{n}d is not a PyTorch class"),
        )),
    }
}

/// The `__dict__` of a pickled module instance (its `BUILD` state).
fn instance_dict(v: &Value) -> Value {
    v.as_object().and_then(|o| o.state).unwrap_or(Value::None)
}

/// An activation instance (`nn.ReLU()`, `nn.LeakyReLU(0.2)`, …) or `None`.
pub fn activation(v: &Value, what: &str) -> Result<Act> {
    if v.is_none() {
        return Ok(Act::None);
    }
    let o = v.as_object().ok_or_else(|| {
        let hint = if matches!(v, Value::List(_) | Value::Tuple(_)) {
            " (a list of activations is not supported: use one activation)"
        } else {
            ""
        };
        format_err(
            what,
            format!(
                "expected an activation module instance, found {}{hint}",
                v.type_name()
            ),
        )
    })?;
    let state = instance_dict(v);
    let num = |key: &str, default: f64| -> Result<f64> {
        match state.get(key) {
            Some(x) => x.as_f64(&format!("{what}.{key}")),
            None => Ok(default),
        }
    };
    let class = o.class.path();
    let supported = "supported: ReLU, LeakyReLU, ELU, GELU (exact), SiLU, Tanh, Identity or None";
    match (o.class.module.as_str(), o.class.name.as_str()) {
        ("torch.nn.modules.activation", "ReLU") => Ok(Act::Relu),
        ("torch.nn.modules.activation", "LeakyReLU") => Ok(Act::LeakyRelu {
            negative_slope: num("negative_slope", 0.01)?,
        }),
        ("torch.nn.modules.activation", "ELU") => Ok(Act::Elu {
            alpha: num("alpha", 1.0)?,
        }),
        ("torch.nn.modules.activation", "GELU") => {
            let approx = state
                .get("approximate")
                .map(|a| a.as_str(&format!("{what}.approximate")))
                .transpose()?
                .unwrap_or_else(|| "none".into());
            if approx == "none" {
                Ok(Act::Gelu)
            } else {
                Err(unsupported(
                    what,
                    format!("GELU(approximate='{approx}') is not supported; {supported}"),
                ))
            }
        }
        ("torch.nn.modules.activation", "SiLU") => Ok(Act::Silu),
        ("torch.nn.modules.activation", "Tanh") => Ok(Act::Tanh),
        ("torch.nn.modules.linear", "Identity") => Ok(Act::None),
        _ => Err(unsupported(
            what,
            format!("activation {class} is not supported by dlsia-rs; {supported}"),
        )),
    }
}

/// A final transform instance (`nn.Sigmoid()`, `nn.Softmax(dim=1)`) or `None`.
pub fn final_activation(v: &Value, what: &str) -> Result<Option<FinalAct>> {
    if v.is_none() {
        return Ok(None);
    }
    let o = v.as_object().ok_or_else(|| {
        format_err(
            what,
            format!(
                "expected a module instance or None, found {}",
                v.type_name()
            ),
        )
    })?;
    match (o.class.module.as_str(), o.class.name.as_str()) {
        ("torch.nn.modules.activation", "Sigmoid") => Ok(Some(FinalAct::Sigmoid)),
        ("torch.nn.modules.activation", "Softmax") => {
            let dim = instance_dict(v).get("dim").unwrap_or(Value::None);
            match dim {
                Value::Int(1) => Ok(Some(FinalAct::Softmax)),
                other => Err(unsupported(
                    what,
                    format!(
                        "Softmax over dim {} is not supported; only the channel axis (dim=1) is",
                        match other {
                            Value::Int(d) => d.to_string(),
                            _ => "None".into(),
                        }
                    ),
                )),
            }
        }
        _ => Err(unsupported(
            what,
            format!(
                "final activation {} is not supported; Sigmoid, Softmax(dim=1) or None are",
                o.class
            ),
        )),
    }
}

/// A normalisation argument: a class (`nn.BatchNorm2d`, `nn.InstanceNorm3d`), a
/// `functools.partial(nn.GroupNorm, groups)`, or `None`. `dims` is the network's
/// dimensionality, which a BatchNorm/InstanceNorm class must match.
pub fn normalization(v: &Value, dims: usize, what: &str) -> Result<Norm> {
    if v.is_none() {
        return Ok(Norm::None);
    }
    if let Some(o) = v.as_object() {
        if o.class.is("functools", "partial") {
            return group_norm_partial(v, what);
        }
        return Err(unsupported(
            what,
            format!(
                "a normalisation given as a {} instance; dlsia passes a class",
                o.class
            ),
        ));
    }
    let (m, name) = nn_class(v).ok_or_else(|| {
        format_err(
            what,
            format!(
                "expected a normalisation class or None, found {}",
                v.type_name()
            ),
        )
    })?;
    let family_dims = |family: &str| -> Option<usize> {
        name.strip_prefix(family)?
            .strip_suffix('d')?
            .parse::<usize>()
            .ok()
    };
    let (norm, d) = match m.as_str() {
        "batchnorm" => (Norm::Batch, family_dims("BatchNorm")),
        "instancenorm" => (Norm::Instance, family_dims("InstanceNorm")),
        _ => (Norm::None, None),
    };
    match d {
        Some(d) if d == dims => Ok(norm),
        Some(d) => Err(format_err(
            what,
            format!("{name} ({d}-D) in a {dims}-D network"),
        )),
        None => Err(unsupported(
            what,
            format!(
                "normalisation {NN}{m}.{name} is not supported; BatchNorm, InstanceNorm, \
                 partial(GroupNorm, groups) or None are"
            ),
        )),
    }
}

/// `functools.partial(nn.GroupNorm, groups)`, pickled as `partial(GroupNorm)` with state
/// `(func, args, keywords, dict)`.
fn group_norm_partial(v: &Value, what: &str) -> Result<Norm> {
    let o = v.as_object().expect("checked by the caller");
    let state = match &o.state {
        Some(Value::Tuple(t)) if t.len() >= 3 => t.clone(),
        _ => {
            return Err(format_err(
                what,
                "a functools.partial without its (func, args, keywords, dict) state",
            ))
        }
    };
    let func: Option<Global> = state[0].as_global();
    if !func
        .as_ref()
        .is_some_and(|g| g.is("torch.nn.modules.normalization", "GroupNorm"))
    {
        return Err(unsupported(
            what,
            format!(
                "functools.partial of {}; only partial(nn.GroupNorm, groups) is supported",
                func.map(|g| g.path())
                    .unwrap_or_else(|| state[0].type_name())
            ),
        ));
    }
    let args = state[1].as_seq(&format!("{what} partial args"))?;
    let groups = match (args.first(), state[2].get("num_groups")) {
        (Some(g), _) => g.as_usize(&format!("{what} groups"))?,
        (None, Some(g)) => g.as_usize(&format!("{what} num_groups"))?,
        (None, None) => {
            return Err(format_err(
                what,
                "partial(nn.GroupNorm) without the number of groups",
            ))
        }
    };
    Ok(Norm::Group { groups })
}
