//! `stylecam bench`: forward time per input size, median of N runs after a warm-up; with `--live`
//! the whole live pipeline without a window (`bench_live.rs`).

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use candle_core::{DType, Device, Tensor};

use super::{existing_file, DeviceArg, Size};
use crate::capture::SourceSpec;
use crate::controls::Resolution;
use crate::device::{DtypeChoice, DtypeSpec};
use crate::{device, model};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Weights to time; without it, random weights of the 21-style shape (ngf 128, 6 blocks)
    /// (with --live: the built-in weights).
    #[arg(long, value_parser = existing_file)]
    pub model: Option<PathBuf>,
    /// Input size WxH; repeat for several.
    #[arg(long = "size", required_unless_present = "live")]
    pub sizes: Vec<Size>,
    /// Timed runs per size (after 2 warm-up runs).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Precision: f32, bf16, auto (bf16 where the CPU has Intel AMX, else f32) or f16
    /// (for GPUs). On the CPU, bf16 rounds the operands of the products to bf16 and accumulates
    /// in f32.
    #[arg(long, default_value = "f32")]
    pub dtype: DtypeSpec,
    /// One JSON object per size on its own line (with --live: one object) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also print where the time of a forward pass goes, per stage and operation (CPU f32/bf16).
    #[arg(long)]
    pub layers: bool,

    /// Run the live pipeline headless (capture thread, inference thread, a sink doing what the
    /// window does except presenting) and report fps, latency, drops, CPU time per thread
    /// and RSS.
    #[arg(long, help_heading = "Live pipeline (--live)")]
    pub live: bool,
    /// What to capture: test-pattern, camera, camera:N, an image file or a folder.
    #[arg(
        long,
        default_value = "test-pattern",
        help_heading = "Live pipeline (--live)"
    )]
    pub source: SourceSpec,
    /// The source's frame size (test pattern; the size asked of a camera).
    #[arg(
        long,
        default_value = "640x480",
        help_heading = "Live pipeline (--live)"
    )]
    pub source_size: Size,
    /// The source's frame rate.
    #[arg(long, default_value_t = 30, help_heading = "Live pipeline (--live)")]
    pub fps: u32,
    /// Processing resolution: 240p, 360p, 480p, 720p or native.
    #[arg(long, default_value = "240p", help_heading = "Live pipeline (--live)")]
    pub resolution: Resolution,
    /// A folder of style images (default: the built-in styles, or the data dir's with --model).
    #[arg(long, value_name = "DIR", help_heading = "Live pipeline (--live)")]
    pub styles: Option<PathBuf>,
    /// The style (default: the first).
    #[arg(long, help_heading = "Live pipeline (--live)")]
    pub style: Option<String>,
    /// Seconds measured after the warm-up.
    #[arg(long, default_value_t = 10.0, help_heading = "Live pipeline (--live)")]
    pub seconds: f64,
    /// Stop after this many delivered frames instead.
    #[arg(long, help_heading = "Live pipeline (--live)")]
    pub frames: Option<u64>,
    /// Seconds before measuring starts.
    #[arg(long, default_value_t = 3.0, help_heading = "Live pipeline (--live)")]
    pub warmup: f64,
    /// Switch to the next style every N delivered frames (the soak test).
    #[arg(long, value_name = "N", help_heading = "Live pipeline (--live)")]
    pub switch_every: Option<u64>,
    /// Move the brush slider on every frame (the soak test).
    #[arg(long, help_heading = "Live pipeline (--live)")]
    pub move_brush: bool,
    /// The anti-flicker dial, 0..1.
    #[arg(long, default_value_t = 0.0, help_heading = "Live pipeline (--live)")]
    pub anti_flicker: f32,
}

struct Row {
    size: Size,
    median_ms: f64,
    min_ms: f64,
    gmac: f64,
}

pub fn run(a: Args) -> Result<()> {
    let dev = a.device.open();
    if a.live {
        let report = super::bench_live::run(
            super::bench_live::LiveOptions {
                model: a.model.clone(),
                styles: a.styles.clone(),
                source: a.source.clone(),
                source_size: a.source_size,
                fps: a.fps,
                resolution: a.resolution,
                style: a.style.clone(),
                seconds: a.seconds,
                frames: a.frames,
                warmup: a.warmup,
                switch_every: a.switch_every,
                move_brush: a.move_brush,
                anti_flicker: a.anti_flicker,
                dtype: a.dtype,
            },
            dev,
        )?;
        if a.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            super::bench_live::print_table(&report);
        }
        return Ok(());
    }
    let choice = DtypeChoice::resolve(a.dtype, &dev, device::cpu_has_bf16());
    let dtype = choice.dtype;
    let mut net = match &a.model {
        Some(p) => model::load(p, &dev, dtype)?.net,
        None => model::random(model::Config::PRETRAINED, &dev, dtype)?,
    };
    choice.apply(&mut net)?;
    // A fixed 256x256 style target; its cost is not part of the per-frame time.
    let style = Tensor::rand(0f32, 255., (1, 3, 256, 256), &dev)?.to_dtype(dtype)?;
    let target = net.style_target(&style)?;
    let name = device::name(&dev);
    let threads = rayon::current_num_threads();
    if !a.json {
        let c = net.config();
        println!(
            "MSG-Net ngf {} / {} blocks on {name} ({threads} threads), {}, {} runs",
            c.ngf,
            c.blocks,
            choice.name(),
            a.runs
        );
        if let Some(note) = &choice.note {
            println!("({note})");
        }
        println!(
            "{:>10} {:>11} {:>11} {:>9} {:>9} {:>7}",
            "size", "median ms", "min ms", "GMAC", "GMAC/s", "fps"
        );
    }
    for &size in &a.sizes {
        let cpu = net.cpu_executor().filter(|_| a.layers);
        let row = time_size(&net, &target, size, a.runs as usize, &dev, dtype, cpu)
            .with_context(|| format!("benchmarking {size}"))?;
        if a.json {
            let j = serde_json::json!({
                "size": size.to_string(),
                "device": name,
                "dtype": choice.name(),
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
        if let Some(cpu) = cpu {
            print_layers(&cpu.layer_times(), a.runs);
        }
    }
    if a.layers && net.cpu_executor().is_none() {
        eprintln!("--layers: only the CPU executor (f32 or bf16 on the CPU) is profiled");
    }
    Ok(())
}

/// Mean ms per forward pass of every (stage, operation), and each stage's total.
fn print_layers(times: &crate::model::cpu::LayerTimes, runs: u32) {
    let per_run = |d: std::time::Duration| d.as_secs_f64() * 1e3 / runs as f64;
    let total: f64 = times.iter().map(|t| per_run(t.2)).sum();
    println!(
        "  {:<16} {:<16} {:>9} {:>6}",
        "stage", "operation", "ms", "%"
    );
    let mut stage_sum = 0.0;
    for (i, (stage, op, d, _)) in times.iter().enumerate() {
        let ms = per_run(*d);
        stage_sum += ms;
        println!(
            "  {stage:<16} {op:<16} {ms:>9.2} {:>6.1}",
            100.0 * ms / total
        );
        if times.get(i + 1).is_none_or(|n| n.0 != *stage) {
            println!(
                "  {:<16} {:<16} {stage_sum:>9.2} {:>6.1}",
                "",
                "= stage",
                100.0 * stage_sum / total
            );
            stage_sum = 0.0;
        }
    }
    println!("  {:<16} {:<16} {total:>9.2}", "total", "");
}

fn time_size(
    net: &model::MsgNet,
    target: &Tensor,
    size: Size,
    runs: usize,
    dev: &Device,
    dtype: DType,
    profile: Option<&model::cpu::CpuNet>,
) -> Result<Row> {
    let x = Tensor::rand(0f32, 255., (1, 3, size.height, size.width), dev)?.to_dtype(dtype)?;
    for _ in 0..2 {
        net.forward(&x, target)?;
        dev.synchronize()?;
    }
    if let Some(cpu) = profile {
        cpu.set_profiling(true);
    }
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        let y = net.forward(&x, target)?;
        dev.synchronize()?;
        ms.push(t0.elapsed().as_secs_f64() * 1e3);
        drop(y);
    }
    if let Some(cpu) = profile {
        cpu.profile_off();
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

/// A candle dtype by name (`stylecam parity --dtype`).
pub(super) fn parse_dtype(s: &str) -> std::result::Result<DType, String> {
    match s {
        "f32" => Ok(DType::F32),
        "f16" => Ok(DType::F16),
        "bf16" => Ok(DType::BF16),
        _ => Err(format!("unknown precision `{s}`: use f32, f16 or bf16")),
    }
}
