//! PyTorch's legacy (pre-1.6) container: a stream of pickles (magic number, protocol
//! version, sys info, the state dict, the list of storage keys), then each storage's raw
//! bytes in the order of that list, each preceded by its element count as an int64.

use std::collections::HashMap;

use super::pickle::{self, printable, value::Value};
use super::{collect, Format, StateDict, WeightsError};

/// How protocol-2 legacy files start: PROTO 2, LONG1 10, then the magic number.
pub const MAGIC_PREFIX: [u8; 14] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];
/// 0x1950a86a20f9469cfc6c as LONG1 stores it (little-endian).
const MAGIC_NUMBER: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const PROTOCOL_VERSION: i64 = 1001;

/// Whether `bytes` starts like a legacy file (any pickle protocol).
pub fn is_legacy(bytes: &[u8]) -> bool {
    if bytes.starts_with(&MAGIC_PREFIX) {
        return true;
    }
    // Other protocols frame the magic number differently: run just the first small pickle.
    let head = &bytes[..bytes.len().min(64)];
    bytes.first() == Some(&0x80) && pickle::load(head, 0, "", 0).is_ok_and(|l| is_magic(&l.value))
}

fn is_magic(v: &Value) -> bool {
    matches!(v, Value::BigInt(b) if **b == MAGIC_NUMBER)
}

/// Decodes a legacy PyTorch file. `name` prefixes error messages.
pub fn parse(bytes: &[u8], name: &str) -> Result<StateDict, WeightsError> {
    let len = bytes.len();
    let magic = pickle::load(bytes, 0, name, 0)?;
    if !is_magic(&magic.value) {
        return Err(WeightsError::malformed(
            name,
            "not a legacy PyTorch file (no magic number)",
        ));
    }
    let version = pickle::load(bytes, magic.end, name, 0)?;
    if !matches!(version.value, Value::Int(PROTOCOL_VERSION)) {
        return Err(WeightsError::malformed(
            name,
            "unsupported legacy protocol version",
        ));
    }
    let sys_info = pickle::load(bytes, version.end, name, 0)?;
    if is_big_endian(&sys_info.value) {
        return Err(WeightsError::BigEndian {
            file: name.to_owned(),
        });
    }
    let main = pickle::load(bytes, sys_info.end, name, len)?;
    let entries = collect::entries(&main.value, name)?;
    let key_list = pickle::load(bytes, main.end, name, 0)?;
    let keys = storage_keys(&key_list.value, name)?;

    let mut storages: HashMap<&str, &[u8]> = HashMap::with_capacity(keys.len());
    let mut pos = key_list.end;
    for key in keys {
        let &(dtype, numel) = main.storages.get(key).ok_or_else(|| {
            WeightsError::malformed(
                name,
                format!("storage `{}` is listed but never used", printable(key)),
            )
        })?;
        let count = read_i64(bytes, pos, name)?;
        if usize::try_from(count).ok() != Some(numel) {
            return Err(WeightsError::malformed(
                name,
                format!(
                    "storage `{}` has {count} elements at byte {pos} but its pickle said {numel}",
                    printable(key)
                ),
            ));
        }
        // numel * size was checked against the file length when the pickle named it.
        let start = pos + 8;
        let end = start
            .checked_add(numel * dtype.size_in_bytes())
            .filter(|&e| e <= len)
            .ok_or_else(|| WeightsError::truncated(name, len))?;
        if storages.insert(key, &bytes[start..end]).is_some() {
            return Err(WeightsError::malformed(
                name,
                format!("storage `{}` is listed twice", printable(key)),
            ));
        }
        pos = end;
    }
    let tensors = collect::materialise(&entries, &storages, name, collect::budget_for(len))?;
    Ok(StateDict {
        format: Format::Legacy,
        tensors,
    })
}

fn is_big_endian(sys_info: &Value) -> bool {
    let Value::Dict(map) = sys_info else {
        return false;
    };
    map.items
        .iter()
        .any(|(k, v)| k.as_str() == Some("little_endian") && matches!(v, Value::Bool(false)))
}

fn storage_keys<'v>(keys: &'v Value, name: &str) -> Result<Vec<&'v str>, WeightsError> {
    let items = keys
        .as_seq()
        .ok_or_else(|| WeightsError::malformed(name, "storage key list is not a list"))?;
    items
        .iter()
        .map(|k| {
            k.as_str()
                .ok_or_else(|| WeightsError::malformed(name, "a storage key is not a string"))
        })
        .collect()
}

fn read_i64(bytes: &[u8], pos: usize, name: &str) -> Result<i64, WeightsError> {
    let b = pos
        .checked_add(8)
        .and_then(|end| bytes.get(pos..end))
        .ok_or_else(|| WeightsError::truncated(name, bytes.len()))?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(i64::from_le_bytes(a))
}
