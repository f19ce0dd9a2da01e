//! [`Value`]: the Python objects a pickle stream builds, as far as this reader understands them.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;

use crate::error::{format_err, Result};

/// A mutable container shared between the stack and the memo (Python's object identity: a dict
/// put in the memo and filled afterwards is the same dict when fetched again).
pub type Shared<T> = Rc<RefCell<T>>;

/// A Python class or function named by a `GLOBAL` opcode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Global {
    /// Python module, e.g. `torch.nn.modules.activation`.
    pub module: String,
    /// Name inside the module, e.g. `ReLU`.
    pub name: String,
}

impl Global {
    /// `module.name`.
    pub fn path(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }

    /// Whether this is `module.name`.
    pub fn is(&self, module: &str, name: &str) -> bool {
        self.module == module && self.name == name
    }
}

impl fmt::Display for Global {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.module, self.name)
    }
}

/// An instance of a class the reader does not turn into a plain value: the class, the
/// arguments it was created with (`REDUCE`/`NEWOBJ`) and the state set by `BUILD` (usually the
/// instance `__dict__`).
#[derive(Debug, Clone)]
pub struct Object {
    /// The class (or factory function).
    pub class: Global,
    /// Constructor arguments.
    pub args: Vec<Value>,
    /// State given by `BUILD`, if any.
    pub state: Option<Value>,
}

/// A torch storage named by a persistent id: `('storage', torch.FloatStorage, key, location,
/// numel)`. Its bytes are `data/<key>` in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRef {
    /// Storage class, e.g. `FloatStorage`.
    pub storage_type: String,
    /// Archive entry name under `data/`.
    pub key: String,
    /// Device the tensor was saved from (`cpu`, `cuda:0`); ignored when reading.
    pub location: String,
    /// Number of elements.
    pub numel: usize,
}

/// A tensor rebuilt by `torch._utils._rebuild_tensor_v2`: a view on a storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRef {
    /// The storage holding the elements.
    pub storage: Rc<StorageRef>,
    /// Offset of the first element, in elements.
    pub offset: usize,
    /// Shape.
    pub shape: Vec<usize>,
    /// Strides, in elements.
    pub stride: Vec<usize>,
}

/// A Python value.
#[derive(Debug, Clone)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A float.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `bytes` object.
    Bytes(Rc<Vec<u8>>),
    /// A tuple.
    Tuple(Rc<Vec<Value>>),
    /// A list.
    List(Shared<Vec<Value>>),
    /// A dict or `collections.OrderedDict`, in insertion order.
    Dict(Shared<Vec<(Value, Value)>>),
    /// A set or frozenset, in pickle order.
    Set(Shared<Vec<Value>>),
    /// A class or function object (e.g. `torch.nn.modules.conv.Conv2d` passed as an argument).
    Global(Rc<Global>),
    /// An instance of a class (see [`Object`]).
    Object(Shared<Object>),
    /// A torch storage.
    Storage(Rc<StorageRef>),
    /// A torch tensor.
    Tensor(Rc<TensorRef>),
}

impl Value {
    /// A short description of the value's type, for error messages.
    pub fn type_name(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Float(_) => "float".into(),
            Value::Str(_) => "str".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::Tuple(_) => "tuple".into(),
            Value::List(_) => "list".into(),
            Value::Dict(_) => "dict".into(),
            Value::Set(_) => "set".into(),
            Value::Global(g) => format!("class {g}"),
            Value::Object(o) => format!("{} instance", o.borrow().class),
            Value::Storage(_) => "torch storage".into(),
            Value::Tensor(_) => "torch tensor".into(),
        }
    }

    /// Whether the value is `None`.
    pub fn is_none(&self) -> bool {
        matches!(self, Value::None)
    }

    /// The integer (a bool counts as 0/1, as in Python), or an error naming `what`.
    pub fn as_int(&self, what: &str) -> Result<i64> {
        match self {
            Value::Int(v) => Ok(*v),
            Value::Bool(b) => Ok(i64::from(*b)),
            other => Err(format_err(
                what,
                format!("expected an integer, found {}", other.type_name()),
            )),
        }
    }

    /// A non-negative integer as `usize`.
    pub fn as_usize(&self, what: &str) -> Result<usize> {
        let v = self.as_int(what)?;
        usize::try_from(v)
            .map_err(|_| format_err(what, format!("expected a non-negative integer, found {v}")))
    }

    /// The number (int or float) as `f64`.
    pub fn as_f64(&self, what: &str) -> Result<f64> {
        match self {
            Value::Float(v) => Ok(*v),
            Value::Int(v) => Ok(*v as f64),
            other => Err(format_err(
                what,
                format!("expected a number, found {}", other.type_name()),
            )),
        }
    }

    /// The bool (an int 0/1 counts, as in Python).
    pub fn as_bool(&self, what: &str) -> Result<bool> {
        match self {
            Value::Bool(b) => Ok(*b),
            Value::Int(v) => Ok(*v != 0),
            other => Err(format_err(
                what,
                format!("expected a bool, found {}", other.type_name()),
            )),
        }
    }

    /// The string.
    pub fn as_str(&self, what: &str) -> Result<String> {
        match self {
            Value::Str(s) => Ok(s.clone()),
            other => Err(format_err(
                what,
                format!("expected a string, found {}", other.type_name()),
            )),
        }
    }

    /// The elements of a tuple or list.
    pub fn as_seq(&self, what: &str) -> Result<Vec<Value>> {
        match self {
            Value::Tuple(t) => Ok(t.as_ref().clone()),
            Value::List(l) => Ok(l.borrow().clone()),
            other => Err(format_err(
                what,
                format!("expected a tuple or list, found {}", other.type_name()),
            )),
        }
    }

    /// A tuple or list of non-negative integers (a bare integer counts as a 1-tuple, as
    /// PyTorch's shape arguments allow).
    pub fn as_usize_vec(&self, what: &str) -> Result<Vec<usize>> {
        match self {
            Value::Int(_) => Ok(vec![self.as_usize(what)?]),
            _ => self
                .as_seq(what)?
                .iter()
                .enumerate()
                .map(|(i, v)| v.as_usize(&format!("{what}[{i}]")))
                .collect(),
        }
    }

    /// The `(key, value)` pairs of a dict, in insertion order.
    pub fn as_dict(&self, what: &str) -> Result<Vec<(Value, Value)>> {
        match self {
            Value::Dict(d) => Ok(d.borrow().clone()),
            other => Err(format_err(
                what,
                format!("expected a dict, found {}", other.type_name()),
            )),
        }
    }

    /// Looks up a string key in a dict (`None` if absent).
    pub fn get(&self, key: &str) -> Option<Value> {
        match self {
            Value::Dict(d) => d.borrow().iter().find_map(|(k, v)| match k {
                Value::Str(s) if s == key => Some(v.clone()),
                _ => None,
            }),
            _ => None,
        }
    }

    /// Looks up a string key in a dict, or an error naming the key.
    pub fn require(&self, key: &str, what: &str) -> Result<Value> {
        if !matches!(self, Value::Dict(_)) {
            return Err(format_err(
                what,
                format!("expected a dict, found {}", self.type_name()),
            ));
        }
        self.get(key)
            .ok_or_else(|| format_err(what, format!("missing key `{key}`")))
    }

    /// The object (class instance), if it is one.
    pub fn as_object(&self) -> Option<Object> {
        match self {
            Value::Object(o) => Some(o.borrow().clone()),
            _ => None,
        }
    }

    /// The class or function, if it is one.
    pub fn as_global(&self) -> Option<Global> {
        match self {
            Value::Global(g) => Some(g.as_ref().clone()),
            _ => None,
        }
    }
}
