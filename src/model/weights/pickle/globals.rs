//! The allow-list of globals and what calling each of them means. Calls are interpreted
//! here, by hand; nothing named by a file is ever looked up or executed.

use std::rc::Rc;

use super::super::DType;
use super::value::{depth_of, Global, Map, TensorRef, Value};

const STORAGE_TYPES: [(&str, DType); 10] = [
    ("FloatStorage", DType::F32),
    ("DoubleStorage", DType::F64),
    ("HalfStorage", DType::F16),
    ("BFloat16Storage", DType::BF16),
    ("LongStorage", DType::I64),
    ("IntStorage", DType::I32),
    ("ShortStorage", DType::I16),
    ("CharStorage", DType::I8),
    ("ByteStorage", DType::U8),
    ("BoolStorage", DType::Bool),
];

/// The allowed global `module.name`, or `None` when it is not allowed.
pub fn resolve(module: &str, name: &str) -> Option<Global> {
    match (module, name) {
        ("torch._utils", "_rebuild_tensor") => Some(Global::RebuildTensor),
        ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
        ("torch._utils", "_rebuild_parameter") => Some(Global::RebuildParameter),
        ("collections", "OrderedDict") => Some(Global::OrderedDict),
        ("torch" | "torch.cuda", _) => STORAGE_TYPES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, dtype)| Global::Storage(dtype)),
        _ => None,
    }
}

/// Elements a call to `callable` with `args` copies: the VM charges them to its work budget.
pub fn cost(args: &[Value]) -> usize {
    args.iter()
        .map(|a| match a {
            Value::Tuple(s) | Value::List(s) => 1 + s.items.len(),
            Value::Dict(m) => 1 + m.items.len(),
            _ => 1,
        })
        .sum()
}

/// `callable(*args)` for REDUCE.
pub fn call(callable: Global, args: &[Value]) -> Result<Value, String> {
    match callable {
        Global::RebuildTensor => match args {
            [storage, offset, size, stride] => rebuild_tensor(storage, offset, size, stride),
            _ => Err(format!(
                "_rebuild_tensor takes 4 arguments, got {}",
                args.len()
            )),
        },
        Global::RebuildTensorV2 => match args {
            [storage, offset, size, stride, _requires_grad, _hooks]
            | [storage, offset, size, stride, _requires_grad, _hooks, _] => {
                rebuild_tensor(storage, offset, size, stride)
            }
            _ => Err(format!(
                "_rebuild_tensor_v2 takes 6 or 7 arguments, got {}",
                args.len()
            )),
        },
        Global::RebuildParameter => match args {
            [t @ Value::Tensor(_), _requires_grad, _hooks] => Ok(t.clone()),
            _ => Err("_rebuild_parameter needs (tensor, requires_grad, hooks)".into()),
        },
        Global::OrderedDict => ordered_dict(args),
        Global::Storage(_) => Err("a storage type cannot be called".into()),
    }
}

/// `cls.__new__(cls, *args)` for NEWOBJ: only an empty OrderedDict.
pub fn new_object(cls: Global) -> Result<Value, String> {
    match cls {
        Global::OrderedDict => Ok(empty_dict()),
        _ => Err("NEWOBJ is only allowed on collections.OrderedDict".into()),
    }
}

pub fn empty_dict() -> Value {
    Value::Dict(Rc::new(Map {
        depth: 1,
        items: Vec::new(),
    }))
}

/// `OrderedDict()`, `OrderedDict(dict)` or Python 2's `OrderedDict([[k, v], ...])`.
fn ordered_dict(args: &[Value]) -> Result<Value, String> {
    match args {
        [] => Ok(empty_dict()),
        [d @ Value::Dict(_)] => Ok(d.clone()),
        [items] => {
            let pairs = items
                .as_seq()
                .ok_or_else(|| format!("OrderedDict({}) is not supported", items.kind()))?;
            let mut out = Vec::with_capacity(pairs.len());
            for pair in pairs {
                match pair.as_seq() {
                    Some([k, v]) => out.push((k.clone(), v.clone())),
                    _ => return Err("OrderedDict items must be [key, value] pairs".into()),
                }
            }
            let depth = depth_of(out.iter().flat_map(|(k, v)| [k, v]))
                .ok_or("containers nested too deeply")?;
            Ok(Value::Dict(Rc::new(Map { depth, items: out })))
        }
        _ => Err(format!(
            "OrderedDict takes at most 1 argument, got {}",
            args.len()
        )),
    }
}

fn rebuild_tensor(
    storage: &Value,
    offset: &Value,
    size: &Value,
    stride: &Value,
) -> Result<Value, String> {
    let Value::Storage(storage) = storage else {
        return Err(format!("tensor storage is a {}", storage.kind()));
    };
    let offset = offset
        .as_usize()
        .ok_or("tensor storage offset is not a non-negative int")?;
    let shape = usizes(size, "size")?;
    let stride = usizes(stride, "stride")?;
    if shape.len() != stride.len() {
        return Err(format!(
            "tensor size has {} dims but stride has {}",
            shape.len(),
            stride.len()
        ));
    }
    Ok(Value::Tensor(Rc::new(TensorRef {
        storage: Rc::clone(storage),
        offset,
        shape,
        stride,
    })))
}

fn usizes(v: &Value, what: &str) -> Result<Vec<usize>, String> {
    let items = v
        .as_seq()
        .ok_or_else(|| format!("tensor {what} is a {}, not a tuple", v.kind()))?;
    items
        .iter()
        .map(|i| {
            i.as_usize().ok_or_else(|| {
                format!(
                    "tensor {what} holds a {} that is not a non-negative int",
                    i.kind()
                )
            })
        })
        .collect()
}
