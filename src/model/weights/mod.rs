//! A safe reader of PyTorch weight files (legacy pre-1.6 pickles stream, zip) and
//! safetensors. Pickles are interpreted, never executed: only the globals a state dict
//! needs are allowed, and every size is checked against the file length before allocating.

mod collect;
pub mod emit;
mod error;
pub mod legacy;
pub mod pickle;
mod st;
mod strided;
pub mod torch_zip;
mod types;

use std::io::Read;
use std::path::Path;

pub use error::WeightsError;
pub use types::{DType, Format, RawTensor, StateDict};

/// Largest file [`load`] reads: far above any MSG-Net checkpoint (about 10 MB).
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// Reads and decodes a weight file, detecting its format from its first bytes.
pub fn load(path: &Path) -> Result<StateDict, WeightsError> {
    load_bytes(&read_bounded(path)?, &path.display().to_string())
}

/// Reads a whole weight file, refusing files over the size limit before allocating.
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, WeightsError> {
    let name = path.display().to_string();
    let io = |source| WeightsError::Io {
        file: name.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len > MAX_FILE_BYTES {
        return Err(WeightsError::malformed(
            &name,
            format!("{len} bytes is too large for a weight file (limit {MAX_FILE_BYTES})"),
        ));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(len).read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// Decodes a weight file held in memory; `name` prefixes error messages.
pub fn load_bytes(bytes: &[u8], name: &str) -> Result<StateDict, WeightsError> {
    if bytes.starts_with(torch_zip::MAGIC) {
        torch_zip::parse(bytes, name)
    } else if legacy::is_legacy(bytes) {
        legacy::parse(bytes, name)
    } else if st::looks_like(bytes) {
        st::parse(bytes, name)
    } else {
        let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let head = if head.is_empty() {
            "nothing: the file is empty".to_owned()
        } else {
            head.join(" ")
        };
        Err(WeightsError::NotWeights {
            file: name.to_owned(),
            head,
        })
    }
}

/// Writes tensors as a safetensors file, atomically (temp file, fsync, rename).
pub fn save_safetensors(path: &Path, tensors: &[(String, RawTensor)]) -> Result<(), WeightsError> {
    st::save(path, tensors)
}
