//! One file over HTTP into a `.part` file: resume with `Range`, retry with backoff, stall
//! timeouts. Proxies come from the environment (ureq's default `Config` reads `ALL_PROXY`,
//! `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`, lower case too).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ureq::http::{header, Response, StatusCode};
use ureq::{Agent, Body};

use super::{Event, FetchError};

/// No file stylecam fetches comes near this; a server that sends more is sending something else.
pub const MAX_BYTES: u64 = 256 << 20;

const CHUNK: usize = 64 * 1024;

/// An HTTP client with stylecam's timeouts.
pub(crate) struct Client {
    agent: Agent,
    timeout: Duration,
}

/// How often and how patiently to try one file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    pub retries: u32,
    pub first_delay: Duration,
}

impl Policy {
    /// The pause before retry `n` (1-based): `first_delay * 2^(n-1)`, at most 30 s.
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 1u32 << n.saturating_sub(1).min(16);
        self.first_delay
            .saturating_mul(factor)
            .min(Duration::from_secs(30))
    }
}

/// What a finished download looks like: `resumed` when the file was put together from more
/// than one response (a wrong checksum is then worth one clean retry).
pub(crate) struct Downloaded {
    pub resumed: bool,
}

/// Where to report to and when to stop.
pub(crate) struct Ctx<'a, 'b> {
    pub name: &'static str,
    pub cancel: Option<&'a AtomicBool>,
    pub on_event: &'a mut dyn FnMut(Event<'b>),
}

impl Ctx<'_, '_> {
    fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

enum Step {
    /// `part` holds the whole body.
    Complete,
    /// The server did not honour the range as asked; `part` was emptied: go again at once.
    Restart,
}

impl Client {
    /// `timeout` bounds name resolution, connecting (proxy included), waiting for the response
    /// head, and each read of the body: a server that goes quiet that long fails the attempt.
    pub fn new(timeout: Duration) -> Self {
        let t = Some(timeout);
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("stylecam/", env!("CARGO_PKG_VERSION")))
            // Byte ranges and checksums are of the file itself, never of a gzip of it.
            .accept_encoding("identity")
            .timeout_resolve(t)
            .timeout_connect(t)
            .timeout_send_request(t)
            .timeout_recv_response(t)
            .timeout_per_read(t)
            .timeout_per_write(t)
            .build()
            .into();
        Client { agent, timeout }
    }

    /// Downloads `url` into `part`, resuming from what `part` holds when the server allows it,
    /// and retrying per `policy`. `part` is left as it is on failure: the caller removes it.
    pub fn download(
        &self,
        url: &str,
        part: &Path,
        policy: Policy,
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<Downloaded, FetchError> {
        let mut ranges = true;
        let mut resumed = false;
        let mut restarts = 0;
        let mut failures = 0;
        loop {
            if ctx.cancelled() {
                return Err(FetchError::Cancelled { url: url.into() });
            }
            let attempt = failures + restarts + 1;
            match self.attempt(url, part, attempt, &mut ranges, &mut resumed, ctx) {
                Ok(Step::Complete) => return Ok(Downloaded { resumed }),
                // A second restart would mean the server keeps contradicting itself.
                Ok(Step::Restart) if restarts == 0 => restarts += 1,
                Ok(Step::Restart) => {
                    return Err(FetchError::Request {
                        url: url.into(),
                        message: "the server answered range requests inconsistently".into(),
                    })
                }
                Err(e) if e.is_retryable() && failures < policy.retries => {
                    failures += 1;
                    let delay = policy.delay(failures);
                    (ctx.on_event)(Event::Retrying {
                        name: ctx.name,
                        reason: e.to_string(),
                        retry: failures,
                        retries: policy.retries,
                        delay,
                    });
                    if !sleep_unless_cancelled(delay, ctx) {
                        return Err(FetchError::Cancelled { url: url.into() });
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn attempt(
        &self,
        url: &str,
        part: &Path,
        attempt: u32,
        ranges: &mut bool,
        resumed: &mut bool,
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<Step, FetchError> {
        let have = match std::fs::metadata(part) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == ErrorKind::NotFound => 0,
            Err(e) => return Err(FetchError::io(part, e)),
        };
        let range = (*ranges && have > 0).then_some(have);
        let mut request = self.agent.get(url);
        if let Some(from) = range {
            request = request.header(header::RANGE, format!("bytes={from}-"));
        }
        let response = request.call().map_err(|e| self.classify(url, e, true))?;
        let status = response.status();
        let length = content_length(&response);
        let (from, total) = match (status, range) {
            (StatusCode::OK, _) => (0, length),
            (StatusCode::PARTIAL_CONTENT, Some(from)) => match content_range(&response) {
                Some((start, total)) if start == from => {
                    (from, total.or(length.map(|l| from.saturating_add(l))))
                }
                _ => {
                    // Not the bytes we asked for: start over without ranges.
                    *ranges = false;
                    truncate(part)?;
                    return Ok(Step::Restart);
                }
            },
            (StatusCode::RANGE_NOT_SATISFIABLE, Some(from)) => {
                if unsatisfied_total(&response) == Some(from) {
                    // `part` already holds every byte.
                    *resumed = true;
                    return Ok(Step::Complete);
                }
                truncate(part)?;
                return Ok(Step::Restart);
            }
            _ => {
                return Err(FetchError::Status {
                    url: url.into(),
                    status: status.as_u16(),
                })
            }
        };
        if total.is_some_and(|t| t > MAX_BYTES) {
            return Err(FetchError::TooLarge {
                url: url.into(),
                limit: MAX_BYTES,
            });
        }
        // A 200 after a range request means the server ignores ranges: `create` restarts
        // the file cleanly.
        let mut file = if from == 0 {
            File::create(part)
        } else {
            *resumed = true;
            OpenOptions::new().append(true).open(part)
        }
        .map_err(|e| FetchError::io(part, e))?;
        (ctx.on_event)(Event::Started {
            name: ctx.name,
            url: url.to_string(),
            attempt,
            from,
            total,
        });
        let done = self.copy_body(url, response, &mut file, part, from, total, ctx)?;
        if let Some(expected) = total {
            if done != expected {
                return Err(FetchError::Truncated {
                    url: url.into(),
                    got: done,
                    expected,
                });
            }
        }
        file.sync_all().map_err(|e| FetchError::io(part, e))?;
        Ok(Step::Complete)
    }

    /// Appends the body to `file`; what arrived before an error stays there for a resume.
    #[allow(clippy::too_many_arguments)]
    fn copy_body(
        &self,
        url: &str,
        response: Response<Body>,
        file: &mut File,
        part: &Path,
        from: u64,
        total: Option<u64>,
        ctx: &mut Ctx<'_, '_>,
    ) -> Result<u64, FetchError> {
        let mut reader = response.into_body().into_reader();
        let mut buf = vec![0u8; CHUNK];
        let mut done = from;
        loop {
            if ctx.cancelled() {
                return Err(FetchError::Cancelled { url: url.into() });
            }
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(done),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    if let (ErrorKind::UnexpectedEof, Some(expected)) = (e.kind(), total) {
                        return Err(FetchError::Truncated {
                            url: url.into(),
                            got: done,
                            expected,
                        });
                    }
                    return Err(self.classify(url, ureq::Error::from(e), false));
                }
            };
            done += n as u64;
            if done > MAX_BYTES {
                return Err(FetchError::TooLarge {
                    url: url.into(),
                    limit: MAX_BYTES,
                });
            }
            file.write_all(&buf[..n])
                .map_err(|e| FetchError::io(part, e))?;
            (ctx.on_event)(Event::Progress {
                name: ctx.name,
                done,
                total,
            });
        }
    }

    /// `calling`: the error came before the response head (resolving, connecting, the proxy),
    /// where anything but a dropped connection means the server cannot be reached.
    fn classify(&self, url: &str, e: ureq::Error, calling: bool) -> FetchError {
        let url = url.to_string();
        let secs = self.timeout.as_secs().max(1);
        match e {
            ureq::Error::Timeout(which) => FetchError::Timeout {
                url,
                secs,
                phase: timeout_phase(which),
            },
            ureq::Error::HostNotFound => FetchError::Unreachable {
                url,
                reason: "host not found".into(),
            },
            ureq::Error::ConnectionFailed => FetchError::Unreachable {
                url,
                reason: "could not connect".into(),
            },
            ureq::Error::Io(io) => match io.kind() {
                ErrorKind::TimedOut | ErrorKind::WouldBlock => FetchError::Timeout {
                    url,
                    secs,
                    phase: "waiting for data".into(),
                },
                ErrorKind::ConnectionRefused
                | ErrorKind::NetworkUnreachable
                | ErrorKind::HostUnreachable
                | ErrorKind::AddrNotAvailable
                | ErrorKind::NetworkDown => FetchError::Unreachable {
                    url,
                    reason: io.to_string(),
                },
                ErrorKind::UnexpectedEof => FetchError::Network {
                    url,
                    reason: "the server closed the connection early".into(),
                },
                ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::BrokenPipe => FetchError::Network {
                    url,
                    reason: io.to_string(),
                },
                // Name resolution failures have no kind of their own.
                _ if calling => FetchError::Unreachable {
                    url,
                    reason: io.to_string(),
                },
                _ => FetchError::Network {
                    url,
                    reason: io.to_string(),
                },
            },
            ureq::Error::Protocol(p) => FetchError::Network {
                url,
                reason: format!("bad HTTP from the server: {p}"),
            },
            other => FetchError::Request {
                url,
                message: other.to_string(),
            },
        }
    }
}

fn timeout_phase(which: ureq::Timeout) -> String {
    use ureq::Timeout as T;
    match which {
        T::Resolve => "looking up the host",
        T::Connect => "connecting (proxy included)",
        T::SendRequest | T::SendBody | T::PerWrite => "sending the request",
        T::RecvResponse => "waiting for the response",
        T::PerRead | T::RecvBody => "waiting for more data",
        _ => "waiting for the server",
    }
    .to_string()
}

/// Sleeps `delay` in short steps; false when cancelled meanwhile.
fn sleep_unless_cancelled(delay: Duration, ctx: &Ctx<'_, '_>) -> bool {
    let step = Duration::from_millis(50);
    let mut left = delay;
    while !left.is_zero() {
        if ctx.cancelled() {
            return false;
        }
        let d = left.min(step);
        std::thread::sleep(d);
        left -= d;
    }
    !ctx.cancelled()
}

fn truncate(part: &Path) -> Result<(), FetchError> {
    File::create(part)
        .map(drop)
        .map_err(|e| FetchError::io(part, e))
}

fn header_str(r: &Response<Body>, name: header::HeaderName) -> Option<&str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

fn content_length(r: &Response<Body>) -> Option<u64> {
    header_str(r, header::CONTENT_LENGTH).and_then(|v| v.trim().parse().ok())
}

/// `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`) as (START, TOTAL).
fn content_range(r: &Response<Body>) -> Option<(u64, Option<u64>)> {
    parse_content_range(header_str(r, header::CONTENT_RANGE)?)
}

fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let (start, _end) = span.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start.trim().parse().ok()?, total))
}

/// A 416's `Content-Range: bytes */TOTAL`.
fn unsatisfied_total(r: &Response<Body>) -> Option<u64> {
    let v = header_str(r, header::CONTENT_RANGE)?;
    v.trim().strip_prefix("bytes */")?.trim().parse().ok()
}

/// The proxy a request to `url` goes through, as `PROTOCOL host:port` (never the credentials).
pub fn proxy_for(url: &str) -> Option<String> {
    let proxy = ureq::Proxy::try_from_env()?;
    let uri: ureq::http::Uri = url.parse().ok()?;
    if proxy.is_no_proxy(&uri) {
        return None;
    }
    Some(format!(
        "{} proxy {}:{}",
        proxy.protocol(),
        proxy.host(),
        proxy.port()
    ))
}

/// The proxy variables that are set, when none of them holds a proxy URL ureq understands (it
/// then connects directly, silently).
pub fn unusable_proxy_vars() -> Option<String> {
    const VARS: [&str; 6] = [
        "ALL_PROXY",
        "all_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
    ];
    let set: Vec<&str> = VARS
        .into_iter()
        .filter(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
        .collect();
    (!set.is_empty() && ureq::Proxy::try_from_env().is_none()).then(|| set.join(", "))
}

/// `host:port` of `url`, to recognise files from a server that could not be reached.
pub(crate) fn host_of(url: &str) -> String {
    url.parse::<ureq::http::Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_forms() {
        assert_eq!(parse_content_range("bytes 5-9/10"), Some((5, Some(10))));
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("bytes */10"), None);
        assert_eq!(parse_content_range("items 5-9/10"), None);
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = Policy {
            retries: 20,
            first_delay: Duration::from_millis(500),
        };
        assert_eq!(p.delay(1), Duration::from_millis(500));
        assert_eq!(p.delay(2), Duration::from_secs(1));
        assert_eq!(p.delay(4), Duration::from_secs(4));
        assert_eq!(p.delay(20), Duration::from_secs(30));
    }

    #[test]
    fn hosts_are_keyed_with_their_port() {
        assert_eq!(host_of("http://127.0.0.1:8080/a/b"), "127.0.0.1:8080");
        assert_eq!(host_of("https://github.com/x"), "github.com");
    }
}
