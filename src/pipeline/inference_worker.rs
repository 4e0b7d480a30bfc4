//! The inference thread ("stylecam-inference"): takes the newest frame, applies pending commands,
//! runs the [`Stylizer`] and sends the result (or the error) to the UI through a newest-wins
//! channel.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel as cb;

use super::stats::Stats;
use super::{join_until, latest, lock, Command, InferenceError, InferenceStatus, Output, Stylizer};
use crate::capture::{panic_message, Frame};
use crate::controls::Controls;

/// The longest the thread waits before looking at its stop flag again.
const POLL: Duration = Duration::from_millis(100);

/// The handle on the inference thread.
pub(crate) struct InferenceWorker {
    handle: Option<JoinHandle<()>>,
    commands: cb::Sender<Command>,
    stop: Arc<AtomicBool>,
}

impl InferenceWorker {
    pub(crate) fn spawn<S: Stylizer>(
        stylizer: S,
        initial: Option<Controls>,
        frames: latest::Receiver<Frame>,
        outputs: latest::Sender<Result<Output, InferenceError>>,
        stats: Arc<Stats>,
        status: Arc<Mutex<InferenceStatus>>,
    ) -> std::io::Result<Self> {
        // Unbounded so that the UI never blocks; commands are small and drained every frame.
        let (commands, command_rx) = cb::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let worker = InferenceLoop {
            stylizer,
            frames,
            outputs,
            commands: command_rx,
            stop: stop.clone(),
            stats,
            status,
            paused: false,
        };
        let handle = std::thread::Builder::new()
            .name("stylecam-inference".into())
            .spawn(move || worker.run(initial))?;
        Ok(Self {
            handle: Some(handle),
            commands,
            stop,
        })
    }

    pub(crate) fn send(&self, command: Command) {
        self.commands.send(command).ok();
    }

    pub(crate) fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.commands.send(Command::Stop).ok();
    }

    pub(crate) fn join_until(&mut self, deadline: Instant) -> bool {
        join_until(&mut self.handle, deadline, "stylecam-inference")
    }
}

impl Drop for InferenceWorker {
    fn drop(&mut self) {
        self.request_stop();
        self.join_until(Instant::now() + Duration::from_secs(1));
    }
}

struct InferenceLoop<S> {
    stylizer: S,
    frames: latest::Receiver<Frame>,
    outputs: latest::Sender<Result<Output, InferenceError>>,
    commands: cb::Receiver<Command>,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    status: Arc<Mutex<InferenceStatus>>,
    paused: bool,
}

/// What to do after a batch of commands.
enum Next {
    Go,
    Stop,
}

impl<S: Stylizer> InferenceLoop<S> {
    fn run(mut self, initial: Option<Controls>) {
        if let Some(controls) = initial {
            self.apply(&controls);
        }
        while !self.stop.load(Ordering::Acquire) {
            let mut pending = Vec::new();
            let mut frame = None;
            if self.paused {
                // Nothing to do but wait for a command; frames are not queued while paused.
                match self.commands.recv_timeout(POLL) {
                    Ok(c) => pending.push(c),
                    Err(cb::RecvTimeoutError::Timeout) => {}
                    Err(cb::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                cb::select! {
                    recv(self.commands) -> c => match c {
                        Ok(c) => pending.push(c),
                        Err(_) => break,
                    },
                    recv(self.frames.as_crossbeam()) -> f => match f {
                        Ok(f) => frame = Some(f),
                        // The capture thread has ended.
                        Err(_) => break,
                    },
                    default(POLL) => {}
                }
            }
            // Commands first, all of them; only the last controls count.
            pending.extend(self.commands.try_iter());
            if let Next::Stop = self.handle(pending) {
                break;
            }
            if self.paused {
                continue;
            }
            if let Some(frame) = frame {
                self.process(frame);
            }
        }
        tracing::debug!("inference thread ends");
    }

    fn handle(&mut self, commands: Vec<Command>) -> Next {
        let mut controls = None;
        for command in commands {
            match command {
                Command::Controls(c) => controls = Some(c),
                Command::Pause(pause) => {
                    if self.paused && !pause {
                        // A frame queued just before the pause is stale now.
                        self.frames.clear();
                    }
                    self.paused = pause;
                }
                Command::Stop => return Next::Stop,
            }
        }
        if let Some(controls) = controls {
            self.apply(&controls);
        }
        Next::Go
    }

    /// Applies controls. An error is not tied to a frame, so it goes to the status (where it
    /// stays until controls apply cleanly) rather than down the output channel, where the next
    /// frame's output would replace it.
    fn apply(&mut self, controls: &Controls) {
        let stylizer = &mut self.stylizer;
        let result = catch_unwind(AssertUnwindSafe(|| stylizer.apply(controls)));
        self.update_preparing();
        let error = match result {
            Ok(Ok(())) => {
                tracing::debug!("applied the controls");
                lock(&self.status).controls_error = None;
                return;
            }
            Ok(Err(e)) => InferenceError::Controls {
                message: format!("{e:#}"),
            },
            Err(p) => InferenceError::Panic {
                seq: None,
                message: panic_message(&*p),
            },
        };
        tracing::warn!("{error}");
        self.stats.record_error();
        lock(&self.status).controls_error = Some(error);
    }

    fn process(&mut self, frame: Frame) {
        let started = Instant::now();
        let stylizer = &mut self.stylizer;
        let result = catch_unwind(AssertUnwindSafe(|| stylizer.stylize(&frame)));
        let finished_at = Instant::now();
        let inference_time = finished_at - started;
        let message = match result {
            Ok(Ok(out)) => {
                let latency = finished_at.saturating_duration_since(frame.captured_at);
                self.stats.record_output(inference_time, latency);
                tracing::trace!(
                    seq = frame.seq,
                    ms = inference_time.as_secs_f64() * 1e3,
                    "stylized"
                );
                Ok(Output {
                    seq: frame.seq,
                    captured_at: frame.captured_at,
                    finished_at,
                    inference_time,
                    original: out.original,
                    stylized: out.stylized,
                })
            }
            Ok(Err(e)) => {
                self.stats.record_error();
                Err(InferenceError::Stylize {
                    seq: frame.seq,
                    message: format!("{e:#}"),
                })
            }
            Err(p) => {
                self.stats.record_error();
                Err(InferenceError::Panic {
                    seq: Some(frame.seq),
                    message: panic_message(&*p),
                })
            }
        };
        self.update_preparing();
        match &message {
            Ok(_) => lock(&self.status).frame_error = None,
            Err(e) => {
                tracing::debug!("{e}");
                lock(&self.status).frame_error = Some(e.clone());
            }
        }
        self.send(message);
    }

    fn update_preparing(&self) {
        let stylizer = &self.stylizer;
        let preparing = catch_unwind(AssertUnwindSafe(|| stylizer.preparing())).unwrap_or(None);
        let mut status = lock(&self.status);
        if status.preparing != preparing {
            status.preparing = preparing;
        }
    }

    fn send(&mut self, message: Result<Output, InferenceError>) {
        if self.outputs.send(message).is_err() {
            // The UI is gone.
            self.stop.store(true, Ordering::Release);
        }
    }
}
