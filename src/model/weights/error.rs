//! The one error type of the weight reader. Every message starts with the file name.

use super::DType;

/// Why a weight file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not a PyTorch or safetensors file (starts with {head})")]
    NotWeights { file: String, head: String },
    #[error("{file}: truncated at byte {at}")]
    Truncated { file: String, at: usize },
    #[error(
        "{file}: refusing to load global `{global}`: only the globals a PyTorch state dict needs \
         are allowed (this file may be malicious)"
    )]
    ForbiddenGlobal { file: String, global: String },
    #[error("{file}: storage `{key}` claims {claimed} bytes but the file has only {available}")]
    StorageTooLarge {
        file: String,
        key: String,
        claimed: u128,
        available: usize,
    },
    #[error(
        "{file}: tensor `{key}`: shape {shape:?} with stride {stride:?} at offset {offset} \
         reaches past its storage of {storage_numel} elements"
    )]
    OutOfBounds {
        file: String,
        key: String,
        shape: Vec<usize>,
        stride: Vec<usize>,
        offset: usize,
        storage_numel: usize,
    },
    #[error("{file}: unsupported pickle opcode 0x{opcode:02x} at byte {at}")]
    UnsupportedOpcode { file: String, opcode: u8, at: usize },
    #[error("{file}: malformed pickle at byte {at}: {what}")]
    MalformedPickle {
        file: String,
        at: usize,
        what: String,
    },
    #[error("{file}: {what}")]
    Malformed { file: String, what: String },
    #[error("{file}: stored big-endian; only little-endian files are supported")]
    BigEndian { file: String },
    #[error("{file}: zip: {source}")]
    Zip {
        file: String,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("{file}: safetensors: {source}")]
    Safetensors {
        file: String,
        #[source]
        source: ::safetensors::SafeTensorError,
    },
    #[error("{file}: tensor `{key}` has dtype {dtype}, which safetensors cannot store here")]
    UnsupportedDType {
        file: String,
        key: String,
        dtype: String,
    },
    #[error("a tensor of dtype {dtype} cannot be converted to f32")]
    NotFloat { dtype: DType },
    #[error("a {dtype} tensor of shape {shape:?} needs {expected} bytes but holds {actual}")]
    BadLength {
        dtype: DType,
        shape: Vec<usize>,
        expected: u128,
        actual: usize,
    },
}

impl WeightsError {
    pub(crate) fn malformed(file: &str, what: impl Into<String>) -> Self {
        Self::Malformed {
            file: file.to_owned(),
            what: what.into(),
        }
    }

    pub(crate) fn truncated(file: &str, at: usize) -> Self {
        Self::Truncated {
            file: file.to_owned(),
            at,
        }
    }
}
