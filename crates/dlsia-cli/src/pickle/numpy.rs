//! numpy values inside pickles: scalars (`numpy.int64(3)`, dlsia's SMSNet channel counts and
//! graph attributes) and small arrays (MSDNet's `custom_msdnet`).

use super::value::{Object, Value};
use crate::error::{format_err, Result};

/// A numpy dtype as pickled: kind (`i`, `u`, `f`, `b`), item size and byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DType {
    /// `i` signed, `u` unsigned, `f` float, `b` bool.
    pub kind: char,
    /// Bytes per element.
    pub size: usize,
    /// Whether elements are big-endian.
    pub big_endian: bool,
}

/// Reads a pickled `numpy.dtype(descr, align, copy)` object with its `BUILD` state.
pub fn dtype(v: &Value) -> std::result::Result<DType, String> {
    let o = v
        .as_object()
        .filter(|o| o.class.is("numpy", "dtype"))
        .ok_or_else(|| format!("expected a numpy.dtype, found {}", v.type_name()))?;
    let descr = match o.args.first() {
        Some(Value::Str(s)) => s.clone(),
        _ => return Err("a numpy.dtype without its type string".into()),
    };
    let mut chars = descr.chars();
    let kind = chars.next().ok_or("an empty numpy type string")?;
    let size: usize = chars
        .as_str()
        .parse()
        .map_err(|_| format!("numpy type `{descr}` is not a plain number type"))?;
    let order = match &o.state {
        Some(Value::Tuple(t)) => match t.get(1) {
            Some(Value::Str(s)) => s.clone(),
            _ => "|".into(),
        },
        _ => "|".into(),
    };
    let ok = matches!(
        (kind, size),
        ('i' | 'u', 1 | 2 | 4 | 8) | ('f', 4 | 8) | ('b', 1)
    );
    if !ok {
        return Err(format!(
            "numpy type `{descr}` is not supported (integers, float32/64 and bool are)"
        ));
    }
    Ok(DType {
        kind,
        size,
        big_endian: order == ">",
    })
}

/// One element of `dt` from `b` (exactly `dt.size` bytes).
fn element(dt: DType, b: &[u8]) -> std::result::Result<Value, String> {
    let mut a = [0u8; 8];
    if dt.big_endian {
        for (i, &x) in b.iter().rev().enumerate() {
            a[i] = x;
        }
    } else {
        a[..b.len()].copy_from_slice(b);
    }
    let raw = u64::from_le_bytes(a);
    Ok(match (dt.kind, dt.size) {
        ('b', _) => Value::Bool(raw != 0),
        ('f', 4) => Value::Float(f64::from(f32::from_bits(raw as u32))),
        ('f', _) => Value::Float(f64::from_bits(raw)),
        ('u', 8) => Value::Int(
            i64::try_from(raw).map_err(|_| format!("unsigned value {raw} exceeds 64-bit int"))?,
        ),
        ('u', _) => Value::Int(raw as i64),
        (_, n) => {
            // sign-extend an n-byte integer
            let shift = 64 - 8 * n as u32;
            Value::Int(((raw << shift) as i64) >> shift)
        }
    })
}

/// `numpy.core.multiarray.scalar(dtype, bytes)` → an int, float or bool.
pub fn decode_scalar(dtype_value: &Value, bytes: &[u8]) -> std::result::Result<Value, String> {
    let dt = dtype(dtype_value)?;
    if bytes.len() != dt.size {
        return Err(format!(
            "{} bytes for a {}-byte scalar",
            bytes.len(),
            dt.size
        ));
    }
    element(dt, bytes)
}

/// A decoded numpy array.
#[derive(Debug, Clone)]
pub struct NdArray {
    /// Shape.
    pub shape: Vec<usize>,
    /// Elements in C order, as ints, floats or bools.
    pub values: Vec<Value>,
}

impl NdArray {
    /// The elements as integers.
    pub fn to_i64(&self, what: &str) -> Result<Vec<i64>> {
        self.values
            .iter()
            .map(|v| match v {
                Value::Int(i) => Ok(*i),
                Value::Bool(b) => Ok(i64::from(*b)),
                Value::Float(f) if f.fract() == 0.0 && f.is_finite() => Ok(*f as i64),
                other => Err(format_err(
                    what,
                    format!("expected integers, found {}", other.type_name()),
                )),
            })
            .collect()
    }
}

/// Reads a pickled numpy array (`_reconstruct(ndarray, (0,), b'b')` with `BUILD` state
/// `(version, shape, dtype, is_fortran, data)`).
pub fn ndarray(v: &Value, what: &str) -> Result<NdArray> {
    let o: Object = v
        .as_object()
        .filter(|o| o.class.name == "_reconstruct")
        .ok_or_else(|| {
            format_err(
                what,
                format!("expected a numpy array, found {}", v.type_name()),
            )
        })?;
    let state = match &o.state {
        Some(Value::Tuple(t)) if t.len() == 5 => t.clone(),
        _ => {
            return Err(format_err(
                what,
                "a numpy array without its (version, shape, dtype, order, data) state",
            ))
        }
    };
    let shape = state[1].as_usize_vec(&format!("{what} shape"))?;
    let dt = dtype(&state[2]).map_err(|e| format_err(what, e))?;
    let fortran = state[3].as_bool(&format!("{what} order"))?;
    let data = match &state[4] {
        Value::Bytes(b) => b.clone(),
        other => {
            return Err(format_err(
                what,
                format!(
                    "array data of type {} (object arrays are not supported)",
                    other.type_name()
                ),
            ))
        }
    };
    let n: usize = shape.iter().product();
    if data.len() != n * dt.size {
        return Err(format_err(
            what,
            format!(
                "{} data bytes for {n} elements of {} bytes",
                data.len(),
                dt.size
            ),
        ));
    }
    let mut values = Vec::with_capacity(n);
    for chunk in data.chunks(dt.size) {
        values.push(element(dt, chunk).map_err(|e| format_err(what, e))?);
    }
    if fortran && shape.len() > 1 {
        // reorder column-major elements to C order
        let mut c = vec![Value::None; n];
        let mut idx = vec![0usize; shape.len()];
        for v in values {
            let mut off = 0;
            for (ax, &i) in idx.iter().enumerate() {
                off = off * shape[ax] + i;
            }
            c[off] = v;
            for ax in 0..shape.len() {
                idx[ax] += 1;
                if idx[ax] < shape[ax] {
                    break;
                }
                idx[ax] = 0;
            }
        }
        values = c;
    }
    Ok(NdArray { shape, values })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::pickle::value::Global;

    fn dt(descr: &str, order: &str) -> Value {
        Value::Object(Rc::new(RefCell::new(Object {
            class: Global {
                module: "numpy".into(),
                name: "dtype".into(),
            },
            args: vec![
                Value::Str(descr.into()),
                Value::Bool(false),
                Value::Bool(true),
            ],
            state: Some(Value::Tuple(Rc::new(vec![
                Value::Int(3),
                Value::Str(order.into()),
            ]))),
        })))
    }

    #[test]
    fn scalars_of_every_supported_type() {
        let v = decode_scalar(&dt("i8", "<"), &(-5i64).to_le_bytes()).unwrap();
        assert!(matches!(v, Value::Int(-5)));
        let v = decode_scalar(&dt("i2", ">"), &(-300i16).to_be_bytes()).unwrap();
        assert!(matches!(v, Value::Int(-300)));
        let v = decode_scalar(&dt("u1", "|"), &[200]).unwrap();
        assert!(matches!(v, Value::Int(200)));
        let v = decode_scalar(&dt("f4", "<"), &1.5f32.to_le_bytes()).unwrap();
        assert!(matches!(v, Value::Float(x) if x == 1.5));
        let v = decode_scalar(&dt("f8", ">"), &(-2.25f64).to_be_bytes()).unwrap();
        assert!(matches!(v, Value::Float(x) if x == -2.25));
        let v = decode_scalar(&dt("b1", "|"), &[1]).unwrap();
        assert!(matches!(v, Value::Bool(true)));
        assert!(decode_scalar(&dt("u8", "<"), &u64::MAX.to_le_bytes()).is_err());
        assert!(decode_scalar(&dt("i8", "<"), &[0; 4]).is_err());
        assert!(decode_scalar(&dt("c16", "<"), &[0; 16])
            .unwrap_err()
            .contains("not supported"));
    }
}
