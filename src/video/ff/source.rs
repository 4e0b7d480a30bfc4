//! Reading: a container opened with libavformat, its best video stream decoded to upright RGB
//! frames, its best audio stream handed on as packets.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use ff::codec::packet::side_data::Type as SideDataType;
use ff::format::Pixel;
use ff::software::scaling;
use ff::{decoder, frame, media, Packet, Rational};
use ffmpeg_next as ff;
use image::RgbImage;

use super::{init, seconds, set_colorspace};
use crate::video::{VideoError, VideoFrame, VideoInfo};

/// What [`Source::next`] gives: a decoded frame, or an audio packet to copy.
pub(super) enum Item {
    Frame(VideoFrame),
    Audio(Packet),
}

/// An open input: demuxer, video decoder and RGB converter.
pub(super) struct Source {
    pub path: PathBuf,
    pub ictx: ff::format::context::Input,
    pub video: usize,
    pub audio: Option<usize>,
    pub video_tb: Rational,
    pub rotation: u32,
    decoder: decoder::Video,
    scaler: Option<(scaling::Context, (Pixel, u32, u32))>,
    pending: VecDeque<Item>,
    /// The decoder has been flushed: nothing more will come.
    done: bool,
    /// The time of the last frame or packet read (for error messages).
    at: f64,
    /// The previous frame's time, for frames that come without one.
    last_time: Option<f64>,
    frame_step: f64,
    /// Whether to hand on audio packets.
    keep_audio: bool,
    /// What the file's index promises: frames, and when the last one ends (seconds).
    declared_frames: Option<u64>,
    declared_end: Option<f64>,
    /// Frames decoded, and whether a seek skipped some.
    decoded: u64,
    seeked: bool,
}

impl Source {
    pub fn open(path: &Path, keep_audio: bool) -> Result<Self, VideoError> {
        init();
        let open_err = |e: ff::Error| VideoError::Open {
            path: path.into(),
            reason: e.to_string(),
        };
        if !path.is_file() {
            return Err(VideoError::Open {
                path: path.into(),
                reason: if path.exists() {
                    "not a file".into()
                } else {
                    "no such file".into()
                },
            });
        }
        if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            return Err(VideoError::Open {
                path: path.into(),
                reason: "the file is empty (0 bytes)".into(),
            });
        }
        let ictx = ff::format::input(path).map_err(|e| match e {
            // The header parsed but no packet followed: a clip of zero length.
            ff::Error::Eof => VideoError::NoFrames {
                path: path.into(),
                range: String::new(),
            },
            e => open_err(e),
        })?;
        let Some(stream) = ictx.streams().best(media::Type::Video) else {
            let kinds: Vec<String> = ictx
                .streams()
                .map(|s| format!("{:?}", s.parameters().medium()).to_lowercase())
                .collect();
            let found = if kinds.is_empty() {
                " (it holds no streams at all)".to_owned()
            } else {
                format!(" (only {})", kinds.join(", "))
            };
            return Err(VideoError::NoVideo {
                path: path.into(),
                found,
            });
        };
        let video = stream.index();
        let video_tb = stream.time_base();
        let rotation = rotation(&stream);
        let params = stream.parameters();
        let id = params.id();
        let unsupported = || VideoError::UnsupportedCodec {
            path: path.into(),
            codec: codec_name(id),
        };
        if ff::decoder::find(id).is_none() {
            return Err(unsupported());
        }
        let mut ctx = ff::codec::context::Context::from_parameters(params).map_err(open_err)?;
        ctx.set_threading(ff::threading::Config {
            kind: ff::threading::Type::Frame,
            ..Default::default()
        });
        let decoder = ctx.decoder().video().map_err(|_| unsupported())?;
        let rate = stream.avg_frame_rate();
        let frame_step = if rate.numerator() > 0 && rate.denominator() > 0 {
            1.0 / f64::from(rate)
        } else {
            1.0 / 30.0
        };
        let declared_frames = u64::try_from(stream.frames()).ok().filter(|&n| n > 0);
        let declared_end = (stream.duration() > 0).then(|| {
            let start = if stream.start_time() == ff::ffi::AV_NOPTS_VALUE {
                0
            } else {
                stream.start_time()
            };
            seconds(start + stream.duration(), video_tb)
        });
        let audio = if keep_audio {
            ictx.streams().best(media::Type::Audio).map(|s| s.index())
        } else {
            None
        };
        Ok(Self {
            path: path.into(),
            ictx,
            video,
            audio,
            video_tb,
            rotation,
            decoder,
            scaler: None,
            pending: VecDeque::new(),
            done: false,
            at: 0.0,
            last_time: None,
            frame_step,
            keep_audio,
            declared_frames,
            declared_end,
            decoded: 0,
            seeked: false,
        })
    }

    /// What the file says about itself.
    pub fn info(&self) -> VideoInfo {
        let stream = self.ictx.stream(self.video);
        let (w, h) = (self.decoder.width(), self.decoder.height());
        let (width, height) = if self.rotation % 180 == 90 {
            (h, w)
        } else {
            (w, h)
        };
        let frame_rate = stream.as_ref().and_then(|s| {
            let r = s.avg_frame_rate();
            (r.numerator() > 0 && r.denominator() > 0).then(|| f64::from(r))
        });
        let duration = stream
            .as_ref()
            .and_then(|s| (s.duration() > 0).then(|| seconds(s.duration(), s.time_base())))
            .or_else(|| {
                let d = self.ictx.duration();
                (d > 0).then(|| d as f64 / f64::from(ff::ffi::AV_TIME_BASE))
            });
        let frames = stream
            .as_ref()
            .and_then(|s| u64::try_from(s.frames()).ok().filter(|&n| n > 0))
            .or_else(|| Some((duration? * frame_rate?).round() as u64));
        VideoInfo {
            width,
            height,
            rotation: self.rotation,
            frame_rate,
            duration,
            frames,
            codec: codec_name(self.decoder.id()),
            audio: self
                .audio
                .and_then(|i| self.ictx.stream(i).map(|s| codec_name(s.parameters().id()))),
        }
    }

    /// Seeks to the key frame at or before `t` seconds (frames before `t` still come out; the
    /// caller skips them).
    pub fn seek(&mut self, t: f64) -> Result<(), VideoError> {
        if t <= 0.0 {
            return Ok(());
        }
        let ts = (t * f64::from(ff::ffi::AV_TIME_BASE)) as i64;
        self.ictx
            .seek(ts, ..ts + 1)
            .map_err(|e| self.damaged(e.to_string()))?;
        self.decoder.flush();
        self.seeked = true;
        Ok(())
    }

    /// At the end of a whole read (no seek): whether the file stopped well short of what its
    /// index promises, in both frames and time (a truncated file whose index survived).
    /// Generous margins, so that edit lists and rounding never count.
    fn cut_short(&self) -> Option<String> {
        if self.seeked {
            return None;
        }
        let (last, end, n) = (self.last_time?, self.declared_end?, self.declared_frames?);
        let short_in_time = last + 2.0 * self.frame_step < end * 0.98;
        let short_in_frames = (self.decoded as f64) < n as f64 * 0.98 - 1.0;
        (short_in_time && short_in_frames).then(|| {
            format!(
                "it ends at {last:.1} s after {} of its {n} frames, but its index says {end:.1} s",
                self.decoded
            )
        })
    }

    fn damaged(&self, reason: String) -> VideoError {
        VideoError::Damaged {
            path: self.path.clone(),
            at: self.at,
            reason,
        }
    }

    /// The next frame or audio packet, in file order; `None` at the end.
    pub fn next(&mut self) -> Result<Option<Item>, VideoError> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Ok(Some(item));
            }
            if self.done {
                return Ok(None);
            }
            let mut packet = Packet::empty();
            match packet.read(&mut self.ictx) {
                Ok(()) => {
                    let index = packet.stream();
                    if index == self.video {
                        if let Some(pts) = packet.pts().or(packet.dts()) {
                            self.at = seconds(pts, self.video_tb);
                        }
                        self.decoder
                            .send_packet(&packet)
                            .map_err(|e| self.damaged(e.to_string()))?;
                        self.drain()?;
                    } else if self.keep_audio && Some(index) == self.audio {
                        self.pending.push_back(Item::Audio(packet));
                    }
                }
                Err(ff::Error::Eof) => {
                    self.decoder
                        .send_eof()
                        .map_err(|e| self.damaged(e.to_string()))?;
                    self.drain()?;
                    self.done = true;
                    if let Some(reason) = self.cut_short() {
                        return Err(self.damaged(reason));
                    }
                }
                Err(e) => return Err(self.damaged(e.to_string())),
            }
        }
    }

    /// Takes every frame the decoder has ready.
    fn drain(&mut self) -> Result<(), VideoError> {
        let mut decoded = frame::Video::empty();
        loop {
            match self.decoder.receive_frame(&mut decoded) {
                Ok(()) => {
                    let time = match decoded.timestamp() {
                        Some(ts) => seconds(ts, self.video_tb),
                        None => self.last_time.map_or(0.0, |t| t + self.frame_step),
                    };
                    self.last_time = Some(time);
                    self.decoded += 1;
                    let image = self.upright_rgb(&decoded)?;
                    self.pending
                        .push_back(Item::Frame(VideoFrame { image, time }));
                }
                Err(ff::Error::Eof) => return Ok(()),
                Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => {
                    return Ok(())
                }
                Err(e) => return Err(self.damaged(e.to_string())),
            }
        }
    }

    /// Converts a decoded frame to upright RGB.
    fn upright_rgb(&mut self, decoded: &frame::Video) -> Result<RgbImage, VideoError> {
        let key = (decoded.format(), decoded.width(), decoded.height());
        if self.scaler.as_ref().map(|(_, k)| *k) != Some(key) {
            let mut s = scaling::Context::get(
                key.0,
                key.1,
                key.2,
                Pixel::RGB24,
                key.1,
                key.2,
                scaling::Flags::BILINEAR | scaling::Flags::ACCURATE_RND,
            )
            .map_err(|e| self.damaged(format!("cannot convert its {:?} frames: {e}", key.0)))?;
            set_colorspace(&mut s, decoded.color_space(), decoded.color_range(), false);
            self.scaler = Some((s, key));
        }
        let mut rgb = frame::Video::empty();
        if let Some((s, _)) = self.scaler.as_mut() {
            s.run(decoded, &mut rgb).map_err(|e| VideoError::Damaged {
                path: self.path.clone(),
                at: self.at,
                reason: e.to_string(),
            })?;
        }
        let img = super::frame_to_image(&rgb);
        Ok(match self.rotation {
            90 => image::imageops::rotate90(&img),
            180 => image::imageops::rotate180(&img),
            270 => image::imageops::rotate270(&img),
            _ => img,
        })
    }
}

/// A codec's short name, as `h264`.
pub(super) fn codec_name(id: ff::codec::Id) -> String {
    let name = id.name();
    if name.is_empty() || name == "none" {
        "an unknown codec".to_owned()
    } else {
        name.to_owned()
    }
}

/// Clockwise degrees (0, 90, 180, 270) that turn the stored frames upright, from the stream's
/// display matrix (as FFmpeg's own tools read it); 0 without one.
fn rotation(stream: &ff::format::stream::Stream) -> u32 {
    for sd in stream.side_data() {
        if sd.kind() != SideDataType::DisplayMatrix {
            continue;
        }
        let d = sd.data();
        if d.len() < 36 {
            continue;
        }
        let m = |i: usize| {
            let b = [d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]];
            f64::from(i32::from_ne_bytes(b)) / 65536.0
        };
        return rotation_of([m(0), m(1), m(3), m(4)]);
    }
    0
}

/// The clockwise rotation of a display matrix's upper 2x2 part `[a, b, c, d]`, to the nearest
/// quarter turn.
pub(super) fn rotation_of([a, b, c, d]: [f64; 4]) -> u32 {
    let (sx, sy) = (a.hypot(c), b.hypot(d));
    if sx == 0.0 || sy == 0.0 {
        return 0;
    }
    let deg = (b / sy).atan2(a / sx).to_degrees();
    let quarter = (deg / 90.0).round() as i64;
    (quarter.rem_euclid(4) * 90) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matrices_give_quarter_turns() {
        assert_eq!(rotation_of([1.0, 0.0, 0.0, 1.0]), 0);
        // A phone held upright: the stored frame is turned a quarter clockwise to show.
        assert_eq!(rotation_of([0.0, 1.0, -1.0, 0.0]), 90);
        assert_eq!(rotation_of([-1.0, 0.0, 0.0, -1.0]), 180);
        assert_eq!(rotation_of([0.0, -1.0, 1.0, 0.0]), 270);
        assert_eq!(rotation_of([0.0, 0.0, 0.0, 0.0]), 0);
    }
}
