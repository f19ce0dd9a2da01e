//! The pickle virtual machine: the binary opcodes of protocols 2–5 (what `torch.save` writes),
//! building [`Value`]s without ever running Python code.
//!
//! Classes and functions (`GLOBAL`) must be in [`super::globals`]'s list; a few are evaluated
//! here because their result is plain data (`OrderedDict()`, `set(list)`, `_codecs.encode`,
//! numpy scalars, torch's tensor rebuild functions). Every other call is recorded as an
//! [`Object`] for the caller to interpret.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use super::globals::{check_global, Known};
use super::numpy::decode_scalar;
use super::value::{Global, Object, StorageRef, TensorRef, Value};
use crate::error::{Error, Result};

/// Upper bound on the memo size and the stack depth, so that a corrupt file fails quickly
/// instead of exhausting memory.
const LIMIT: usize = 1 << 24;

/// Runs a pickle stream and returns the object it builds.
///
/// ```
/// use dlsia_cli::pickle::{unpickle, Value};
/// // pickle.dumps({"a": (1, 2.5)}, protocol=2)
/// let data = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01G@\x04\x00\x00\x00\x00\x00\x00\x86q\x02s.";
/// let v = unpickle(data)?;
/// let t = v.get("a").unwrap().as_seq("a")?;
/// assert_eq!((t[0].as_int("x")?, t[1].as_f64("y")?), (1, 2.5));
/// # Ok::<(), dlsia_cli::Error>(())
/// ```
pub fn unpickle(data: &[u8]) -> Result<Value> {
    Machine::new(data).run()
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of the opcode being executed, for error messages.
    op_at: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u64, Value>,
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8]) -> Self {
        Machine {
            data,
            pos: 0,
            op_at: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn err(&self, msg: impl Into<String>) -> Error {
        Error::Pickle {
            offset: self.op_at,
            msg: msg.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                self.err(format!(
                    "the stream ends early: {n} more bytes needed, {} left (truncated file?)",
                    self.data.len().saturating_sub(self.pos)
                ))
            })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn len_u64(&mut self) -> Result<usize> {
        let n = self.u64()?;
        usize::try_from(n).map_err(|_| self.err(format!("length {n} does not fit in memory")))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.err("a text argument has no terminating newline"))?;
        let s = String::from_utf8(rest[..n].to_vec())
            .map_err(|_| self.err("a text argument is not UTF-8"))?;
        self.pos += n + 1;
        Ok(s)
    }

    fn utf8(&mut self, n: usize) -> Result<String> {
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| self.err("a string is not valid UTF-8"))
    }

    fn push(&mut self, v: Value) -> Result<()> {
        if self.stack.len() >= LIMIT {
            return Err(self.err("the stack grows beyond any sensible size (corrupt file?)"));
        }
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Result<Value> {
        if let Some(&m) = self.marks.last() {
            if self.stack.len() <= m {
                return Err(self.err("an opcode pops across a MARK (corrupt stream)"));
            }
        }
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => Err(self.err("an opcode pops from an empty stack (corrupt stream)")),
        }
    }

    fn top(&self) -> Result<&Value> {
        match self.stack.last() {
            Some(v) => Ok(v),
            None => Err(self.err("an opcode needs a value on an empty stack (corrupt stream)")),
        }
    }

    /// Pops everything above the last MARK, and the mark.
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let m = self.marks.pop().ok_or_else(|| {
            self.err("an opcode needs a MARK that was never set (corrupt stream)")
        })?;
        if m > self.stack.len() {
            return Err(self.err("the stack shrank below a MARK (corrupt stream)"));
        }
        Ok(self.stack.split_off(m))
    }

    fn memo_put(&mut self, key: u64) -> Result<()> {
        if self.memo.len() >= LIMIT {
            return Err(self.err("the memo grows beyond any sensible size (corrupt file?)"));
        }
        let v = self.top()?.clone();
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Result<()> {
        let v =
            self.memo.get(&key).cloned().ok_or_else(|| {
                self.err(format!("memo entry {key} is read before it is written"))
            })?;
        self.push(v)
    }

    fn run(mut self) -> Result<Value> {
        loop {
            self.op_at = self.pos;
            let op = self
                .u8()
                .map_err(|_| self.err("the stream ends without a STOP opcode (truncated file?)"))?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return Err(self.err(format!("pickle protocol {proto} is newer than 5")));
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME: a size hint
                }
                b'.' => {
                    let v = self.pop()?;
                    return Ok(v);
                }
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.push(v)?;
                }
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(i64::from(v)))?;
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        usize::from(self.u8()?)
                    } else {
                        self.u32()? as usize
                    };
                    let v = self.long(n)?;
                    self.push(v)?;
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    self.push(Value::Float(f64::from_be_bytes(a)))?;
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.utf8(n)?;
                    self.push(Value::Str(s))?;
                }
                0x8c => {
                    let n = usize::from(self.u8()?);
                    let s = self.utf8(n)?;
                    self.push(Value::Str(s))?;
                }
                0x8d => {
                    let n = self.len_u64()?;
                    let s = self.utf8(n)?;
                    self.push(Value::Str(s))?;
                }
                b'T' | b'U' => {
                    // Python 2 `str`: bytes, read as Latin-1 text.
                    let n = if op == b'U' {
                        usize::from(self.u8()?)
                    } else {
                        self.u32()? as usize
                    };
                    let s = self.take(n)?.iter().map(|&b| char::from(b)).collect();
                    self.push(Value::Str(s))?;
                }
                b'B' | b'C' | 0x8e | 0x96 => {
                    let n = match op {
                        b'C' => usize::from(self.u8()?),
                        b'B' => self.u32()? as usize,
                        _ => self.len_u64()?,
                    };
                    let b = self.take(n)?.to_vec();
                    self.push(Value::Bytes(Rc::new(b)))?;
                }
                b')' => self.push(Value::Tuple(Rc::new(vec![])))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(Rc::new(items)))?;
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(Rc::new(items)))?;
                }
                b']' => self.push(Value::List(Rc::new(RefCell::new(vec![]))))?,
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(Rc::new(RefCell::new(items))))?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b'}' => self.push(Value::Dict(Rc::new(RefCell::new(vec![]))))?,
                b'd' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    self.push(Value::Dict(Rc::new(RefCell::new(pairs))))?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![(k, v)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let pairs = self.pairs(items)?;
                    self.set_items(pairs)?;
                }
                0x8f => self.push(Value::Set(Rc::new(RefCell::new(vec![]))))?,
                0x90 => {
                    let items = self.pop_mark()?;
                    match self.top()? {
                        Value::Set(s) => s.borrow_mut().extend(items),
                        other => {
                            return Err(self.err(format!(
                                "ADDITEMS on a {} instead of a set",
                                other.type_name()
                            )))
                        }
                    }
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Value::Set(Rc::new(RefCell::new(items))))?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(module, name)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.global(m, n)?,
                        _ => return Err(self.err("STACK_GLOBAL needs two strings")),
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.call(callable, args)?;
                    self.push(v)?;
                }
                0x81 => {
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    let v = self.call(cls, args)?;
                    self.push(v)?;
                }
                0x92 => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    let cls = self.pop()?;
                    if !matches!(&kwargs, Value::Dict(d) if d.borrow().is_empty()) {
                        return Err(self.err("NEWOBJ_EX with keyword arguments is not supported"));
                    }
                    let v = self.call(cls, args)?;
                    self.push(v)?;
                }
                b'b' => {
                    let state = self.pop()?;
                    self.build(state)?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self.persistent(pid)?;
                    self.push(v)?;
                }
                b'q' => {
                    let k = self.u8()?;
                    self.memo_put(u64::from(k))?;
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(u64::from(k))?;
                }
                0x94 => {
                    let k = self.memo.len() as u64;
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = self.u8()?;
                    self.memo_get(u64::from(k))?;
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(u64::from(k))?;
                }
                other => {
                    return Err(self.err(format!(
                        "opcode 0x{other:02x} ({:?}) is not supported: this reader implements the \
                         binary opcodes of pickle protocols 2-5 that torch.save writes",
                        char::from(other)
                    )))
                }
            }
        }
    }

    /// LONG1/LONG4: little-endian two's complement of `n` bytes.
    fn long(&mut self, n: usize) -> Result<Value> {
        let b = self.take(n)?;
        if n == 0 {
            return Ok(Value::Int(0));
        }
        if n > 8 {
            return Err(self.err(format!("an integer of {n} bytes does not fit in 64 bits")));
        }
        let fill = if b[n - 1] & 0x80 != 0 { 0xff } else { 0 };
        let mut a = [fill; 8];
        a[..n].copy_from_slice(b);
        Ok(Value::Int(i64::from_le_bytes(a)))
    }

    fn pairs(&self, items: Vec<Value>) -> Result<Vec<(Value, Value)>> {
        if items.len() % 2 != 0 {
            return Err(self.err("a dict gets an odd number of keys and values"));
        }
        let mut it = items.into_iter();
        let mut out = Vec::new();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            out.push((k, v));
        }
        Ok(out)
    }

    fn set_items(&mut self, pairs: Vec<(Value, Value)>) -> Result<()> {
        match self.top()? {
            Value::Dict(d) => {
                let mut d = d.borrow_mut();
                for (k, v) in pairs {
                    // Python dict semantics: a repeated key replaces the value in place.
                    if let Some(slot) = d.iter_mut().find(|(old, _)| same_key(old, &k)) {
                        slot.1 = v;
                    } else {
                        d.push((k, v));
                    }
                }
                Ok(())
            }
            other => Err(self.err(format!(
                "SETITEM(S) on a {} instead of a dict",
                other.type_name()
            ))),
        }
    }

    fn append(&mut self, items: Vec<Value>) -> Result<()> {
        match self.top()? {
            Value::List(l) => {
                l.borrow_mut().extend(items);
                Ok(())
            }
            other => Err(self.err(format!(
                "APPEND(S) on a {} instead of a list",
                other.type_name()
            ))),
        }
    }

    fn global(&mut self, module: String, name: String) -> Result<()> {
        let g = Global { module, name };
        if check_global(&g).is_none() {
            return Err(Error::UnknownGlobal {
                offset: self.op_at,
                module: g.module,
                name: g.name,
            });
        }
        self.push(Value::Global(Rc::new(g)))
    }

    /// REDUCE / NEWOBJ: evaluates the calls whose result is plain data, records the others.
    fn call(&mut self, callable: Value, args: Value) -> Result<Value> {
        let g = match &callable {
            Value::Global(g) => g.as_ref().clone(),
            other => {
                return Err(self.err(format!(
                    "a call to a {} (only classes and functions can be called)",
                    other.type_name()
                )))
            }
        };
        let args = match args {
            Value::Tuple(t) => t.as_ref().clone(),
            other => {
                return Err(self.err(format!(
                    "call to {g} with arguments of type {} instead of a tuple",
                    other.type_name()
                )))
            }
        };
        let known = check_global(&g).unwrap_or(Known::Opaque);
        let bad = |m: &Self, what: &str| m.err(format!("{g}{what}"));
        Ok(match known {
            Known::OrderedDict => match args.as_slice() {
                [] => Value::Dict(Rc::new(RefCell::new(vec![]))),
                [items] => {
                    let mut pairs = Vec::new();
                    for p in items
                        .as_seq("OrderedDict items")
                        .map_err(|_| bad(self, "(...) expects a list of (key, value) pairs"))?
                    {
                        match p.as_seq("pair").ok().as_deref() {
                            Some([k, v]) => pairs.push((k.clone(), v.clone())),
                            _ => return Err(bad(self, "(...) expects (key, value) pairs")),
                        }
                    }
                    Value::Dict(Rc::new(RefCell::new(pairs)))
                }
                _ => return Err(bad(self, " takes at most one argument")),
            },
            Known::Set => match args.as_slice() {
                [] => Value::Set(Rc::new(RefCell::new(vec![]))),
                [items] => Value::Set(Rc::new(RefCell::new(
                    items
                        .as_seq("set items")
                        .map_err(|_| bad(self, "(...) expects a list"))?,
                ))),
                _ => return Err(bad(self, " takes at most one argument")),
            },
            Known::CodecsEncode => match args.as_slice() {
                [Value::Str(s), Value::Str(enc)] if enc == "latin1" || enc == "latin-1" => {
                    let mut out = Vec::with_capacity(s.len());
                    for c in s.chars() {
                        let c = u32::from(c);
                        if c > 255 {
                            return Err(bad(self, ": a character outside Latin-1"));
                        }
                        out.push(c as u8);
                    }
                    Value::Bytes(Rc::new(out))
                }
                _ => return Err(bad(self, " is only understood as encode(str, 'latin1')")),
            },
            Known::NumpyScalar => match args.as_slice() {
                [dtype, Value::Bytes(b)] => {
                    decode_scalar(dtype, b).map_err(|e| self.err(format!("numpy scalar: {e}")))?
                }
                _ => return Err(bad(self, " expects (dtype, bytes)")),
            },
            Known::RebuildTensor => self.rebuild_tensor(&args)?,
            Known::RebuildParameter => match args.first() {
                Some(t @ Value::Tensor(_)) => t.clone(),
                _ => return Err(bad(self, " expects a tensor as its first argument")),
            },
            _ => Value::Object(Rc::new(RefCell::new(Object {
                class: g,
                args,
                state: None,
            }))),
        })
    }

    fn rebuild_tensor(&self, args: &[Value]) -> Result<Value> {
        if args.len() < 4 {
            return Err(self.err(format!(
                "_rebuild_tensor_v2 expects (storage, offset, size, stride, ...), got {} arguments",
                args.len()
            )));
        }
        let storage = match &args[0] {
            Value::Storage(s) => s.clone(),
            other => {
                return Err(self.err(format!(
                    "_rebuild_tensor_v2 expects a storage, got {}",
                    other.type_name()
                )))
            }
        };
        let ctx = |e: Error| self.err(format!("_rebuild_tensor_v2: {e}"));
        let offset = args[1].as_usize("storage offset").map_err(ctx)?;
        let shape = args[2].as_usize_vec("size").map_err(ctx)?;
        let stride = args[3].as_usize_vec("stride").map_err(ctx)?;
        if shape.len() != stride.len() {
            return Err(self.err(format!(
                "_rebuild_tensor_v2: size {shape:?} and stride {stride:?} differ in length"
            )));
        }
        Ok(Value::Tensor(Rc::new(TensorRef {
            storage,
            offset,
            shape,
            stride,
        })))
    }

    fn build(&mut self, state: Value) -> Result<()> {
        match self.top()? {
            Value::Object(o) => {
                o.borrow_mut().state = Some(state);
                Ok(())
            }
            // Attributes set on a dict subclass (the `_metadata` of a state_dict): not needed.
            Value::Dict(_) => Ok(()),
            other => Err(self.err(format!(
                "BUILD on a {} (only objects take a state)",
                other.type_name()
            ))),
        }
    }

    /// BINPERSID: torch's `('storage', storage_type, key, location, numel)`.
    fn persistent(&self, pid: Value) -> Result<Value> {
        let items = pid
            .as_seq("persistent id")
            .map_err(|_| self.err("a persistent id that is not a tuple"))?;
        match items.as_slice() {
            [Value::Str(tag), ty, key, location, numel] if tag == "storage" => {
                let storage_type = match ty {
                    Value::Global(g) if g.module == "torch" => g.name.clone(),
                    other => {
                        return Err(self.err(format!(
                            "a storage whose type is {} instead of a torch storage class",
                            other.type_name()
                        )))
                    }
                };
                let ctx = |e: Error| self.err(format!("persistent id: {e}"));
                Ok(Value::Storage(Rc::new(StorageRef {
                    storage_type,
                    key: key.as_str("storage key").map_err(ctx)?,
                    location: location.as_str("storage location").map_err(ctx)?,
                    numel: numel.as_usize("storage size").map_err(ctx)?,
                })))
            }
            _ => Err(self
                .err("a persistent id other than torch's ('storage', type, key, location, numel)")),
        }
    }
}

/// Dict key equality for the key types pickles use (strings and integers).
fn same_key(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Bool(y)) | (Value::Bool(y), Value::Int(x)) => *x == i64::from(*y),
        _ => false,
    }
}
