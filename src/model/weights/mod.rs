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

/// How many first bytes [`read_bounded`] looks at before reading the rest.
pub const HEAD_BYTES: usize = 64;

/// Reads a whole weight file: first its [`HEAD_BYTES`], which must be a format stylecam knows,
/// then (refusing files over the size limit before allocating) the rest. A large file that is
/// not weights costs a few bytes of reading, not gigabytes.
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, WeightsError> {
    let name = path.display().to_string();
    let io = |source| WeightsError::Io {
        file: name.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    read_checked(file, len, &name)
}

/// [`read_bounded`] from any reader holding `len` bytes.
fn read_checked(mut r: impl Read, len: u64, name: &str) -> Result<Vec<u8>, WeightsError> {
    let io = |source| WeightsError::Io {
        file: name.to_owned(),
        source,
    };
    let mut head = Vec::with_capacity(HEAD_BYTES);
    r.by_ref()
        .take(HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    if !known_head(&head, len) {
        return Err(not_weights(&head, name));
    }
    if len > MAX_FILE_BYTES {
        return Err(WeightsError::malformed(
            name,
            format!("{len} bytes is too large for a weight file (limit {MAX_FILE_BYTES})"),
        ));
    }
    let mut bytes = head;
    bytes.reserve(
        usize::try_from(len)
            .unwrap_or(0)
            .saturating_sub(bytes.len()),
    );
    r.take(len.saturating_sub(bytes.len() as u64))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    Ok(bytes)
}

/// Whether the first bytes of a `len`-byte file start a format [`load_bytes`] detects.
fn known_head(head: &[u8], len: u64) -> bool {
    if head.starts_with(torch_zip::MAGIC) || legacy::is_legacy(head) {
        return true;
    }
    // safetensors: an 8-byte header length that fits the file, then the JSON header's `{`.
    match head.split_first_chunk::<8>() {
        Some((n, rest)) => {
            let n = u64::from_le_bytes(*n);
            n >= 2 && n <= len.saturating_sub(8) && rest.first() == Some(&b'{')
        }
        None => false,
    }
}

fn not_weights(bytes: &[u8], name: &str) -> WeightsError {
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let head = if head.is_empty() {
        "nothing: the file is empty".to_owned()
    } else {
        head.join(" ")
    };
    WeightsError::NotWeights {
        file: name.to_owned(),
        head,
    }
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
        Err(not_weights(bytes, name))
    }
}

/// Writes tensors as a safetensors file, atomically (temp file, fsync, rename).
pub fn save_safetensors(path: &Path, tensors: &[(String, RawTensor)]) -> Result<(), WeightsError> {
    st::save(path, tensors)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader of `len` bytes that counts what is read from it.
    struct Counting<'a> {
        head: &'a [u8],
        len: u64,
        read: u64,
    }

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let left = self.len - self.read;
            let n = (buf.len() as u64).min(left) as usize;
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = self.head.get(self.read as usize + i).copied().unwrap_or(0);
            }
            self.read += n as u64;
            Ok(n)
        }
    }

    #[test]
    fn a_large_file_that_is_not_weights_is_refused_from_its_first_bytes() {
        let mut r = Counting {
            head: b"GIF89a not weights",
            len: MAX_FILE_BYTES,
            read: 0,
        };
        let err = read_checked(&mut r, MAX_FILE_BYTES, "big.bin").unwrap_err();
        assert!(matches!(err, WeightsError::NotWeights { .. }), "{err}");
        assert!(err.to_string().contains("47 49 46 38"), "{err}");
        assert!(r.read <= HEAD_BYTES as u64, "read {} bytes", r.read);
    }

    #[test]
    fn weights_are_read_whole_after_their_head() {
        let st = safetensors::serialize(
            [(
                "w",
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &[0u8; 8])
                    .unwrap(),
            )],
            None,
        )
        .unwrap();
        let len = st.len() as u64;
        let bytes = read_checked(&st[..], len, "w.safetensors").unwrap();
        assert_eq!(bytes, st);
        assert!(load_bytes(&bytes, "w.safetensors").is_ok());
    }
}
