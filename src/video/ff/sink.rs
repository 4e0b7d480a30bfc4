//! Writing: RGB frames encoded as H.264 (or VP9 for WebM) and muxed with libavformat, with an
//! optional audio stream whose packets are copied as they are.

use std::path::{Path, PathBuf};

use ff::format::Pixel;
use ff::software::scaling;
use ff::{codec, color, encoder, frame, Dictionary, Packet, Rational, Rescale};
use ffmpeg_next as ff;
use image::RgbImage;

use super::{image_to_frame, init, set_colorspace};
use crate::video::{VideoError, DEFAULT_CRF};

/// How a [`Sink`] is set up.
pub struct SinkOptions<'a> {
    /// The muxer: `mp4`, `mov`, `matroska` or `webm` ([`crate::video::output_format`]).
    pub format: &'static str,
    pub width: u32,
    pub height: u32,
    /// Frame times are given in this time base.
    pub time_base: Rational,
    /// The nominal frame rate, if known (helps the rate control; times still rule).
    pub frame_rate: Option<Rational>,
    /// x264 preset; `None` is `medium`.
    pub preset: Option<&'a str>,
    /// x264 tune (`zerolatency` for recordings: no B-frames, so a frame is written as soon as
    /// it is encoded and a variable rate keeps exact stream lengths).
    pub tune: Option<&'a str>,
    /// x264 constant rate factor; `None` is [`DEFAULT_CRF`].
    pub crf: Option<u32>,
    /// An audio stream to copy: its parameters and the time base its packets come in.
    pub audio: Option<(codec::Parameters, Rational)>,
}

/// An open output file with a video encoder.
pub struct Sink {
    /// The name errors give (the final name, not the temporary one written to).
    name: PathBuf,
    octx: ff::format::context::Output,
    encoder: encoder::video::Encoder,
    scaler: scaling::Context,
    width: u32,
    height: u32,
    enc_tb: Rational,
    video_tb: Rational,
    audio: Option<(Rational, Rational)>,
    last_pts: Option<i64>,
    /// How long a frame shows, in the encoder's time base: one frame at the nominal rate, else
    /// the last gap between frames. Packets get it, so the last frame has a length too.
    frame_ticks: i64,
    fixed_rate: bool,
    frames: u64,
    /// The newest video packet, written when the next one comes or at the end (where the end
    /// time may lengthen it).
    held: Option<Packet>,
}

impl Sink {
    /// Creates `path` (any existing file there is replaced: callers write to a temporary
    /// file), named `name` in messages. Odd sizes are rounded down to even (H.264's 4:2:0
    /// needs it); frames of another size are fitted in, letterboxed.
    pub fn create(path: &Path, name: &Path, o: SinkOptions) -> Result<Self, VideoError> {
        init();
        let write_err = |e: ff::Error| VideoError::Write {
            path: name.into(),
            reason: e.to_string(),
        };
        let (width, height) = (o.width & !1, o.height & !1);
        if width < 2 || height < 2 {
            return Err(VideoError::Write {
                path: name.into(),
                reason: format!("a {}x{} frame is too small to encode", o.width, o.height),
            });
        }
        let mut octx = ff::format::output_as(path, o.format).map_err(write_err)?;
        let webm = o.format == "webm";
        let codec = if webm {
            encoder::find_by_name("libvpx-vp9").or_else(|| encoder::find(codec::Id::VP9))
        } else {
            encoder::find_by_name("libx264").or_else(|| encoder::find(codec::Id::H264))
        };
        let codec = codec.ok_or(VideoError::NoEncoder {
            path: name.into(),
            codec: if webm { "VP9" } else { "H.264" },
            hint: if webm {
                "write .mp4 instead, or install an FFmpeg built with libvpx"
            } else {
                "install an FFmpeg built with libx264 (Debian's and Ubuntu's are)"
            },
        })?;
        let global_header = octx
            .format()
            .flags()
            .contains(ff::format::Flags::GLOBAL_HEADER);
        let mut enc = codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(write_err)?;
        enc.set_width(width);
        enc.set_height(height);
        enc.set_format(Pixel::YUV420P);
        enc.set_time_base(o.time_base);
        enc.set_frame_rate(o.frame_rate);
        enc.set_colorspace(color::Space::SMPTE170M);
        enc.set_color_range(color::Range::MPEG);
        if global_header {
            enc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let mut opts = Dictionary::new();
        if webm {
            opts.set("crf", &o.crf.unwrap_or(31).to_string());
            opts.set("b", "0");
            opts.set("deadline", "good");
            opts.set("cpu-used", "4");
            opts.set("row-mt", "1");
        } else {
            opts.set("preset", o.preset.unwrap_or("medium"));
            if let Some(tune) = o.tune {
                opts.set("tune", tune);
            }
            opts.set("crf", &o.crf.unwrap_or(DEFAULT_CRF).to_string());
        }
        let encoder = enc.open_with(opts).map_err(write_err)?;
        {
            let mut ost = octx.add_stream(codec).map_err(write_err)?;
            ost.set_parameters(&encoder);
            ost.set_time_base(o.time_base);
        }
        let audio = match o.audio {
            Some((params, in_tb)) => {
                let id = params.id();
                if !fits(&octx, id) {
                    return Err(VideoError::AudioDoesNotFit {
                        path: name.into(),
                        codec: id.name().to_owned(),
                    });
                }
                let mut ost = octx
                    .add_stream(encoder::find(codec::Id::None))
                    .map_err(write_err)?;
                ost.set_parameters(params);
                // SAFETY: the stream's parameters are owned by the output context; a zero tag
                // lets the muxer choose its own tag for the codec.
                unsafe {
                    (*ost.parameters().as_mut_ptr()).codec_tag = 0;
                }
                ost.set_time_base(in_tb);
                Some(in_tb)
            }
            None => None,
        };
        let mut header = Dictionary::new();
        if matches!(o.format, "mp4" | "mov") {
            // The index goes first, so players can start before the whole file is read.
            header.set("movflags", "+faststart");
        }
        octx.write_header_with(header).map_err(write_err)?;
        let video_tb = octx.stream(0).map_or(o.time_base, |s| s.time_base());
        let audio = audio.map(|in_tb| (in_tb, octx.stream(1).map_or(in_tb, |s| s.time_base())));
        let mut scaler = scaling::Context::get(
            Pixel::RGB24,
            width,
            height,
            Pixel::YUV420P,
            width,
            height,
            scaling::Flags::BILINEAR | scaling::Flags::ACCURATE_RND,
        )
        .map_err(write_err)?;
        set_colorspace(
            &mut scaler,
            color::Space::SMPTE170M,
            color::Range::MPEG,
            true,
        );
        Ok(Self {
            name: name.into(),
            octx,
            encoder,
            scaler,
            width,
            height,
            enc_tb: o.time_base,
            video_tb,
            audio,
            last_pts: None,
            frame_ticks: o.frame_rate.filter(|r| r.numerator() > 0).map_or(1, |r| {
                (1.0 / f64::from(r) / f64::from(o.time_base))
                    .round()
                    .max(1.0) as i64
            }),
            fixed_rate: o.frame_rate.is_some_and(|r| r.numerator() > 0),
            frames: 0,
            held: None,
        })
    }

    fn write_err(&self, e: ff::Error) -> VideoError {
        VideoError::Write {
            path: self.name.clone(),
            reason: e.to_string(),
        }
    }

    /// The encoded size.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Encodes a frame shown at `pts` (in the time base given at creation). Times that do not
    /// move forward are nudged one tick past the previous frame.
    pub fn write(&mut self, img: &RgbImage, pts: i64) -> Result<(), VideoError> {
        let fitted = fit(img, self.width, self.height);
        let rgb = image_to_frame(&fitted);
        let mut yuv = frame::Video::empty();
        self.scaler
            .run(&rgb, &mut yuv)
            .map_err(|e| self.write_err(e))?;
        let pts = match self.last_pts {
            Some(last) if pts <= last => last + 1,
            _ => pts,
        };
        if let (Some(last), false) = (self.last_pts, self.fixed_rate) {
            self.frame_ticks = pts - last;
        }
        self.last_pts = Some(pts);
        yuv.set_pts(Some(pts));
        self.encoder
            .send_frame(&yuv)
            .map_err(|e| self.write_err(e))?;
        self.frames += 1;
        self.drain()
    }

    /// Copies an audio packet (times in the audio time base given at creation).
    pub fn write_audio(&mut self, mut packet: Packet) -> Result<(), VideoError> {
        let Some((in_tb, out_tb)) = self.audio else {
            return Ok(());
        };
        packet.rescale_ts(in_tb, out_tb);
        packet.set_position(-1);
        packet.set_stream(1);
        packet
            .write_interleaved(&mut self.octx)
            .map_err(|e| self.write_err(e))
    }

    fn drain(&mut self) -> Result<(), VideoError> {
        loop {
            let mut packet = Packet::empty();
            if self.encoder.receive_packet(&mut packet).is_err() {
                return Ok(());
            }
            if packet.duration() <= 0 {
                packet.set_duration(self.frame_ticks);
            }
            packet.set_stream(0);
            packet.rescale_ts(self.enc_tb, self.video_tb);
            if let Some(earlier) = self.held.replace(packet) {
                earlier
                    .write_interleaved(&mut self.octx)
                    .map_err(|e| self.write_err(e))?;
            }
        }
    }

    /// Flushes the encoder and writes the file's index. Only then is the file playable.
    pub fn finish(self) -> Result<(), VideoError> {
        self.finish_at(None)
    }

    /// As [`Sink::finish`], with the last frame shown until `end` (in the time base given at
    /// creation) when that is after it: a recording lasts until it was stopped.
    pub fn finish_at(mut self, end: Option<i64>) -> Result<(), VideoError> {
        self.encoder.send_eof().map_err(|e| self.write_err(e))?;
        self.drain()?;
        if let Some(mut last) = self.held.take() {
            // The last packet in decode order; without B-frames (recordings) also the last
            // frame shown.
            let end = end.map(|e| e.rescale(self.enc_tb, self.video_tb));
            if let (Some(end), Some(pts)) = (end, last.pts()) {
                if end > pts {
                    last.set_duration(end - pts);
                }
            }
            last.write_interleaved(&mut self.octx)
                .map_err(|e| self.write_err(e))?;
        }
        self.octx.write_trailer().map_err(|e| self.write_err(e))
    }
}

/// Whether the output container can hold a stream of codec `id` (unknown counts as yes: the
/// muxer then says).
fn fits(octx: &ff::format::context::Output, id: codec::Id) -> bool {
    // SAFETY: `oformat` is the muxer of a live output context; the query only reads tables.
    let r = unsafe {
        ff::ffi::avformat_query_codec(
            (*octx.as_ptr()).oformat,
            id.into(),
            ff::ffi::FF_COMPLIANCE_NORMAL,
        )
    };
    r != 0
}

/// `img` as a `w`x`h` picture: itself, cropped by the odd pixel, or scaled to fit and
/// centred on black.
pub(crate) fn fit(img: &RgbImage, w: u32, h: u32) -> std::borrow::Cow<'_, RgbImage> {
    use std::borrow::Cow;
    let (iw, ih) = img.dimensions();
    if (iw, ih) == (w, h) {
        return Cow::Borrowed(img);
    }
    if iw >= w && ih >= h && iw - w <= 1 && ih - h <= 1 {
        return Cow::Owned(image::imageops::crop_imm(img, 0, 0, w, h).to_image());
    }
    let mut out = RgbImage::new(w, h);
    if iw == 0 || ih == 0 {
        return Cow::Owned(out);
    }
    let scale = (w as f64 / iw as f64).min(h as f64 / ih as f64);
    let (sw, sh) = (
        ((iw as f64 * scale).round() as u32).clamp(1, w),
        ((ih as f64 * scale).round() as u32).clamp(1, h),
    );
    let scaled = image::imageops::resize(img, sw, sh, image::imageops::FilterType::Triangle);
    image::imageops::replace(
        &mut out,
        &scaled,
        i64::from((w - sw) / 2),
        i64::from((h - sh) / 2),
    );
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_fitted_cropped_or_letterboxed() {
        let img = RgbImage::from_pixel(5, 3, image::Rgb([200, 0, 0]));
        assert_eq!(fit(&img, 5, 3).dimensions(), (5, 3));
        assert_eq!(fit(&img, 4, 2).dimensions(), (4, 2));
        // Twice as wide: scaled to 8x4... then centred with black bars above and below.
        let boxed = fit(&img, 10, 10);
        assert_eq!(boxed.dimensions(), (10, 10));
        assert_eq!(boxed.get_pixel(5, 0).0, [0, 0, 0]);
        assert_eq!(boxed.get_pixel(5, 5).0, [200, 0, 0]);
    }
}
