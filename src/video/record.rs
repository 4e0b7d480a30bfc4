//! Recording the live window to MP4: frames go in with the time they were shown, the file is
//! written to a hidden temporary file beside its final name and moved into place only once it
//! is complete, so a stop always leaves a playable file or none.

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::RgbImage;
use tempfile::NamedTempFile;

use super::{open_recording, RecordSink, VideoError};
use crate::image_io;

/// x264's preset for recordings: fast enough to keep up with the window on a laptop's CPU.
pub const RECORD_PRESET: &str = "veryfast";

/// One MP4 recording. The file is opened at the first frame (its size is the first frame's;
/// later frames of another size are fitted in, letterboxed).
pub struct Recorder {
    dir: PathBuf,
    stem: String,
    open: Option<(NamedTempFile, RecordSink)>,
    first: Option<Instant>,
    frames: u64,
}

impl Recorder {
    /// A recording to be saved in `dir` (created if missing) as `stem.mp4`, or `stem-2.mp4`,
    /// ... if that is taken.
    pub fn new(dir: &Path, stem: &str) -> Self {
        Self {
            dir: dir.into(),
            stem: stem.into(),
            open: None,
            first: None,
            frames: 0,
        }
    }

    /// The name the file will get (for messages).
    pub fn name(&self) -> PathBuf {
        self.dir.join(format!("{}.mp4", self.stem))
    }

    fn write_err(&self, e: std::io::Error) -> VideoError {
        VideoError::Write {
            path: self.name(),
            reason: e.to_string(),
        }
    }

    /// Adds a frame shown at `at`. On an error (a full disk, say) the recording is over: drop
    /// it, and its temporary file goes with it.
    pub fn push(&mut self, frame: &RgbImage, at: Instant) -> Result<(), VideoError> {
        let first = *self.first.get_or_insert(at);
        if self.open.is_none() {
            std::fs::create_dir_all(&self.dir).map_err(|e| self.write_err(e))?;
            let tmp = tempfile::Builder::new()
                .prefix(".stylecam-")
                .suffix(".mp4.part")
                .tempfile_in(&self.dir)
                .map_err(|e| self.write_err(e))?;
            let sink = open_recording(tmp.path(), &self.name(), frame.width(), frame.height())?;
            self.open = Some((tmp, sink));
        }
        let ms = at.saturating_duration_since(first).as_millis();
        let pts = i64::try_from(ms).unwrap_or(i64::MAX);
        if let Some((_, sink)) = &mut self.open {
            sink.write(frame, pts)?;
        }
        self.frames += 1;
        Ok(())
    }

    /// Frames recorded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Finishes the file, the last frame shown until `stopped`, and moves it to its name;
    /// returns the path. With no frames there is no file, and an error says so.
    pub fn finish(self, stopped: Instant) -> Result<PathBuf, VideoError> {
        let name = self.name();
        let Some((tmp, sink)) = self.open else {
            return Err(VideoError::NothingRecorded);
        };
        let end = self.first.map(|first| {
            let ms = stopped.saturating_duration_since(first).as_millis();
            i64::try_from(ms).unwrap_or(i64::MAX)
        });
        sink.finish_at(end)?;
        tmp.as_file().sync_all().map_err(|e| VideoError::Write {
            path: name.clone(),
            reason: e.to_string(),
        })?;
        image_io::persist_numbered(tmp, &self.dir, &self.stem, "mp4").map_err(|e| {
            VideoError::Write {
                path: name,
                reason: e.to_string(),
            }
        })
    }
}
