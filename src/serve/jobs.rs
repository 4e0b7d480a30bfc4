//! The photo queue: a bounded channel into one worker thread ("stylecam-serve-jobs") that
//! decodes, stylises with the shared engine and encodes. A full queue is answered at once with
//! 503 and `Retry-After`, never by growing; a job whose client has gone is skipped.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel as cb;
use tokio::sync::oneshot;

use super::error::ApiError;
use super::metrics::Metrics;
use super::params::PhotoRequest;
use super::picture::{self, OutFormat};
use super::shared::SharedEngine;
use crate::pipeline::stats::RollingMean;
use crate::pipeline::{join_until, lock};

/// One photo to stylise.
pub struct Job {
    pub image: Bytes,
    pub request: PhotoRequest,
    pub format: OutFormat,
    pub reply: oneshot::Sender<Result<Done, ApiError>>,
}

/// A finished photo.
#[derive(Debug)]
pub struct Done {
    pub body: Vec<u8>,
    pub format: OutFormat,
    /// The network's time (not the queue's, decoding or encoding).
    pub inference: Duration,
    pub width: u32,
    pub height: u32,
}

/// What the worker needs to know about sizes.
#[derive(Debug, Clone, Copy)]
pub struct JobLimits {
    pub max_pixels: u64,
    /// The longer side of a result when the request names no size (smaller photos keep theirs).
    pub default_size: u32,
    pub jpeg_quality: u8,
}

/// The longest the worker waits before looking at its stop flag.
const POLL: Duration = Duration::from_millis(100);

pub struct JobQueue {
    tx: Option<cb::Sender<Job>>,
    handle: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    /// Jobs queued or running.
    depth: Arc<AtomicI64>,
    times: Arc<Mutex<RollingMean>>,
    metrics: Arc<Metrics>,
    capacity: usize,
}

impl JobQueue {
    /// Starts the worker; at most `capacity` photos wait (one more may be running).
    pub fn start(
        engine: SharedEngine,
        limits: JobLimits,
        capacity: usize,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let capacity = capacity.max(1);
        let (tx, rx) = cb::bounded::<Job>(capacity);
        let stop = Arc::new(AtomicBool::new(false));
        let depth = Arc::new(AtomicI64::new(0));
        let times = Arc::new(Mutex::new(RollingMean::default()));
        let worker = Worker {
            engine,
            limits,
            rx,
            stop: stop.clone(),
            depth: depth.clone(),
            times: times.clone(),
            metrics: metrics.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("stylecam-serve-jobs".into())
            .spawn(move || worker.run())?;
        Ok(Self {
            tx: Some(tx),
            handle: Some(handle),
            stop,
            depth,
            times,
            metrics,
            capacity,
        })
    }

    /// Photos queued or running now.
    pub fn depth(&self) -> i64 {
        self.depth.load(Ordering::Acquire)
    }

    /// Queues `job`, or answers 503 at once when the queue is full.
    pub fn submit(&self, job: Job) -> Result<(), ApiError> {
        let Some(tx) = &self.tx else {
            return Err(ApiError::internal("the server is shutting down"));
        };
        let depth = self.depth.fetch_add(1, Ordering::AcqRel) + 1;
        self.metrics.queue_depth.set(depth);
        match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                let depth = self.depth.fetch_sub(1, Ordering::AcqRel) - 1;
                self.metrics.queue_depth.set(depth);
                match e {
                    cb::TrySendError::Full(_) => {
                        let mean_ms = lock(&self.times).mean_ms().unwrap_or(1000.0);
                        let secs = (depth.max(1) as f64 * mean_ms / 1000.0).ceil() as u64;
                        Err(ApiError::busy(
                            format!(
                                "{} photos are waiting, the most this server queues \
                                 (--queue); try again in a moment",
                                self.capacity
                            ),
                            secs.clamp(1, 120),
                        ))
                    }
                    cb::TrySendError::Disconnected(_) => {
                        Err(ApiError::internal("the photo worker has stopped"))
                    }
                }
            }
        }
    }
}

impl Drop for JobQueue {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Closing the channel ends the worker once it has finished its photo.
        self.tx = None;
        join_until(
            &mut self.handle,
            Instant::now() + Duration::from_secs(1),
            "stylecam-serve-jobs",
        );
    }
}

struct Worker {
    engine: SharedEngine,
    limits: JobLimits,
    rx: cb::Receiver<Job>,
    stop: Arc<AtomicBool>,
    depth: Arc<AtomicI64>,
    times: Arc<Mutex<RollingMean>>,
    metrics: Arc<Metrics>,
}

impl Worker {
    fn run(self) {
        while !self.stop.load(Ordering::Acquire) {
            let job = match self.rx.recv_timeout(POLL) {
                Ok(job) => job,
                Err(cb::RecvTimeoutError::Timeout) => continue,
                Err(cb::RecvTimeoutError::Disconnected) => break,
            };
            if job.reply.is_closed() {
                // The client went away while the photo waited.
                self.metrics.abandoned.inc();
            } else {
                let started = Instant::now();
                let result =
                    catch_unwind(AssertUnwindSafe(|| self.process(&job))).unwrap_or_else(|p| {
                        Err(ApiError::internal(format!(
                            "stylising panicked: {}; this is a bug, please report it",
                            crate::capture::panic_message(&*p)
                        )))
                    });
                lock(&self.times).add(started.elapsed());
                job.reply.send(result).ok();
            }
            let depth = self.depth.fetch_sub(1, Ordering::AcqRel) - 1;
            self.metrics.queue_depth.set(depth);
        }
        tracing::debug!("the photo worker ends");
    }

    fn process(&self, job: &Job) -> Result<Done, ApiError> {
        let photo = picture::decode(&job.image, self.limits.max_pixels)?;
        let long = photo.width().max(photo.height());
        let size = job
            .request
            .size
            .unwrap_or_else(|| long.min(self.limits.default_size));
        let photo = if size == long {
            photo
        } else {
            picture::fit_longest(&photo, size)
        };
        let (out, inference) = self
            .engine
            .stylize(&photo, &job.request.controls)
            .map_err(|e| ApiError::internal(format!("cannot stylise the photo: {e:#}")))?;
        self.metrics
            .inference_seconds
            .observe(inference.as_secs_f64());
        let img = out.stylized;
        let body = picture::encode(&img, job.format, self.limits.jpeg_quality)
            .map_err(|e| ApiError::internal(format!("cannot encode the result: {e}")))?;
        Ok(Done {
            body,
            format: job.format,
            inference,
            width: img.width(),
            height: img.height(),
        })
    }
}
