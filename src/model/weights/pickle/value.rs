//! The values a state-dict pickle can build. Containers are immutable and shared (`Rc`);
//! mutation (APPEND, SETITEM) copies on write. Nesting depth is bounded at construction,
//! so neither traversal nor drop can overflow the stack.

use std::rc::Rc;

use super::super::DType;

/// Deepest nesting of containers a pickle may build (a state dict needs about 4).
pub const MAX_DEPTH: u8 = 32;

/// A global the allow-list admits. Nothing else is ever materialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Global {
    /// `torch.FloatStorage`, `torch.cuda.HalfStorage`, ...
    Storage(DType),
    /// `torch._utils._rebuild_tensor(storage, offset, size, stride)`
    RebuildTensor,
    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`
    RebuildTensorV2,
    /// `torch._utils._rebuild_parameter(tensor, requires_grad, hooks)`
    RebuildParameter,
    /// `collections.OrderedDict`
    OrderedDict,
}

/// A storage named by a persistent id: `('storage', type, key, location, numel[, view])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRef {
    pub dtype: DType,
    pub key: String,
    /// Elements in the root storage.
    pub numel: usize,
    /// `(offset, size)` in elements of a legacy view into the root storage.
    pub view: Option<(usize, usize)>,
}

impl StorageRef {
    /// Element offset and length of the storage a tensor indexes into.
    pub fn window(&self) -> (usize, usize) {
        self.view.unwrap_or((0, self.numel))
    }
}

/// A tensor rebuilt from a storage: not yet read, only described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorRef {
    pub storage: Rc<StorageRef>,
    pub offset: usize,
    pub shape: Vec<usize>,
    pub stride: Vec<usize>,
}

/// A sequence (tuple or list) with its nesting depth.
#[derive(Debug, Clone)]
pub struct Seq {
    pub depth: u8,
    pub items: Vec<Value>,
}

/// A dict (plain or ordered) as its items in insertion order; duplicates resolved later.
#[derive(Debug, Clone)]
pub struct Map {
    pub depth: u8,
    pub items: Vec<(Value, Value)>,
}

#[derive(Debug, Clone)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer wider than 64 bits: little-endian two's complement bytes.
    BigInt(Rc<[u8]>),
    Float(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Tuple(Rc<Seq>),
    List(Rc<Seq>),
    Dict(Rc<Map>),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    pub fn depth(&self) -> u8 {
        match self {
            Value::Tuple(s) | Value::List(s) => s.depth,
            Value::Dict(m) => m.depth,
            _ => 0,
        }
    }

    /// A short name for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Dict(_) => "dict",
            Value::Global(_) => "global",
            Value::Storage(_) => "storage",
            Value::Tensor(_) => "tensor",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Items of a tuple or a list.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(s) | Value::List(s) => Some(&s.items),
            _ => None,
        }
    }

    /// A non-negative integer that fits `usize`.
    pub fn as_usize(&self) -> Option<usize> {
        match self {
            Value::Int(i) => usize::try_from(*i).ok(),
            Value::Bool(b) => Some(usize::from(*b)),
            _ => None,
        }
    }
}

/// Depth of a container holding `children`, or `None` past [`MAX_DEPTH`].
pub fn depth_of<'a>(children: impl Iterator<Item = &'a Value>) -> Option<u8> {
    let deepest = children.map(Value::depth).max().unwrap_or(0);
    let d = deepest.checked_add(1)?;
    (d <= MAX_DEPTH).then_some(d)
}
