//! The live window's remembered settings: `settings.json` in the config dir.
//!
//! Loading never fails: a missing file gives the defaults; a damaged or unreadable one gives
//! the defaults plus a warning to show, and is first moved aside to `settings.json.bad`
//! (`-2`, `-3`, ... if that is taken) so nothing is lost. Every field has a default, so older
//! or hand-trimmed files load; unknown fields are ignored; numbers are pulled into range.
//! Saving is atomic (a temporary file, then a rename over the old file).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::controls::Controls;
use crate::image_io::{persist_numbered, write_temp};
use crate::paths::{self, CONFIG_DIR_ENV};

/// The settings file's name inside the config dir.
pub const FILE_NAME: &str = "settings.json";
/// Accepted seconds between automatic style changes.
pub const AUTO_CYCLE_RANGE: std::ops::RangeInclusive<u32> = 1..=3600;
/// Accepted clip lengths in seconds.
pub const CLIP_SECS_RANGE: std::ops::RangeInclusive<u32> = 1..=crate::snapshot::MAX_CLIP_SECS;

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "cannot save the settings to {path}: {source}; check that its folder is writable, or \
         set {CONFIG_DIR_ENV} to another folder"
    )]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "cannot tell where to keep the settings: this system reports no config directory; \
         set {CONFIG_DIR_ENV} to a folder"
    )]
    NoConfigDir,
}

/// What the live window remembers between runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub controls: Controls,
    /// The camera last used: its index (`"0"`) or its name as the system reports it.
    pub camera: Option<String>,
    /// Show the picture mirrored, like a mirror (the usual way to face a webcam).
    pub mirror: bool,
    /// Show the camera frame beside the stylised one (snapshots then hold both).
    pub side_by_side: bool,
    pub show_panel: bool,
    /// Move to the next style every this many seconds; `None` = off.
    pub auto_cycle_secs: Option<u32>,
    /// Count 3-2-1 before a snapshot (photo booth).
    pub countdown: bool,
    /// Where snapshots and clips go; `None` = `--snapshot-dir` or the pictures folder.
    pub snapshot_dir: Option<PathBuf>,
    /// How long a GIF clip records.
    pub clip_secs: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            controls: Controls::default(),
            camera: None,
            mirror: true,
            side_by_side: false,
            show_panel: true,
            auto_cycle_secs: None,
            countdown: false,
            snapshot_dir: None,
            clip_secs: 3,
        }
    }
}

impl Settings {
    /// The same settings with every number in range (`auto_cycle_secs: 0` means off).
    pub fn clamped(mut self) -> Self {
        self.controls = self.controls.clamped();
        self.auto_cycle_secs = self
            .auto_cycle_secs
            .filter(|&s| s > 0)
            .map(|s| s.clamp(*AUTO_CYCLE_RANGE.start(), *AUTO_CYCLE_RANGE.end()));
        self.clip_secs = self
            .clip_secs
            .clamp(*CLIP_SECS_RANGE.start(), *CLIP_SECS_RANGE.end());
        self
    }
}

/// `settings.json` in the config dir (`STYLECAM_CONFIG_DIR` or the platform's).
pub fn default_path() -> Result<PathBuf, SettingsError> {
    paths::config_dir()
        .map(|d| d.join(FILE_NAME))
        .ok_or(SettingsError::NoConfigDir)
}

/// Reads the settings at `path`, clamped. A missing file gives the defaults and no warning; a
/// file that cannot be read or parsed gives the defaults and a warning for the user, after
/// moving the file aside to `<name>.bad` so that the next save does not destroy it.
pub fn load(path: &Path) -> (Settings, Option<String>) {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (Settings::default(), None),
        Err(e) => {
            let kept = set_aside(path, None);
            let warning = format!(
                "{}: cannot read the settings ({e}); using the defaults. {}",
                path.display(),
                kept_note(path, kept)
            );
            return (Settings::default(), Some(warning));
        }
    };
    match serde_json::from_slice::<Settings>(&bytes) {
        Ok(s) => (s.clamped(), None),
        Err(e) => {
            let kept = set_aside(path, Some(&bytes));
            let warning = format!(
                "{}: the settings file is damaged ({e}); using the defaults. {}",
                path.display(),
                kept_note(path, kept)
            );
            (Settings::default(), Some(warning))
        }
    }
}

fn kept_note(path: &Path, kept: io::Result<PathBuf>) -> String {
    match kept {
        Ok(bad) => format!(
            "The old file was kept as {}; a new one will replace it when settings are saved.",
            bad.display()
        ),
        Err(e) => format!(
            "It could not be moved aside ({e}): fix or remove {} yourself, or it will be \
             replaced when settings are saved.",
            path.display()
        ),
    }
}

/// Moves `path` to the first free `<name>.bad[-n]` beside it without replacing anything:
/// a copy of `bytes` written atomically when its contents are known, else a hard link; then
/// the original is removed.
fn set_aside(path: &Path, bytes: Option<&[u8]>) -> io::Result<PathBuf> {
    let dir = parent(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| FILE_NAME.to_string());
    let stem = format!("{name}.bad");
    let bad = match bytes {
        Some(bytes) => {
            let tmp = write_temp(&dir, ".bad.part", |w| w.write_all(bytes))?;
            persist_numbered(tmp, &dir, &stem, "")?
        }
        None => link_numbered(path, &dir, &stem)?,
    };
    std::fs::remove_file(path)?;
    Ok(bad)
}

fn link_numbered(path: &Path, dir: &Path, stem: &str) -> io::Result<PathBuf> {
    for n in 1..=crate::image_io::MAX_NUMBERED {
        let to = dir.join(crate::image_io::numbered_name(stem, "", n));
        match std::fs::hard_link(path, &to) {
            Ok(()) => return Ok(to),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{stem} and its numbered copies are all taken"),
    ))
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `settings` to `path` atomically (creating its folder): readers see the old file or
/// the new one, never half of one.
pub fn save(path: &Path, settings: &Settings) -> Result<(), SettingsError> {
    let err = |source| SettingsError::Write {
        path: path.into(),
        source,
    };
    let dir = parent(path);
    std::fs::create_dir_all(&dir).map_err(err)?;
    let mut json = serde_json::to_vec_pretty(settings).map_err(|e| err(io::Error::other(e)))?;
    json.push(b'\n');
    let tmp = write_temp(&dir, ".json.part", |w| w.write_all(&json)).map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_auto_cycle_means_off() {
        let s = Settings {
            auto_cycle_secs: Some(0),
            clip_secs: 0,
            ..Settings::default()
        }
        .clamped();
        assert_eq!((s.auto_cycle_secs, s.clip_secs), (None, 1));
    }
}
