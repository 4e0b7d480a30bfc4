//! The capture thread ("stylecam-capture"): owns the frame source, pushes its frames into a
//! newest-wins channel, falls back to the test pattern when the requested source cannot be opened
//! (and keeps trying it in the background, on a short-lived "stylecam-reopen" thread, so the
//! pattern never stalls), and reopens a lost source every `retry_interval`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel as cb;

use super::stats::Stats;
use super::{join_until, latest, lock};
use crate::capture::{
    self, panic_message, CaptureError, Frame, FrameSource, SourceConfig, SourceSpec, TestPattern,
    DEFAULT_SIZE,
};

/// The longest the thread sleeps before looking at its stop flag again.
const POLL: Duration = Duration::from_millis(50);

/// Opens the requested source; called at start, on each retry after a loss, and after a switch.
pub struct Opener {
    label: String,
    open: Box<dyn FnMut() -> Result<Box<dyn FrameSource>, CaptureError> + Send>,
}

impl Opener {
    /// Any way of opening a source (tests, sources outside [`capture::open`]); `label` names it in
    /// the status.
    pub fn new(
        label: impl Into<String>,
        open: impl FnMut() -> Result<Box<dyn FrameSource>, CaptureError> + Send + 'static,
    ) -> Self {
        Self {
            label: label.into(),
            open: Box::new(open),
        }
    }

    /// Opens `spec` with [`capture::open`].
    pub fn spec(spec: SourceSpec, config: SourceConfig) -> Self {
        Self::new(spec.to_string(), move || capture::open(&spec, &config))
    }

    /// Opens, turning a panic in the source into an error.
    fn open(&mut self) -> Result<Box<dyn FrameSource>, CaptureError> {
        let label = &self.label;
        let open = &mut self.open;
        catch_unwind(AssertUnwindSafe(open)).unwrap_or_else(|p| {
            Err(CaptureError::Source {
                what: label.clone(),
                message: format!("panicked while opening: {}", panic_message(&*p)),
            })
        })
    }
}

/// Where the capture stands, for the window's status line and banner.
#[derive(Debug, Clone, PartialEq)]
pub enum CaptureState {
    /// Opening the requested source (a camera can take a moment).
    Opening,
    /// The requested source delivers frames.
    Running,
    /// The requested source could not be opened and the test pattern runs instead; `message`
    /// says why and ends with "starting the test pattern instead". The requested source is
    /// tried again in the background every `retry_interval` (then the state becomes `Running`
    /// and `recoveries` counts it); switching sources tries at once.
    Fallback { message: String },
    /// The source failed (or could not be opened, with fallback off) and is reopened every
    /// `retry_interval`; no new frames meanwhile. `message` is the latest error; `attempts` counts
    /// the reopen attempts so far.
    Lost { message: String, attempts: u32 },
    /// The capture thread has ended.
    Stopped,
}

/// The capture's status, shared with the UI.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptureStatus {
    /// What was asked for: a [`SourceSpec`] as text, or an [`Opener`]'s label.
    pub requested: String,
    /// What runs now ([`FrameSource::describe`]); `None` while opening or lost.
    pub source: Option<String>,
    pub state: CaptureState,
    /// How often a running source failed.
    pub losses: u64,
    /// How often a lost source was reopened successfully.
    pub recoveries: u64,
}

impl CaptureStatus {
    fn new(requested: String) -> Self {
        Self {
            requested,
            source: None,
            state: CaptureState::Opening,
            losses: 0,
            recoveries: 0,
        }
    }

    /// A line for a banner over the picture, or `None` while all is well.
    pub fn banner(&self) -> Option<String> {
        match &self.state {
            CaptureState::Opening => Some(format!("opening {}…", self.requested)),
            CaptureState::Running | CaptureState::Stopped => None,
            CaptureState::Fallback { message } => Some(format!(
                "{message} ({} is retried in the background)",
                self.requested
            )),
            CaptureState::Lost { message, .. } => Some(format!("{message}; retrying…")),
        }
    }
}

pub(crate) enum CaptureCommand {
    Switch(SourceSpec),
    Stop,
}

/// How the capture thread behaves.
#[derive(Debug, Clone)]
pub(crate) struct CaptureSettings {
    pub config: SourceConfig,
    pub fallback_to_pattern: bool,
    pub retry_interval: Duration,
}

/// The handle on the capture thread.
pub(crate) struct CaptureWorker {
    handle: Option<JoinHandle<()>>,
    commands: cb::Sender<CaptureCommand>,
    stop: Arc<AtomicBool>,
}

impl CaptureWorker {
    pub(crate) fn spawn(
        opener: Opener,
        settings: CaptureSettings,
        frames: latest::Sender<Frame>,
        status: Arc<Mutex<CaptureStatus>>,
        stats: Arc<Stats>,
        paused: Arc<AtomicBool>,
    ) -> std::io::Result<Self> {
        let (commands, command_rx) = cb::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        *lock(&status) = CaptureStatus::new(opener.label.clone());
        let worker = CaptureLoop {
            label: opener.label.clone(),
            opener: Arc::new(Mutex::new(opener)),
            settings,
            source: None,
            next_retry: Instant::now(),
            attempts: 0,
            frames,
            commands: command_rx,
            stop: stop.clone(),
            paused,
            status,
            stats,
            seq: 0,
            fallback: false,
            attempt: None,
        };
        let handle = std::thread::Builder::new()
            .name("stylecam-capture".into())
            .spawn(move || worker.run())?;
        Ok(Self {
            handle: Some(handle),
            commands,
            stop,
        })
    }

    pub(crate) fn send(&self, command: CaptureCommand) {
        self.commands.send(command).ok();
    }

    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.commands.send(CaptureCommand::Stop).ok();
    }

    /// Waits for the thread until `deadline`; `false` if it had to be left running.
    pub(crate) fn join_until(&mut self, deadline: Instant) -> bool {
        join_until(&mut self.handle, deadline, "stylecam-capture")
    }
}

impl Drop for CaptureWorker {
    fn drop(&mut self) {
        self.request_stop();
        self.join_until(Instant::now() + Duration::from_secs(1));
    }
}

/// A background attempt to open the requested source while the test pattern stands in for it.
struct Attempt {
    /// The opener it was made for: a switch replaces the opener, and the result is then dropped.
    opener: Arc<Mutex<Opener>>,
    handle: JoinHandle<Result<Box<dyn FrameSource>, CaptureError>>,
}

struct CaptureLoop {
    /// Shared with a background [`Attempt`] while one runs.
    opener: Arc<Mutex<Opener>>,
    label: String,
    settings: CaptureSettings,
    source: Option<Box<dyn FrameSource>>,
    next_retry: Instant,
    attempts: u32,
    frames: latest::Sender<Frame>,
    commands: cb::Receiver<CaptureCommand>,
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    status: Arc<Mutex<CaptureStatus>>,
    stats: Arc<Stats>,
    seq: u64,
    /// The test pattern stands in for the requested source.
    fallback: bool,
    attempt: Option<Attempt>,
}

impl CaptureLoop {
    fn run(mut self) {
        self.open_requested();
        while !self.stop.load(Ordering::Acquire) {
            match self.commands.try_recv() {
                Ok(command) => {
                    if !self.handle(command) {
                        break;
                    }
                    continue;
                }
                Err(cb::TryRecvError::Disconnected) => break,
                Err(cb::TryRecvError::Empty) => {}
            }
            if self.source.is_some() {
                self.poll_attempt();
                self.read_one();
            } else {
                self.wait_and_retry();
            }
        }
        // Release the device before saying so. A background attempt still opening is left to
        // finish on its own (it holds nothing else; what it opens is dropped with it).
        self.source = None;
        if let Some(a) = self.attempt.take() {
            if !a.handle.is_finished() {
                tracing::debug!("leaving a background open of {} to finish", self.label);
            }
        }
        let mut status = lock(&self.status);
        status.state = CaptureState::Stopped;
        status.source = None;
    }

    /// Carries out a command; `false` to stop.
    fn handle(&mut self, command: CaptureCommand) -> bool {
        match command {
            CaptureCommand::Switch(spec) => {
                tracing::info!("switching the source to {spec}");
                // Close the old source first: it may be the same device.
                self.source = None;
                // A background attempt for the old source is left to finish on its own.
                self.attempt = None;
                let opener = Opener::spec(spec, self.settings.config.clone());
                self.label = opener.label.clone();
                self.opener = Arc::new(Mutex::new(opener));
                self.open_requested();
                true
            }
            CaptureCommand::Stop => false,
        }
    }

    /// Opens the requested source, falling back to the test pattern if allowed.
    fn open_requested(&mut self) {
        {
            let mut status = lock(&self.status);
            status.requested = self.label.clone();
            status.source = None;
            status.state = CaptureState::Opening;
        }
        self.attempts = 0;
        self.fallback = false;
        let opened = lock(&self.opener).open();
        match opened {
            Ok(source) => self.set_source(source, CaptureState::Running),
            Err(e) if self.settings.fallback_to_pattern => {
                let message = format!("{e}; starting the test pattern instead");
                tracing::warn!("{message}");
                let (w, h) = self.settings.config.resolution.unwrap_or(DEFAULT_SIZE);
                let pattern = TestPattern::new(w, h, self.settings.config.paced_fps());
                self.set_source(Box::new(pattern), CaptureState::Fallback { message });
                self.fallback = true;
                self.next_retry = Instant::now() + self.settings.retry_interval;
            }
            Err(e) => self.lose(e.to_string(), false),
        }
    }

    /// While the test pattern stands in: starts a background attempt to open the requested
    /// source when one is due, and takes the source once an attempt succeeds.
    fn poll_attempt(&mut self) {
        if !self.fallback {
            return;
        }
        let Some(attempt) = self.attempt.take() else {
            if Instant::now() >= self.next_retry {
                self.start_attempt();
            }
            return;
        };
        if !attempt.handle.is_finished() {
            self.attempt = Some(attempt);
            return;
        }
        let result = attempt.handle.join().unwrap_or_else(|p| {
            Err(CaptureError::Source {
                what: self.label.clone(),
                message: format!("panicked while opening: {}", panic_message(&*p)),
            })
        });
        if !Arc::ptr_eq(&attempt.opener, &self.opener) {
            // Made for a source switched away from since.
            return;
        }
        self.attempts += 1;
        match result {
            Ok(source) => {
                tracing::info!("{} opened after {} attempts", self.label, self.attempts);
                lock(&self.status).recoveries += 1;
                self.fallback = false;
                self.set_source(source, CaptureState::Running);
            }
            Err(e) => {
                tracing::debug!(
                    "{} still fails (attempt {}): {e}",
                    self.label,
                    self.attempts
                );
                self.next_retry = Instant::now() + self.settings.retry_interval;
            }
        }
    }

    fn start_attempt(&mut self) {
        let opener = self.opener.clone();
        let for_thread = opener.clone();
        match std::thread::Builder::new()
            .name("stylecam-reopen".into())
            .spawn(move || lock(&for_thread).open())
        {
            Ok(handle) => self.attempt = Some(Attempt { opener, handle }),
            Err(e) => {
                tracing::warn!("cannot start a thread to retry {}: {e}", self.label);
                self.next_retry = Instant::now() + self.settings.retry_interval;
            }
        }
    }

    fn set_source(&mut self, source: Box<dyn FrameSource>, state: CaptureState) {
        let mut status = lock(&self.status);
        status.source = Some(source.describe());
        status.state = state;
        drop(status);
        self.source = Some(source);
    }

    /// The source is gone: drop it and schedule a reopen.
    fn lose(&mut self, message: String, was_running: bool) {
        tracing::warn!(
            "{message}; reopening every {:.1} s",
            self.settings.retry_interval.as_secs_f64()
        );
        self.source = None;
        self.attempts = 0;
        self.fallback = false;
        self.next_retry = Instant::now() + self.settings.retry_interval;
        let mut status = lock(&self.status);
        status.source = None;
        status.state = CaptureState::Lost {
            message,
            attempts: 0,
        };
        if was_running {
            status.losses += 1;
        }
    }

    fn read_one(&mut self) {
        let Some(source) = self.source.as_mut() else {
            return;
        };
        let result = catch_unwind(AssertUnwindSafe(|| source.next_frame())).unwrap_or_else(|p| {
            Err(CaptureError::Source {
                what: self.label.clone(),
                message: format!("panicked: {}", panic_message(&*p)),
            })
        });
        match result {
            Ok(mut frame) => {
                frame.seq = self.seq;
                self.seq += 1;
                self.stats.record_capture();
                tracing::trace!(seq = frame.seq, "captured");
                if !self.paused.load(Ordering::Acquire) && self.frames.send(frame).is_err() {
                    // Nobody reads any more.
                    self.stop.store(true, Ordering::Release);
                }
            }
            Err(e) => self.lose(e.to_string(), true),
        }
    }

    /// Lost: wait for the next attempt (waking for commands and the stop flag), then reopen.
    fn wait_and_retry(&mut self) {
        let now = Instant::now();
        if now < self.next_retry {
            match self
                .commands
                .recv_timeout((self.next_retry - now).min(POLL))
            {
                Ok(command) => {
                    if !self.handle(command) {
                        self.stop.store(true, Ordering::Release);
                    }
                }
                Err(cb::RecvTimeoutError::Disconnected) => self.stop.store(true, Ordering::Release),
                Err(cb::RecvTimeoutError::Timeout) => {}
            }
            return;
        }
        self.attempts += 1;
        let opened = lock(&self.opener).open();
        match opened {
            Ok(source) => {
                tracing::info!("{} is back after {} attempts", self.label, self.attempts);
                lock(&self.status).recoveries += 1;
                self.set_source(source, CaptureState::Running);
            }
            Err(e) => {
                tracing::debug!("reopening failed (attempt {}): {e}", self.attempts);
                self.next_retry = Instant::now() + self.settings.retry_interval;
                lock(&self.status).state = CaptureState::Lost {
                    message: e.to_string(),
                    attempts: self.attempts,
                };
            }
        }
    }
}
