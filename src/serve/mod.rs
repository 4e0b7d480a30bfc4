//! `stylecam serve`: a local web app, an HTTP API and a live MJPEG stream, on axum and tokio.
//!
//! ```text
//!   HTTP clients ──► net (hyper HTTP/1, limits) ──► routes (axum) ─┬─► JobQueue ──► SharedEngine
//!                                                                  │   (bounded;      ▲ (one Engine,
//!                                                                  │    503 when full) │  one bank)
//!                                                                  └─► Live ─► Pipeline ┘
//!                                                                      (capture + inference
//!                                                                       threads, while watched)
//! ```
//!
//! The photo queue and the live stream share one [`crate::engine::Engine`] (so one network, one
//! style bank and one target cache), the window's [`crate::pipeline::Pipeline`] and
//! [`crate::controls::Controls`]. See `docs/HTTP.md` for the API.

pub mod catalog;
pub mod error;
pub mod jobs;
pub mod live;
pub mod metrics;
pub mod net;
pub mod params;
pub mod picture;
pub mod routes;
pub mod shared;
pub mod stream;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::controls::Controls;
use catalog::Catalog;
use jobs::{JobLimits, JobQueue};
use live::{Live, LiveConfig};
use metrics::Metrics;
use routes::AppState;
use shared::SharedEngine;

/// What a server accepts. Every limit has a flag in `stylecam serve`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The largest request body, in bytes.
    pub max_body: usize,
    /// The most pixels a picture may have (checked from its header, before decoding).
    pub max_pixels: u64,
    /// The longest side a result may be asked for (`size`).
    pub max_size: u32,
    /// The longest side of a result when the request names no size.
    pub default_size: u32,
    /// How many photos may wait for inference.
    pub queue: usize,
    /// How many styles may be uploaded.
    pub max_styles: usize,
    /// How many clients may watch the stream at once.
    pub max_streams: usize,
    pub max_connections: usize,
    /// For request headers and bodies, idle connections and stalled writes.
    pub client_timeout: Duration,
    /// How long a picture may wait for a style target.
    pub target_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 16 << 20,
            max_pixels: 24_000_000,
            max_size: 1280,
            default_size: 512,
            queue: 8,
            max_styles: 16,
            max_streams: 8,
            max_connections: 256,
            client_timeout: Duration::from_secs(30),
            target_timeout: Duration::from_secs(120),
        }
    }
}

/// How to run a server.
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// Required as `Authorization: Bearer TOKEN` on every route but `/healthz`.
    pub token: Option<String>,
    pub limits: Limits,
    pub live: LiveConfig,
    /// The live stream's controls at start.
    pub controls: Controls,
}

/// Whether clients on other machines can reach `addr`.
pub fn is_local(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Runs the server until Ctrl-C or SIGTERM. `ready` is called with the bound address (the port
/// the system picked for `:0`) once the server accepts connections.
pub fn run(
    config: ServeConfig,
    engine: crate::engine::Engine,
    catalog: Catalog,
    ready: impl FnOnce(SocketAddr),
) -> Result<()> {
    let listener = std::net::TcpListener::bind(config.listen).with_context(|| {
        format!(
            "cannot listen on {}; pick another address or port with --listen",
            config.listen
        )
    })?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("stylecam-serve")
        .max_blocking_threads(16)
        .build()
        .context("cannot start the async runtime")?;
    let limits = config.limits.clone();
    let metrics = Arc::new(Metrics::new());
    let engine = SharedEngine::new(engine, limits.target_timeout);
    let jobs = JobQueue::start(
        engine.clone(),
        JobLimits {
            max_pixels: limits.max_pixels,
            default_size: limits.default_size,
            jpeg_quality: 90,
        },
        limits.queue,
        metrics.clone(),
    )
    .context("cannot start the photo worker")?;
    let live = Live::start(
        engine.clone(),
        config.live,
        config.controls,
        metrics.clone(),
    )
    .context("cannot start the live thread")?;
    let state = Arc::new(AppState {
        token: config.token.map(|t| Sha256::digest(t.trim()).into()),
        limits: limits.clone(),
        engine,
        catalog,
        jobs,
        live,
        metrics,
        frames: stream::FrameCache::default(),
        uploads: tokio::sync::Mutex::new(()),
    });
    let app = routes::router(state.clone());
    let conn = net::ConnLimits {
        max_connections: limits.max_connections,
        timeout: limits.client_timeout,
    };
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        ready(addr);
        net::serve(listener, app, conn, shutdown_signal()).await;
        anyhow::Ok(())
    })?;
    eprintln!("stylecam serve: stopped");
    // The threads (photo worker, live pipeline) stop as the state drops.
    drop(state);
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
