//! Without the `video` feature: every entry point says how to get video support.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use image::RgbImage;

use super::{Summary, TranscodeOptions, VideoError, VideoFrame, VideoInfo};

pub fn probe(_path: &Path) -> Result<VideoInfo, VideoError> {
    Err(VideoError::NotBuilt)
}

pub fn transcode(
    _input: &Path,
    _output: &Path,
    _name: &Path,
    _opts: &TranscodeOptions,
    _stylize: &mut dyn FnMut(RgbImage) -> Result<RgbImage, String>,
    _progress: &mut dyn FnMut(u64, Option<u64>),
    _cancel: &AtomicBool,
) -> Result<Summary, VideoError> {
    Err(VideoError::NotBuilt)
}

/// Never opens anything.
pub struct Reader;

impl Reader {
    pub fn open(_path: &Path) -> Result<Self, VideoError> {
        Err(VideoError::NotBuilt)
    }

    pub fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        Err(VideoError::NotBuilt)
    }
}

pub(super) struct RecordSink;

impl RecordSink {
    pub fn write(&mut self, _frame: &RgbImage, _pts: i64) -> Result<(), VideoError> {
        Err(VideoError::NotBuilt)
    }

    pub fn finish_at(self, _end: Option<i64>) -> Result<(), VideoError> {
        Err(VideoError::NotBuilt)
    }
}

pub(super) fn open_recording(
    _path: &Path,
    _name: &Path,
    _width: u32,
    _height: u32,
) -> Result<RecordSink, VideoError> {
    Err(VideoError::NotBuilt)
}
