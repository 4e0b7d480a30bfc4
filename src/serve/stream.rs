//! `GET /stream.mjpeg`: the live stylised picture as `multipart/x-mixed-replace`, one JPEG per
//! part, at the rate and width the client asks for. Browsers, VLC and OBS show it.
//!
//! Each client gets the newest frame when its next slot is due (a slow client skips frames; it
//! never queues them), and the last frame again after a second without a new one, so that a
//! client that has gone is noticed by the failed write.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use super::error::ApiError;
use super::live::{LiveFrame, Viewer};
use super::picture::{self, OutFormat};
use super::routes::AppState;
use crate::pipeline::lock;

/// The multipart boundary.
pub const BOUNDARY: &str = "stylecamframe";
pub const FPS_RANGE: std::ops::RangeInclusive<u32> = 1..=30;
pub const WIDTH_RANGE: std::ops::RangeInclusive<u32> = 16..=1920;
pub const DEFAULT_FPS: u32 = 10;
const JPEG_QUALITY: u8 = 80;
/// A frame is sent again after this long without a new one.
const RESEND: Duration = Duration::from_secs(1);

/// Recently encoded frames by (frame, width), so that clients watching at the same width share
/// one encoding.
#[derive(Default)]
pub struct FrameCache(Mutex<VecDeque<((u64, u32), Bytes)>>);

impl FrameCache {
    const KEEP: usize = 4;

    fn jpeg(&self, frame: &LiveFrame, width: Option<u32>) -> std::io::Result<Bytes> {
        let w = width.unwrap_or(frame.image.width());
        let key = (frame.seq, w);
        if let Some((_, b)) = lock(&self.0).iter().find(|(k, _)| *k == key) {
            return Ok(b.clone());
        }
        let img = picture::fit_width(&frame.image, w);
        let jpeg = Bytes::from(picture::encode(&img, OutFormat::Jpeg, JPEG_QUALITY)?);
        let mut cache = lock(&self.0);
        if cache.len() >= Self::KEEP {
            cache.pop_front();
        }
        cache.push_back((key, jpeg.clone()));
        Ok(jpeg)
    }
}

/// The stream's query: `fps` and `width`.
fn stream_params(req: &Request) -> Result<(u32, Option<u32>), ApiError> {
    let (mut fps, mut width) = (DEFAULT_FPS, None);
    let query = req.uri().query().unwrap_or("");
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let range = match k.as_ref() {
            "fps" => FPS_RANGE,
            "width" => WIDTH_RANGE,
            "token" => continue,
            other => {
                return Err(ApiError::bad(
                    "unknown_parameter",
                    format!("unknown field `{other}`; the stream takes fps and width"),
                ))
            }
        };
        let n: u32 = v.trim().parse().map_err(|_| {
            ApiError::bad(
                "bad_parameter",
                format!("`{k}` must be a whole number, got `{v}`"),
            )
        })?;
        if !range.contains(&n) {
            return Err(ApiError::bad(
                "out_of_range",
                format!(
                    "`{k}` is {n}; it must be from {} to {}",
                    range.start(),
                    range.end()
                ),
            ));
        }
        match k.as_ref() {
            "fps" => fps = n,
            _ => width = Some(n),
        }
    }
    Ok((fps, width))
}

struct Client {
    state: Arc<AppState>,
    viewer: Viewer,
    period: Duration,
    width: Option<u32>,
    next: Instant,
    last: Option<(u64, Instant)>,
}

impl Client {
    /// The next frame to send: a new one, or the last one again after [`RESEND`]. `None` when
    /// the server is shutting down.
    async fn next_frame(&mut self) -> Option<Arc<LiveFrame>> {
        loop {
            let current = self.viewer.frames.borrow_and_update().clone();
            if let Some(f) = current {
                let due = match self.last {
                    Some((seq, at)) => seq != f.seq || at.elapsed() >= RESEND,
                    None => true,
                };
                if due {
                    return Some(f);
                }
            }
            match tokio::time::timeout(RESEND, self.viewer.frames.changed()).await {
                Ok(Ok(())) | Err(_) => {}
                Ok(Err(_)) => return None,
            }
        }
    }

    async fn next_part(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        tokio::time::sleep_until(self.next).await;
        let frame = self.next_frame().await?;
        let state = self.state.clone();
        let width = self.width;
        let f = frame.clone();
        let jpeg = match tokio::task::spawn_blocking(move || state.frames.jpeg(&f, width)).await {
            Ok(Ok(j)) => j,
            Ok(Err(e)) => {
                tracing::warn!("cannot encode a stream frame: {e}");
                self.state.metrics.error("stream_encode");
                return None;
            }
            Err(_) => return None,
        };
        let now = Instant::now();
        self.last = Some((frame.seq, now));
        // The next slot: one period on, or now if this client fell behind.
        self.next = (self.next + self.period).max(now);
        let head = format!(
            "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        );
        let mut part = Vec::with_capacity(head.len() + jpeg.len() + 2);
        part.extend_from_slice(head.as_bytes());
        part.extend_from_slice(&jpeg);
        part.extend_from_slice(b"\r\n");
        self.state.metrics.frames_streamed.inc();
        Some((Ok(Bytes::from(part)), self))
    }
}

pub async fn stream(State(s): State<Arc<AppState>>, req: Request) -> Result<Response, ApiError> {
    let (fps, width) = stream_params(&req)?;
    let viewer = s.live.subscribe().ok_or_else(|| {
        ApiError::busy(
            format!(
                "{} clients watch the stream already, the most this server allows \
                 (--max-streams)",
                s.limits.max_streams
            ),
            5,
        )
    })?;
    let client = Client {
        state: s.clone(),
        viewer,
        period: Duration::from_secs_f64(1.0 / fps as f64),
        width,
        next: Instant::now(),
        last: None,
    };
    let parts = futures_util::stream::unfold(client, Client::next_part);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                format!("multipart/x-mixed-replace; boundary={BOUNDARY}"),
            ),
            (header::CACHE_CONTROL, "no-cache, no-store".to_owned()),
        ],
        Body::from_stream(parts),
    )
        .into_response())
}
