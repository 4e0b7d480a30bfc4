//! PyTorch's zip container (>= 1.6): `<prefix>/data.pkl` holds the state-dict pickle and
//! `<prefix>/data/<key>` each storage's raw little-endian bytes.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use zip::result::ZipError;
use zip::ZipArchive;

use super::pickle::{self, printable};
use super::{collect, Format, StateDict, WeightsError};

/// How zip files start (a local file header).
pub const MAGIC: &[u8; 4] = b"PK\x03\x04";

type Archive<'a> = ZipArchive<Cursor<&'a [u8]>>;

/// Decodes a PyTorch zip file. `name` prefixes error messages.
pub fn parse(bytes: &[u8], name: &str) -> Result<StateDict, WeightsError> {
    let len = bytes.len();
    let mut zip = ZipArchive::new(Cursor::new(bytes)).map_err(|e| zip_error(name, e))?;
    let prefix = prefix(&zip, name)?;
    check_byteorder(&mut zip, &prefix, name)?;

    let pkl_name = format!("{prefix}/data.pkl");
    let pkl = read_entry(&mut zip, &pkl_name, name, |size| {
        (size <= len as u64).then_some(()).ok_or_else(|| {
            WeightsError::malformed(
                name,
                format!("`{pkl_name}` claims {size} bytes but the file has only {len}"),
            )
        })
    })?;
    let pkl_file = format!("{name}: {}", printable(&pkl_name));
    let main = pickle::load(&pkl, 0, &pkl_file, len)?;
    let entries = collect::entries(&main.value, name)?;

    let mut data = Vec::with_capacity(main.storages.len());
    for (key, &(dtype, numel)) in &main.storages {
        // The pickle already checked numel * size against the file length.
        let expected = (numel * dtype.size_in_bytes()) as u64;
        let entry = format!("{prefix}/data/{key}");
        let bytes = read_entry(&mut zip, &entry, name, |size| {
            if size > len as u64 {
                return Err(WeightsError::StorageTooLarge {
                    file: name.to_owned(),
                    key: printable(key),
                    claimed: u128::from(size),
                    available: len,
                });
            }
            (size == expected).then_some(()).ok_or_else(|| {
                WeightsError::malformed(
                    name,
                    format!(
                        "`{}` holds {size} bytes but storage `{}` needs {expected}",
                        printable(&entry),
                        printable(key)
                    ),
                )
            })
        })?;
        data.push((key.as_str(), bytes));
    }
    let storages: HashMap<&str, &[u8]> = data.iter().map(|(k, b)| (*k, b.as_slice())).collect();
    let tensors = collect::materialise(&entries, &storages, name, collect::budget_for(len))?;
    Ok(StateDict {
        format: Format::TorchZip,
        tensors,
    })
}

/// The archive's top folder: the one `X` with an entry `X/data.pkl`.
fn prefix(zip: &Archive<'_>, name: &str) -> Result<String, WeightsError> {
    let mut found: Vec<&[u8]> = zip
        .file_names_raw()
        .filter_map(|n| n.strip_suffix(b"/data.pkl"))
        .filter(|p| !p.is_empty() && !p.contains(&b'/'))
        .collect();
    found.dedup();
    match found.as_slice() {
        [p] => std::str::from_utf8(p)
            .map(str::to_owned)
            .map_err(|_| WeightsError::malformed(name, "the archive's folder name is not UTF-8")),
        [] => Err(WeightsError::malformed(
            name,
            "zip file without `<folder>/data.pkl`: not a PyTorch checkpoint",
        )),
        _ => Err(WeightsError::malformed(
            name,
            "zip file with several `<folder>/data.pkl`",
        )),
    }
}

fn check_byteorder(zip: &mut Archive<'_>, prefix: &str, name: &str) -> Result<(), WeightsError> {
    let entry = format!("{prefix}/byteorder");
    if zip.index_for_name_raw(entry.as_bytes()).is_none() {
        return Ok(()); // older writers omit it: little-endian
    }
    let order = read_entry(zip, &entry, name, |size| {
        (size <= 16)
            .then_some(())
            .ok_or_else(|| WeightsError::malformed(name, "`byteorder` entry too large"))
    })?;
    match order.as_slice() {
        b"little" => Ok(()),
        b"big" => Err(WeightsError::BigEndian {
            file: name.to_owned(),
        }),
        _ => Err(WeightsError::malformed(
            name,
            "`byteorder` is neither `little` nor `big`",
        )),
    }
}

/// Reads one entry whose declared size `check` accepts, never more than that size.
fn read_entry(
    zip: &mut Archive<'_>,
    entry: &str,
    name: &str,
    check: impl FnOnce(u64) -> Result<(), WeightsError>,
) -> Result<Vec<u8>, WeightsError> {
    // Look the name up by its bytes (hashed), then read the entry decompressed.
    let index = zip
        .index_for_name_raw(entry.as_bytes())
        .ok_or_else(|| WeightsError::malformed(name, format!("missing `{}`", printable(entry))))?;
    let file = zip.by_index(index).map_err(|e| zip_error(name, e))?;
    let size = file.size();
    check(size)?;
    let cap =
        usize::try_from(size).map_err(|_| WeightsError::malformed(name, "entry too large"))?;
    let mut out = Vec::with_capacity(cap);
    file.take(size)
        .read_to_end(&mut out)
        .map_err(|e| WeightsError::malformed(name, format!("`{}`: {e}", printable(entry))))?;
    if out.len() != cap {
        return Err(WeightsError::malformed(
            name,
            format!(
                "`{}` holds {} bytes, not the {size} its header says",
                printable(entry),
                out.len()
            ),
        ));
    }
    Ok(out)
}

fn zip_error(name: &str, source: ZipError) -> WeightsError {
    WeightsError::Zip {
        file: name.to_owned(),
        source,
    }
}
