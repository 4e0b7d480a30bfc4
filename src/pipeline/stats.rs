//! What the window shows about the pipeline: rates, latencies and drops.
//!
//! Rates are counted over a rolling window of [`RATE_WINDOW`]; times are means over the last
//! [`MEAN_SAMPLES`] samples. All methods take `&self` and are cheap, so the threads and the UI can
//! share one `Arc<Stats>`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::latest::Drops;

/// The span rates are counted over.
pub const RATE_WINDOW: Duration = Duration::from_secs(2);
/// How many samples the mean times cover.
pub const MEAN_SAMPLES: usize = 30;

/// Events per second over the last [`RATE_WINDOW`].
#[derive(Debug, Default)]
pub struct RateCounter {
    ticks: VecDeque<Instant>,
}

impl RateCounter {
    pub fn tick(&mut self, now: Instant) {
        self.ticks.push_back(now);
        self.forget_before(now);
        // Bound memory whatever the rate.
        while self.ticks.len() > 1024 {
            self.ticks.pop_front();
        }
    }

    fn forget_before(&mut self, now: Instant) {
        while let Some(&t) = self.ticks.front() {
            if now.saturating_duration_since(t) > RATE_WINDOW {
                self.ticks.pop_front();
            } else {
                break;
            }
        }
    }

    /// The rate at `now`: intervals between the ticks still in the window over their span,
    /// 0 with fewer than two.
    pub fn per_second(&mut self, now: Instant) -> f64 {
        self.forget_before(now);
        match (self.ticks.front(), self.ticks.back()) {
            (Some(&first), Some(&last)) if self.ticks.len() >= 2 && last > first => {
                (self.ticks.len() - 1) as f64 / (last - first).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

/// The mean of the last [`MEAN_SAMPLES`] durations.
#[derive(Debug, Default)]
pub struct RollingMean {
    samples: VecDeque<Duration>,
}

impl RollingMean {
    pub fn add(&mut self, d: Duration) {
        if self.samples.len() == MEAN_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back(d);
    }

    /// In milliseconds; `None` before the first sample.
    pub fn mean_ms(&self) -> Option<f64> {
        if self.samples.is_empty() {
            return None;
        }
        let total: Duration = self.samples.iter().sum();
        Some(total.as_secs_f64() * 1000.0 / self.samples.len() as f64)
    }
}

/// The live counters, shared by the capture thread, the inference thread and the UI.
#[derive(Debug)]
pub struct Stats {
    camera: Mutex<RateCounter>,
    inference: Mutex<RateCounter>,
    display: Mutex<RateCounter>,
    inference_time: Mutex<RollingMean>,
    latency: Mutex<RollingMean>,
    display_latency: Mutex<RollingMean>,
    captured: AtomicU64,
    stylized: AtomicU64,
    errors: AtomicU64,
    capture_drops: Drops,
    output_drops: Drops,
}

/// A copy of the counters at one moment, for the stats overlay.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSnapshot {
    /// Frames per second the source delivers (counted while paused too).
    pub camera_fps: f64,
    /// Frames per second stylised.
    pub inference_fps: f64,
    /// Frames per second the window presents (the UI ticks it with [`Stats::tick_display`]).
    pub display_fps: f64,
    /// Mean time `Stylizer::stylize` takes, in ms.
    pub inference_ms: Option<f64>,
    /// Mean time from capture to the stylised output being available to the UI, in ms.
    pub latency_ms: Option<f64>,
    /// Mean time from capture to the output being shown, in ms, as the UI reports it with
    /// [`Stats::record_display`].
    pub display_latency_ms: Option<f64>,
    /// Frames the source delivered.
    pub frames_captured: u64,
    /// Frames stylised successfully.
    pub frames_stylized: u64,
    /// Failed `apply`/`stylize` calls (each also reached the UI as an error).
    pub errors: u64,
    /// Frames replaced by a newer one before the inference thread took them (inference slower
    /// than the camera).
    pub dropped_before_inference: u64,
    /// Outputs replaced by a newer one before the UI took them (UI slower than inference).
    pub dropped_before_display: u64,
    /// Where and in what precision the stylizer runs (`cpu · f32`), from
    /// [`crate::pipeline::Stylizer::describe_device`]; empty from [`Stats::snapshot`] alone.
    pub engine: String,
}

impl StatsSnapshot {
    /// `, cpu · f32` for the overlay's inference figures, or nothing when unknown.
    pub fn engine_note(&self) -> String {
        if self.engine.is_empty() {
            String::new()
        } else {
            format!(", {}", self.engine)
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere while holding a counter leaves it usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Stats {
    pub fn new(capture_drops: Drops, output_drops: Drops) -> Self {
        Self {
            camera: Mutex::default(),
            inference: Mutex::default(),
            display: Mutex::default(),
            inference_time: Mutex::default(),
            latency: Mutex::default(),
            display_latency: Mutex::default(),
            captured: AtomicU64::new(0),
            stylized: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            capture_drops,
            output_drops,
        }
    }

    /// The capture thread got a frame from the source.
    pub fn record_capture(&self) {
        lock(&self.camera).tick(Instant::now());
        self.captured.fetch_add(1, Ordering::Relaxed);
    }

    /// The inference thread produced an output: how long `stylize` took and how old the frame was.
    pub fn record_output(&self, inference: Duration, latency: Duration) {
        lock(&self.inference).tick(Instant::now());
        lock(&self.inference_time).add(inference);
        lock(&self.latency).add(latency);
        self.stylized.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The window presented a frame (call once per redraw).
    pub fn tick_display(&self) {
        lock(&self.display).tick(Instant::now());
    }

    /// The window showed a new output for the first time; `captured_at` is the output's.
    pub fn record_display(&self, captured_at: Instant) {
        lock(&self.display_latency).add(captured_at.elapsed());
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let now = Instant::now();
        StatsSnapshot {
            camera_fps: lock(&self.camera).per_second(now),
            inference_fps: lock(&self.inference).per_second(now),
            display_fps: lock(&self.display).per_second(now),
            inference_ms: lock(&self.inference_time).mean_ms(),
            latency_ms: lock(&self.latency).mean_ms(),
            display_latency_ms: lock(&self.display_latency).mean_ms(),
            frames_captured: self.captured.load(Ordering::Relaxed),
            frames_stylized: self.stylized.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            dropped_before_inference: self.capture_drops.get(),
            dropped_before_display: self.output_drops.get(),
            engine: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_counts_ticks_in_the_window() {
        let t0 = Instant::now();
        let mut r = RateCounter::default();
        assert_eq!(r.per_second(t0), 0.0);
        for i in 0..11 {
            r.tick(t0 + Duration::from_millis(100 * i));
        }
        let fps = r.per_second(t0 + Duration::from_millis(1000));
        assert!((fps - 10.0).abs() < 1e-9, "{fps}");
        // Long after the last tick the rate falls to 0.
        assert_eq!(r.per_second(t0 + Duration::from_secs(10)), 0.0);
    }

    #[test]
    fn mean_covers_the_last_samples() {
        let mut m = RollingMean::default();
        assert_eq!(m.mean_ms(), None);
        for _ in 0..MEAN_SAMPLES {
            m.add(Duration::from_millis(100));
        }
        for _ in 0..MEAN_SAMPLES {
            m.add(Duration::from_millis(10));
        }
        let mean = m.mean_ms().unwrap();
        assert!((mean - 10.0).abs() < 1e-9, "{mean}");
    }
}
