//! Checking files: pinned SHA-256 for the images; for the model, loading it and its recorded
//! SHA-256. Also the atomic moves and the record file.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use sha2::{Digest, Sha256};

use super::manifest::{record_path, Asset, Kind};
use super::FetchError;
use crate::model::{self, weights, Format, ModelError};

/// What the downloaded (or present) model turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    pub format: Format,
    pub ngf: usize,
    pub blocks: usize,
    /// Lowercase hex.
    pub sha256: String,
    /// The file that records `sha256` (`21styles.model.sha256`).
    pub record: PathBuf,
    /// This run wrote the record.
    pub newly_recorded: bool,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) enum Present {
    Missing,
    /// With the model's details for the model.
    Valid(Option<ModelInfo>),
    Invalid(String),
}

/// The state of `asset` on disk.
pub(crate) fn present(asset: &Asset) -> Present {
    let bytes = match read_capped(&asset.path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Present::Missing,
        Err(e) => return Present::Invalid(format!("cannot read it: {e}")),
    };
    let sha = sha256_hex(&bytes);
    match asset.kind {
        Kind::Style { sha256 } if sha == sha256 => Present::Valid(None),
        Kind::Style { sha256 } => {
            Present::Invalid(format!("its SHA-256 is {sha}, expected {sha256}"))
        }
        Kind::Model => {
            let record = record_path(&asset.path);
            match read_record(&record) {
                Ok(Some(r)) if r != sha => {
                    return Present::Invalid(format!(
                        "its SHA-256 {sha} differs from the one recorded in {}",
                        record.display()
                    ))
                }
                Ok(_) => {}
                Err(why) => return Present::Invalid(why),
            }
            match structure(&bytes, asset.name) {
                Ok((format, config)) => Present::Valid(Some(ModelInfo {
                    format,
                    ngf: config.ngf,
                    blocks: config.blocks,
                    sha256: sha,
                    record,
                    newly_recorded: false,
                })),
                Err(e) => Present::Invalid(e.to_string()),
            }
        }
    }
}

/// Reads at most [`super::MAX_BYTES`] (a bigger file is not one of ours).
fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(super::MAX_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > super::MAX_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} bytes",
            super::MAX_BYTES
        )));
    }
    Ok(bytes)
}

/// The recorded SHA-256, `None` when there is no record; an unreadable record says why.
fn read_record(record: &Path) -> Result<Option<String>, String> {
    let text = match std::fs::read_to_string(record) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", record.display())),
    };
    let hex = text
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(Some(hex))
    } else {
        Err(format!(
            "{} does not hold a SHA-256 (64 hex digits)",
            record.display()
        ))
    }
}

/// Loads the model on the CPU: every key and shape the network needs, ngf and blocks inferred.
fn structure(bytes: &[u8], name: &str) -> Result<(Format, model::Config), ModelError> {
    let state = weights::load_bytes(bytes, name)?;
    let format = state.format;
    let net = model::from_state_dict(name, state, &Device::Cpu, DType::F32)?;
    Ok((format, net.config()))
}

/// Checks a complete download in `part`: (bytes, SHA-256, model details for the model).
pub(crate) fn downloaded(
    asset: &Asset,
    url: &str,
    part: &Path,
) -> Result<(u64, String, Option<ModelInfo>), FetchError> {
    let bytes = read_capped(part).map_err(|e| FetchError::io(part, e))?;
    let sha = sha256_hex(&bytes);
    let len = bytes.len() as u64;
    match asset.kind {
        Kind::Style { sha256 } if sha == sha256 => Ok((len, sha, None)),
        Kind::Style { sha256 } => Err(FetchError::Checksum {
            url: url.to_string(),
            expected: sha256.to_string(),
            actual: sha,
        }),
        Kind::Model => {
            let (format, config) =
                structure(&bytes, asset.name).map_err(|error| FetchError::NotModel {
                    url: url.to_string(),
                    error: Box::new(error),
                })?;
            let info = ModelInfo {
                format,
                ngf: config.ngf,
                blocks: config.blocks,
                sha256: sha.clone(),
                record: record_path(&asset.path),
                newly_recorded: false,
            };
            Ok((len, sha, Some(info)))
        }
    }
}

fn sync_dir(dir: &Path) {
    // Makes the rename durable where the platform can sync a folder.
    if let Ok(d) = std::fs::File::open(dir) {
        d.sync_all().ok();
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Renames the synced `part` over `dest`.
pub(crate) fn rename_into_place(part: &Path, dest: &Path) -> Result<(), FetchError> {
    std::fs::rename(part, dest).map_err(|e| FetchError::io(dest, e))?;
    sync_dir(parent(dest));
    Ok(())
}

/// Writes `info.sha256` to `info.record` atomically (`.part`, sync, rename), in `sha256sum`
/// format.
pub(crate) fn record(mut info: ModelInfo) -> Result<ModelInfo, FetchError> {
    // The record sits beside the model and is named after it: `21styles.model.sha256`.
    let file_name = info
        .record
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let model_name = file_name.strip_suffix(".sha256").unwrap_or(&file_name);
    let part = super::PartFile(super::part_path(&info.record));
    let io = |e| FetchError::io(&part.0, e);
    let mut file = std::fs::File::create(&part.0).map_err(io)?;
    writeln!(file, "{}  {model_name}", info.sha256).map_err(io)?;
    file.sync_all().map_err(io)?;
    rename_into_place(&part.0, &info.record)?;
    info.newly_recorded = true;
    Ok(info)
}

/// Writes the record when it is missing (a model put in place by hand that loads).
pub(crate) fn record_if_missing(info: ModelInfo) -> Result<ModelInfo, FetchError> {
    if let Ok(Some(r)) = read_record(&info.record) {
        if r == info.sha256 {
            return Ok(info);
        }
    }
    record(info)
}
