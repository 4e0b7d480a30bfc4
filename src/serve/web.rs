//! The page at `/`: three files compiled into the binary (no build step, nothing from a CDN).

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("web/index.html");
const SCRIPT: &str = include_str!("web/app.js");
const STYLESHEET: &str = include_str!("web/style.css");

/// The page may load only its own files, and pictures from itself or made in the page.
const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; object-src 'none'; \
                   base-uri 'none'; frame-ancestors 'self'";

fn file(content_type: &'static str, body: impl Into<Body>) -> Response {
    let body: Body = body.into();
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// The page. Opened as `/?token=T` (with the server's token), its script and stylesheet are
/// asked for with the same token, since a browser sends no `Authorization` header for them.
pub fn index(token: Option<&str>) -> Response {
    match token {
        None => file("text/html; charset=utf-8", INDEX),
        Some(t) => {
            // Percent-encoded, so that it cannot leave the attribute.
            let t: String = form_urlencoded::byte_serialize(t.as_bytes()).collect();
            let html = INDEX
                .replace(
                    "href=\"style.css\"",
                    &format!("href=\"style.css?token={t}\""),
                )
                .replace("src=\"app.js\"", &format!("src=\"app.js?token={t}\""));
            file("text/html; charset=utf-8", html)
        }
    }
}

/// What a browser shows at `/` without the token: what to do, and a box to type it in.
pub fn token_form() -> Response {
    file("text/html; charset=utf-8", TOKEN_FORM)
}

const TOKEN_FORM: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>stylecam: token needed</title></head>\n<body>\n<h1>stylecam</h1>\n\
<p>This server needs its access token (<code>stylecam serve --token</code>). Type it here, \
or open the page as <code>/?token=TOKEN</code>.</p>\n\
<form method=\"get\" action=\"/\"><label>Token <input type=\"password\" name=\"token\" \
autocomplete=\"current-password\" required autofocus></label> <button>Open</button></form>\n\
</body></html>\n";

pub async fn script() -> Response {
    file("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn stylesheet() -> Response {
    file("text/css; charset=utf-8", STYLESHEET)
}
