//! Video files in and out, through FFmpeg's libraries (the `video` feature, on by default):
//! decoding any container and codec FFmpeg reads into RGB frames ([`Reader`]), stylising a
//! whole file frame by frame with its audio copied unchanged ([`transcode`]), and recording
//! the live window to MP4 ([`Recorder`]).
//!
//! Frames come out upright (rotation metadata is applied) with their own timestamps, so
//! variable frame rates survive: every output frame keeps its input frame's time. Output is
//! H.264 in MP4, MOV or MKV, or VP9 in WebM, as the file name's extension asks.
//!
//! Built without the feature, every entry point returns [`VideoError::NotBuilt`], which says
//! what to install.

use std::path::{Path, PathBuf};
use std::time::Duration;

#[cfg(feature = "video")]
mod ff;
#[cfg(not(feature = "video"))]
mod none;
mod record;

#[cfg(feature = "video")]
use ff::{open_recording, RecordSink};
#[cfg(feature = "video")]
pub use ff::{probe, synth, transcode, Reader};
#[cfg(not(feature = "video"))]
use none::{open_recording, RecordSink};
#[cfg(not(feature = "video"))]
pub use none::{probe, transcode, Reader};
pub use record::{Recorder, RECORD_PRESET};

/// File extensions taken as videos (batch mode picks these out of folders).
pub const VIDEO_EXTENSIONS: [&str; 12] = [
    "mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "ts", "mts", "m2ts", "3gp",
];

/// Output extensions and the containers they mean.
pub const OUTPUT_EXTENSIONS: [&str; 5] = ["mp4", "m4v", "mov", "mkv", "webm"];

/// The largest frame (in pixels, after `--content-size`) stylised as a video: 3840x2160. A
/// frame's activations take several GB at this size; larger pictures need tiles.
pub const MAX_PIXELS: u64 = 3840 * 2160;

/// Whether `path` names a video, by its extension.
pub fn is_video(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The container FFmpeg writes for an output file name, from its extension.
pub fn output_format(path: &Path) -> Result<&'static str, VideoError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("mp4" | "m4v") => Ok("mp4"),
        Some("mov") => Ok("mov"),
        Some("mkv") => Ok("matroska"),
        Some("webm") => Ok("webm"),
        _ => Err(VideoError::OutputKind { path: path.into() }),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error(
        "this stylecam was built without video support; rebuild it with its default features \
         (`cargo build --release`), which needs FFmpeg's libraries (on Debian or Ubuntu: \
         apt-get install libavcodec-dev libavformat-dev libavutil-dev libswscale-dev)"
    )]
    NotBuilt,
    #[error(
        "{path}: cannot read it as a video: {reason} (is it damaged, truncated or not a video?)"
    )]
    Open { path: PathBuf, reason: String },
    #[error("{path} has no video stream{found}")]
    NoVideo { path: PathBuf, found: String },
    #[error(
        "{path}: its video is {codec}, which this build of FFmpeg cannot decode; convert it to \
         H.264 first (for example `ffmpeg -i IN -c:v libx264 OUT.mp4`)"
    )]
    UnsupportedCodec { path: PathBuf, codec: String },
    #[error(
        "{path} is {width}x{height} ({mp:.1} megapixels); stylecam stylises video frames of at \
         most {cap:.1} megapixels (3840x2160): pass --content-size {suggest} (or smaller)",
        mp = *width as f64 * *height as f64 / 1e6,
        cap = MAX_PIXELS as f64 / 1e6
    )]
    TooLarge {
        path: PathBuf,
        width: u32,
        height: u32,
        suggest: u32,
    },
    #[error("{path} holds no video frames{range}")]
    NoFrames { path: PathBuf, range: String },
    #[error("{path} is damaged or truncated near {at:.1} s ({reason})")]
    Damaged {
        path: PathBuf,
        at: f64,
        reason: String,
    },
    #[error("{path}: write a video as .mp4, .m4v, .mov or .mkv (H.264) or .webm (VP9)")]
    OutputKind { path: PathBuf },
    #[error(
        "{path} cannot hold the source's {codec} audio, which is copied unchanged: write .mp4, \
         .mov or .mkv instead"
    )]
    AudioDoesNotFit { path: PathBuf, codec: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
    #[error("{path}: no {codec} encoder in this build of FFmpeg: {hint}")]
    NoEncoder {
        path: PathBuf,
        codec: &'static str,
        hint: &'static str,
    },
    #[error("stylising frame {frame}: {message}")]
    Frame { frame: u64, message: String },
    #[error("interrupted")]
    Cancelled,
    #[error("nothing was recorded: the recording stopped before the first frame arrived")]
    NothingRecorded,
}

/// What [`probe`] finds in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// The size frames come out at, rotation applied.
    pub width: u32,
    pub height: u32,
    /// Clockwise degrees the frames are turned to stand upright: 0, 90, 180 or 270.
    pub rotation: u32,
    /// The average frame rate, when the file says.
    pub frame_rate: Option<f64>,
    /// The video stream's length, when the file says.
    pub duration: Option<f64>,
    /// The number of frames, when the file says (or estimated from length and rate).
    pub frames: Option<u64>,
    /// The video codec's name, as `h264`.
    pub codec: String,
    /// The audio codec's name, if there is an audio stream.
    pub audio: Option<String>,
}

/// One decoded frame: upright RGB and its time in seconds from the file's start.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    pub image: image::RgbImage,
    pub time: f64,
}

/// Which part of the input to stylise, and how well to encode.
#[derive(Debug, Clone, Default)]
pub struct TranscodeOptions {
    /// Skip to this time first.
    pub start: Option<Duration>,
    /// Stop after this much.
    pub duration: Option<Duration>,
    /// The x264 preset (`medium` when `None`).
    pub preset: Option<String>,
    /// The x264 constant rate factor (18 when `None`: visually lossless).
    pub crf: Option<u32>,
}

/// What [`transcode`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub frames: u64,
    pub width: u32,
    pub height: u32,
    /// Whether an audio stream was copied.
    pub audio: bool,
}

/// The x264 constant rate factor when none is asked for.
pub const DEFAULT_CRF: u32 = 18;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn videos_are_known_by_extension() {
        assert!(is_video(Path::new("a/clip.MP4")));
        assert!(is_video(Path::new("x.webm")));
        assert!(!is_video(Path::new("x.png")));
        assert!(!is_video(Path::new("mp4")));
        assert_eq!(output_format(Path::new("o.mkv")).unwrap(), "matroska");
        let e = output_format(Path::new("o.gif")).unwrap_err().to_string();
        assert!(e.contains("o.gif") && e.contains(".mp4"), "{e}");
    }
}
