//! `stylecam stylize`: photos and videos through MSG-Net, with the creative controls. One file
//! to one file (`-o OUT.png`, `-o OUT.mp4`), or any number of files, folders and globs into
//! `--output DIR`. Videos are in `stylize/video.rs`.

mod budget;
mod tiles;
mod video;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::{existing_file, DeviceArg};
use crate::model::{MsgNet, Targets};
use crate::style::{self, Aspect, Split};
use crate::video::is_video;
use crate::{assets, color, image_io};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub assets: super::AssetArgs,
    /// A style: a name from the style folder (its file stem, as `candy`) or the path of any
    /// image. Give it twice for two styles (--mix, --split, --mask).
    #[arg(long, required = true)]
    pub style: Vec<String>,
    /// The style image is resized to SIZE before its target is computed (as the reference
    /// does). Larger sizes give larger brush strokes.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(16..=4096))]
    pub style_size: u32,
    /// How the style image is resized: `square` squashes it to SIZE x SIZE (the reference's
    /// way); `keep` makes it SIZE wide and keeps its aspect ratio.
    #[arg(long, default_value = "square")]
    pub style_aspect: Aspect,
    /// Brush size: scales the style size (SIZE x F). Above 1 the style image is seen larger, so
    /// its strokes and motifs come out larger on the picture; below 1, finer.
    #[arg(long, default_value_t = 1.0, value_parser = brush)]
    pub brush: f64,
    /// How much style: 1 is the full style, 0 the network's rendering of the photo's own
    /// statistics (no style); in between, the targets are interpolated.
    #[arg(long, default_value_t = 1.0, value_parser = unit)]
    pub strength: f64,
    /// With two styles: blend them everywhere, 0 the first only, 1 the second only. (--split
    /// and --mask place each style in its own region instead.)
    #[arg(long, value_parser = unit, conflicts_with_all = ["split", "mask"])]
    pub mix: Option<f64>,
    /// With two styles: the first fills the left (vertical), top (horizontal) or centre (radial).
    #[arg(long, conflicts_with = "mask")]
    pub split: Option<Split>,
    /// With two styles: a greyscale image, white where the first style goes, black for the second.
    #[arg(long, value_parser = existing_file)]
    pub mask: Option<PathBuf>,
    /// Keep the photo's colours: take only the luminance of the stylised result.
    #[arg(long)]
    pub preserve_color: bool,
    /// Resize each photo (or video frame) to this width first, keeping its aspect ratio (as
    /// the reference's `--content-size`). Without it photos are stylised at their own size.
    #[arg(long, value_parser = clap::value_parser!(u32).range(16..=8192))]
    pub content_size: Option<u32>,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Precision on the CPU: f32 (exact, the default), bf16 (products with bf16 operands,
    /// faster on CPUs with Intel AMX) or auto (bf16 where the CPU has AMX, else f32).
    #[arg(long, default_value = "f32")]
    pub dtype: crate::device::DtypeSpec,
    /// Overwrite outputs that exist (regular files only: never folders, links or devices).
    #[arg(long)]
    pub force: bool,
    /// The most memory stylising one photo may take, as 1500M or 4G. Default: three quarters
    /// of the memory available now. A photo that needs more is stylised in tiles (with a
    /// progress bar); one that does not fit even so is refused before any work, with the
    /// --content-size that fits.
    #[arg(long, value_name = "SIZE", value_parser = budget::parse_bytes)]
    pub max_memory: Option<u64>,
    /// Stylise photos in tiles of this many pixels a side whatever the budget (for tests and
    /// benchmarks of the tiled pass).
    #[arg(long, hide = true, value_name = "PIXELS", value_parser = clap::value_parser!(u32).range(64..=8192))]
    pub tile_size: Option<u32>,
    /// Where to write the result of one input: a PNG for a photo; for a video, .mp4, .mov or
    /// .mkv (H.264) or .webm (VP9).
    #[arg(short = 'o', long = "out", conflicts_with = "output_dir")]
    pub out: Option<PathBuf>,
    /// The folder for the results (created if needed), named PHOTO-STYLE.png and
    /// VIDEO-STYLE.mp4.
    #[arg(long = "output", value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    #[command(flatten)]
    pub video: video::VideoArgs,
    /// Photos and videos: files, folders (their images and videos, not recursive) or globs
    /// like 'shots/*.jpg'.
    #[arg(required = true)]
    pub inputs: Vec<String>,
}

pub(super) fn unit(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number between 0 and 1")),
    }
}

fn brush(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.25..=4.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a brush size between 0.25 and 4")),
    }
}

fn check(a: &Args) -> Result<()> {
    let two = a.split.is_some() || a.mask.is_some() || a.mix.is_some();
    match a.style.len() {
        1 if two => bail!("--mix, --split and --mask need two styles: give --style twice"),
        2 if !two => {
            bail!("two styles given: say how to combine them with --mix, --split or --mask")
        }
        1 | 2 => Ok(()),
        n => bail!("{n} styles given; stylize combines at most two"),
    }
}

/// Expands files, folders and globs into a sorted, de-duplicated list of photos. Anything that
/// matches nothing is an error naming it.
pub fn expand_inputs(inputs: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for spec in inputs {
        let p = Path::new(spec);
        if p.is_file() {
            out.push(p.to_path_buf());
        } else if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("{spec}: cannot list the folder"))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && (style::bank::is_image(p) || is_video(p)))
                .collect();
            if found.is_empty() {
                bail!("{spec}: the folder holds no images or videos");
            }
            found.sort();
            out.extend(found);
        } else if spec.contains(['*', '?', '[']) {
            let paths =
                glob::glob(spec).with_context(|| format!("`{spec}` is not a valid glob"))?;
            let mut found: Vec<PathBuf> = paths
                .filter_map(|r| r.ok())
                .filter(|p| p.is_file())
                .collect();
            if found.is_empty() {
                bail!("`{spec}` matches no files");
            }
            found.sort();
            out.extend(found);
        } else {
            bail!("{spec} does not exist");
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    Ok(out)
}

fn load_mask(path: &Path, w: u32, h: u32, dev: &Device) -> Result<Tensor> {
    let img = image::DynamicImage::ImageRgb8(image_io::load_as(path, "mask")?).to_luma8();
    let img = image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle);
    let v: Vec<f32> = img.pixels().map(|p| p[0] as f32 / 255.0).collect();
    Ok(Tensor::from_vec(v, (1, 1, h as usize, w as usize), dev)?)
}

/// Everything that stays the same from photo to photo.
struct Job<'a> {
    args: &'a Args,
    net: &'a MsgNet,
    targets: Vec<Tensor>,
    /// Where progress bars draw (a video's frames under the batch's files).
    progress: MultiProgress,
    /// Set by Ctrl-C.
    cancel: &'a AtomicBool,
    budget: budget::Budget,
}

impl Job<'_> {
    /// A line for the user: above the progress bars, or on stderr when there are none (not a
    /// terminal).
    fn say(&self, line: &str) {
        if self.progress.is_hidden() {
            eprintln!("{line}");
        } else {
            self.progress.println(line).ok();
        }
    }

    fn run(&self, input: &Path, output: &Path) -> Result<()> {
        if is_video(input) {
            return video::run(self, input, output);
        }
        let a = self.args;
        // Before any work: the output may be written, the picture fits the memory budget.
        image_io::check_output(output, a.force)?;
        let img = image_io::load_as(input, "photo")?;
        let size = budget::working_size(img.dimensions(), a.content_size);
        let masked = a.mask.is_some() || a.split.is_some();
        let pass = self.budget.plan(
            input,
            size,
            self.net,
            a.content_size.is_some(),
            masked,
            a.tile_size,
        )?;
        let out = match pass {
            budget::Pass::Whole => self.frame(self.fit(img), None),
            budget::Pass::Tiled(tiling) => {
                let (w, h) = size;
                let plan = tiling.plan;
                let (tw, th) = tiling.thumbnail;
                self.say(&format!(
                    "{}: {w}x{h} is stylised in {} tiles of up to {} pixels a side, normalised \
                     by a {tw}x{th} thumbnail (about {} of memory)",
                    input.display(),
                    plan.count(),
                    plan.cell,
                    budget::gb(tiling.need),
                ));
                let img = self.fit(img);
                self.tiled(&img, &tiling)
            }
        }
        .with_context(|| format!("stylising {}", input.display()))?;
        if self.cancel.load(Ordering::Acquire) {
            bail!("interrupted (Ctrl-C or a stop signal)");
        }
        image_io::save(&out, output, a.force)?;
        Ok(())
    }

    /// The picture at `--content-size`, if given.
    fn fit(&self, img: image::RgbImage) -> image::RgbImage {
        match self.args.content_size {
            Some(w) => image_io::resize_to_width(&img, w),
            None => img,
        }
    }

    /// The mask for a `w`x`h` picture, with `--mask` or `--split`.
    fn mask(&self, w: u32, h: u32) -> Result<Option<Tensor>> {
        let a = self.args;
        let dev = self.net.device();
        Ok(match (&a.mask, a.split) {
            (Some(p), _) => Some(load_mask(p, w, h, dev)?),
            (None, Some(split)) => Some(style::split_mask(split, h as usize, w as usize, dev)?),
            (None, None) => None,
        })
    }

    /// The style targets for a picture: one style; two blended by `--mix` (made into `mixed`);
    /// or two placed by `mask`.
    fn choose<'t>(
        &'t self,
        mixed: &'t mut Option<Tensor>,
        mask: Option<&'t Tensor>,
    ) -> Result<Targets<'t>> {
        Ok(match (self.targets.as_slice(), mask) {
            ([first, second], Some(mask)) => Targets::Masked {
                first,
                second,
                mask,
            },
            ([first, second], None) => {
                let m = style::mix_targets(first, second, self.args.mix.unwrap_or(0.5))?;
                Targets::One(mixed.insert(m))
            }
            ([only], _) => Targets::One(only),
            _ => bail!("stylize combines one or two styles"),
        })
    }

    /// Stylises one picture (already at its working size) with the flags; `mask`: the mask
    /// for its size, if already made.
    fn frame(&self, img: image::RgbImage, mask: Option<&Tensor>) -> Result<image::RgbImage> {
        let a = self.args;
        let dev = self.net.device();
        let content = image_io::to_tensor(&img, dev, DType::F32)?;
        let (w, h) = img.dimensions();
        let made;
        let mask = match mask {
            Some(m) => Some(m),
            None => {
                made = self.mask(w, h)?;
                made.as_ref()
            }
        };
        let mut mixed = None;
        let chosen = self.choose(&mut mixed, mask)?;
        let out = self.net.forward_with(&content, chosen, a.strength)?;
        let out = if a.preserve_color {
            color::preserve_color(&out, &content)?
        } else {
            out
        };
        Ok(image_io::to_image(&out)?)
    }
}

/// Pairs each photo with its output file.
fn plan(a: &Args, inputs: &[PathBuf], style_tag: &str) -> Result<Vec<(PathBuf, PathBuf)>> {
    match (&a.out, &a.output_dir) {
        (Some(out), None) => match inputs {
            [one] => {
                video::check_output(one, out)?;
                // Before loading anything: a name stylecam can write, in a format it knows.
                if !is_video(one) {
                    image_io::OutputFormat::from_path(out)?;
                }
                image_io::check_output(out, a.force)?;
                Ok(vec![(one.clone(), out.clone())])
            }
            _ => bail!(
                "{} photos or videos given but -o names one file: use --output DIR for several",
                inputs.len()
            ),
        },
        (None, Some(dir)) => {
            if inputs.len() == 1 && !dir.is_dir() && (style::bank::is_image(dir) || is_video(dir)) {
                bail!(
                    "--output names a folder, and {} looks like a file name: use -o FILE for one photo",
                    dir.display()
                );
            }
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create the output folder", dir.display()))?;
            let mut names = std::collections::HashSet::new();
            inputs
                .iter()
                .map(|p| {
                    let stem = p
                        .file_stem()
                        .map(|s| s.to_string_lossy())
                        .unwrap_or_default();
                    let ext = if is_video(p) { "mp4" } else { "png" };
                    let out = dir.join(format!("{stem}-{style_tag}.{ext}"));
                    if !names.insert(out.clone()) {
                        bail!(
                            "{} and another photo would both be written to {}; rename one",
                            p.display(),
                            out.display()
                        );
                    }
                    Ok((p.clone(), out))
                })
                .collect()
        }
        _ => bail!(
            "say where the results go: -o OUT.png for one photo, -o OUT.mp4 for one video, or \
             --output DIR"
        ),
    }
}

pub fn run(a: Args) -> Result<()> {
    check(&a)?;
    let inputs = expand_inputs(&a.inputs)?;
    video::check_args(&a.video, &inputs)?;
    let cancel = crate::interrupt::on_ctrl_c();
    let dev = a.device.open();
    let mut loaded = a.assets.load(&dev, false)?;
    let choice = crate::device::DtypeChoice::resolve(a.dtype, &dev, crate::device::cpu_has_bf16());
    if choice.dtype != DType::F32 {
        eprintln!(
            "warning: --dtype {} applies to the CPU; this device runs f32",
            a.dtype
        );
    }
    choice.apply(&mut loaded.model.net)?;
    if let (Some(note), crate::device::DtypeSpec::Auto | crate::device::DtypeSpec::Bf16) =
        (&choice.note, a.dtype)
    {
        eprintln!("{note}");
    }
    let styles = a
        .style
        .iter()
        .map(|s| {
            loaded.bank.resolve(s).map_err(|e| {
                if loaded.bank.is_empty() {
                    anyhow::anyhow!(
                        "{e}\n{}",
                        assets::missing_styles_message(&loaded.data, &loaded.model_name)
                    )
                } else {
                    e.into()
                }
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let style_tag = styles
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join("+");
    let jobs = plan(&a, &inputs, &style_tag)?;

    let mut cache = loaded.target_cache();
    let size = crate::controls::brushed_size(a.style_size, a.brush);
    let targets = styles
        .iter()
        .map(|s| {
            cache
                .target(&loaded.model.net, s, size, a.style_aspect)
                .with_context(|| format!("--style {}", s.name))
        })
        .collect::<Result<Vec<_>>>()?;
    let job = Job {
        args: &a,
        net: &loaded.model.net,
        targets,
        progress: MultiProgress::new(),
        cancel: &cancel,
        budget: budget::Budget::new(a.max_memory),
    };

    let bar = if jobs.len() > 1 {
        let b = job.progress.add(ProgressBar::new(jobs.len() as u64));
        b.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} {elapsed_precise} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    let mut failed = Vec::new();
    let mut interrupted = false;
    for (input, output) in &jobs {
        if cancel.load(Ordering::Acquire) {
            interrupted = true;
            break;
        }
        bar.set_message(input.display().to_string());
        match job.run(input, output) {
            Ok(()) if jobs.len() > 1 => job.say(&format!("wrote {}", output.display())),
            Ok(()) => {}
            Err(_) if cancel.load(Ordering::Acquire) => {
                interrupted = true;
                break;
            }
            Err(e) => {
                // Said once: here in a batch, by main for a single input.
                let e = super::error_text(&e);
                if jobs.len() > 1 {
                    job.say(&format!("failed: {e}"));
                }
                failed.push(e);
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if interrupted {
        bail!("interrupted (Ctrl-C or a stop signal): the file being made was not written, and no partial file is left");
    }
    if jobs.len() > 1 {
        let what = if jobs.iter().any(|(p, _)| is_video(p)) {
            "files"
        } else {
            "photos"
        };
        eprintln!(
            "stylised {} of {} {what} with {style_tag}",
            jobs.len() - failed.len(),
            jobs.len()
        );
    }
    match failed.as_slice() {
        [] => Ok(()),
        [e] if jobs.len() == 1 => bail!("{e}"),
        _ => bail!(
            "{} of {} inputs failed (each said above)",
            failed.len(),
            jobs.len()
        ),
    }
}
