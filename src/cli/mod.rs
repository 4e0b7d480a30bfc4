//! The command line: `stylecam <command>`. Each command lives in its own file.

mod bench;
mod bench_live;
mod convert;
mod fetch;
mod inspect;
pub mod live;
mod parity;
mod report;
mod serve;
mod stylize;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::assets::{self, Assets};
use crate::device::DeviceSpec;
use crate::paths::DataDir;
pub use report::{colour, error_text};

#[derive(Debug, Parser)]
#[command(
    name = "stylecam",
    version,
    about = "Live and batch style transfer with MSG-Net",
    long_about = "Live and batch style transfer with MSG-Net.\n\nWith no command, stylecam opens \
                  the live window (options below); the commands stylise files and manage \
                  weights.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub live: live::LiveArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Stylise an image: `stylecam stylize --model M --style S INPUT -o OUT.png`.
    Stylize(Box<stylize::Args>),
    /// Convert any supported weight file to safetensors.
    Convert(convert::Args),
    /// Print a weight file's format, keys, shapes, inferred ngf/blocks and parameter count.
    Inspect(inspect::Args),
    /// Time the network's forward pass per input size.
    Bench(bench::Args),
    /// Compare this build's output with a PyTorch reference case (max |Δ|, as JSON).
    Parity(parity::Args),
    /// Download the pretrained model and the 21 style images into the data dir.
    Fetch(fetch::Args),
    /// Serve the web page, the HTTP API and a live MJPEG stream (docs/HTTP.md).
    Serve(serve::Args),
}

/// The flags every command that runs the network shares.
#[derive(Debug, Clone, clap::Args)]
pub struct AssetArgs {
    /// Weights: the original 21styles.model (`stylecam fetch` downloads it), a .pth, or a
    /// .safetensors file. Default: stylecam's own weights, built in.
    #[arg(long, value_parser = existing_file)]
    pub model: Option<PathBuf>,
    /// A folder of style images, named by file stem. Default: the built-in styles, or with
    /// --model the 21 style images in the data dir (`stylecam fetch`).
    #[arg(long, value_name = "DIR")]
    pub styles: Option<PathBuf>,
    /// Where downloads and the style-target cache live (also STYLECAM_DATA_DIR). Default: the
    /// platform's data dir, e.g. ~/.local/share/stylecam.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl AssetArgs {
    pub fn data_dir(&self) -> Result<DataDir> {
        Ok(DataDir::resolve(self.data_dir.as_deref())?)
    }

    /// Loads the weights and their styles ([`crate::assets::load`]). `need_bank`: fail if there
    /// are no styles at all (rather than leave it to style paths given by the user).
    pub fn load(&self, device: &candle_core::Device, need_bank: bool) -> Result<Assets> {
        assets::load(
            self.model.as_deref(),
            self.styles.as_deref(),
            self.data_dir()?,
            device,
            need_bank,
        )
    }
}

/// The camera flags of the commands with a live source (the window and `serve`).
#[derive(Debug, Clone, clap::Args)]
pub struct CameraArgs {
    /// Ask the camera for this resolution, e.g. 1280x720 (the nearest it offers is used; the
    /// test pattern is drawn at it).
    #[arg(long, value_name = "WxH")]
    pub camera_size: Option<Size>,
    /// Ask the camera (or pace the test pattern and slideshow) at this many frames per second,
    /// 1 to 240.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=crate::capture::MAX_FPS as i64))]
    pub fps: Option<u32>,
}

impl CameraArgs {
    pub fn source_config(&self) -> crate::capture::SourceConfig {
        crate::capture::SourceConfig::new(
            self.camera_size.map(|s| (s.width as u32, s.height as u32)),
            self.fps,
        )
    }
}

/// Device flag shared by the commands that run the network.
#[derive(Debug, Clone, clap::Args)]
pub struct DeviceArg {
    /// Where to run: auto, cpu, cuda, cuda:N or metal. Falls back to the CPU with a message.
    #[arg(long, default_value = "auto")]
    pub device: DeviceSpec,
}

impl DeviceArg {
    pub fn open(&self) -> candle_core::Device {
        let s = crate::device::select(self.device);
        if let Some(msg) = s.fallback {
            eprintln!("warning: {msg}");
        }
        s.device
    }
}

/// A `WxH` size, as `640x480`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub width: usize,
    pub height: usize,
}

impl std::str::FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("`{s}` is not a size: write WIDTHxHEIGHT, e.g. 640x480");
        let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
        let (width, height) = (
            w.trim().parse().map_err(|_| bad())?,
            h.trim().parse().map_err(|_| bad())?,
        );
        if width == 0 || height == 0 {
            return Err(bad());
        }
        Ok(Size { width, height })
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Some(Command::Stylize(a)) => stylize::run(*a),
        Some(Command::Convert(a)) => convert::run(a),
        Some(Command::Inspect(a)) => inspect::run(a),
        Some(Command::Bench(a)) => bench::run(a),
        Some(Command::Parity(a)) => parity::run(a),
        Some(Command::Fetch(a)) => fetch::run(a),
        Some(Command::Serve(a)) => serve::run(a),
        None => live::run(cli.live),
    }
}

/// A file argument that must exist.
pub fn existing_file(s: &str) -> std::result::Result<PathBuf, String> {
    let p = PathBuf::from(s);
    if p.is_file() {
        Ok(p)
    } else if p.exists() {
        Err(format!("{s} is not a file"))
    } else {
        Err(format!("{s} does not exist"))
    }
}
