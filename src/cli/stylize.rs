//! `stylecam stylize`: one image through MSG-Net.

use std::path::PathBuf;

use anyhow::{Context, Result};
use candle_core::DType;

use super::{existing_file, DeviceArg};
use crate::{image_io, model};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Weights: the original 21styles.model, a .pth, or a .safetensors file.
    #[arg(long, value_parser = existing_file)]
    pub model: PathBuf,
    /// Style image; any picture can be a style.
    #[arg(long, value_parser = existing_file)]
    pub style: PathBuf,
    /// The style image is squashed to SIZE x SIZE before its Gram target is computed (as the
    /// reference does). Larger sizes give finer brush strokes.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(16..=4096))]
    pub style_size: u32,
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

pub fn run(a: Args) -> Result<()> {
    if !a.force && a.output.exists() {
        anyhow::bail!(
            "{} already exists (pass --force to overwrite it)",
            a.output.display()
        );
    }
    let device = a.device.open();
    let loaded = model::load(&a.model, &device, DType::F32)?;
    let net = loaded.net;
    let style = image_io::resize_square(&image_io::load_rgb(&a.style)?, a.style_size);
    let target = net
        .style_target(&image_io::to_tensor(&style, &device, DType::F32)?)
        .with_context(|| format!("computing the style target of {}", a.style.display()))?;
    let content = image_io::load_rgb(&a.input)?;
    let out = net
        .forward(
            &image_io::to_tensor(&content, &device, DType::F32)?,
            &target,
        )
        .with_context(|| format!("stylising {}", a.input.display()))?;
    image_io::save_png(&image_io::to_image(&out)?, &a.output, a.force)?;
    eprintln!("wrote {}", a.output.display());
    Ok(())
}
