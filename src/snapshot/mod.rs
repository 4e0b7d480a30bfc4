//! Keeping what the live window shows: PNG snapshots (optionally the camera frame beside the
//! stylised one), a 3-2-1 countdown for photo booths and short animated GIF clips.
//!
//! Every file is written to a hidden temporary file in the target folder and then moved to its
//! final name in one atomic, no-clobber step; a name already taken gets `-2`, `-3`, ... so two
//! snapshots in the same second never overwrite each other or anything else.

use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local};
use image::{imageops, imageops::FilterType, ImageFormat, RgbImage};

use crate::image_io;

mod clip;
mod countdown;

pub use clip::{ClipRecorder, CLIP_FPS, MAX_CLIP_BYTES, MAX_CLIP_FRAMES, MAX_CLIP_SECS};
pub use countdown::{draw_count, Countdown};

/// Every snapshot and clip name starts with this.
pub const PREFIX: &str = "stylecam";
/// The timestamp in file names: `2026-11-27_14-03-05` (local time; sorts by date, no `:`).
pub const TIME_FORMAT: &str = "%Y-%m-%d_%H-%M-%S";
/// Tags are cut to this many characters.
pub const MAX_TAG_CHARS: usize = 48;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(
        "cannot create the snapshot folder {dir}: {source}; \
         pass --snapshot-dir DIR to save somewhere else"
    )]
    CreateDir { dir: PathBuf, source: io::Error },
    #[error(
        "cannot save {what} in {dir}: {source}; check that the folder is writable and has \
         space, or pass --snapshot-dir DIR to save somewhere else"
    )]
    Write {
        what: &'static str,
        dir: PathBuf,
        source: io::Error,
    },
    #[error("the clip has no frames yet: keep recording for a moment before saving it")]
    EmptyClip,
}

/// Saves `image` as `stylecam-<date>_<time>-<tag>.png` in `dir` (created if missing) and
/// returns the path. `tag` (a style name, say) is cleaned to letters, digits, `-` and `_`; an
/// empty tag leaves it out. Never replaces a file: a taken name gets `-2`, `-3`, ...
pub fn save_snapshot(
    dir: &Path,
    image: &RgbImage,
    tag: &str,
    now: DateTime<Local>,
) -> Result<PathBuf, SnapshotError> {
    write_new(dir, &stem(now, tag), "png", "the snapshot", |w| {
        image_io::encode(image, w, ImageFormat::Png)
    })
}

/// The file stem for a snapshot taken at `now`: `stylecam-2026-11-27_14-03-05-<tag>`.
pub fn stem(now: DateTime<Local>, tag: &str) -> String {
    let tag = clean_tag(tag);
    let time = now.format(TIME_FORMAT);
    if tag.is_empty() {
        format!("{PREFIX}-{time}")
    } else {
        format!("{PREFIX}-{time}-{tag}")
    }
}

/// Keeps letters, digits, `-` and `_`; anything else becomes `-`; at most [`MAX_TAG_CHARS`].
fn clean_tag(tag: &str) -> String {
    let cleaned: String = tag
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(MAX_TAG_CHARS)
        .collect();
    cleaned.trim_matches('-').to_string()
}

/// Creates `dir`, writes through a temporary file and moves it to the first free
/// `stem[-n].ext`.
fn write_new(
    dir: &Path,
    stem: &str,
    ext: &str,
    what: &'static str,
    write: impl FnOnce(&mut io::BufWriter<&std::fs::File>) -> io::Result<()>,
) -> Result<PathBuf, SnapshotError> {
    std::fs::create_dir_all(dir).map_err(|source| SnapshotError::CreateDir {
        dir: dir.into(),
        source,
    })?;
    let write_err = |source| SnapshotError::Write {
        what,
        dir: dir.into(),
        source,
    };
    let tmp = image_io::write_temp(dir, &format!(".{ext}.part"), write).map_err(write_err)?;
    image_io::persist_numbered(tmp, dir, stem, ext).map_err(write_err)
}

/// The camera frame on the left, the stylised frame on the right, both at the stylised frame's
/// height (the original is resized, keeping its aspect ratio, when the heights differ). An empty
/// original gives a copy of the stylised frame.
pub fn side_by_side(original: &RgbImage, stylized: &RgbImage) -> RgbImage {
    let h = stylized.height();
    let (ow, oh) = original.dimensions();
    let resized;
    let left = if oh == h {
        original
    } else if ow == 0 || oh == 0 || h == 0 {
        return stylized.clone();
    } else {
        let w = ((u64::from(ow) * u64::from(h) + u64::from(oh) / 2) / u64::from(oh)).max(1);
        let w = u32::try_from(w).unwrap_or(u32::MAX);
        resized = imageops::resize(original, w, h, FilterType::Triangle);
        &resized
    };
    let mut out = RgbImage::new(left.width().saturating_add(stylized.width()), h);
    imageops::replace(&mut out, left, 0, 0);
    imageops::replace(&mut out, stylized, i64::from(left.width()), 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_carry_the_time_and_a_clean_tag() {
        let t = Local.with_ymd_and_hms(2026, 11, 27, 14, 3, 5).unwrap();
        assert_eq!(stem(t, "la_muse"), "stylecam-2026-11-27_14-03-05-la_muse");
        assert_eq!(stem(t, ""), "stylecam-2026-11-27_14-03-05");
        assert_eq!(stem(t, "../a b/c?"), "stylecam-2026-11-27_14-03-05-a-b-c");
        assert_eq!(clean_tag(&"x".repeat(100)).len(), MAX_TAG_CHARS);
    }

    #[test]
    fn side_by_side_of_an_empty_original_is_the_stylised_frame() {
        let s = RgbImage::from_pixel(4, 3, image::Rgb([9, 9, 9]));
        assert_eq!(side_by_side(&RgbImage::new(0, 0), &s), s);
    }
}
