//! `stylecam serve`: the web page, the HTTP API and the live MJPEG stream (see `docs/HTTP.md`).

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::{AssetArgs, CameraArgs, DeviceArg};
use crate::capture::SourceSpec;
use crate::controls::{Controls, Resolution};
use crate::engine::Engine;
use crate::pipeline::PipelineConfig;
use crate::serve::catalog::Catalog;
use crate::serve::live::LiveConfig;
use crate::serve::{self, Limits, ServeConfig};
use crate::style::Aspect;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub assets: AssetArgs,
    /// The address and port to listen on. The default is this machine only; any other address
    /// (0.0.0.0:8080 for every network) lets other machines in, and prints a warning.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    pub listen: SocketAddr,
    /// Require `Authorization: Bearer TOKEN` (or `?token=TOKEN`) on every route but /healthz.
    /// Also read from STYLECAM_TOKEN, which keeps it out of the process list.
    #[arg(long, env = "STYLECAM_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// What the live stream shows: `camera` (the first webcam), `camera:N`, `test-pattern`, an
    /// image file or a folder of images. Opened only while someone watches; a camera that cannot
    /// be opened falls back to the test pattern.
    #[arg(long, default_value = "camera", value_name = "SOURCE")]
    pub source: SourceSpec,
    #[command(flatten)]
    pub camera: CameraArgs,
    /// The live stream's first style (a name from GET /api/styles). Default: the first one.
    #[arg(long)]
    pub style: Option<String>,
    /// How style images are resized: square (the reference's way) or keep.
    #[arg(long, default_value = "square")]
    pub style_aspect: Aspect,
    /// The live stream's processing resolution: 240p, 360p, 480p, 720p or native. Default:
    /// 240p on the CPU, 480p on a GPU.
    #[arg(long)]
    pub resolution: Option<Resolution>,
    #[command(flatten)]
    pub device: DeviceArg,
    /// The largest request body (a photo or a style picture), e.g. 16M or 500K.
    #[arg(long, default_value = "16M", value_parser = byte_size, value_name = "BYTES")]
    pub max_body: usize,
    /// The most megapixels a picture may have; larger ones are refused from their header,
    /// before anything is decoded.
    #[arg(long, default_value_t = 24.0, value_parser = megapixels, value_name = "MP")]
    pub max_megapixels: f64,
    /// The longest side of a result a request may ask for (`size`).
    #[arg(long, default_value_t = 1280, value_parser = clap::value_parser!(u32).range(16..=8192))]
    pub max_size: u32,
    /// The longest side of a result when the request names no size (smaller photos keep theirs).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(16..=8192))]
    pub default_size: u32,
    /// How many photos may wait for inference; more are answered 503 with Retry-After.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub queue: u64,
    /// How many styles may be uploaded while the server runs.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(0..=256))]
    pub max_styles: u64,
    /// How many clients may watch the stream at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub max_streams: u64,
    /// How many connections are served at once; more wait.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub max_connections: u64,
    /// Seconds a client may take to send its request, and a connection may stay idle or make no
    /// progress reading an answer, before it is closed.
    #[arg(long, default_value_t = 30.0, value_parser = seconds, value_name = "SECONDS")]
    pub client_timeout: f64,
}

/// `16M`, `500K`, `1G` or plain bytes.
fn byte_size(s: &str) -> std::result::Result<usize, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'K' | 'k')) => (&t[..i], 1usize << 10),
        Some((i, 'M' | 'm')) => (&t[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    match num.trim().parse::<usize>() {
        Ok(n) if n > 0 => n
            .checked_mul(mult)
            .ok_or_else(|| format!("`{s}` is too large")),
        _ => Err(format!(
            "`{s}` is not a size: write bytes, or a number with K, M or G (16M)"
        )),
    }
}

fn megapixels(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1000.0 => Ok(v),
        _ => Err(format!(
            "`{s}` is not a number of megapixels from 0 to 1000"
        )),
    }
}

fn seconds(s: &str) -> std::result::Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.1..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds from 0.1 to 3600")),
    }
}

pub fn run(a: Args) -> Result<()> {
    if a.default_size > a.max_size {
        bail!(
            "--default-size {} is larger than --max-size {}",
            a.default_size,
            a.max_size
        );
    }
    let dev = a.device.open();
    let assets = a.assets.load(&dev, true)?;
    let bank = assets.bank.clone();
    let style = match &a.style {
        Some(s) => match bank.get(s) {
            Some(st) => st.name.clone(),
            None => bail!(
                "--style: no style named `{s}`; the styles are: {}",
                bank.styles()
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        None => bank
            .styles()
            .first()
            .map(|s| s.name.clone())
            .context("there are no styles to serve")?,
    };
    let controls = Controls {
        style,
        resolution: a.resolution.unwrap_or(if dev.is_cpu() {
            Resolution::P240
        } else {
            Resolution::P480
        }),
        ..Controls::default()
    };
    let limits = Limits {
        max_body: a.max_body,
        max_pixels: (a.max_megapixels * 1e6) as u64,
        max_size: a.max_size,
        default_size: a.default_size,
        queue: a.queue as usize,
        max_styles: a.max_styles as usize,
        max_streams: a.max_streams as usize,
        max_connections: a.max_connections as usize,
        client_timeout: Duration::from_secs_f64(a.client_timeout),
        ..Limits::default()
    };
    let pack = assets.pack.clone();
    let catalog = Catalog::new(
        &bank,
        |name| pack.as_ref().and_then(|p| p.swatch(name).cloned()),
        limits.max_styles,
    );
    let cache = assets.target_cache();
    let engine = Engine::new(
        assets.model.net,
        bank,
        cache,
        a.style_aspect,
        controls.clone(),
    )
    .context("preparing the first style")?;
    let device = engine.device_name().to_owned();
    let live = LiveConfig {
        pipeline: PipelineConfig {
            source: a.source.clone(),
            source_config: a.camera.source_config(),
            ..PipelineConfig::default()
        },
        linger: Duration::from_secs(3),
        max_viewers: limits.max_streams,
    };
    if !serve::is_local(&a.listen) {
        eprintln!(
            "warning: listening on {}: other machines can reach this server{}",
            a.listen,
            if a.token.is_some() {
                "; they need the token"
            } else {
                "; anyone who can reach it can use it: pass --token (or set STYLECAM_TOKEN)"
            }
        );
    }
    let styles = catalog.len();
    let model = assets.model_name.clone();
    serve::run(
        ServeConfig {
            listen: a.listen,
            token: a.token.filter(|t| !t.trim().is_empty()),
            limits,
            live,
            controls,
        },
        engine,
        catalog,
        |addr| {
            // Tests and scripts read this line for the port.
            println!("stylecam serve: listening on http://{addr}/");
            println!("  {styles} styles, {model}, on {device}; Ctrl-C stops");
            std::io::stdout().flush().ok();
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(byte_size("16M"), Ok(16 << 20));
        assert_eq!(byte_size("500k"), Ok(500 << 10));
        assert_eq!(byte_size("1234"), Ok(1234));
        assert!(byte_size("0").is_err());
        assert!(byte_size("lots").is_err());
        assert!(seconds("0").is_err());
        assert!(megapixels("-3").is_err());
    }
}
