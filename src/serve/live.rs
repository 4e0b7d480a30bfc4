//! The live source behind `/stream.mjpeg`: the window's [`Pipeline`] (capture and inference
//! threads), run with the shared engine while someone watches.
//!
//! A thread ("stylecam-serve-live") starts the pipeline when the first viewer arrives, hands the
//! newest stylised frame to every viewer through a `tokio::sync::watch` channel (newest wins; a
//! slow viewer skips frames and costs nothing), forwards control changes, and stops the pipeline
//! (closing the camera) a few seconds after the last viewer has gone.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use image::RgbImage;
use serde::Serialize;
use tokio::sync::watch;

use super::metrics::Metrics;
use super::shared::SharedEngine;
use crate::capture::Frame;
use crate::controls::Controls;
use crate::pipeline::{join_until, lock, Command, Pipeline, PipelineConfig, Stylized, Stylizer};

/// How often the thread looks at its viewers, controls and stop flag.
const POLL: Duration = Duration::from_millis(50);

/// One stylised frame, as every viewer gets it.
#[derive(Debug)]
pub struct LiveFrame {
    pub seq: u64,
    pub image: RgbImage,
}

/// What `/healthz` and the page say about the stream.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveStatus {
    /// Whether the capture and inference threads run (only while someone watches).
    pub running: bool,
    pub viewers: usize,
    /// The source as asked for (`camera:0`, `test-pattern`, ...).
    pub requested: String,
    /// The source that runs, as it describes itself.
    pub source: Option<String>,
    /// A problem to show (the camera fell back to the test pattern, a style failed, ...).
    pub message: Option<String>,
    pub inference_fps: f64,
    pub inference_ms: Option<f64>,
    pub frames_stylized: u64,
}

struct Shared {
    /// The controls and a version that counts changes.
    controls: Mutex<(u64, Controls)>,
    viewers: AtomicUsize,
    frames: watch::Sender<Option<Arc<LiveFrame>>>,
    status: Mutex<LiveStatus>,
    stop: AtomicBool,
    metrics: Arc<Metrics>,
}

/// The live stream's owner. Dropping it stops the thread and the pipeline.
pub struct Live {
    shared: Arc<Shared>,
    handle: Option<JoinHandle<()>>,
    max_viewers: usize,
}

/// How the live stream runs.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    pub pipeline: PipelineConfig,
    /// How long the pipeline keeps running after the last viewer left.
    pub linger: Duration,
    pub max_viewers: usize,
}

impl Live {
    pub fn start(
        engine: SharedEngine,
        config: LiveConfig,
        controls: Controls,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        let (frames, _) = watch::channel(None);
        let shared = Arc::new(Shared {
            controls: Mutex::new((0, controls.clamped())),
            viewers: AtomicUsize::new(0),
            frames,
            status: Mutex::new(LiveStatus {
                requested: config.pipeline.source.to_string(),
                ..LiveStatus::default()
            }),
            stop: AtomicBool::new(false),
            metrics,
        });
        let max_viewers = config.max_viewers;
        let runner = Runner {
            shared: shared.clone(),
            engine,
            config,
        };
        let handle = std::thread::Builder::new()
            .name("stylecam-serve-live".into())
            .spawn(move || runner.run())?;
        Ok(Self {
            shared,
            handle: Some(handle),
            max_viewers,
        })
    }

    pub fn controls(&self) -> Controls {
        lock(&self.shared.controls).1.clone()
    }

    /// New live controls (already checked); the running pipeline gets them before its next frame.
    pub fn set_controls(&self, controls: Controls) {
        let mut c = lock(&self.shared.controls);
        c.0 += 1;
        c.1 = controls.clamped();
    }

    pub fn status(&self) -> LiveStatus {
        let mut s = lock(&self.shared.status).clone();
        s.viewers = self.shared.viewers.load(Ordering::Acquire);
        s
    }

    /// A new viewer, or `None` when `max_viewers` watch already.
    pub fn subscribe(&self) -> Option<Viewer> {
        let v = &self.shared.viewers;
        let mut n = v.load(Ordering::Acquire);
        loop {
            if n >= self.max_viewers {
                return None;
            }
            match v.compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => n = now,
            }
        }
        self.shared.metrics.stream_clients.set((n + 1) as i64);
        Some(Viewer {
            frames: self.shared.frames.subscribe(),
            shared: self.shared.clone(),
        })
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        // The pipeline's own shutdown is bounded (1 s); allow for it.
        join_until(
            &mut self.handle,
            Instant::now() + Duration::from_secs(2),
            "stylecam-serve-live",
        );
    }
}

/// One client of the stream; dropping it (the client went away) counts it out.
pub struct Viewer {
    pub frames: watch::Receiver<Option<Arc<LiveFrame>>>,
    shared: Arc<Shared>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let n = self.shared.viewers.fetch_sub(1, Ordering::AcqRel) - 1;
        self.shared.metrics.stream_clients.set(n as i64);
    }
}

struct Runner {
    shared: Arc<Shared>,
    engine: SharedEngine,
    config: LiveConfig,
}

impl Runner {
    fn run(self) {
        let mut pipeline: Option<Pipeline> = None;
        let mut sent_version = 0;
        let mut last_viewer = Instant::now();
        let mut retry_at = Instant::now();
        while !self.shared.stop.load(Ordering::Acquire) {
            let now = Instant::now();
            let viewers = self.shared.viewers.load(Ordering::Acquire);
            if viewers > 0 {
                last_viewer = now;
            }
            if pipeline.is_none() && viewers > 0 && now >= retry_at {
                let (version, controls) = lock(&self.shared.controls).clone();
                match self.start(controls) {
                    Ok(p) => {
                        pipeline = Some(p);
                        sent_version = version;
                    }
                    Err(e) => {
                        lock(&self.shared.status).message = Some(format!("{e:#}"));
                        retry_at = now + Duration::from_secs(2);
                    }
                }
            }
            if viewers == 0 && now.duration_since(last_viewer) > self.config.linger {
                if let Some(p) = pipeline.take() {
                    tracing::info!("no viewers: stopping the live pipeline");
                    p.shutdown();
                    // A later viewer should not see a stale picture.
                    self.shared.frames.send_replace(None);
                    lock(&self.shared.status).running = false;
                }
            }
            match &pipeline {
                Some(p) => {
                    let (version, controls) = lock(&self.shared.controls).clone();
                    if version != sent_version {
                        p.send(Command::Controls(controls));
                        sent_version = version;
                    }
                    self.pump(p);
                }
                None => std::thread::sleep(POLL),
            }
        }
        if let Some(p) = pipeline {
            p.shutdown();
        }
        tracing::debug!("the live thread ends");
    }

    fn start(&self, controls: Controls) -> Result<Pipeline> {
        tracing::info!(
            "starting the live pipeline on {}",
            self.config.pipeline.source
        );
        let config = PipelineConfig {
            controls: Some(controls.clone()),
            ..self.config.pipeline.clone()
        };
        let stylizer = LiveStylizer {
            engine: self.engine.clone(),
            controls,
        };
        let p = Pipeline::start(config, stylizer)?;
        lock(&self.shared.status).running = true;
        Ok(p)
    }

    /// Waits briefly for the next output and hands it to the viewers.
    fn pump(&self, p: &Pipeline) {
        match p.recv_timeout(POLL) {
            Some(Ok(out)) => {
                self.shared
                    .metrics
                    .inference_seconds
                    .observe(out.inference_time.as_secs_f64());
                self.shared.frames.send_replace(Some(Arc::new(LiveFrame {
                    seq: out.seq,
                    image: out.stylized,
                })));
            }
            Some(Err(e)) => {
                tracing::debug!("live frame: {e}");
                self.shared.metrics.error("live_frame");
            }
            None => {}
        }
        let capture = p.status();
        let stats = p.stats();
        let mut s = lock(&self.shared.status);
        s.source = capture.source.clone();
        s.message = capture.banner().or(p.inference_status().banner());
        s.inference_fps = stats.inference_fps;
        s.inference_ms = stats.inference_ms;
        s.frames_stylized = stats.frames_stylized;
    }
}

/// The pipeline's [`Stylizer`]: the shared engine with the live controls.
struct LiveStylizer {
    engine: SharedEngine,
    controls: Controls,
}

impl Stylizer for LiveStylizer {
    fn apply(&mut self, controls: &Controls) -> Result<()> {
        // Checked by the server before they got here; they take effect on the next frame.
        self.controls = controls.clone();
        Ok(())
    }

    fn stylize(&mut self, frame: &Frame) -> Result<Stylized> {
        Ok(self.engine.stylize(&frame.image, &self.controls)?.0)
    }

    fn describe_device(&self) -> String {
        self.engine.device().to_owned()
    }
}
