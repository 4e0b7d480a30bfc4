//! A whole file through a per-frame function: decode, stylise, encode, with the audio copied.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use ff::{Packet, Rational};
use ffmpeg_next as ff;
use image::RgbImage;

use super::sink::{Sink, SinkOptions};
use super::source::{Item, Source};
use crate::video::{output_format, Summary, TranscodeOptions, VideoError};

/// A frame at most this far (in seconds) before the start still counts as in range (times
/// rounded to the stream's time base).
const EPS: f64 = 1e-4;

/// Reads `input`, passes each frame in range through `stylize` and writes the results to
/// `output` (a temporary file: the container follows `name`'s extension, and messages name
/// `name`), copying the best audio stream's packets unchanged. Every frame keeps its own time,
/// so variable frame rates survive. `progress(done, total)` is called after each frame;
/// `cancel` is checked before each one.
pub fn transcode(
    input: &Path,
    output: &Path,
    name: &Path,
    opts: &TranscodeOptions,
    stylize: &mut dyn FnMut(RgbImage) -> Result<RgbImage, String>,
    progress: &mut dyn FnMut(u64, Option<u64>),
    cancel: &AtomicBool,
) -> Result<Summary, VideoError> {
    let format = output_format(name)?;
    let mut src = Source::open(input, true)?;
    let info = src.info();
    let start = opts.start.map_or(0.0, |d| d.as_secs_f64());
    let end = opts.duration.map(|d| start + d.as_secs_f64());
    let total = match (info.frames, info.duration, info.frame_rate) {
        (Some(n), Some(len), Some(rate)) => {
            let from = (start * rate).round() as u64;
            let until = end.map_or(n, |e| ((e.min(len)) * rate).round() as u64);
            Some(until.min(n).saturating_sub(from))
        }
        (Some(n), _, _) if start == 0.0 && end.is_none() => Some(n),
        _ => None,
    };
    src.seek(start)?;
    let video_tb = src.video_tb;
    let audio = src
        .audio
        .and_then(|i| src.ictx.stream(i).map(|s| (s.parameters(), s.time_base())));
    let rate = src
        .ictx
        .stream(src.video)
        .map(|s| s.avg_frame_rate())
        .filter(|r| r.numerator() > 0 && r.denominator() > 0);
    let mut sink: Option<Sink> = None;
    // Audio read before the first frame is ready to write.
    let mut held: Vec<Packet> = Vec::new();
    let mut done = 0u64;
    while let Some(item) = src.next()? {
        match item {
            Item::Frame(f) => {
                if f.time < start - EPS {
                    continue;
                }
                if end.is_some_and(|e| f.time >= e - EPS) {
                    break;
                }
                if cancel.load(Ordering::Acquire) {
                    return Err(VideoError::Cancelled);
                }
                let out = stylize(f.image).map_err(|message| VideoError::Frame {
                    frame: done + 1,
                    message,
                })?;
                let pts = ((f.time - start) / f64::from(video_tb)).round() as i64;
                let s = match &mut sink {
                    Some(s) => s,
                    None => {
                        let (w, h) = out.dimensions();
                        let mut s = Sink::create(
                            output,
                            name,
                            SinkOptions {
                                format,
                                width: w,
                                height: h,
                                time_base: video_tb,
                                frame_rate: rate,
                                preset: opts.preset.as_deref(),
                                tune: None,
                                crf: opts.crf,
                                audio: audio.clone(),
                            },
                        )?;
                        for p in held.drain(..) {
                            s.write_audio(p)?;
                        }
                        sink.insert(s)
                    }
                };
                s.write(&out, pts)?;
                done += 1;
                progress(done, total);
            }
            Item::Audio(p) => {
                let Some((_, tb)) = &audio else { continue };
                let Some(p) = shift(p, *tb, start, end) else {
                    continue;
                };
                match &mut sink {
                    Some(s) => s.write_audio(p)?,
                    None => held.push(p),
                }
            }
        }
    }
    let Some(sink) = sink else {
        let range = match (opts.start, opts.duration) {
            (None, None) => String::new(),
            _ => format!(
                " between {start:.2} s and {} (it is {} long)",
                end.map_or("the end".to_owned(), |e| format!("{e:.2} s")),
                info.duration
                    .map_or("of unknown length".to_owned(), |d| format!("{d:.2} s"))
            ),
        };
        return Err(VideoError::NoFrames {
            path: input.into(),
            range,
        });
    };
    let (width, height) = sink.size();
    let frames = sink.frames();
    sink.finish()?;
    Ok(Summary {
        frames,
        width,
        height,
        audio: audio.is_some(),
    })
}

/// An audio packet moved to the clip's own time (the start is time 0), or `None` if it lies
/// outside `[start, end)`.
fn shift(mut p: Packet, tb: Rational, start: f64, end: Option<f64>) -> Option<Packet> {
    let t = p.pts().or(p.dts()).map(|ts| ts as f64 * f64::from(tb));
    if start > 0.0 || end.is_some() {
        let t = t?;
        if t < start - EPS || end.is_some_and(|e| t >= e - EPS) {
            return None;
        }
    }
    if start > 0.0 {
        let offset = (start / f64::from(tb)).round() as i64;
        p.set_pts(p.pts().map(|v| v - offset));
        p.set_dts(p.dts().map(|v| v - offset));
    }
    Some(p)
}
