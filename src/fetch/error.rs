//! Why a file could not be fetched, and what to do about it.

use std::path::PathBuf;

use crate::model::ModelError;

/// One file's failure. Every message names the URL or the path.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("{url}: the server answered HTTP {status}{}", reason_suffix(*status))]
    Status { url: String, status: u16 },
    #[error("{url}: timed out after {secs} s {phase}")]
    Timeout {
        url: String,
        secs: u64,
        phase: String,
    },
    #[error("{url}: cannot reach the server: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url}: the connection failed: {reason}")]
    Network { url: String, reason: String },
    #[error("{url}: the download stopped after {got} of {expected} bytes")]
    Truncated {
        url: String,
        got: u64,
        expected: u64,
    },
    #[error("{url}: the server sent more than {limit} bytes, far more than this file has")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: {message}")]
    Request { url: String, message: String },
    #[error("{url}: wrong SHA-256 (expected {expected}, got {actual}); the download was not kept")]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{url}: not a usable MSG-Net model, so the download was not kept: {error}")]
    NotModel { url: String, error: Box<ModelError> },
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{url}: cancelled")]
    Cancelled { url: String },
    #[error("{url}: not tried, because {host} could not be reached for an earlier file")]
    Skipped { url: String, host: String },
}

fn reason_suffix(status: u16) -> String {
    ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" {r}"))
        .unwrap_or_default()
}

impl FetchError {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        FetchError::Io {
            path: path.into(),
            error,
        }
    }

    /// Worth another attempt after a pause: connection trouble, stalls, cut-off bodies and the
    /// server's temporary failures (408, 429, 5xx). Not 404 and the like, nor a wrong file.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            FetchError::Timeout { .. }
            | FetchError::Unreachable { .. }
            | FetchError::Network { .. }
            | FetchError::Truncated { .. } => true,
            _ => false,
        }
    }

    /// The server (or the proxy) could not be reached at all: the files after this one from the
    /// same host are not tried.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, FetchError::Unreachable { .. })
    }

    /// What the user can do about it, in one sentence.
    pub fn hint(&self) -> &'static str {
        match self {
            FetchError::Status { status: 404, .. } => {
                "the file is not at that address: check --mirror (it must have \
                 releases/download/v0.1/21styles.model and raw/75d2560/experiments/images/21styles/)"
            }
            FetchError::Status { status, .. } if *status >= 500 => {
                "the server failed: try again later, or use --mirror"
            }
            FetchError::Status { .. } | FetchError::Request { .. } => {
                "check the URL (--mirror) and your proxy settings"
            }
            FetchError::Timeout { .. } => {
                "the server or the network stalled: check your connection or proxy, \
                 try a longer --timeout, or use --mirror"
            }
            FetchError::Unreachable { .. }
            | FetchError::Network { .. }
            | FetchError::Truncated { .. }
            | FetchError::Skipped { .. } => {
                "check your connection or proxy (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY), \
                 or use --mirror"
            }
            FetchError::TooLarge { .. }
            | FetchError::Checksum { .. }
            | FetchError::NotModel { .. } => {
                "the server sent a different file: try again later, or use another --mirror"
            }
            FetchError::Io { .. } => {
                "check that the data dir is writable and has free space, or pick another \
                 with --data-dir or STYLECAM_DATA_DIR"
            }
            FetchError::Cancelled { .. } => "run the fetch again to finish it",
        }
    }
}
