//! `stylecam stylize`: one image through MSG-Net, with the creative controls.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{DType, Device, Tensor};

use super::{existing_file, DeviceArg};
use crate::model::{MsgNet, Targets};
use crate::style::{self, Split};
use crate::{color, image_io, model};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Weights: the original 21styles.model, a .pth, or a .safetensors file.
    #[arg(long, value_parser = existing_file)]
    pub model: PathBuf,
    /// Style image; any picture can be a style. Give it twice for two styles (--mix, --split,
    /// --mask).
    #[arg(long, value_parser = existing_file, required = true)]
    pub style: Vec<PathBuf>,
    /// The style image is squashed to SIZE x SIZE before its Gram target is computed (as the
    /// reference does). Larger sizes give finer brush strokes.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(16..=4096))]
    pub style_size: u32,
    /// Brush size: scales the style size (SIZE x F). Below 1 the style image is seen smaller, so
    /// its strokes and motifs come out larger on the picture; above 1, finer.
    #[arg(long, default_value_t = 1.0, value_parser = brush)]
    pub brush: f64,
    /// How much style: 1 is the full style, 0 the network's rendering of the photo's own
    /// statistics (no style); in between, the targets are interpolated.
    #[arg(long, default_value_t = 1.0, value_parser = unit)]
    pub strength: f64,
    /// With two styles: 0 is the first only, 1 the second only.
    #[arg(long, value_parser = unit)]
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
    #[command(flatten)]
    pub device: DeviceArg,
    /// Overwrite OUTPUT if it exists.
    #[arg(long)]
    pub force: bool,
    /// The photo to stylise (used at its own size).
    #[arg(value_parser = existing_file)]
    pub input: PathBuf,
    /// Where to write the RGB PNG.
    #[arg(short, long)]
    pub output: PathBuf,
}

fn unit(s: &str) -> std::result::Result<f64, String> {
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

fn target(net: &MsgNet, path: &Path, size: u32, dev: &Device) -> Result<Tensor> {
    let style = image_io::resize_square(&image_io::load_rgb(path)?, size);
    net.style_target(&image_io::to_tensor(&style, dev, DType::F32)?)
        .with_context(|| format!("computing the style target of {}", path.display()))
}

fn load_mask(path: &Path, w: u32, h: u32, dev: &Device) -> Result<Tensor> {
    let img = image::open(path)
        .with_context(|| format!("{}: cannot read the mask image", path.display()))?
        .to_luma8();
    let img = image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle);
    let v: Vec<f32> = img.pixels().map(|p| p[0] as f32 / 255.0).collect();
    Ok(Tensor::from_vec(v, (1, 1, h as usize, w as usize), dev)?)
}

pub fn run(a: Args) -> Result<()> {
    check(&a)?;
    if !a.force && a.output.exists() {
        bail!(
            "{} already exists (pass --force to overwrite it)",
            a.output.display()
        );
    }
    let dev = a.device.open();
    let net = model::load(&a.model, &dev, DType::F32)?.net;
    let size = crate::controls::brushed_size(a.style_size, a.brush);
    let targets = a
        .style
        .iter()
        .map(|p| target(&net, p, size, &dev))
        .collect::<Result<Vec<_>>>()?;
    let content_img = image_io::load_rgb(&a.input)?;
    let content = image_io::to_tensor(&content_img, &dev, DType::F32)?;
    let mask = match (&a.mask, a.split) {
        (Some(p), _) => Some(load_mask(
            p,
            content_img.width(),
            content_img.height(),
            &dev,
        )?),
        (None, Some(split)) => Some(style::split_mask(
            split,
            content_img.height() as usize,
            content_img.width() as usize,
            &dev,
        )?),
        (None, None) => None,
    };
    let mixed;
    let chosen = match (targets.as_slice(), &mask) {
        ([first, second], Some(mask)) => Targets::Masked {
            first,
            second,
            mask,
        },
        ([first, second], None) => {
            mixed = style::mix_targets(first, second, a.mix.unwrap_or(0.5))?;
            Targets::One(&mixed)
        }
        ([only], _) => Targets::One(only),
        _ => bail!("stylize combines one or two styles"),
    };
    let out = net
        .forward_with(&content, chosen, a.strength)
        .with_context(|| format!("stylising {}", a.input.display()))?;
    let out = if a.preserve_color {
        color::preserve_color(&out, &content)?
    } else {
        out
    };
    image_io::save_png(&image_io::to_image(&out)?, &a.output, a.force)?;
    eprintln!("wrote {}", a.output.display());
    Ok(())
}
