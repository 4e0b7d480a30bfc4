//! Where results go: only to regular files or new paths, in the format the name says, with the
//! usual file mode, through a temporary file that never outlives the run.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use image::{ImageFormat, RgbImage};
use tempfile::NamedTempFile;

use super::{encode, write_temp, ImageError, TEMP_PREFIX};

/// Temporary files of stylecam's older than this are left over from a run that was killed
/// (a live write touches its file all the time), and are removed.
pub const STALE_AFTER: Duration = Duration::from_secs(10 * 60);

/// The picture formats `-o` writes, chosen by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Png,
    Jpeg,
    WebP,
    Bmp,
}

impl OutputFormat {
    /// The format `path`'s extension names (case-insensitive); an unknown or missing extension
    /// is an error that lists the known ones.
    pub fn from_path(path: &Path) -> Result<Self, ImageError> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("png") => Ok(Self::Png),
            Some("jpg" | "jpeg") => Ok(Self::Jpeg),
            Some("webp") => Ok(Self::WebP),
            Some("bmp") => Ok(Self::Bmp),
            other => Err(ImageError::BadOutput {
                path: path.into(),
                reason: format!(
                    "{}: name the output .png, .jpg, .jpeg, .webp (lossless) or .bmp",
                    match other {
                        Some(e) => format!("stylecam cannot write .{e} pictures"),
                        None => "the name has no extension to choose the format by".into(),
                    }
                ),
            }),
        }
    }

    fn image_format(self) -> ImageFormat {
        match self {
            Self::Png => ImageFormat::Png,
            Self::Jpeg => ImageFormat::Jpeg,
            Self::WebP => ImageFormat::WebP,
            Self::Bmp => ImageFormat::Bmp,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Self::Png => ".png.part",
            Self::Jpeg => ".jpg.part",
            Self::WebP => ".webp.part",
            Self::Bmp => ".bmp.part",
        }
    }
}

/// Whether `path` may be written: a new name in an existing folder, or (with `force`) a regular
/// file. Folders, links, devices, pipes and sockets are never replaced, with or without
/// `force`. Called before any work, so a refusal costs nothing.
pub fn check_output(path: &Path, force: bool) -> Result<(), ImageError> {
    let bad = |reason: String| ImageError::BadOutput {
        path: path.into(),
        reason,
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) => {
            let t = m.file_type();
            if t.is_dir() {
                return Err(bad("is a folder: give a file name, or --output DIR".into()));
            }
            if t.is_symlink() {
                return Err(bad(
                    "is a symbolic link, which stylecam does not replace: give the path it \
                     points to, or another name"
                        .into(),
                ));
            }
            if !t.is_file() {
                return Err(bad(
                    "is not a regular file (a device, pipe or socket), which stylecam never \
                     replaces, even with --force: give a file name"
                        .into(),
                ));
            }
            if !force {
                return Err(ImageError::Exists { path: path.into() });
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dir = folder_of(path);
            if dir.is_dir() {
                Ok(())
            } else {
                Err(bad(format!(
                    "the folder {} does not exist: create it first",
                    dir.display()
                )))
            }
        }
        Err(e) => Err(ImageError::Write {
            path: path.into(),
            error: e,
        }),
    }
}

/// The folder a file `path` goes in (`.` for a bare name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `img` to `path` in the format its extension names ([`OutputFormat::from_path`]).
pub fn save(img: &RgbImage, path: &Path, overwrite: bool) -> Result<(), ImageError> {
    save_as(img, path, overwrite, OutputFormat::from_path(path)?)
}

/// Writes `img` as `format` atomically: a temporary file in the same folder, then a rename. An
/// existing file is kept unless `overwrite`; a replaced file keeps its mode; a new one gets
/// 0666 less the umask. Only a regular file is ever replaced ([`check_output`]).
pub fn save_as(
    img: &RgbImage,
    path: &Path,
    overwrite: bool,
    format: OutputFormat,
) -> Result<(), ImageError> {
    let io_err = |error| ImageError::Write {
        path: path.into(),
        error,
    };
    check_output(path, overwrite)?;
    let tmp = write_temp(&folder_of(path), format.suffix(), |w| {
        encode(img, w, format.image_format())
    })
    .map_err(io_err)?;
    persist(tmp, path, overwrite)
}

/// Moves a finished temporary file (in `path`'s folder) to `path`: replacing a regular file
/// only with `overwrite`, and then with that file's mode.
pub fn persist(tmp: NamedTempFile, path: &Path, overwrite: bool) -> Result<(), ImageError> {
    let io_err = |error| ImageError::Write {
        path: path.into(),
        error,
    };
    check_output(path, overwrite)?;
    if let Ok(old) = std::fs::metadata(path) {
        tmp.as_file()
            .set_permissions(old.permissions())
            .map_err(io_err)?;
    }
    if overwrite {
        // Checked above, then one rename: a path that turned into something else meanwhile is
        // replaced as a directory entry, never written through.
        tmp.persist(path).map_err(|e| io_err(e.error))?;
    } else {
        // persist_noclobber fails instead of replacing a file that appeared meanwhile.
        tmp.persist_noclobber(path)
            .map_err(|e| match e.error.kind() {
                io::ErrorKind::AlreadyExists => ImageError::Exists { path: path.into() },
                _ => io_err(e.error),
            })?;
    }
    Ok(())
}

/// Removes stylecam's temporary files (`.stylecam-*.part`) in `dir` that are older than
/// [`STALE_AFTER`]: left by a run that was killed. Best effort: what cannot be listed or
/// removed stays.
pub fn clean_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(TEMP_PREFIX) && name.ends_with(".part")) {
            continue;
        }
        let Ok(meta) = entry.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_AFTER);
        if meta.is_file() && old {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::info!("removed a stale temporary file {}", entry.path().display())
                }
                Err(e) => tracing::debug!("{}: {e}", entry.path().display()),
            }
        }
    }
}
