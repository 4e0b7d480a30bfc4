//! From the value of a state-dict pickle to decoded tensors: shared by the legacy and zip
//! containers, which differ only in where storage bytes live.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use super::pickle::printable;
use super::pickle::value::{TensorRef, Value};
use super::strided;
use super::{RawTensor, WeightsError};

/// A state-dict entry: key and tensor, shared with the pickle's values (never copied).
pub type Entry = (Rc<str>, Rc<TensorRef>);

/// The `(key, tensor)` items of a top-level (ordered) dict, in file order.
pub fn entries(top: &Value, file: &str) -> Result<Vec<Entry>, WeightsError> {
    let Value::Dict(map) = top else {
        return Err(WeightsError::malformed(
            file,
            format!("the top-level object is a {}, not a state dict", top.kind()),
        ));
    };
    let mut out = Vec::with_capacity(map.items.len());
    for (k, v) in &map.items {
        let Value::Str(key) = k else {
            return Err(WeightsError::malformed(
                file,
                format!("a state-dict key is a {}, not a string", k.kind()),
            ));
        };
        let Value::Tensor(t) = v else {
            return Err(WeightsError::malformed(
                file,
                format!("`{}` is a {}, not a tensor", printable(key), v.kind()),
            ));
        };
        out.push((Rc::clone(key), Rc::clone(t)));
    }
    Ok(out)
}

/// Reads each tensor from `storages` (key -> the root storage's bytes). All tensors together,
/// keys and shapes included, may take at most `budget` bytes (aliases and broadcasts can
/// exceed the file size; a thousand aliases of one long key or shape must not).
pub fn materialise(
    entries: &[Entry],
    storages: &HashMap<&str, &[u8]>,
    file: &str,
    mut budget: usize,
) -> Result<BTreeMap<String, RawTensor>, WeightsError> {
    let mut out = BTreeMap::new();
    for (key, t) in entries {
        let s = &t.storage;
        let root = storages.get(s.key.as_str()).ok_or_else(|| {
            WeightsError::malformed(file, format!("storage `{}` has no data", printable(&s.key)))
        })?;
        let elsize = s.dtype.size_in_bytes();
        let (view_off, view_len) = s.window();
        let window = view_off
            .checked_mul(elsize)
            .zip(
                view_off
                    .checked_add(view_len)
                    .and_then(|e| e.checked_mul(elsize)),
            )
            .and_then(|(a, b)| root.get(a..b));
        let out_of_bounds = || WeightsError::OutOfBounds {
            file: file.to_owned(),
            key: printable(key),
            shape: t.shape.clone(),
            stride: t.stride.clone(),
            offset: t.offset,
            storage_numel: view_len,
        };
        let window = window.ok_or_else(out_of_bounds)?;
        if !strided::fits(view_len, t.offset, &t.shape, &t.stride) {
            return Err(out_of_bounds());
        }
        let overhead = key.len() + 16 * t.shape.len();
        let bytes = strided::numel(&t.shape)
            .and_then(|n| n.checked_mul(elsize))
            .and_then(|b| b.checked_add(overhead))
            .filter(|&b| b <= budget)
            .ok_or_else(|| {
                WeightsError::malformed(
                    file,
                    format!(
                        "tensor `{}` of shape {:?} decodes to more bytes than the file can hold",
                        printable(key),
                        t.shape
                    ),
                )
            })?;
        budget -= bytes;
        let data = strided::gather(window, elsize, t.offset, &t.shape, &t.stride)
            .ok_or_else(out_of_bounds)?;
        out.insert(
            key.to_string(),
            RawTensor {
                dtype: s.dtype,
                shape: t.shape.clone(),
                data,
            },
        );
    }
    Ok(out)
}

/// How many bytes all tensors of a file of `len` bytes may decode to.
pub fn budget_for(len: usize) -> usize {
    len.saturating_mul(4).saturating_add(4096)
}
