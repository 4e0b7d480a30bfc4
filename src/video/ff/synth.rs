//! Test clips made on the spot: a moving pattern with a sine tone, optionally at a variable
//! frame rate or with a phone's rotation matrix. The tests make their clips with it, so no
//! video file is committed.

use std::path::Path;

use ff::{codec, encoder, frame, ChannelLayout, Packet, Rational};
use ffmpeg_next as ff;
use image::RgbImage;

use super::init;
use super::sink::{Sink, SinkOptions};
use crate::video::{output_format, VideoError};

/// The audio's sample rate.
pub const SAMPLE_RATE: i32 = 44_100;
/// Video times are in 1/90000 s, as in MPEG.
const VIDEO_TB: Rational = Rational(1, 90_000);

/// What to make.
#[derive(Debug, Clone)]
pub struct Synth {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub frames: u32,
    /// A sine tone of this pitch (AAC, mono) as long as the video; `None`: no audio.
    pub tone_hz: Option<f64>,
    /// Every odd frame stays twice as long (a variable frame rate).
    pub vfr: bool,
    /// MP4/MOV only: a display matrix that turns the stored frames this many degrees
    /// clockwise (90 for a phone held upright).
    pub rotation: u32,
    /// x264's quality (lower is better); 18 when `None`.
    pub crf: Option<u32>,
}

impl Synth {
    pub fn new(width: u32, height: u32, fps: u32, frames: u32) -> Self {
        Self {
            width,
            height,
            fps,
            frames,
            tone_hz: Some(440.0),
            vfr: false,
            rotation: 0,
            crf: None,
        }
    }

    /// When frame `i` is shown, in seconds.
    pub fn time(&self, i: u32) -> f64 {
        let step = 1.0 / f64::from(self.fps.max(1));
        if self.vfr {
            // Even frames last one step, odd frames two.
            let i = f64::from(i);
            let pairs = (i / 2.0).floor();
            pairs * 3.0 * step + if i % 2.0 == 1.0 { step } else { 0.0 }
        } else {
            f64::from(i) * step
        }
    }

    /// The whole clip's length in seconds.
    pub fn length(&self) -> f64 {
        let last = self.frames.max(1) - 1;
        let step = 1.0 / f64::from(self.fps.max(1));
        self.time(last)
            + if self.vfr && last % 2 == 1 {
                2.0 * step
            } else {
                step
            }
    }

    /// Writes the clip to `path` (the container follows its extension).
    pub fn write(&self, path: &Path) -> Result<(), VideoError> {
        init();
        let format = output_format(path)?;
        let write_err = |e: ff::Error| VideoError::Write {
            path: path.into(),
            reason: e.to_string(),
        };
        let mut tone = match self.tone_hz {
            Some(hz) => Some(Tone::new(hz).map_err(write_err)?),
            None => None,
        };
        let mut sink = Sink::create(
            path,
            path,
            SinkOptions {
                format,
                width: self.width,
                height: self.height,
                time_base: VIDEO_TB,
                frame_rate: (!self.vfr).then_some(Rational(self.fps as i32, 1)),
                preset: Some("veryfast"),
                tune: None,
                crf: self.crf,
                audio: tone
                    .as_ref()
                    .map(|t| (codec::Parameters::from(&t.encoder), t.time_base())),
            },
        )?;
        let length = self.length();
        for i in 0..self.frames {
            let t = self.time(i);
            if let Some(tone) = &mut tone {
                // Audio up to this frame's time first, so the file is interleaved.
                for p in tone.until(t, length).map_err(write_err)? {
                    sink.write_audio(p)?;
                }
            }
            let pts = (t / f64::from(VIDEO_TB)).round() as i64;
            sink.write(&pattern(self.width, self.height, i), pts)?;
        }
        if let Some(tone) = &mut tone {
            for p in tone.until(length, length).map_err(write_err)? {
                sink.write_audio(p)?;
            }
            for p in tone.flush().map_err(write_err)? {
                sink.write_audio(p)?;
            }
        }
        sink.finish()?;
        if self.rotation != 0 {
            set_rotation(path, self.rotation).map_err(|e| VideoError::Write {
                path: path.into(),
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }
}

/// Frame `i` of the pattern: a diagonal gradient drifting right, colour bars along the bottom
/// and a white square crossing the picture. Everything moves, so every frame differs.
pub fn pattern(w: u32, h: u32, i: u32) -> RgbImage {
    let side = (w.min(h) / 5).max(2);
    let travel = w.saturating_sub(side).max(1);
    let sq_x = (i * 7) % travel;
    let sq_y = h / 3;
    RgbImage::from_fn(w, h, |x, y| {
        if x >= sq_x && x < sq_x + side && y >= sq_y && y < sq_y + side {
            return image::Rgb([240, 240, 240]);
        }
        if y >= h - h / 4 {
            const BARS: [[u8; 3]; 6] = [
                [200, 40, 40],
                [40, 200, 40],
                [40, 40, 200],
                [200, 200, 40],
                [40, 200, 200],
                [200, 40, 200],
            ];
            return image::Rgb(BARS[((x * 6 / w.max(1)) as usize).min(5)]);
        }
        let g = ((x + y + i * 4) % 256) as u8;
        image::Rgb([g, (128 + g as u32 / 2) as u8, 255 - g])
    })
}

/// A sine tone through FFmpeg's AAC encoder.
struct Tone {
    encoder: encoder::audio::Encoder,
    hz: f64,
    /// Samples made so far.
    made: i64,
    frame_size: usize,
}

impl Tone {
    fn new(hz: f64) -> Result<Self, ff::Error> {
        let codec = encoder::find(codec::Id::AAC).ok_or(ff::Error::EncoderNotFound)?;
        let mut enc = codec::context::Context::new_with_codec(codec)
            .encoder()
            .audio()?;
        enc.set_rate(SAMPLE_RATE);
        enc.set_format(ff::format::Sample::F32(ff::format::sample::Type::Planar));
        enc.set_channel_layout(ChannelLayout::MONO);
        enc.set_bit_rate(96_000);
        enc.set_time_base(Rational(1, SAMPLE_RATE));
        enc.set_flags(codec::Flags::GLOBAL_HEADER);
        let encoder = enc.open()?;
        let frame_size = (encoder.frame_size() as usize).max(1);
        Ok(Self {
            encoder,
            hz,
            made: 0,
            frame_size,
        })
    }

    fn time_base(&self) -> Rational {
        Rational(1, SAMPLE_RATE)
    }

    /// Encodes the tone up to `t` seconds (never past `length`).
    fn until(&mut self, t: f64, length: f64) -> Result<Vec<Packet>, ff::Error> {
        let mut out = Vec::new();
        let want = (t.min(length) * f64::from(SAMPLE_RATE)).ceil() as i64;
        while self.made < want {
            let n = self.frame_size;
            let mut f = frame::Audio::new(
                ff::format::Sample::F32(ff::format::sample::Type::Planar),
                n,
                ChannelLayout::MONO,
            );
            f.set_rate(SAMPLE_RATE as u32);
            f.set_pts(Some(self.made));
            for (k, s) in f.plane_mut::<f32>(0).iter_mut().enumerate() {
                let secs = (self.made + k as i64) as f64 / f64::from(SAMPLE_RATE);
                *s = (0.5 * (2.0 * std::f64::consts::PI * self.hz * secs).sin()) as f32;
            }
            self.made += n as i64;
            self.encoder.send_frame(&f)?;
            self.receive(&mut out);
        }
        Ok(out)
    }

    fn flush(&mut self) -> Result<Vec<Packet>, ff::Error> {
        self.encoder.send_eof()?;
        let mut out = Vec::new();
        self.receive(&mut out);
        Ok(out)
    }

    fn receive(&mut self, out: &mut Vec<Packet>) {
        let mut p = Packet::empty();
        while self.encoder.receive_packet(&mut p).is_ok() {
            out.push(std::mem::replace(&mut p, Packet::empty()));
        }
    }
}

/// Writes a rotation into an MP4/MOV file's video track header (`tkhd`), the way a phone
/// records portrait video: the stored frames stay as they are and players turn them
/// `degrees` clockwise.
pub fn set_rotation(path: &Path, degrees: u32) -> std::io::Result<()> {
    let mut bytes = std::fs::read(path)?;
    let (a, b, c, d): (i32, i32, i32, i32) = match degrees % 360 {
        90 => (0, 1, -1, 0),
        180 => (-1, 0, 0, -1),
        270 => (0, -1, 1, 0),
        _ => (1, 0, 0, 1),
    };
    let at = video_tkhd_matrix(&bytes).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no video track header found",
        )
    })?;
    let one = 0x1_0000;
    let matrix = [a * one, b * one, 0, c * one, d * one, 0, 0, 0, 0x4000_0000];
    for (k, v) in matrix.iter().enumerate() {
        bytes[at + 4 * k..at + 4 * k + 4].copy_from_slice(&v.to_be_bytes());
    }
    std::fs::write(path, bytes)
}

/// The offset of the matrix in the first `tkhd` that gives a non-zero size (the video track).
fn video_tkhd_matrix(bytes: &[u8]) -> Option<usize> {
    fn boxes(bytes: &[u8], from: usize, to: usize) -> Vec<(usize, [u8; 4], usize)> {
        let mut out = Vec::new();
        let mut at = from;
        while at + 8 <= to {
            let size =
                u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap_or_default()) as usize;
            let kind: [u8; 4] = bytes[at + 4..at + 8].try_into().unwrap_or_default();
            if size < 8 || at + size > to {
                break;
            }
            out.push((at, kind, size));
            at += size;
        }
        out
    }
    for (moov, kind, size) in boxes(bytes, 0, bytes.len()) {
        if &kind != b"moov" {
            continue;
        }
        for (trak, kind, tsize) in boxes(bytes, moov + 8, moov + size) {
            if &kind != b"trak" {
                continue;
            }
            for (tkhd, kind, _) in boxes(bytes, trak + 8, trak + tsize) {
                if &kind != b"tkhd" {
                    continue;
                }
                let version = bytes[tkhd + 8];
                // After the header: version/flags, times, id, reserved, duration, reserved,
                // layer, group, volume, reserved.
                let matrix = tkhd + 8 + if version == 1 { 52 } else { 40 };
                let size_at = matrix + 36;
                let w = bytes.get(size_at..size_at + 4)?;
                if w != [0, 0, 0, 0] {
                    return Some(matrix);
                }
            }
        }
    }
    None
}
