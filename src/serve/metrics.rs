//! `GET /metrics`: the server's counters in the Prometheus (OpenMetrics) text format.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route as written in the router (`/api/styles/{name}/swatch.png`), or `unmatched`.
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// The counters; cheap to update from any thread.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub errors: Family<KindLabels, Counter>,
    pub queue_depth: Gauge,
    pub inference_seconds: Histogram,
    pub frames_streamed: Counter,
    pub stream_clients: Gauge,
    pub abandoned: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("stylecam");
        let requests = Family::<RequestLabels, Counter>::default();
        let errors = Family::<KindLabels, Counter>::default();
        let queue_depth = Gauge::default();
        // 5 ms to about 80 s.
        let inference_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 15));
        let frames_streamed = Counter::default();
        let stream_clients = Gauge::default();
        let abandoned = Counter::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status",
            requests.clone(),
        );
        registry.register(
            "errors",
            "Error answers and live-stream errors, by kind (the `kind` of the JSON error)",
            errors.clone(),
        );
        registry.register(
            "queue_depth",
            "Photos waiting for or in inference",
            queue_depth.clone(),
        );
        registry.register(
            "inference_seconds",
            "Time the network took per photo or live frame",
            inference_seconds.clone(),
        );
        registry.register(
            "frames_streamed",
            "MJPEG frames sent to stream clients",
            frames_streamed.clone(),
        );
        registry.register(
            "stream_clients",
            "Clients watching /stream.mjpeg now",
            stream_clients.clone(),
        );
        registry.register(
            "jobs_abandoned",
            "Photos skipped because their client had gone before inference",
            abandoned.clone(),
        );
        Self {
            registry,
            requests,
            errors,
            queue_depth,
            inference_seconds,
            frames_streamed,
            stream_clients,
            abandoned,
        }
    }

    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.push_str("# encoding failed\n");
        }
        out
    }
}

/// The `Content-Type` of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
