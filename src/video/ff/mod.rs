//! The FFmpeg side of [`crate::video`] (ffmpeg-next over Debian's libav* 5.1 or newer).

mod sink;
mod source;
pub mod synth;
mod transcode;

use std::path::Path;
use std::sync::Once;

use ff::software::scaling;
use ff::{color, frame, Rational};
use ffmpeg_next as ff;
use image::RgbImage;

pub use transcode::transcode;

use super::{VideoError, VideoFrame, VideoInfo, RECORD_PRESET};
use sink::{Sink, SinkOptions};
use source::{Item, Source};

/// The recorder's file.
pub(super) type RecordSink = Sink;

/// Opens `path` for a window recording (H.264 in MP4, times in milliseconds).
pub(super) fn open_recording(
    path: &Path,
    name: &Path,
    width: u32,
    height: u32,
) -> Result<Sink, VideoError> {
    Sink::create(
        path,
        name,
        SinkOptions {
            format: "mp4",
            width,
            height,
            time_base: Rational(1, 1000),
            frame_rate: None,
            preset: Some(RECORD_PRESET),
            tune: Some("zerolatency"),
            crf: None,
            audio: None,
        },
    )
}

/// Starts FFmpeg once and quietens its own logging: every problem comes back as an error
/// naming the file.
fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if let Err(e) = ff::init() {
            tracing::warn!("FFmpeg did not start cleanly: {e}");
        }
        let level = if std::env::var_os("STYLECAM_FFMPEG_LOG").is_some() {
            ff::util::log::Level::Info
        } else {
            ff::util::log::Level::Fatal
        };
        ff::util::log::set_level(level);
    });
}

/// `ts` in `tb` as seconds.
fn seconds(ts: i64, tb: Rational) -> f64 {
    ts as f64 * f64::from(tb)
}

/// Tells swscale which YUV matrix and range the YUV side of a conversion uses (`yuv_is_dst`:
/// the YUV picture is the output).
fn set_colorspace(
    s: &mut scaling::Context,
    space: color::Space,
    range: color::Range,
    yuv_is_dst: bool,
) {
    let matrix = match space {
        color::Space::BT709 => ff::ffi::SWS_CS_ITU709,
        color::Space::FCC => ff::ffi::SWS_CS_FCC,
        color::Space::SMPTE240M => ff::ffi::SWS_CS_SMPTE240M,
        color::Space::BT2020NCL | color::Space::BT2020CL => ff::ffi::SWS_CS_BT2020,
        _ => ff::ffi::SWS_CS_DEFAULT,
    };
    let full = i32::from(range == color::Range::JPEG);
    // SAFETY: the context is a live swscale context owned by `s`; the coefficient tables are
    // static ones from swscale itself; 1 << 16 is swscale's neutral contrast and saturation.
    unsafe {
        let table = ff::ffi::sws_getCoefficients(matrix);
        let ptr = s.as_mut_ptr();
        let (src_range, dst_range) = if yuv_is_dst { (1, full) } else { (full, 1) };
        ff::ffi::sws_setColorspaceDetails(
            ptr,
            table,
            src_range,
            table,
            dst_range,
            0,
            1 << 16,
            1 << 16,
        );
    }
}

/// Copies an RGB24 frame (rows `stride` bytes apart) into an image.
fn frame_to_image(f: &frame::Video) -> RgbImage {
    let (w, h) = (f.width() as usize, f.height() as usize);
    let stride = f.stride(0);
    let data = f.data(0);
    let mut px = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        if let Some(row) = data.get(y * stride..y * stride + w * 3) {
            px.extend_from_slice(row);
        }
    }
    px.resize(w * h * 3, 0);
    RgbImage::from_raw(w as u32, h as u32, px).unwrap_or_default()
}

/// Copies an image into a new RGB24 frame.
fn image_to_frame(img: &RgbImage) -> frame::Video {
    let (w, h) = img.dimensions();
    let mut f = frame::Video::new(ff::format::Pixel::RGB24, w, h);
    let stride = f.stride(0);
    let row_bytes = w as usize * 3;
    let data = f.data_mut(0);
    for (y, row) in img.as_raw().chunks_exact(row_bytes.max(1)).enumerate() {
        if let Some(dst) = data.get_mut(y * stride..y * stride + row_bytes) {
            dst.copy_from_slice(row);
        }
    }
    f
}

/// What `path` holds: size (upright), rate, length, codecs. Fails as opening for reading
/// would: no file, not a video, no video stream, a codec this FFmpeg cannot decode.
pub fn probe(path: &Path) -> Result<VideoInfo, VideoError> {
    Ok(Source::open(path, true)?.info())
}

/// A video's frames, upright RGB with their times, in display order.
pub struct Reader {
    source: Source,
    /// After an error nothing more is read.
    failed: bool,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Self, VideoError> {
        Ok(Self {
            source: Source::open(path, false)?,
            failed: false,
        })
    }

    pub fn info(&self) -> VideoInfo {
        self.source.info()
    }

    /// The next frame; `None` after the last. A damaged file is an error naming it and the
    /// time it broke at.
    pub fn next_frame(&mut self) -> Result<Option<VideoFrame>, VideoError> {
        if self.failed {
            return Ok(None);
        }
        loop {
            match self.source.next() {
                Ok(Some(Item::Frame(f))) => return Ok(Some(f)),
                Ok(Some(Item::Audio(_))) => continue,
                Ok(None) => return Ok(None),
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
    }
}

impl Iterator for Reader {
    type Item = Result<VideoFrame, VideoError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame().transpose()
    }
}
