//! The live pipeline: a capture thread and an inference thread joined by newest-wins channels.
//!
//! ```text
//! FrameSource ──► [stylecam-capture] ──latest(1)──► [stylecam-inference] ──latest(1)──► UI
//!                  status, camera fps   drops          Stylizer, commands     drops      try_latest()
//! ```
//!
//! The UI never blocks: it sends [`Command`]s, polls [`Pipeline::try_latest`] once per redraw
//! and reads [`Pipeline::stats`] and [`Pipeline::status`]. See `docs/PIPELINE.md`.

pub mod capture_worker;
pub mod inference_worker;
pub mod stats;

/// The newest-wins channel, which lives in [`crate::latest`] (capture uses it too); re-exported
/// here under its old path.
pub use crate::latest;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use image::RgbImage;

use crate::capture::{Frame, SourceConfig, SourceSpec};
use crate::controls::Controls;
use capture_worker::{CaptureCommand, CaptureSettings, CaptureWorker};
use inference_worker::InferenceWorker;

pub use capture_worker::{CaptureState, CaptureStatus, Opener};
pub use stats::{Stats, StatsSnapshot};

/// What turns a camera frame into a stylised one. Implemented by the MSG-Net stylizer; it lives on
/// the inference thread, which calls it one frame at a time.
pub trait Stylizer: Send + 'static {
    /// Takes new controls (style, brush, strength, resolution, ...). Called before the next frame,
    /// with only the last of a burst. On error the stylizer should keep its previous state; the
    /// error reaches the UI as [`InferenceStatus::controls_error`].
    fn apply(&mut self, controls: &Controls) -> anyhow::Result<()>;
    /// Stylises one frame. An error reaches the UI as [`InferenceError::Stylize`] and the next
    /// frame is tried as usual.
    fn stylize(&mut self, frame: &Frame) -> anyhow::Result<Stylized>;
    /// Where it runs, for the status line ("CUDA 0 (H100)", "CPU, 16 threads", ...).
    fn describe_device(&self) -> String;
    /// What is being prepared for the current controls while frames still use the previous
    /// state (a style target computing on another thread, say), for a "preparing…" sign; read
    /// after each `apply` and each frame into [`InferenceStatus::preparing`].
    fn preparing(&self) -> Option<String> {
        None
    }
}

/// What [`Stylizer::stylize`] returns.
#[derive(Debug, Clone)]
pub struct Stylized {
    /// The frame at the processing resolution (what the network saw), for side-by-side views.
    pub original: RgbImage,
    /// The stylised picture, the same size as `original`.
    pub stylized: RgbImage,
}

/// One stylised frame, as the UI receives it.
#[derive(Debug, Clone)]
pub struct Output {
    /// The frame's sequence number (gaps mean frames were dropped for newer ones).
    pub seq: u64,
    /// When the frame was captured.
    pub captured_at: Instant,
    /// When stylising it finished (the output became available).
    pub finished_at: Instant,
    /// How long [`Stylizer::stylize`] took.
    pub inference_time: Duration,
    pub original: RgbImage,
    pub stylized: RgbImage,
}

/// An error from the inference thread. It arrives in place of an output; the thread carries on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InferenceError {
    #[error("cannot apply the controls: {message}")]
    Controls { message: String },
    #[error("cannot stylise frame {seq}: {message}")]
    Stylize { seq: u64, message: String },
    #[error("the stylizer panicked{}: {message}; this is a bug, please report it", match seq { Some(s) => format!(" on frame {s}"), None => String::new() })]
    Panic { seq: Option<u64>, message: String },
}

/// The inference thread's errors as state, for a banner: unlike the output channel, where a
/// newer output replaces an error the UI has not taken yet, these stay until they are resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InferenceStatus {
    /// The last controls could not be applied ([`InferenceError::Controls`], or a panic in
    /// `apply`); the stylizer runs with the controls before them. Cleared when controls apply.
    pub controls_error: Option<InferenceError>,
    /// The last frame failed ([`InferenceError::Stylize`] or a panic); cleared by the next
    /// successful frame. The same error also came down the output channel (the window shows
    /// it from there, once).
    pub frame_error: Option<InferenceError>,
    /// [`Stylizer::preparing`]: what is being prepared for the current controls.
    pub preparing: Option<String>,
}

impl InferenceStatus {
    /// A line for a banner, or `None` while all is well.
    pub fn banner(&self) -> Option<String> {
        match (&self.controls_error, &self.frame_error) {
            (None, None) => None,
            (Some(e), None) | (None, Some(e)) => Some(e.to_string()),
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        }
    }
}

/// Commands for the inference thread.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// New controls; of several pending, only the last is applied.
    Controls(Controls),
    /// `true` stops stylising (the UI keeps showing its last output; the capture keeps reading
    /// the source but queues nothing); `false` resumes with a fresh frame.
    Pause(bool),
    /// Ends the thread (also done by [`Pipeline::shutdown`] and dropping the pipeline).
    Stop,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("cannot start the {thread} thread: {source}")]
    Spawn {
        thread: &'static str,
        source: std::io::Error,
    },
}

/// How to start a pipeline.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// What to capture from.
    pub source: SourceSpec,
    pub source_config: SourceConfig,
    /// If the source cannot be opened (at start or on a switch), run the test pattern and say why
    /// in the status. Otherwise the source counts as lost and is retried.
    pub fallback_to_pattern: bool,
    /// How often a lost source is reopened.
    pub retry_interval: Duration,
    /// Applied before the first frame.
    pub controls: Option<Controls>,
    /// How long [`Pipeline::shutdown`] waits for both threads together before leaving them.
    pub shutdown_timeout: Duration,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            source: SourceSpec::Camera(0),
            source_config: SourceConfig::default(),
            fallback_to_pattern: true,
            retry_interval: Duration::from_secs(2),
            controls: None,
            shutdown_timeout: Duration::from_secs(1),
        }
    }
}

/// How the shutdown went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// `false`: the thread was still busy at the deadline and was left to finish on its own.
    pub capture_joined: bool,
    pub inference_joined: bool,
}

/// The running pipeline. Dropping it shuts it down.
pub struct Pipeline {
    capture: CaptureWorker,
    inference: InferenceWorker,
    outputs: latest::Receiver<Result<Output, InferenceError>>,
    status: Arc<Mutex<CaptureStatus>>,
    inference_status: Arc<Mutex<InferenceStatus>>,
    stats: Arc<Stats>,
    paused: Arc<AtomicBool>,
    device: String,
    shutdown_timeout: Duration,
    report: Option<ShutdownReport>,
}

impl Pipeline {
    /// Starts both threads. Opening the source happens on the capture thread, so this returns at
    /// once; [`Pipeline::status`] says when the source runs or why the test pattern runs instead.
    pub fn start<S: Stylizer>(config: PipelineConfig, stylizer: S) -> Result<Self, PipelineError> {
        let opener = Opener::spec(config.source.clone(), config.source_config.clone());
        Self::start_with_opener(config, opener, stylizer)
    }

    /// As [`Pipeline::start`], with the source opened by `opener` instead of `config.source`
    /// (for sources outside [`crate::capture`], and tests). A later
    /// [`Pipeline::switch_source`] uses [`crate::capture::open`].
    pub fn start_with_opener<S: Stylizer>(
        config: PipelineConfig,
        opener: Opener,
        stylizer: S,
    ) -> Result<Self, PipelineError> {
        let (frames_tx, frames_rx) = latest::channel(1);
        let (outputs_tx, outputs) = latest::channel(1);
        let stats = Arc::new(Stats::new(frames_tx.drops(), outputs_tx.drops()));
        let status = Arc::new(Mutex::new(CaptureStatus {
            requested: String::new(),
            source: None,
            state: CaptureState::Opening,
            losses: 0,
            recoveries: 0,
        }));
        let inference_status = Arc::new(Mutex::new(InferenceStatus::default()));
        let paused = Arc::new(AtomicBool::new(false));
        let device = stylizer.describe_device();
        let inference = InferenceWorker::spawn(
            stylizer,
            config.controls,
            frames_rx,
            outputs_tx,
            stats.clone(),
            inference_status.clone(),
        )
        .map_err(|source| PipelineError::Spawn {
            thread: "stylecam-inference",
            source,
        })?;
        let settings = CaptureSettings {
            config: config.source_config,
            fallback_to_pattern: config.fallback_to_pattern,
            retry_interval: config.retry_interval,
        };
        // If this fails, dropping `inference` stops its thread.
        let capture = CaptureWorker::spawn(
            opener,
            settings,
            frames_tx,
            status.clone(),
            stats.clone(),
            paused.clone(),
        )
        .map_err(|source| PipelineError::Spawn {
            thread: "stylecam-capture",
            source,
        })?;
        Ok(Self {
            capture,
            inference,
            outputs,
            status,
            inference_status,
            stats,
            paused,
            device,
            shutdown_timeout: config.shutdown_timeout,
            report: None,
        })
    }

    /// Sends a command to the inference thread. Never blocks.
    pub fn send(&self, command: Command) {
        if let Command::Pause(pause) = command {
            self.paused.store(pause, Ordering::Release);
        }
        self.inference.send(command);
    }

    /// The newest output (or error) since the last call, if any. Never blocks.
    pub fn try_latest(&self) -> Option<Result<Output, InferenceError>> {
        self.outputs.try_latest()
    }

    /// Waits up to `timeout` for the next output (for command-line use and tests; the UI polls).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Result<Output, InferenceError>> {
        self.outputs.recv_timeout(timeout).ok()
    }

    pub fn stats(&self) -> StatsSnapshot {
        StatsSnapshot {
            engine: self.device.clone(),
            ..self.stats.snapshot()
        }
    }

    /// The shared counters, for the UI to tick the display rate and latency.
    pub fn stats_handle(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    pub fn status(&self) -> CaptureStatus {
        lock(&self.status).clone()
    }

    /// Errors of the inference thread that are still current (see [`InferenceStatus`]).
    pub fn inference_status(&self) -> InferenceStatus {
        lock(&self.inference_status).clone()
    }

    /// Whether stylising is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// [`Stylizer::describe_device`], as it was at start.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Closes the current source and opens `spec` (the camera picker). Never blocks; the status
    /// shows "opening" and then the outcome, with the same fallback as at start.
    pub fn switch_source(&self, spec: SourceSpec) {
        self.capture.send(CaptureCommand::Switch(spec));
    }

    /// Stops both threads and waits for them, at most `shutdown_timeout` in all; a thread busy
    /// past that (a long inference, a stuck camera driver) is left to finish on its own.
    pub fn shutdown(mut self) -> ShutdownReport {
        self.stop_all()
    }

    fn stop_all(&mut self) -> ShutdownReport {
        if let Some(report) = self.report {
            return report;
        }
        let deadline = Instant::now() + self.shutdown_timeout;
        self.capture.request_stop();
        self.inference.request_stop();
        let report = ShutdownReport {
            capture_joined: self.capture.join_until(deadline),
            inference_joined: self.inference.join_until(deadline),
        };
        self.report = Some(report);
        report
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Joins `handle` if it finishes before `deadline`; otherwise leaves the thread (logged) and
/// returns `false`. A thread that ended by panicking counts as joined (and is logged).
pub(crate) fn join_until(
    handle: &mut Option<JoinHandle<()>>,
    deadline: Instant,
    name: &str,
) -> bool {
    let Some(h) = handle.take() else {
        return true;
    };
    while !h.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    if h.is_finished() {
        if h.join().is_err() {
            tracing::error!("the {name} thread panicked");
        }
        true
    } else {
        tracing::warn!("the {name} thread did not stop in time; leaving it to finish on its own");
        false
    }
}

/// Locks a mutex, ignoring poisoning (the data are plain status values).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
