//! A pickle interpreter for PyTorch state dicts. It runs no code: opcodes build plain
//! [`Value`]s, globals are checked against an allow-list the moment they are named, and
//! calls to the few allowed ones are interpreted in [`globals`]. Work, nesting and sizes are
//! bounded by the input length, so any input ends quickly, in an error or a value.

pub mod globals;
mod text;
pub mod value;

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use super::{DType, WeightsError};
use value::{depth_of, Global, Map, Seq, StorageRef, Value, MAX_DEPTH};

pub use text::printable;

/// What one pickle left: its value, where it ended, and the storages it named.
#[derive(Debug)]
pub struct Loaded {
    pub value: Value,
    /// Offset just past the STOP opcode.
    pub end: usize,
    /// Storage key -> (dtype, numel in elements), one entry per root storage.
    pub storages: BTreeMap<String, (DType, usize)>,
}

/// Runs the pickle that starts at `start` in `data`. The storages its persistent ids name
/// may claim at most `storage_limit` bytes in all.
pub fn load(
    data: &[u8],
    start: usize,
    file: &str,
    storage_limit: usize,
) -> Result<Loaded, WeightsError> {
    let mut vm = Unpickler {
        data,
        pos: start,
        op_at: start,
        file,
        storage_limit,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        work: 0,
        work_limit: data.len().saturating_mul(16).saturating_add(4096),
        storages: BTreeMap::new(),
        claimed: 0,
    };
    let value = vm.run()?;
    Ok(Loaded {
        value,
        end: vm.pos,
        storages: vm.storages,
    })
}

struct Unpickler<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of the opcode being run, for error messages.
    op_at: usize,
    file: &'a str,
    storage_limit: usize,
    stack: Vec<Value>,
    /// Stack lengths at each MARK.
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
    /// Elements copied so far (copy on write, call arguments), bounded by `work_limit`.
    work: usize,
    work_limit: usize,
    storages: BTreeMap<String, (DType, usize)>,
    /// Bytes claimed by all storages named so far.
    claimed: u128,
}

impl<'a> Unpickler<'a> {
    fn run(&mut self) -> Result<Value, WeightsError> {
        loop {
            self.op_at = self.pos;
            let op = self.u8()?;
            if op == b'.' {
                return self.pop();
            }
            self.step(op)?;
        }
    }

    fn step(&mut self, op: u8) -> Result<(), WeightsError> {
        match op {
            0x80 => {
                let proto = self.u8()?;
                if proto > 5 {
                    return Err(self.bad(format!("unsupported protocol {proto}")));
                }
            }
            0x95 => {
                self.take(8)?; // FRAME: a length hint only
            }
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                if self.marks.last() == Some(&self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop()?;
                }
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let top = self.top()?.clone();
                self.push(top);
            }
            b'N' => self.push(Value::None),
            0x88 => self.push(Value::Bool(true)),
            0x89 => self.push(Value::Bool(false)),
            b'J' => {
                let v = i32::from_le_bytes(self.array()?);
                self.push(Value::Int(i64::from(v)));
            }
            b'K' => {
                let v = self.u8()?;
                self.push(Value::Int(i64::from(v)));
            }
            b'M' => {
                let v = u16::from_le_bytes(self.array()?);
                self.push(Value::Int(i64::from(v)));
            }
            b'I' => {
                let line = self.line()?;
                let v = match line {
                    b"00" => Value::Bool(false),
                    b"01" => Value::Bool(true),
                    _ => Value::Int(text::parse_int(line).ok_or_else(|| self.bad("bad INT"))?),
                };
                self.push(v);
            }
            b'L' => {
                let line = self.line()?;
                let v = text::parse_int(line).ok_or_else(|| self.bad("bad or too large LONG"))?;
                self.push(Value::Int(v));
            }
            0x8a => {
                let n = usize::from(self.u8()?);
                self.long(n)?;
            }
            0x8b => {
                let n = i32::from_le_bytes(self.array()?);
                let n = usize::try_from(n).map_err(|_| self.bad("negative LONG4 length"))?;
                self.long(n)?;
            }
            b'G' => {
                let v = f64::from_be_bytes(self.array()?);
                self.push(Value::Float(v));
            }
            b'F' => {
                let line = self.line()?;
                let v = text::parse_float(line).ok_or_else(|| self.bad("bad FLOAT"))?;
                self.push(Value::Float(v));
            }
            0x8c => {
                let n = usize::from(self.u8()?);
                self.unicode(n)?;
            }
            b'X' => {
                let n = self.len32()?;
                self.unicode(n)?;
            }
            0x8d => {
                let n = self.len64()?;
                self.unicode(n)?;
            }
            b'V' => {
                let line = self.line()?;
                let s = text::raw_unicode_escape(line).ok_or_else(|| self.bad("bad UNICODE"))?;
                self.push(Value::Str(s.into()));
            }
            b'U' => {
                let n = usize::from(self.u8()?);
                self.binstring(n)?;
            }
            b'T' => {
                let n = i32::from_le_bytes(self.array()?);
                let n = usize::try_from(n).map_err(|_| self.bad("negative BINSTRING length"))?;
                self.binstring(n)?;
            }
            b'S' => {
                let line = self.line()?;
                let bytes = text::unquote_repr(line).ok_or_else(|| self.bad("bad STRING"))?;
                self.push(Value::Str(text::bytes_to_string(&bytes).into()));
            }
            b'C' => {
                let n = usize::from(self.u8()?);
                self.bytes(n)?;
            }
            b'B' => {
                let n = self.len32()?;
                self.bytes(n)?;
            }
            0x8e => {
                let n = self.len64()?;
                self.bytes(n)?;
            }
            b')' => self.push(Value::Tuple(Rc::new(Seq {
                depth: 1,
                items: Vec::new(),
            }))),
            b']' => self.push(Value::List(Rc::new(Seq {
                depth: 1,
                items: Vec::new(),
            }))),
            b'}' => self.push(globals::empty_dict()),
            b't' => {
                let items = self.pop_mark()?;
                self.push_tuple(items)?;
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let at = self
                    .stack
                    .len()
                    .checked_sub(n)
                    .ok_or_else(|| self.underflow())?;
                if self.marks.last().is_some_and(|&m| m > at) {
                    return Err(self.underflow());
                }
                let items = self.stack.split_off(at);
                self.push_tuple(items)?;
            }
            b'l' => {
                let items = self.pop_mark()?;
                let depth = self.depth(&items)?;
                self.push(Value::List(Rc::new(Seq { depth, items })));
            }
            b'd' => {
                let items = self.pop_mark()?;
                let dict = self.dict_from(items)?;
                self.push(dict);
            }
            b'a' => {
                let item = self.pop()?;
                self.extend_list(vec![item])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.extend_list(items)?;
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.extend_dict(vec![k, v])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.extend_dict(items)?;
            }
            b'q' => {
                let i = u32::from(self.u8()?);
                self.put(i)?;
            }
            b'r' => {
                let i = u32::from_le_bytes(self.array()?);
                self.put(i)?;
            }
            b'p' => {
                let i = self.line_index()?;
                self.put(i)?;
            }
            0x94 => {
                let i = u32::try_from(self.memo.len()).map_err(|_| self.bad("memo full"))?;
                self.put(i)?;
            }
            b'h' => {
                let i = u32::from(self.u8()?);
                self.get(i)?;
            }
            b'j' => {
                let i = u32::from_le_bytes(self.array()?);
                self.get(i)?;
            }
            b'g' => {
                let i = self.line_index()?;
                self.get(i)?;
            }
            b'c' => {
                let module = text::bytes_to_string(self.line()?);
                let name = text::bytes_to_string(self.line()?);
                let g = self.global(&module, &name)?;
                self.push(Value::Global(g));
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let (Some(module), Some(name)) = (module.as_str(), name.as_str()) else {
                    return Err(self.bad("STACK_GLOBAL needs two strings"));
                };
                let g = self.global(module, name)?;
                self.push(Value::Global(g));
            }
            b'i' => {
                // INST builds an object from a named class: refuse, naming the class.
                let module = text::bytes_to_string(self.line()?);
                let name = text::bytes_to_string(self.line()?);
                self.global(&module, &name)?;
                return Err(self.unsupported(op));
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let (Value::Global(g), Some(args)) = (&callable, args.as_seq()) else {
                    return Err(self.bad(format!(
                        "REDUCE of a {} with a {}",
                        callable.kind(),
                        args.kind()
                    )));
                };
                let g = *g;
                self.spend(globals::cost(args))?;
                let v = globals::call(g, args).map_err(|e| self.bad(e))?;
                self.push(v);
            }
            0x81 => {
                let _args = self.pop()?;
                let cls = self.pop()?;
                let Value::Global(g) = cls else {
                    return Err(self.bad(format!("NEWOBJ of a {}", cls.kind())));
                };
                let v = globals::new_object(g).map_err(|e| self.bad(e))?;
                self.push(v);
            }
            b'b' => {
                let _state = self.pop()?;
                if !matches!(self.top()?, Value::Dict(_)) {
                    return Err(self.bad("BUILD is only supported on a dict"));
                }
            }
            b'Q' => {
                let pid = self.pop()?;
                let v = self.persistent_load(&pid)?;
                self.push(v);
            }
            b'P' => {
                let pid = Value::Str(text::bytes_to_string(self.line()?).into());
                let v = self.persistent_load(&pid)?;
                self.push(v);
            }
            _ => return Err(self.unsupported(op)),
        }
        Ok(())
    }

    // ---- input ----

    fn take(&mut self, n: usize) -> Result<&'a [u8], WeightsError> {
        let data: &'a [u8] = self.data;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| WeightsError::truncated(self.file, data.len()))?;
        let s = &data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], WeightsError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, WeightsError> {
        Ok(self.array::<1>()?[0])
    }

    fn len32(&mut self) -> Result<usize, WeightsError> {
        let n = u32::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| WeightsError::truncated(self.file, self.data.len()))
    }

    fn len64(&mut self) -> Result<usize, WeightsError> {
        let n = u64::from_le_bytes(self.array()?);
        usize::try_from(n).map_err(|_| WeightsError::truncated(self.file, self.data.len()))
    }

    /// The bytes up to the next newline (not included), consuming the newline.
    fn line(&mut self) -> Result<&'a [u8], WeightsError> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| WeightsError::truncated(self.file, self.data.len()))?;
        let line = self.take(n)?;
        self.pos += 1;
        Ok(line)
    }

    fn line_index(&mut self) -> Result<u32, WeightsError> {
        let line = self.line()?;
        text::parse_int(line)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| self.bad("bad memo index"))
    }

    // ---- values ----

    fn long(&mut self, n: usize) -> Result<(), WeightsError> {
        let bytes = self.take(n)?;
        let v = if n <= 8 {
            let fill = if bytes.last().is_some_and(|&b| b & 0x80 != 0) {
                0xff
            } else {
                0
            };
            let mut buf = [fill; 8];
            buf[..n].copy_from_slice(bytes);
            Value::Int(i64::from_le_bytes(buf))
        } else {
            Value::BigInt(bytes.into())
        };
        self.push(v);
        Ok(())
    }

    fn unicode(&mut self, n: usize) -> Result<(), WeightsError> {
        let bytes = self.take(n)?;
        let s = std::str::from_utf8(bytes).map_err(|_| self.bad("string is not UTF-8"))?;
        self.push(Value::Str(s.into()));
        Ok(())
    }

    fn binstring(&mut self, n: usize) -> Result<(), WeightsError> {
        let bytes = self.take(n)?;
        self.push(Value::Str(text::bytes_to_string(bytes).into()));
        Ok(())
    }

    fn bytes(&mut self, n: usize) -> Result<(), WeightsError> {
        let bytes = self.take(n)?;
        self.push(Value::Bytes(bytes.into()));
        Ok(())
    }

    fn global(&self, module: &str, name: &str) -> Result<Global, WeightsError> {
        globals::resolve(module, name).ok_or_else(|| WeightsError::ForbiddenGlobal {
            file: self.file.to_owned(),
            global: printable(&format!("{module}.{name}")),
        })
    }

    /// `('storage', storage_type, key, location, numel[, (view_key, offset, size) | None])`
    fn persistent_load(&mut self, pid: &Value) -> Result<Value, WeightsError> {
        let items = match pid {
            Value::Tuple(s) => &s.items[..],
            other => {
                return Err(self.bad(format!("persistent id is a {}, not a tuple", other.kind())))
            }
        };
        let (tag, ty, key, numel, view) = match items {
            [tag, ty, key, _location, numel] => (tag, ty, key, numel, &Value::None),
            [tag, ty, key, _location, numel, view] => (tag, ty, key, numel, view),
            _ => return Err(self.bad("persistent id is not a storage")),
        };
        let (Some("storage"), Value::Global(Global::Storage(dtype)), Some(key), Some(numel)) =
            (tag.as_str(), ty, key.as_str(), numel.as_usize())
        else {
            return Err(self.bad("persistent id is not a storage"));
        };
        self.spend(key.len())?;
        self.register(key, *dtype, numel)?;
        let view = match view {
            Value::None => None,
            v => match v.as_seq() {
                Some([_view_key, off, size]) => match (off.as_usize(), size.as_usize()) {
                    (Some(o), Some(s)) if o.checked_add(s).is_some_and(|e| e <= numel) => {
                        Some((o, s))
                    }
                    _ => return Err(self.bad("storage view reaches past its root storage")),
                },
                _ => return Err(self.bad("bad storage view metadata")),
            },
        };
        Ok(Value::Storage(Rc::new(StorageRef {
            dtype: *dtype,
            key: key.to_owned(),
            numel,
            view,
        })))
    }

    /// Records a root storage, checking it against earlier mentions and the size budget.
    fn register(&mut self, key: &str, dtype: DType, numel: usize) -> Result<(), WeightsError> {
        if let Some(&seen) = self.storages.get(key) {
            if seen != (dtype, numel) {
                return Err(self.bad(format!(
                    "storage `{}` named as {dtype} x {numel} and as {} x {}",
                    printable(key),
                    seen.0,
                    seen.1
                )));
            }
            return Ok(());
        }
        let bytes = numel as u128 * dtype.size_in_bytes() as u128;
        if bytes > self.storage_limit as u128 {
            return Err(WeightsError::StorageTooLarge {
                file: self.file.to_owned(),
                key: printable(key),
                claimed: bytes,
                available: self.storage_limit,
            });
        }
        self.claimed += bytes;
        if self.claimed > self.storage_limit as u128 {
            return Err(WeightsError::malformed(
                self.file,
                format!(
                    "storages claim {} bytes in all but the file has only {}",
                    self.claimed, self.storage_limit
                ),
            ));
        }
        self.storages.insert(key.to_owned(), (dtype, numel));
        Ok(())
    }

    // ---- stack, marks, memo ----

    fn push(&mut self, v: Value) {
        self.stack.push(v);
    }

    fn floor(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<Value, WeightsError> {
        if self.stack.len() <= self.floor() {
            return Err(self.underflow());
        }
        self.stack.pop().ok_or_else(|| self.underflow())
    }

    fn top(&self) -> Result<&Value, WeightsError> {
        if self.stack.len() <= self.floor() {
            return Err(self.underflow());
        }
        self.stack.last().ok_or_else(|| self.underflow())
    }

    fn pop_mark(&mut self) -> Result<Vec<Value>, WeightsError> {
        let m = self.marks.pop().ok_or_else(|| self.bad("no MARK"))?;
        Ok(self.stack.split_off(m.min(self.stack.len())))
    }

    fn put(&mut self, i: u32) -> Result<(), WeightsError> {
        let v = self.top()?.clone();
        self.memo.insert(i, v);
        Ok(())
    }

    fn get(&mut self, i: u32) -> Result<(), WeightsError> {
        let v = self
            .memo
            .get(&i)
            .cloned()
            .ok_or_else(|| self.bad(format!("memo key {i} not found")))?;
        self.push(v);
        Ok(())
    }

    fn depth(&self, items: &[Value]) -> Result<u8, WeightsError> {
        depth_of(items.iter()).ok_or_else(|| self.too_deep())
    }

    fn push_tuple(&mut self, items: Vec<Value>) -> Result<(), WeightsError> {
        let depth = self.depth(&items)?;
        self.push(Value::Tuple(Rc::new(Seq { depth, items })));
        Ok(())
    }

    fn dict_from(&self, items: Vec<Value>) -> Result<Value, WeightsError> {
        if !items.len().is_multiple_of(2) {
            return Err(self.bad("odd number of items for a dict"));
        }
        let depth = self.depth(&items)?;
        let mut it = items.into_iter();
        let mut pairs = Vec::with_capacity(it.len() / 2);
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            pairs.push((k, v));
        }
        Ok(Value::Dict(Rc::new(Map {
            depth,
            items: pairs,
        })))
    }

    /// Charges copying `n` elements against the work budget.
    fn spend(&mut self, n: usize) -> Result<(), WeightsError> {
        self.work = self.work.saturating_add(n);
        if self.work > self.work_limit {
            return Err(self.bad("too much copying for the input size"));
        }
        Ok(())
    }

    fn extend_list(&mut self, items: Vec<Value>) -> Result<(), WeightsError> {
        let depth = self.depth(&items)?;
        let idx = self
            .stack
            .len()
            .checked_sub(1)
            .filter(|&i| i >= self.floor());
        let Some(Value::List(list)) = idx.and_then(|i| self.stack.get(i)) else {
            return Err(self.bad("APPEND to something that is not a list"));
        };
        if Rc::strong_count(list) > 1 {
            self.spend(list.items.len())?; // copy on write
        }
        if let Some(Value::List(list)) = idx.and_then(|i| self.stack.get_mut(i)) {
            let list = Rc::make_mut(list);
            list.depth = list.depth.max(depth);
            list.items.extend(items);
        }
        Ok(())
    }

    fn extend_dict(&mut self, items: Vec<Value>) -> Result<(), WeightsError> {
        let Value::Dict(new) = self.dict_from(items)? else {
            return Err(self.bad("SETITEM items"));
        };
        let idx = self
            .stack
            .len()
            .checked_sub(1)
            .filter(|&i| i >= self.floor());
        let Some(Value::Dict(dict)) = idx.and_then(|i| self.stack.get(i)) else {
            return Err(self.bad("SETITEM on something that is not a dict"));
        };
        if Rc::strong_count(dict) > 1 {
            self.spend(dict.items.len())?; // copy on write
        }
        if let Some(Value::Dict(dict)) = idx.and_then(|i| self.stack.get_mut(i)) {
            let dict = Rc::make_mut(dict);
            dict.depth = dict.depth.max(new.depth);
            dict.items.extend(Rc::unwrap_or_clone(new).items);
        }
        Ok(())
    }

    // ---- errors ----

    fn bad(&self, what: impl Into<String>) -> WeightsError {
        WeightsError::MalformedPickle {
            file: self.file.to_owned(),
            at: self.op_at,
            what: what.into(),
        }
    }

    fn underflow(&self) -> WeightsError {
        self.bad("stack underflow")
    }

    fn too_deep(&self) -> WeightsError {
        self.bad(format!("containers nested deeper than {MAX_DEPTH}"))
    }

    fn unsupported(&self, opcode: u8) -> WeightsError {
        WeightsError::UnsupportedOpcode {
            file: self.file.to_owned(),
            opcode,
            at: self.op_at,
        }
    }
}
