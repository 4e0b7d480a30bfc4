//! safetensors, through the `safetensors` crate (named `st` to keep that name free).

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::Path;

use ::safetensors::tensor::{Dtype, TensorView};
use ::safetensors::{SafeTensorError, SafeTensors};

use super::{DType, Format, RawTensor, StateDict, WeightsError};

/// Whether `bytes` starts like a safetensors file: a little-endian u64 header length that
/// fits the file, then a JSON object.
pub fn looks_like(bytes: &[u8]) -> bool {
    let Some((len, rest)) = bytes.split_first_chunk::<8>() else {
        return false;
    };
    let n = u64::from_le_bytes(*len);
    n >= 2 && n <= rest.len() as u64 && rest.first() == Some(&b'{')
}

pub fn parse(bytes: &[u8], name: &str) -> Result<StateDict, WeightsError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| st_error(name, e))?;
    let mut tensors = BTreeMap::new();
    for (key, view) in st.iter() {
        let dtype = from_st(view.dtype()).ok_or_else(|| WeightsError::UnsupportedDType {
            file: name.to_owned(),
            key: key.to_owned(),
            dtype: format!("{:?}", view.dtype()),
        })?;
        let t = RawTensor {
            dtype,
            shape: view.shape().to_vec(),
            data: view.data().to_vec(),
        };
        tensors.insert(key.to_owned(), t);
    }
    Ok(StateDict {
        format: Format::Safetensors,
        tensors,
    })
}

/// Writes `tensors` as safetensors, atomically: a temporary file in the same folder is
/// written, synced and renamed over `path`; on error no partial file is left.
pub fn save(path: &Path, tensors: &[(String, RawTensor)]) -> Result<(), WeightsError> {
    let name = path.display().to_string();
    let mut seen = HashSet::new();
    let mut views = Vec::with_capacity(tensors.len());
    for (key, t) in tensors {
        if !seen.insert(key.as_str()) {
            return Err(WeightsError::malformed(
                &name,
                format!("key `{key}` given twice"),
            ));
        }
        let view = TensorView::new(to_st(t.dtype), t.shape.clone(), &t.data)
            .map_err(|e| st_error(&name, e))?;
        views.push((key.as_str(), view));
    }
    let bytes = ::safetensors::serialize(views, None).map_err(|e| st_error(&name, e))?;

    let io = |source| WeightsError::Io {
        file: name.clone(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".stylecam-")
        .suffix(".safetensors.tmp")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(&bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    // Make the rename itself durable where the platform allows syncing a folder.
    if let Ok(d) = std::fs::File::open(dir) {
        d.sync_all().ok();
    }
    Ok(())
}

fn from_st(d: Dtype) -> Option<DType> {
    Some(match d {
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::I16 => DType::I16,
        Dtype::I8 => DType::I8,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool,
        _ => return None,
    })
}

fn to_st(d: DType) -> Dtype {
    match d {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::I64 => Dtype::I64,
        DType::I32 => Dtype::I32,
        DType::I16 => Dtype::I16,
        DType::I8 => Dtype::I8,
        DType::U8 => Dtype::U8,
        DType::Bool => Dtype::BOOL,
    }
}

fn st_error(name: &str, source: SafeTensorError) -> WeightsError {
    WeightsError::Safetensors {
        file: name.to_owned(),
        source,
    }
}
