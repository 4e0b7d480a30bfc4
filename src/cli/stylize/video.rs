//! Videos in `stylecam stylize`: every frame through the same path as a photo, with the
//! anti-flicker dial between frames, into H.264 MP4 (or what the extension asks for) at the
//! source's frame times, the audio copied unchanged. The file is written under a hidden
//! temporary name and renamed only when complete, so Ctrl-C or an error leaves nothing.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use candle_core::Tensor;
use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};

use super::Job;
use crate::engine::AntiFlicker;
use crate::video::{self, is_video, TranscodeOptions, VideoError, MAX_PIXELS};

#[derive(Debug, Clone, clap::Args)]
pub struct VideoArgs {
    /// Videos: begin this far in: seconds (12.5) or minutes:seconds (1:02.5).
    #[arg(long, value_parser = time, value_name = "TIME")]
    pub start: Option<Duration>,
    /// Videos: stylise only this much (seconds or minutes:seconds).
    #[arg(long, value_parser = time, value_name = "TIME")]
    pub duration: Option<Duration>,
    /// Videos: the anti-flicker dial, 0 (off) to 1, as in the window: changes below a
    /// threshold between frames are held back and the output is averaged over time.
    #[arg(long, default_value_t = 0.0, value_parser = super::unit)]
    pub anti_flicker: f64,
    /// Videos: the H.264 quality, 0 (lossless) to 51; 18 (the default) looks like the
    /// source, 23 makes smaller files.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=51))]
    pub crf: Option<u32>,
}

/// `12.5`, `1:02.5` or `1:00:00` as a duration.
fn time(s: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("`{s}` is not a time: write seconds (12.5) or minutes:seconds (1:02.5)");
    let mut secs = 0.0f64;
    let parts: Vec<&str> = s.trim().split(':').collect();
    if parts.len() > 3 {
        return Err(bad());
    }
    for (i, p) in parts.iter().enumerate() {
        let v: f64 = p.parse().map_err(|_| bad())?;
        let last = i == parts.len() - 1;
        if !v.is_finite() || v < 0.0 || (!last && v.fract() != 0.0) {
            return Err(bad());
        }
        secs = secs * 60.0 + v;
    }
    Duration::try_from_secs_f64(secs).map_err(|_| bad())
}

/// The video flags make sense only with a video among the inputs.
pub fn check_args(v: &VideoArgs, inputs: &[PathBuf]) -> Result<()> {
    let used = v.start.is_some() || v.duration.is_some() || v.anti_flicker > 0.0 || v.crf.is_some();
    if used && !inputs.iter().any(|p| is_video(p)) {
        bail!(
            "--start, --duration, --anti-flicker and --crf are for videos, and no video was given"
        );
    }
    if v.duration == Some(Duration::ZERO) {
        bail!("--duration 0 would make an empty video: give a length above zero");
    }
    Ok(())
}

/// `-o OUT` must suit the input: a video to a video file, a photo to a picture.
pub fn check_output(input: &Path, out: &Path) -> Result<()> {
    let out_is_video = out
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| video::OUTPUT_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    if is_video(input) {
        video::output_format(out)
            .map_err(|e| anyhow::anyhow!("{} is a video: {e}", input.display()))?;
    } else if out_is_video || is_video(out) {
        bail!(
            "{} is a photo: write it to a .png file (videos go to .mp4)",
            input.display()
        );
    }
    Ok(())
}

/// A flag that Ctrl-C sets (once installed, for the rest of the process): work stops at the
/// next frame or photo and nothing half-written is left.
pub fn on_ctrl_c() -> Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let set = flag.clone();
        if let Err(e) = ctrlc::set_handler(move || set.store(true, Ordering::Release)) {
            tracing::warn!("Ctrl-C will end stylecam at once, without tidying up: {e}");
        }
        flag
    })
    .clone()
}

/// The largest width (a multiple of 16) at which a `w`x`h` picture fits [`MAX_PIXELS`].
fn widest(w: u32, h: u32) -> u32 {
    let aspect = f64::from(w) / f64::from(h.max(1));
    let width = (MAX_PIXELS as f64 * aspect).sqrt() as u32;
    (width / 16 * 16).max(16)
}

/// Stylises the video `input` into `output`.
pub fn run(job: &Job, input: &Path, output: &Path) -> Result<()> {
    let a = job.args;
    if !a.force && output.exists() {
        bail!(
            "{} already exists (pass --force to overwrite it)",
            output.display()
        );
    }
    let info = video::probe(input)?;
    let (w, h) = match a.content_size {
        Some(cw) => (
            cw,
            ((u64::from(info.height) * u64::from(cw) / u64::from(info.width.max(1))) as u32).max(8),
        ),
        None => (info.width, info.height),
    };
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(VideoError::TooLarge {
            path: input.into(),
            width: w,
            height: h,
            suggest: widest(w, h),
        }
        .into());
    }
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let ext = output
        .extension()
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(".stylecam-")
        .suffix(&format!(".{ext}.part"))
        .tempfile_in(&dir)
        .with_context(|| format!("{}: cannot write in this folder", dir.display()))?;

    let bar = job.progress.add(ProgressBar::new(info.frames.unwrap_or(0)));
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} frames · {per_sec} · ETA {eta} · {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(
        input
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
    );
    let dial = a.video.anti_flicker as f32;
    let mut flicker = AntiFlicker::default();
    let mut mask: Option<((u32, u32), Option<Tensor>)> = None;
    let mut stylize = |img: RgbImage| -> std::result::Result<RgbImage, String> {
        let run = || -> Result<RgbImage> {
            let img = flicker.deadband(&job.fit(img), dial);
            let size = img.dimensions();
            if mask.as_ref().map(|(s, _)| *s) != Some(size) {
                mask = Some((size, job.mask(size.0, size.1)?));
            }
            let m = mask.as_ref().and_then(|(_, m)| m.as_ref());
            Ok(flicker.smooth(job.frame(img, m)?, dial))
        };
        run().map_err(|e| format!("{e:#}"))
    };
    let mut progress = |done: u64, total: Option<u64>| {
        if let Some(t) = total {
            bar.set_length(t.max(done));
        }
        bar.set_position(done);
    };
    let opts = TranscodeOptions {
        start: a.video.start,
        duration: a.video.duration,
        preset: None,
        crf: a.video.crf,
    };
    let began = Instant::now();
    let result = video::transcode(
        input,
        tmp.path(),
        output,
        &opts,
        &mut stylize,
        &mut progress,
        job.cancel,
    );
    bar.finish_and_clear();
    job.progress.remove(&bar);
    let summary = result?;
    let secs = began.elapsed().as_secs_f64();
    if a.force {
        tmp.persist(output)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot write {}", output.display()))?;
    } else {
        tmp.persist_noclobber(output)
            .map_err(|e| e.error)
            .with_context(|| {
                format!(
                    "cannot write {} (or it appeared meanwhile)",
                    output.display()
                )
            })?;
    }
    job.say(&format!(
        "{}: {} frames at {}x{} in {secs:.1} s ({:.2} frames/s){}",
        input.display(),
        summary.frames,
        summary.width,
        summary.height,
        summary.frames as f64 / secs.max(1e-9),
        if summary.audio {
            ", audio copied"
        } else {
            ", no audio"
        }
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_seconds_or_minutes() {
        assert_eq!(time("12.5").unwrap(), Duration::from_millis(12_500));
        assert_eq!(time("1:02.5").unwrap(), Duration::from_millis(62_500));
        assert_eq!(time("1:00:00").unwrap(), Duration::from_secs(3600));
        for bad in ["", "-1", "1.5:00", "a", "1:2:3:4", "inf"] {
            assert!(time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_widest_fit_stays_under_the_cap() {
        let w = widest(7680, 4320);
        assert_eq!(w % 16, 0);
        let h = w as u64 * 4320 / 7680;
        assert!(w as u64 * h <= MAX_PIXELS);
        assert!((w as u64 + 16) * ((w as u64 + 16) * 4320 / 7680) > MAX_PIXELS);
    }
}
