//! Still pictures as a source: one image file shown repeatedly, or a folder shown as a slideshow.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::RgbImage;

use super::{CaptureError, Frame, FrameSource, Pacer};
use crate::image_io::load_rgb;

/// One image, produced again and again at a set rate (so the pipeline treats it like a camera
/// pointed at a photo).
pub struct ImageFile {
    path: PathBuf,
    image: RgbImage,
    fps: u32,
    seq: u64,
    pacer: Pacer,
}

impl ImageFile {
    pub fn open(path: &Path, fps: u32) -> Result<Self, CaptureError> {
        Ok(Self {
            path: path.to_path_buf(),
            image: load_rgb(path)?,
            fps: fps.max(1),
            seq: 0,
            pacer: Pacer::new(fps),
        })
    }
}

impl FrameSource for ImageFile {
    fn describe(&self) -> String {
        format!(
            "image {} ({}x{}) at {} fps",
            self.path.display(),
            self.image.width(),
            self.image.height(),
            self.fps
        )
    }

    fn next_frame(&mut self) -> Result<Frame, CaptureError> {
        let captured_at = self.pacer.wait();
        let seq = self.seq;
        self.seq += 1;
        Ok(Frame {
            image: self.image.clone(),
            seq,
            captured_at,
        })
    }
}

/// The images of a folder, sorted by file name, each shown for a while, round and round.
/// Files that cannot be read as images are skipped with a warning (and not tried again).
pub struct Slideshow {
    dir: PathBuf,
    /// Candidate files, sorted by name; unreadable ones are removed as they are found.
    entries: Vec<PathBuf>,
    /// Index in `entries` of the image shown.
    pos: usize,
    current: RgbImage,
    shown_at: Instant,
    slide: Duration,
    fps: u32,
    seq: u64,
    pacer: Pacer,
}

impl Slideshow {
    /// Lists `dir` (regular files, not hidden ones) and loads the first readable image.
    pub fn open(dir: &Path, slide: Duration, fps: u32) -> Result<Self, CaptureError> {
        let folder_err = |source| CaptureError::Folder {
            path: dir.to_path_buf(),
            source,
        };
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(folder_err)? {
            let entry = entry.map_err(folder_err)?;
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if !hidden && entry.path().is_file() {
                entries.push(entry.path());
            }
        }
        entries.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        if entries.is_empty() {
            return Err(CaptureError::EmptyFolder {
                path: dir.to_path_buf(),
            });
        }
        let count = entries.len();
        let mut show = Self {
            dir: dir.to_path_buf(),
            entries,
            pos: 0,
            current: RgbImage::new(1, 1),
            shown_at: Instant::now(),
            slide: slide.max(Duration::from_millis(1)),
            fps: fps.max(1),
            seq: 0,
            pacer: Pacer::new(fps),
        };
        match show.load_from(0) {
            Some(()) => Ok(show),
            None => Err(CaptureError::NoReadableImages {
                path: dir.to_path_buf(),
                count,
            }),
        }
    }

    /// Loads the first readable image at or after `start` (wrapping), dropping unreadable ones.
    fn load_from(&mut self, start: usize) -> Option<()> {
        let mut i = start;
        while !self.entries.is_empty() {
            if i >= self.entries.len() {
                i = 0;
            }
            match load_rgb(&self.entries[i]) {
                Ok(img) => {
                    self.current = img;
                    self.pos = i;
                    return Some(());
                }
                Err(e) => {
                    tracing::warn!("{e}; skipping it in the slideshow");
                    self.entries.remove(i);
                }
            }
        }
        None
    }
}

impl FrameSource for Slideshow {
    fn describe(&self) -> String {
        let name = self
            .entries
            .get(self.pos)
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!(
            "slideshow {} ({} images, {:.1} s each, at {} fps): {name}",
            self.dir.display(),
            self.entries.len(),
            self.slide.as_secs_f64(),
            self.fps
        )
    }

    fn next_frame(&mut self) -> Result<Frame, CaptureError> {
        let captured_at = self.pacer.wait();
        if captured_at.saturating_duration_since(self.shown_at) >= self.slide {
            let count = self.entries.len();
            if self.load_from(self.pos + 1).is_none() {
                return Err(CaptureError::NoReadableImages {
                    path: self.dir.clone(),
                    count,
                });
            }
            self.shown_at = captured_at;
            tracing::debug!("slideshow: {}", self.describe());
        }
        let seq = self.seq;
        self.seq += 1;
        Ok(Frame {
            image: self.current.clone(),
            seq,
            captured_at,
        })
    }
}
