//! `stylecam bench`: forward time per input size, median of N runs after a warm-up.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};

use super::{existing_file, DeviceArg, Size};
use crate::{device, model};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Weights to time; without it, random weights of the 21-style shape (ngf 128, 6 blocks).
    #[arg(long, value_parser = existing_file)]
    pub model: Option<PathBuf>,
    /// Input size WxH; repeat for several.
    #[arg(long = "size", required = true)]
    pub sizes: Vec<Size>,
    /// Timed runs per size (after 2 warm-up runs).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Precision: f32, f16 or bf16 (half precision is for GPUs).
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: DType,
    /// One JSON object per size on its own line instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn parse_dtype(s: &str) -> std::result::Result<DType, String> {
    match s {
        "f32" => Ok(DType::F32),
        "f16" => Ok(DType::F16),
        "bf16" => Ok(DType::BF16),
        _ => Err(format!("unknown precision `{s}`: use f32, f16 or bf16")),
    }
}

struct Row {
    size: Size,
    median_ms: f64,
    min_ms: f64,
    gmac: f64,
}

pub fn run(a: Args) -> Result<()> {
    let dev = a.device.open();
    let net = match &a.model {
        Some(p) => model::load(p, &dev, a.dtype)?.net,
        None => model::random(model::Config::PRETRAINED, &dev, a.dtype)?,
    };
    // A fixed 256x256 style target; its cost is not part of the per-frame time.
    let style = Tensor::rand(0f32, 255., (1, 3, 256, 256), &dev)?.to_dtype(a.dtype)?;
    let target = net.style_target(&style)?;
    let name = device::name(&dev);
    let threads = rayon::current_num_threads();
    if !a.json {
        let c = net.config();
        println!(
            "MSG-Net ngf {} / {} blocks on {name} ({threads} threads), {:?}, {} runs",
            c.ngf, c.blocks, a.dtype, a.runs
        );
        println!(
            "{:>10} {:>11} {:>11} {:>9} {:>9} {:>7}",
            "size", "median ms", "min ms", "GMAC", "GMAC/s", "fps"
        );
    }
    for &size in &a.sizes {
        let row = time_size(&net, &target, size, a.runs as usize, &dev, a.dtype)
            .with_context(|| format!("benchmarking {size}"))?;
        if a.json {
            let j = serde_json::json!({
                "size": size.to_string(),
                "device": name,
                "dtype": format!("{:?}", a.dtype).to_lowercase(),
                "threads": threads,
                "median_ms": row.median_ms,
                "min_ms": row.min_ms,
                "runs": a.runs,
                "gmac": row.gmac,
                "gmac_per_s": row.gmac / (row.median_ms / 1e3),
            });
            println!("{j}");
        } else {
            println!(
                "{:>10} {:>11.1} {:>11.1} {:>9.1} {:>9.1} {:>7.2}",
                row.size.to_string(),
                row.median_ms,
                row.min_ms,
                row.gmac,
                row.gmac / (row.median_ms / 1e3),
                1e3 / row.median_ms
            );
        }
    }
    Ok(())
}

fn time_size(
    net: &model::MsgNet,
    target: &Tensor,
    size: Size,
    runs: usize,
    dev: &Device,
    dtype: DType,
) -> Result<Row> {
    let x = Tensor::rand(0f32, 255., (1, 3, size.height, size.width), dev)?.to_dtype(dtype)?;
    for _ in 0..2 {
        net.forward(&x, target)?;
        dev.synchronize()?;
    }
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        let y = net.forward(&x, target)?;
        dev.synchronize()?;
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
        drop(y);
    }
    ms.sort_by(f64::total_cmp);
    let median_ms = if runs % 2 == 1 {
        ms[runs / 2]
    } else {
        (ms[runs / 2 - 1] + ms[runs / 2]) / 2.0
    };
    Ok(Row {
        size,
        median_ms,
        min_ms: ms[0],
        gmac: net.macs(size.height, size.width)? as f64 / 1e9,
    })
}
