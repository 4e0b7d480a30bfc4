//! Frame sources: a webcam (nokhwa), a moving test pattern, an image file or a folder slideshow.
//!
//! Every source is a blocking [`FrameSource`]: `next_frame` returns when the next frame is ready,
//! so each source paces itself (the camera at its own rate, the others at a set fps). The
//! pipeline's capture thread owns one and pulls from it; see `docs/PIPELINE.md` for how to add one.

pub mod camera;
pub mod files;
pub mod pattern;

use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

use image::RgbImage;

use crate::image_io::ImageError;

pub use camera::{list_cameras, CameraInfo, CameraSource};
pub use files::{ImageFile, Slideshow};
pub use pattern::TestPattern;

/// One captured picture.
#[derive(Debug, Clone)]
pub struct Frame {
    pub image: RgbImage,
    /// Counts up from 0. A source numbers its own frames; the pipeline renumbers them so that
    /// sequence numbers never repeat across a reopened or switched source.
    pub seq: u64,
    /// When the source had the picture (for a camera: when the driver handed it over, before
    /// decoding), the start of the latency the pipeline measures.
    pub captured_at: Instant,
}

/// A blocking source of frames. `Send` so that it can be opened on one thread and read on another.
pub trait FrameSource: Send {
    /// What the source is, for the window's status line: "camera 0 (HD Webcam): 640x480 MJPEG at
    /// 30 fps", "test pattern 640x480 at 30 fps", ...
    fn describe(&self) -> String;
    /// Waits for and returns the next frame. An error means the source is lost (the pipeline drops
    /// it and reopens it later); a source that can carry on after a bad frame does so itself.
    fn next_frame(&mut self) -> Result<Frame, CaptureError>;
}

/// What to capture from, as the user writes it: `camera`, `camera:N`, `test-pattern` or a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A webcam by index (0 is the first).
    Camera(u32),
    /// The built-in moving test pattern.
    TestPattern,
    /// An image file (shown repeatedly) or a folder of images (a slideshow).
    Path(PathBuf),
}

impl FromStr for SourceSpec {
    type Err = CaptureError;

    /// `camera` (= `camera:0`), `camera:N`, `test-pattern` (or `pattern`), anything else is a
    /// path (write `./camera` for a file named `camera`). Whether the path exists is checked when
    /// the source is opened.
    fn from_str(s: &str) -> Result<Self, CaptureError> {
        let t = s.trim();
        let bad = |reason: String| CaptureError::BadSpec {
            spec: s.to_string(),
            reason,
        };
        if t.is_empty() {
            return Err(bad("it is empty".into()));
        }
        if t == "camera" {
            return Ok(SourceSpec::Camera(0));
        }
        if let Some(n) = t.strip_prefix("camera:") {
            return n
                .trim()
                .parse::<u32>()
                .map(SourceSpec::Camera)
                .map_err(|_| {
                    bad(format!(
                        "`{n}` is not a camera number (write camera:0, camera:1, ...)"
                    ))
                });
        }
        if t == "test-pattern" || t == "pattern" {
            return Ok(SourceSpec::TestPattern);
        }
        Ok(SourceSpec::Path(PathBuf::from(t)))
    }
}

impl SourceSpec {
    /// The source to start with: `flag` (the command line's `--source`) if given, else the one
    /// the settings remember (text as [`SourceSpec::from_str`] reads it; unreadable text is
    /// ignored), else the first camera.
    pub fn chosen(flag: Option<&SourceSpec>, remembered: Option<&str>) -> SourceSpec {
        match flag {
            Some(s) => s.clone(),
            None => remembered
                .and_then(|s| s.parse().ok())
                .unwrap_or(SourceSpec::Camera(0)),
        }
    }
}

impl std::fmt::Display for SourceSpec {
    /// The form `from_str` reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceSpec::Camera(i) => write!(f, "camera:{i}"),
            SourceSpec::TestPattern => write!(f, "test-pattern"),
            SourceSpec::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// How to open a source. Each field says which sources use it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceConfig {
    /// Camera: the wanted capture size (the closest the camera offers is used; default 640x480).
    /// Test pattern: its size (default 640x480). Image files keep their own size.
    pub resolution: Option<(u32, u32)>,
    /// Camera: the wanted frame rate (the closest offered, preferring faster; default 30).
    /// Test pattern, image file, slideshow: the rate frames are produced at (default 30,
    /// clamped to 5..=240 so that a waiting source never delays shutdown long).
    pub fps: Option<u32>,
    /// Slideshow: how long each image is shown (default 3 s).
    pub slide_duration: Duration,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            resolution: None,
            fps: None,
            slide_duration: Duration::from_secs(3),
        }
    }
}

/// Default size of the test pattern and the size asked of a camera.
pub const DEFAULT_SIZE: (u32, u32) = (640, 480);
/// Default frame rate of every source.
pub const DEFAULT_FPS: u32 = 30;

impl SourceConfig {
    /// A camera size and rate as the command line gives them (`--camera-size`, `--fps`), with
    /// the other fields at their defaults.
    pub fn new(resolution: Option<(u32, u32)>, fps: Option<u32>) -> Self {
        Self {
            resolution,
            fps,
            ..Self::default()
        }
    }

    /// The rate a self-paced source (pattern, image, slideshow) runs at.
    pub fn paced_fps(&self) -> u32 {
        self.fps.unwrap_or(DEFAULT_FPS).clamp(5, 240)
    }
}

const ACCESS_HINT: &str = "check that a webcam is connected and that this user may use it \
(Linux: the `video` group; macOS: System Settings › Privacy › Camera)";

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("`{spec}` is not a source: {reason}; use camera, camera:N, test-pattern, or the path of an image or a folder of images")]
    BadSpec { spec: String, reason: String },
    #[error("no camera found (camera {index}): {reason}; {ACCESS_HINT}")]
    NoCamera { index: u32, reason: String },
    #[error("cannot open camera {index} ({name}): {reason}; close other programs that use it, and {ACCESS_HINT}")]
    CameraOpen {
        index: u32,
        name: String,
        reason: String,
    },
    #[error("camera {index} ({name}) stopped delivering frames: {reason}; check its cable or pick another camera")]
    CameraLost {
        index: u32,
        name: String,
        reason: String,
    },
    #[error("cannot list the cameras: {reason}")]
    ListCameras { reason: String },
    #[error("{}: no such file or folder; a source is camera, camera:N, test-pattern, or the path of an image or a folder of images", path.display())]
    NotFound { path: PathBuf },
    #[error("{}: cannot read the folder: {source}", path.display())]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: the folder has no files; put PNG or JPEG images in it or pick another source", path.display())]
    EmptyFolder { path: PathBuf },
    #[error("{}: none of its {count} files is a readable image; put PNG or JPEG images in it or pick another source", path.display())]
    NoReadableImages { path: PathBuf, count: usize },
    #[error(transparent)]
    Image(#[from] ImageError),
    /// For sources outside this module (and test doubles): `what` names the source.
    #[error("{what}: {message}")]
    Source { what: String, message: String },
}

/// Opens the source `spec` names.
///
/// A camera opens on its own thread and this waits for it (normally well under a second; on
/// macOS the first call may wait for the user to answer the camera-permission prompt). A camera
/// that cannot be opened is an error here; falling back to the test pattern is the pipeline's
/// decision.
pub fn open(
    spec: &SourceSpec,
    config: &SourceConfig,
) -> Result<Box<dyn FrameSource>, CaptureError> {
    Ok(match spec {
        SourceSpec::Camera(index) => Box::new(CameraSource::open(*index, config)?),
        SourceSpec::TestPattern => {
            let (w, h) = config.resolution.unwrap_or(DEFAULT_SIZE);
            Box::new(TestPattern::new(w, h, config.paced_fps()))
        }
        SourceSpec::Path(path) => {
            if path.is_dir() {
                Box::new(Slideshow::open(
                    path,
                    config.slide_duration,
                    config.paced_fps(),
                )?)
            } else if path.is_file() {
                Box::new(ImageFile::open(path, config.paced_fps())?)
            } else {
                return Err(CaptureError::NotFound { path: path.clone() });
            }
        }
    })
}

/// Sleeps until the next frame is due at a fixed rate, for self-paced sources. A source that
/// falls behind by more than a frame starts afresh instead of producing a burst.
#[derive(Debug)]
pub struct Pacer {
    period: Duration,
    next: Option<Instant>,
}

impl Pacer {
    pub fn new(fps: u32) -> Self {
        Self {
            period: Duration::from_secs_f64(1.0 / fps.max(1) as f64),
            next: None,
        }
    }

    /// Waits for the next slot and returns the time it began.
    pub fn wait(&mut self) -> Instant {
        if let Some(due) = self.next {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let now = Instant::now();
        self.next = Some(match self.next {
            Some(due) if now.saturating_duration_since(due) < self.period => due + self.period,
            _ => now + self.period,
        });
        now
    }
}

/// The text of a caught panic.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_back() {
        let cases = [
            ("camera", SourceSpec::Camera(0)),
            ("camera:2", SourceSpec::Camera(2)),
            ("test-pattern", SourceSpec::TestPattern),
            ("photos/", SourceSpec::Path("photos/".into())),
        ];
        for (text, spec) in cases {
            assert_eq!(text.parse::<SourceSpec>().unwrap(), spec, "{text}");
        }
        assert_eq!(
            SourceSpec::Camera(3)
                .to_string()
                .parse::<SourceSpec>()
                .unwrap(),
            SourceSpec::Camera(3)
        );
        let err = "camera:x".parse::<SourceSpec>().unwrap_err().to_string();
        assert!(err.contains("`x` is not a camera number"), "{err}");
        assert!("  ".parse::<SourceSpec>().is_err());
    }

    #[test]
    fn the_flag_wins_over_the_remembered_source() {
        let flag = SourceSpec::TestPattern;
        assert_eq!(SourceSpec::chosen(Some(&flag), Some("camera:2")), flag);
        assert_eq!(
            SourceSpec::chosen(None, Some("camera:2")),
            SourceSpec::Camera(2)
        );
        assert_eq!(SourceSpec::chosen(None, Some(" ")), SourceSpec::Camera(0));
        assert_eq!(SourceSpec::chosen(None, None), SourceSpec::Camera(0));
    }

    #[test]
    fn missing_path_is_named() {
        let err = open(
            &SourceSpec::Path("/no/such/thing.png".into()),
            &SourceConfig::default(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("/no/such/thing.png: no such file or folder"),
            "{err}"
        );
    }
}
