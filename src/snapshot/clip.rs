//! Short animated GIF clips of the live view.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use image::codecs::gif::{GifEncoder, Repeat};
use image::{imageops, imageops::FilterType, Delay, Frame, RgbImage};

use super::{stem, write_new, SnapshotError};
use crate::image_io::io_error;

/// At most this many frames a second are kept.
pub const CLIP_FPS: u32 = 10;
/// The longest clip: recording ends by itself after this.
pub const MAX_CLIP_SECS: u32 = 15;
/// The most frames one clip keeps.
pub const MAX_CLIP_FRAMES: usize = (CLIP_FPS * MAX_CLIP_SECS) as usize;
/// The most pixel bytes one clip keeps in memory; recording ends early when this is reached.
pub const MAX_CLIP_BYTES: usize = 64 << 20;
/// The range `max_side` is clamped to.
const SIDE_RANGE: std::ops::RangeInclusive<u32> = 16..=1024;
/// How long the last frame shows when the clip ended without a later frame to time it by.
const FRAME_INTERVAL: Duration = Duration::from_millis(1000 / CLIP_FPS as u64);
/// GIF quantiser speed (1 = best and slowest, 30 = fastest); 10 is gif's own default.
const GIF_SPEED: i32 = 10;

/// Records frames for a GIF clip: push every displayed frame; it keeps at most [`CLIP_FPS`] a
/// second, downscaled so the longer side is at most `max_side`, until `duration` has passed
/// (at most [`MAX_CLIP_SECS`], [`MAX_CLIP_FRAMES`] and [`MAX_CLIP_BYTES`]).
#[derive(Debug, Clone)]
pub struct ClipRecorder {
    duration: Duration,
    max_side: u32,
    frames: Vec<RgbImage>,
    times: Vec<Instant>,
    bytes: usize,
    /// When the next frame is wanted (paces frames to CLIP_FPS on average).
    next: Option<Instant>,
    /// When recording ended; `Some` means done.
    end: Option<Instant>,
}

impl ClipRecorder {
    pub fn new(duration: Duration, max_side: u32) -> Self {
        Self {
            duration: duration.min(Duration::from_secs(MAX_CLIP_SECS.into())),
            max_side: max_side.clamp(*SIDE_RANGE.start(), *SIDE_RANGE.end()),
            frames: Vec::new(),
            times: Vec::new(),
            bytes: 0,
            next: None,
            end: None,
        }
    }

    /// Offers a frame shown at `at`; returns whether it was kept. Frames come too soon after
    /// the last kept one, or after the end, are skipped; the first push starts the clock.
    pub fn push(&mut self, frame: &RgbImage, at: Instant) -> bool {
        if self.end.is_some() || frame.width() == 0 || frame.height() == 0 {
            return false;
        }
        if let Some(&start) = self.times.first() {
            if at.saturating_duration_since(start) >= self.duration {
                self.end = Some(at);
                return false;
            }
        }
        if self.next.is_some_and(|next| at < next) {
            return false;
        }
        let small = self.fit(frame);
        let size = small.as_raw().len();
        if self.frames.len() >= MAX_CLIP_FRAMES || self.bytes.saturating_add(size) > MAX_CLIP_BYTES
        {
            self.end = Some(at);
            return false;
        }
        self.bytes += size;
        self.frames.push(small);
        self.times.push(at);
        // Due one interval after the last due time (or after now, if far behind).
        let mut next = self.next.unwrap_or(at) + FRAME_INTERVAL;
        if next <= at {
            next = at + FRAME_INTERVAL;
        }
        self.next = Some(next);
        true
    }

    /// Ends the recording early (the user stopped it).
    pub fn stop(&mut self, at: Instant) {
        if self.end.is_none() {
            self.end = Some(at);
        }
    }

    /// Whether recording has ended: the duration passed, a limit was reached or it was stopped.
    pub fn is_done(&self) -> bool {
        self.end.is_some()
    }

    /// The frames kept so far.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Writes the clip as `stylecam-<date>_<time>-clip.gif` in `dir` (created if missing): an
    /// endlessly looping GIF whose frame delays follow the frames' timestamps. Never replaces a
    /// file (a taken name gets `-2`, ...). The recorder is kept, so a failed save can be retried
    /// elsewhere. Quantising takes a moment: call it off the UI thread.
    pub fn finish(&self, dir: &Path, now: DateTime<Local>) -> Result<PathBuf, SnapshotError> {
        if self.frames.is_empty() {
            return Err(SnapshotError::EmptyClip);
        }
        write_new(dir, &stem(now, "clip"), "gif", "the clip", |w| {
            self.encode(w)
        })
    }

    fn encode(&self, w: &mut impl Write) -> std::io::Result<()> {
        let mut gif = GifEncoder::new_with_speed(&mut *w, GIF_SPEED);
        gif.set_repeat(Repeat::Infinite).map_err(io_error)?;
        for (i, img) in self.frames.iter().enumerate() {
            let delay = match self.times.get(i + 1) {
                Some(&next) => next.saturating_duration_since(self.times[i]),
                None => self
                    .end
                    .map(|end| end.saturating_duration_since(self.times[i]))
                    .unwrap_or(FRAME_INTERVAL)
                    .clamp(FRAME_INTERVAL, Duration::from_secs(1)),
            };
            let rgba = image::DynamicImage::ImageRgb8(img.clone()).into_rgba8();
            gif.encode_frame(Frame::from_parts(
                rgba,
                0,
                0,
                Delay::from_saturating_duration(delay),
            ))
            .map_err(io_error)?;
        }
        // Dropping the encoder writes the GIF trailer; the flush below reports any error.
        drop(gif);
        w.flush()
    }

    /// Downscales to `max_side`, and to the first frame's size so every frame fills the GIF's
    /// canvas even if the source changed size mid-clip.
    fn fit(&self, frame: &RgbImage) -> RgbImage {
        let (w, h) = match self.frames.first() {
            Some(first) => first.dimensions(),
            None => {
                let (w, h) = frame.dimensions();
                let long = w.max(h);
                if long <= self.max_side {
                    (w, h)
                } else {
                    let scale = |v: u32| {
                        ((u64::from(v) * u64::from(self.max_side) + u64::from(long) / 2)
                            / u64::from(long))
                        .max(1) as u32
                    };
                    (scale(w), scale(h))
                }
            }
        };
        if frame.dimensions() == (w, h) {
            frame.clone()
        } else {
            imageops::resize(frame, w, h, FilterType::Triangle)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: u32, h: u32, v: u8) -> RgbImage {
        RgbImage::from_pixel(w, h, image::Rgb([v, 255 - v, 128]))
    }

    #[test]
    fn keeps_ten_a_second_downscaled_until_the_duration() {
        let t0 = Instant::now();
        let mut rec = ClipRecorder::new(Duration::from_secs(1), 64);
        // A 30 fps camera for 1.5 s.
        let mut kept = 0;
        for i in 0..45u64 {
            if rec.push(
                &frame(320, 240, i as u8),
                t0 + Duration::from_millis(i * 33),
            ) {
                kept += 1;
            }
        }
        assert!(rec.is_done());
        assert_eq!(kept, rec.len());
        assert!((9..=11).contains(&kept), "{kept} frames");
        assert!(rec.frames.iter().all(|f| f.dimensions() == (64, 48)));
    }

    #[test]
    fn memory_is_bounded() {
        let t0 = Instant::now();
        let mut rec = ClipRecorder::new(Duration::from_secs(3600), 1024);
        for i in 0..1000u64 {
            rec.push(&frame(1024, 768, 0), t0 + Duration::from_millis(i * 100));
        }
        assert!(rec.is_done());
        assert!(rec.bytes <= MAX_CLIP_BYTES);
        assert!(rec.len() <= MAX_CLIP_FRAMES);
    }

    #[test]
    fn a_size_change_mid_clip_is_resized_to_the_first() {
        let t0 = Instant::now();
        let mut rec = ClipRecorder::new(Duration::from_secs(5), 100);
        assert!(rec.push(&frame(200, 100, 0), t0));
        assert!(rec.push(&frame(90, 90, 0), t0 + FRAME_INTERVAL));
        assert_eq!(rec.frames[1].dimensions(), (100, 50));
    }
}
