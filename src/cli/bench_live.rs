//! `stylecam bench --live`: the real live pipeline without a window. A capture thread reads the
//! source (the test pattern by default), the inference thread runs the engine the window uses,
//! and a sink here does what the window does with each output except present it (take the newest,
//! record the display latency, copy it into an RGBA frame buffer). It reports camera, inference
//! and delivered rates, capture-to-output latency, drops, errors, where the engine's time goes,
//! CPU time per thread, RSS and thread counts; with `--switch-every` and `--move-brush` it is the
//! soak test.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::{AssetArgs, Size};
use crate::capture::{SourceConfig, SourceSpec};
use crate::controls::{Controls, Resolution};
use crate::device::{DtypeChoice, DtypeSpec};
use crate::engine::{Engine, StageTotals};
use crate::pipeline::{CaptureState, Command, Pipeline, PipelineConfig, StatsSnapshot};
use crate::style::Aspect;

/// What `--live` needs besides the model, device and precision.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    pub model: Option<PathBuf>,
    pub styles: Option<PathBuf>,
    pub source: SourceSpec,
    pub source_size: Size,
    pub fps: u32,
    pub resolution: Resolution,
    pub style: Option<String>,
    pub seconds: f64,
    pub frames: Option<u64>,
    pub warmup: f64,
    pub switch_every: Option<u64>,
    pub move_brush: bool,
    pub anti_flicker: f32,
    pub dtype: DtypeSpec,
}

/// The result, printed as a table or as one JSON object.
#[derive(Debug, Serialize)]
pub struct Report {
    pub model: String,
    pub device: String,
    pub dtype_note: Option<String>,
    pub source: String,
    pub processing_size: String,
    pub seconds: f64,
    pub frames_delivered: u64,
    pub camera_fps: f64,
    pub inference_fps: f64,
    pub delivered_fps: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_p95: f64,
    pub latency_ms_max: f64,
    pub dropped_before_inference: u64,
    pub dropped_before_display: u64,
    pub errors: u64,
    /// Mean wall time per frame of each engine stage (inference thread).
    pub stage_ms: BTreeMap<String, f64>,
    /// CPU time per delivered frame of each thread group.
    pub cpu_ms_per_frame: BTreeMap<String, f64>,
    /// CPU use of each thread group, in cores (1.0 = one core busy).
    pub cpu_cores: BTreeMap<String, f64>,
    pub rss_mb_start: f64,
    pub rss_mb_end: f64,
    pub rss_mb_peak: f64,
    /// (seconds after warm-up, delivered frames, RSS MB) every 10 s: flat after warm-up means no
    /// leak.
    pub rss_timeline: Vec<(f64, u64, f64)>,
    pub threads_before: usize,
    pub threads_running: usize,
    pub threads_after: usize,
    pub style_switches: u64,
    pub brush_moves: u64,
    pub shutdown_clean: bool,
}

pub fn run(o: LiveOptions, device: candle_core::Device) -> Result<Report> {
    // Named pool threads, so that their CPU time can be told apart.
    rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("stylecam-rayon-{i}"))
        .build_global()
        .ok();
    rayon::join(|| (), || ());
    // candle's own worker pool lives as long as the process; start it before counting.
    candle_core::utils::barrier_pool();
    let threads_before = proc_info::threads();

    let assets = AssetArgs {
        model: o.model.clone(),
        styles: o.styles.clone(),
        data_dir: None,
    }
    .load(&device, true)?;
    let choice = DtypeChoice::resolve(o.dtype, &device, crate::device::cpu_has_bf16());
    let cache = assets.target_cache();
    let model_name = assets.model_name.clone();
    let bank = assets.bank.clone();
    let mut net = assets.model.net;
    if choice.dtype != net.dtype() {
        bail!(
            "--dtype {} on this device needs the weights in {:?}; bench --live loads them in f32",
            o.dtype,
            choice.dtype
        )
    }
    choice.apply(&mut net)?;
    let names: Vec<String> = bank.styles().iter().map(|s| s.name.clone()).collect();
    let first = match &o.style {
        Some(s) => s.clone(),
        None => names
            .first()
            .cloned()
            .context("no styles: pass --styles DIR")?,
    };
    let mut controls = Controls {
        style: first,
        resolution: o.resolution,
        anti_flicker: o.anti_flicker,
        ..Controls::default()
    };
    let engine = Engine::new(net, bank, cache, Aspect::Square, controls.clone())?;
    let stages = engine.stage_times();
    let device_name = engine.device_name().to_owned();
    let config = PipelineConfig {
        source: o.source.clone(),
        source_config: SourceConfig {
            resolution: Some((o.source_size.width as u32, o.source_size.height as u32)),
            fps: Some(o.fps),
            ..SourceConfig::default()
        },
        controls: Some(controls.clone()),
        fallback_to_pattern: false,
        ..PipelineConfig::default()
    };
    let pipeline = Pipeline::start(config, engine)?;
    let stats = pipeline.stats_handle();

    let started = Instant::now();
    let warm_until = started + Duration::from_secs_f64(o.warmup);
    let mut base: Option<Baseline> = None;
    let mut latencies: Vec<f64> = Vec::new();
    let mut delivered = 0u64;
    let mut errors_seen = 0u64;
    let mut switches = 0u64;
    let mut brush_moves = 0u64;
    let mut rss_peak = 0.0f64;
    let mut last_rss = Instant::now();
    let mut timeline: Vec<(f64, u64, f64)> = Vec::new();
    let mut last_timeline = Instant::now();
    let mut rgba: Vec<u8> = Vec::new();
    let mut processing = String::from("-");
    let mut threads_running = 0;
    let hard_stop = started
        + Duration::from_secs_f64(o.warmup + o.seconds.max(0.0))
        + match o.frames {
            // A frame budget gets a generous time limit instead.
            Some(n) => Duration::from_secs(60 + n / 2),
            None => Duration::ZERO,
        };
    let mut total_outputs = 0u64;
    loop {
        let now = Instant::now();
        if base.is_none() && now >= warm_until {
            base = Some(Baseline::take(&stats.snapshot(), &stages.totals()));
            latencies.clear();
            delivered = 0;
            threads_running = proc_info::threads();
        }
        let done = match (o.frames, &base) {
            (Some(n), Some(_)) => delivered >= n || now >= hard_stop,
            (None, Some(b)) => now.duration_since(b.at).as_secs_f64() >= o.seconds,
            _ => false,
        };
        if done {
            break;
        }
        if now.duration_since(last_rss) >= Duration::from_millis(500) {
            let rss = proc_info::rss_mb();
            rss_peak = rss_peak.max(rss);
            last_rss = now;
            if let Some(b) = &base {
                if timeline.is_empty()
                    || now.duration_since(last_timeline) >= Duration::from_secs(10)
                {
                    timeline.push((now.duration_since(b.at).as_secs_f64(), delivered, rss));
                    last_timeline = now;
                }
            }
            if let CaptureState::Lost { message, .. } = pipeline.status().state {
                bail!("the source is lost: {message}")
            }
        }
        match pipeline.recv_timeout(Duration::from_millis(100)) {
            Some(Ok(out)) => {
                let latency = out.captured_at.elapsed();
                stats.record_display(out.captured_at);
                blit(&mut rgba, &out.stylized);
                stats.tick_display();
                processing = format!("{}x{}", out.stylized.width(), out.stylized.height());
                total_outputs += 1;
                if base.is_some() {
                    latencies.push(latency.as_secs_f64() * 1e3);
                    delivered += 1;
                }
                let mut changed = false;
                if let Some(every) = o.switch_every {
                    if every > 0 && total_outputs.is_multiple_of(every) && names.len() > 1 {
                        let i = names.iter().position(|n| *n == controls.style).unwrap_or(0);
                        controls.style = names[(i + 1) % names.len()].clone();
                        switches += 1;
                        changed = true;
                    }
                }
                if o.move_brush {
                    // A slider dragged back and forth across its range.
                    let phase = (total_outputs % 40) as f32 / 40.0;
                    let tri = 1.0 - (2.0 * phase - 1.0).abs();
                    controls.brush = 0.5 + 1.5 * tri;
                    brush_moves += 1;
                    changed = true;
                }
                if changed {
                    pipeline.send(Command::Controls(controls.clone()));
                }
            }
            Some(Err(e)) => {
                errors_seen += 1;
                if errors_seen <= 5 {
                    eprintln!("error: {e}");
                }
            }
            None => {}
        }
    }
    let end_snapshot = stats.snapshot();
    let end_stages = stages.totals();
    let rss_end = proc_info::rss_mb();
    let cpu_end = proc_info::thread_cpu();
    let base = base.context("the run ended before the warm-up did")?;
    let elapsed = base.at.elapsed().as_secs_f64();
    let shutdown = pipeline.shutdown();
    // The engine joins its style-target thread (bounded) when dropped; give /proc a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut threads_after = proc_info::threads();
    while threads_after > threads_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        threads_after = proc_info::threads();
    }

    if threads_after > threads_before {
        tracing::warn!(
            "threads still running after shutdown: {:?}",
            proc_info::thread_cpu()
        );
    }
    let frames = delivered.max(1) as f64;
    let mut cpu_ms_per_frame = BTreeMap::new();
    let mut cpu_cores = BTreeMap::new();
    for (group, ns) in proc_info::group(&cpu_end) {
        let before = base.cpu.get(&group).copied().unwrap_or(0);
        let used = ns.saturating_sub(before) as f64 / 1e6;
        cpu_ms_per_frame.insert(group.clone(), used / frames);
        cpu_cores.insert(group, used / 1e3 / elapsed.max(1e-9));
    }
    let stage_ms = diff_stages(&base.stages, &end_stages)
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() - 1) as f64 * p).round() as usize;
        latencies[i]
    };
    let d = |f: fn(&StatsSnapshot) -> u64| f(&end_snapshot).saturating_sub(f(&base.stats));
    Ok(Report {
        model: model_name,
        device: device_name,
        dtype_note: choice.note,
        source: o.source.to_string(),
        processing_size: processing,
        seconds: elapsed,
        frames_delivered: delivered,
        camera_fps: d(|s| s.frames_captured) as f64 / elapsed,
        inference_fps: d(|s| s.frames_stylized) as f64 / elapsed,
        delivered_fps: delivered as f64 / elapsed,
        latency_ms_p50: pct(0.5),
        latency_ms_p95: pct(0.95),
        latency_ms_max: latencies.last().copied().unwrap_or(f64::NAN),
        dropped_before_inference: d(|s| s.dropped_before_inference),
        dropped_before_display: d(|s| s.dropped_before_display),
        errors: end_snapshot.errors + errors_seen,
        stage_ms,
        cpu_ms_per_frame,
        cpu_cores,
        rss_mb_start: base.rss,
        rss_mb_end: rss_end,
        rss_mb_peak: rss_peak.max(rss_end),
        rss_timeline: {
            timeline.push((elapsed, delivered, rss_end));
            timeline
        },
        threads_before,
        threads_running,
        threads_after,
        style_switches: switches,
        brush_moves,
        shutdown_clean: shutdown.capture_joined && shutdown.inference_joined,
    })
}

/// Counters at the end of the warm-up.
struct Baseline {
    at: Instant,
    stats: StatsSnapshot,
    stages: StageTotals,
    cpu: BTreeMap<String, u64>,
    rss: f64,
}

impl Baseline {
    fn take(stats: &StatsSnapshot, stages: &StageTotals) -> Self {
        Self {
            at: Instant::now(),
            stats: stats.clone(),
            stages: stages.clone(),
            cpu: proc_info::group(&proc_info::thread_cpu()),
            rss: proc_info::rss_mb(),
        }
    }
}

fn diff_stages(a: &StageTotals, b: &StageTotals) -> Vec<(&'static str, f64)> {
    let d = StageTotals {
        frames: b.frames.saturating_sub(a.frames),
        resize: b.resize.saturating_sub(a.resize),
        anti_flicker: b.anti_flicker.saturating_sub(a.anti_flicker),
        convert: b.convert.saturating_sub(a.convert),
        network: b.network.saturating_sub(a.network),
        colour: b.colour.saturating_sub(a.colour),
    };
    d.mean_ms()
}

/// What the window does with a new output before presenting it: RGB into the RGBA frame buffer.
fn blit(rgba: &mut Vec<u8>, img: &image::RgbImage) {
    let n = (img.width() * img.height()) as usize;
    rgba.resize(n * 4, 255);
    for (dst, src) in rgba.chunks_exact_mut(4).zip(img.as_raw().chunks_exact(3)) {
        dst[..3].copy_from_slice(src);
        dst[3] = 255;
    }
}

pub fn print_table(r: &Report) {
    println!(
        "live pipeline: {} on {}, source {} -> {}, {:.1} s after warm-up",
        r.model, r.device, r.source, r.processing_size, r.seconds
    );
    if let Some(n) = &r.dtype_note {
        println!("  ({n})");
    }
    println!(
        "  fps: camera {:.1}, inference {:.1}, delivered {:.1} ({} frames)",
        r.camera_fps, r.inference_fps, r.delivered_fps, r.frames_delivered
    );
    println!(
        "  capture-to-output latency: p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
        r.latency_ms_p50, r.latency_ms_p95, r.latency_ms_max
    );
    println!(
        "  dropped: {} before inference, {} before display; errors {}",
        r.dropped_before_inference, r.dropped_before_display, r.errors
    );
    let stages: Vec<String> = r
        .stage_ms
        .iter()
        .map(|(k, v)| format!("{k} {v:.2}"))
        .collect();
    println!("  engine ms/frame: {}", stages.join(", "));
    let cpu: Vec<String> = r
        .cpu_ms_per_frame
        .iter()
        .map(|(k, v)| {
            format!(
                "{k} {v:.1} ({:.2} cores)",
                r.cpu_cores.get(k).copied().unwrap_or(0.0)
            )
        })
        .collect();
    println!("  CPU ms/frame by thread: {}", cpu.join(", "));
    println!(
        "  RSS: {:.0} MB after warm-up, {:.0} MB at the end, {:.0} MB peak",
        r.rss_mb_start, r.rss_mb_end, r.rss_mb_peak
    );
    println!(
        "  threads: {} before, {} running, {} after shutdown ({}); style switches {}, brush moves {}",
        r.threads_before,
        r.threads_running,
        r.threads_after,
        if r.shutdown_clean {
            "joined"
        } else {
            "NOT joined"
        },
        r.style_switches,
        r.brush_moves
    );
}

/// Process figures from /proc (Linux); elsewhere zeros.
mod proc_info {
    use std::collections::BTreeMap;

    /// Resident set size in MB.
    pub fn rss_mb() -> f64 {
        let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
            return 0.0;
        };
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// Threads of this process.
    pub fn threads() -> usize {
        std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count())
    }

    /// (thread name, is the main thread, CPU ns) for every thread.
    pub fn thread_cpu() -> Vec<(String, bool, u64)> {
        let pid = std::process::id().to_string();
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
            return Vec::new();
        };
        dir.flatten()
            .filter_map(|e| {
                let tid = e.file_name().to_string_lossy().into_owned();
                let p = e.path();
                let name = std::fs::read_to_string(p.join("comm")).ok()?;
                let ns = std::fs::read_to_string(p.join("schedstat"))
                    .ok()?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()?;
                Some((name.trim().to_owned(), tid == pid, ns))
            })
            .collect()
    }

    /// CPU ns summed by role.
    pub fn group(threads: &[(String, bool, u64)]) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for (name, main, ns) in threads {
            let role = if *main {
                "sink (main)"
            } else if name.starts_with("stylecam-captur") {
                "capture"
            } else if name.starts_with("stylecam-infere") {
                "inference"
            } else if name.starts_with("stylecam-rayon") {
                "rayon pool"
            } else if name.starts_with("stylecam-target") {
                "style targets"
            } else if name.starts_with("stylecam-camera") {
                "camera"
            } else {
                "other"
            };
            *out.entry(role.to_owned()).or_insert(0) += ns;
        }
        out
    }
}
