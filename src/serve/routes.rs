//! The routes: the page, the JSON API, the stream, health and metrics. See `docs/HTTP.md`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use super::catalog::{self, Catalog};
use super::error::{ApiError, ErrorKind};
use super::jobs::{Job, JobQueue};
use super::live::Live;
use super::metrics::{self, Metrics, RequestLabels};
use super::params::{self, ControlsUpdate, ControlsView};
use super::picture::{self, OutFormat};
use super::shared::SharedEngine;
use super::{stream, web, Limits};
use crate::style::{Style, StyleImage, StyleSource};

/// The longest side an uploaded style is kept at (targets are computed from it at up to
/// 4 x 512 px; a larger picture would only cost memory).
const STYLE_KEEP: u32 = 1024;
/// The largest `POST /api/controls` body.
const CONTROLS_BODY: usize = 16 * 1024;

/// Everything the handlers share.
pub struct AppState {
    pub limits: Limits,
    /// SHA-256 of the access token, if one is required.
    pub token: Option<[u8; 32]>,
    pub engine: SharedEngine,
    pub catalog: Catalog,
    pub jobs: JobQueue,
    pub live: Live,
    pub metrics: Arc<Metrics>,
    pub frames: stream::FrameCache,
    /// Uploads one at a time, so that two cannot take the same name or the last slot.
    pub uploads: tokio::sync::Mutex<()>,
}

type St = State<Arc<AppState>>;

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(web::script))
        .route("/style.css", get(web::stylesheet))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/api/styles", get(list_styles).post(upload_style))
        .route("/api/styles/{name}/swatch.png", get(swatch))
        .route("/api/stylize", post(stylize))
        .route("/api/controls", get(get_controls).post(set_controls))
        .route("/stream.mjpeg", get(stream::stream))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Bodies are read (and limited) by `read_body`; multipart parsing then needs no limit
        // of its own.
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no such route: {method} {}; see docs/HTTP.md",
        uri.path()
    ))
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not take {method}; see docs/HTTP.md", uri.path()),
    )
}

/// Counts every answer by route and status, and error answers by kind.
async fn count(State(s): St, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().to_string();
    let response = next.run(req).await;
    s.metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    if let Some(ErrorKind(kind)) = response.extensions().get::<ErrorKind>() {
        s.metrics.error(kind);
    }
    response
}

/// With `--token`, every route but `/healthz` needs `Authorization: Bearer TOKEN` (or
/// `?token=TOKEN`, for players and `<img>` tags that cannot send headers).
async fn auth(State(s): St, req: Request, next: Next) -> Response {
    let Some(want) = &s.token else {
        return next.run(req).await;
    };
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    let header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let query = req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    // Compare digests, so that the time taken says nothing about the token.
    let given: Option<[u8; 32]> = header.or(query).map(|t| Sha256::digest(t.trim()).into());
    if given.as_ref() == Some(want) {
        return next.run(req).await;
    }
    let refused = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "this server needs its token: send `Authorization: Bearer TOKEN` (or add \
         ?token=TOKEN to the URL)",
    )
    .into_response();
    if req.uri().path() == "/" && wants_html(req.headers()) {
        // A person at the page: the same refusal, as a form to type the token in.
        let mut form = web::token_form();
        *form.status_mut() = StatusCode::UNAUTHORIZED;
        for name in [header::WWW_AUTHENTICATE, header::CACHE_CONTROL] {
            if let Some(v) = refused.headers().get(&name) {
                form.headers_mut().insert(name, v.clone());
            }
        }
        form.extensions_mut().insert(ErrorKind("unauthorized"));
        return form;
    }
    refused
}

/// Whether the client (a browser) prefers HTML to JSON.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// The page, with its token (already checked by [`auth`]) passed on to its own files.
async fn index(State(s): St, RawQuery(query): RawQuery) -> Response {
    let token = s.token.and_then(|want| {
        form_urlencoded::parse(query.as_deref()?.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
            .filter(|t| <[u8; 32]>::from(Sha256::digest(t.trim())) == want)
    });
    web::index(token.as_deref())
}

/// The most of a refused body that is read and thrown away, so that a client that sends it all
/// before reading the answer (most do, without `Expect: 100-continue`) gets the 413 rather than a
/// broken pipe. Beyond this the connection is closed instead.
const DRAIN_MAX: u64 = 64 << 20;

/// Reads a whole body, refusing more than `limit` bytes (before reading, when Content-Length
/// says so) and bodies slower than the client timeout.
pub async fn read_body(
    s: &AppState,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = |n: String| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is {n}; this server takes at most {limit} bytes here (--max-body)"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let timeout = s.limits.client_timeout;
    let mut body = std::pin::pin!(body);
    if let Some(n) = declared.filter(|&n| n > limit as u64) {
        if n <= DRAIN_MAX {
            drain(body.as_mut(), timeout).await;
        }
        return Err(too_large(format!("{n} bytes")));
    }
    let mut data = bytes::BytesMut::new();
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ApiError::bad("bad_body", format!("cannot read the request body: {e}"))
            })?;
            if let Some(chunk) = frame.data_ref() {
                if data.len() + chunk.len() > limit {
                    return Err(too_large("larger".into()));
                }
                data.extend_from_slice(chunk);
            }
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the request body did not arrive within {} s",
                timeout.as_secs_f64()
            ),
        )),
        Ok(Err(e)) => {
            if e.kind == "too_large" {
                drain(body.as_mut(), timeout).await;
            }
            Err(e)
        }
        Ok(Ok(())) => Ok(data.freeze()),
    }
}

/// Reads and drops what is left of a body, at most [`DRAIN_MAX`] bytes and `timeout`.
async fn drain(mut body: std::pin::Pin<&mut Body>, timeout: std::time::Duration) {
    let mut seen = 0u64;
    let all = async {
        while let Some(Ok(frame)) = body.frame().await {
            seen += frame.data_ref().map_or(0, |d| d.len() as u64);
            if seen > DRAIN_MAX {
                break;
            }
        }
    };
    tokio::time::timeout(timeout, all).await.ok();
}

/// A request's fields (query string and multipart text fields) and its picture (the raw body,
/// or the multipart file field).
struct Upload {
    fields: Vec<(String, String)>,
    image: Bytes,
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        })
}

fn query_fields(uri: &axum::http::Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

async fn read_upload(s: &AppState, req: Request, file_field: &str) -> Result<Upload, ApiError> {
    let (parts, body) = req.into_parts();
    let mut fields = query_fields(&parts.uri);
    let bytes = read_body(s, &parts.headers, body, s.limits.max_body).await?;
    if !is_multipart(&parts.headers) {
        return Ok(Upload {
            fields,
            image: bytes,
        });
    }
    let bad = |e: String| ApiError::bad("bad_multipart", format!("cannot read the form: {e}"));
    let req = Request::from_parts(parts, Body::from(bytes));
    let mut form = axum::extract::Multipart::from_request(req, &())
        .await
        .map_err(|e| bad(e.body_text()))?;
    let mut image = None;
    while let Some(field) = form.next_field().await.map_err(|e| bad(e.body_text()))? {
        let name = field.name().unwrap_or("").to_owned();
        let is_file = field.file_name().is_some() || name == file_field;
        let data = field.bytes().await.map_err(|e| bad(e.body_text()))?;
        if is_file {
            if image.is_some() {
                return Err(ApiError::bad(
                    "bad_multipart",
                    "the form has more than one picture; send one",
                ));
            }
            image = Some(data);
        } else {
            let value = String::from_utf8(data.to_vec()).map_err(|_| {
                ApiError::bad("bad_parameter", format!("`{name}` is not UTF-8 text"))
            })?;
            fields.push((name, value));
        }
    }
    let image = image.ok_or_else(|| {
        ApiError::bad(
            "missing_image",
            format!("the form has no picture: send it as the file field `{file_field}`"),
        )
    })?;
    Ok(Upload { fields, image })
}

async fn healthz(State(s): St) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "device": s.engine.device(),
        "styles": s.catalog.len(),
        "queue": s.jobs.depth(),
        "live": s.live.status(),
    }))
}

async fn metrics_text(State(s): St) -> Response {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        s.metrics.render(),
    )
        .into_response()
}

async fn list_styles(State(s): St) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "styles": s.catalog.views() }))
}

async fn swatch(State(s): St, Path(name): Path<String>) -> Result<Response, ApiError> {
    let entry = s
        .catalog
        .get(&name)
        .ok_or_else(|| ApiError::not_found(format!("no style named `{name}`")))?;
    let png = tokio::task::spawn_blocking(move || entry.swatch_png())
        .await
        .map_err(|e| ApiError::internal(format!("making the swatch: {e}")))?
        .ok_or_else(|| ApiError::not_found(format!("style `{name}` has no swatch")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        png,
    )
        .into_response())
}

async fn upload_style(State(s): St, req: Request) -> Result<Response, ApiError> {
    let upload = read_upload(&s, req, "image").await?;
    let mut name = None;
    for (k, v) in upload.fields {
        match k.as_str() {
            "name" => name = Some(v),
            "token" => {}
            _ => {
                return Err(ApiError::bad(
                    "unknown_parameter",
                    format!("unknown field `{k}`; a style upload takes `name` and the picture"),
                ))
            }
        }
    }
    let name = name.ok_or_else(|| {
        ApiError::bad(
            "missing_parameter",
            "name the style: ?name=NAME (letters, digits, - and _)",
        )
    })?;
    s.catalog.check_upload(&name)?;
    picture::inspect(&upload.image, s.limits.max_pixels)?;
    let _one_at_a_time = s.uploads.lock().await;
    s.catalog.check_upload(&name)?;
    let max_pixels = s.limits.max_pixels;
    let engine = s.engine.clone();
    let style_name = name.clone();
    let swatch = tokio::task::spawn_blocking(move || -> Result<image::RgbImage, ApiError> {
        let img = picture::decode(&upload.image, max_pixels)?;
        let img = if img.width().max(img.height()) > STYLE_KEEP {
            picture::fit_longest(&img, STYLE_KEEP)
        } else {
            img
        };
        let swatch = if img.width().max(img.height()) > catalog::SWATCH_SIZE {
            picture::fit_longest(&img, catalog::SWATCH_SIZE)
        } else {
            img.clone()
        };
        // Waits while a picture is being stylised.
        engine.add_style(Style {
            name: style_name,
            source: StyleSource::Memory(StyleImage::new(img)),
        });
        Ok(swatch)
    })
    .await
    .map_err(|e| ApiError::internal(format!("adding the style: {e}")))??;
    let entry = s.catalog.add_upload(name, swatch);
    tracing::info!("style `{}` uploaded", entry.name);
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "name": entry.name,
            "builtin": false,
            "swatch": entry.swatch_url(),
        })),
    )
        .into_response())
}

async fn stylize(State(s): St, req: Request) -> Result<Response, ApiError> {
    let started = Instant::now();
    let format = OutFormat::from_accept(
        req.headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    );
    let upload = read_upload(&s, req, "image").await?;
    let request = params::photo_request(&upload.fields, &s.catalog.names(), s.limits.max_size)?;
    if upload.image.is_empty() {
        return Err(ApiError::bad(
            "missing_image",
            "the body is empty: send the photo as the body, or as the form's file field `image`",
        ));
    }
    picture::inspect(&upload.image, s.limits.max_pixels)?;
    let style = request.controls.style.clone();
    let (reply, done) = oneshot::channel();
    s.jobs.submit(Job {
        image: upload.image,
        request,
        format,
        reply,
    })?;
    let done = done
        .await
        .map_err(|_| ApiError::internal("the photo worker stopped"))??;
    let ext = match done.format {
        OutFormat::Png => "png",
        OutFormat::Jpeg => "jpg",
    };
    let mut r = (
        [(header::CONTENT_TYPE, done.format.content_type())],
        done.body,
    )
        .into_response();
    let h = r.headers_mut();
    let ms = |d: std::time::Duration| HeaderValue::from(d.as_millis() as u64);
    h.insert("x-inference-ms", ms(done.inference));
    h.insert("x-elapsed-ms", ms(started.elapsed()));
    h.insert("x-image-size", {
        let v = format!("{}x{}", done.width, done.height);
        HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("unknown"))
    });
    if let Ok(v) = HeaderValue::from_str(&format!(
        "inline; filename=\"stylecam-{}.{ext}\"",
        style.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_")
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

async fn get_controls(State(s): St) -> Json<ControlsView> {
    Json(ControlsView::from(&s.live.controls()))
}

async fn set_controls(State(s): St, req: Request) -> Result<Json<ControlsView>, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = read_body(&s, &parts.headers, body, CONTROLS_BODY).await?;
    let update = ControlsUpdate::from_json(&bytes)?;
    let controls = update.apply_to(&s.live.controls(), &s.catalog.names())?;
    s.live.set_controls(controls.clone());
    Ok(Json(ControlsView::from(&controls)))
}
