//! `stylecam fetch`: the first-run assets (the pretrained `21styles.model` and the 21 style
//! images) into the data dir, checked, written atomically.
//!
//! - [`status`] says what is present and valid (hashes the images, loads the model);
//!   [`missing`] only looks for the files.
//! - [`run`] downloads what is missing or invalid, reporting [`Event`]s to a callback, and
//!   returns a [`Report`]; [`run_console`] does the same with progress bars on stderr and one
//!   line per file on stdout.
//!
//! Each download goes to `NAME.part` beside its destination, resumes with an HTTP `Range`
//! request after a cut-off response, is checked (pinned SHA-256 for the images; for the model,
//! loading it on the CPU), synced, and renamed into place. The `.part` file is removed whatever
//! happens. The model's SHA-256 is recorded in `21styles.model.sha256`.

mod check;
mod console;
mod error;
mod http;
mod manifest;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

pub use check::{sha256_hex, ModelInfo};
pub use console::{print_summary, run_console, Console};

/// "1 file" or "N files".
pub fn console_files(n: usize) -> String {
    console::files(n, "1 file", "{} files")
}
pub use error::FetchError;
pub use http::{proxy_for, unusable_proxy_vars, MAX_BYTES};
pub use manifest::{
    assets, model_record, Asset, Kind, Only, Source, COMMIT, REFERENCE_REPO, RELEASE, STYLE_IMAGES,
};

use crate::paths::DataDir;

/// How to fetch.
#[derive(Debug, Clone)]
pub struct Options {
    pub source: Source,
    pub only: Only,
    /// Download even files that are present and valid.
    pub force: bool,
    /// Limit for connecting and for each wait on the server (see `Client::new`).
    pub timeout: Duration,
    /// Further attempts per file after a retryable failure.
    pub retries: u32,
    /// The pause before the first retry; it doubles for each further one.
    pub retry_delay: Duration,
    /// Set it to stop between chunks (a live app's cancel button).
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            source: Source::GitHub,
            only: Only::All,
            force: false,
            timeout: Duration::from_secs(30),
            retries: 4,
            retry_delay: Duration::from_millis(500),
            cancel: None,
        }
    }
}

/// What [`run`] reports while it works.
#[derive(Debug)]
pub enum Event<'a> {
    /// The file is present and valid: nothing to download.
    Present { name: &'static str },
    /// A download attempt got its answer; `from` bytes were already there (a resume).
    Started {
        name: &'static str,
        url: String,
        attempt: u32,
        from: u64,
        total: Option<u64>,
    },
    /// `done` bytes of `total` are in the partial file.
    Progress {
        name: &'static str,
        done: u64,
        total: Option<u64>,
    },
    /// An attempt failed; retry number `retry` of `retries` starts after `delay`.
    Retrying {
        name: &'static str,
        reason: String,
        retry: u32,
        retries: u32,
        delay: Duration,
    },
    /// The download is complete and is being checked.
    Verifying { name: &'static str },
    /// The file is done, one way or the other (the entry [`Report`] will hold).
    Finished(&'a ItemReport),
}

/// How one file ended.
#[derive(Debug)]
pub enum Outcome {
    /// Present and valid before the run; nothing was downloaded. For the model, `recorded` in
    /// its [`ModelInfo`] says whether this run wrote the missing SHA-256 record.
    Present {
        model: Option<ModelInfo>,
    },
    /// Downloaded and checked. `replaced` when an invalid file was there before.
    Downloaded {
        bytes: u64,
        sha256: String,
        replaced: bool,
        model: Option<ModelInfo>,
    },
    Failed(FetchError),
}

/// One file of a run.
#[derive(Debug)]
pub struct ItemReport {
    pub asset: Asset,
    pub url: String,
    pub outcome: Outcome,
}

/// Everything a run did, in order (the model first).
#[derive(Debug, Default)]
pub struct Report {
    pub items: Vec<ItemReport>,
}

impl Report {
    pub fn failures(&self) -> impl Iterator<Item = (&ItemReport, &FetchError)> {
        self.items.iter().filter_map(|i| match &i.outcome {
            Outcome::Failed(e) => Some((i, e)),
            _ => None,
        })
    }

    pub fn is_ok(&self) -> bool {
        self.failures().next().is_none()
    }

    /// How many files were downloaded.
    pub fn downloaded(&self) -> usize {
        self.items
            .iter()
            .filter(|i| matches!(i.outcome, Outcome::Downloaded { .. }))
            .count()
    }
}

/// A file's state on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Missing,
    Valid,
    /// Present but unusable; says why.
    Invalid(String),
}

/// What the data dir holds.
#[derive(Debug, Clone)]
pub struct Status {
    pub entries: Vec<(Asset, State)>,
}

impl Status {
    /// Every file is present and valid.
    pub fn is_complete(&self) -> bool {
        self.entries.iter().all(|(_, s)| *s == State::Valid)
    }

    /// The model is present and valid.
    pub fn model_ready(&self) -> bool {
        self.entries
            .iter()
            .any(|(a, s)| a.kind == Kind::Model && *s == State::Valid)
    }

    /// The files a fetch would download.
    pub fn needed(&self) -> impl Iterator<Item = &(Asset, State)> {
        self.entries.iter().filter(|(_, s)| *s != State::Valid)
    }
}

/// Checks every file: the images' pinned SHA-256, the model's recorded SHA-256 (when there is
/// a record) and that it loads. Reads about 16 MB; writes nothing.
pub fn status(dir: &DataDir) -> Status {
    let entries = assets(dir, Only::All)
        .into_iter()
        .map(|a| {
            let state = match check::present(&a) {
                check::Present::Missing => State::Missing,
                check::Present::Valid(_) => State::Valid,
                check::Present::Invalid(why) => State::Invalid(why),
            };
            (a, state)
        })
        .collect();
    Status { entries }
}

/// The paths of the files that are not there at all (no checking; cheap enough for every start).
pub fn missing(dir: &DataDir) -> Vec<PathBuf> {
    assets(dir, Only::All)
        .into_iter()
        .map(|a| a.path)
        .filter(|p| !p.is_file())
        .collect()
}

/// Fetches what `options` selects into `dir`, calling `on_event` as it goes. Never panics; every
/// failure is in the report, and no partial file is left behind.
pub fn run(dir: &DataDir, options: &Options, on_event: &mut dyn FnMut(Event<'_>)) -> Report {
    let client = http::Client::new(options.timeout);
    let mut unreachable: HashMap<String, String> = HashMap::new();
    let mut report = Report::default();
    for asset in assets(dir, options.only) {
        let url = options.source.url(&asset);
        let outcome = fetch_one(&client, &asset, &url, options, &mut unreachable, on_event);
        let item = ItemReport {
            asset,
            url,
            outcome,
        };
        on_event(Event::Finished(&item));
        report.items.push(item);
    }
    report
}

fn fetch_one(
    client: &http::Client,
    asset: &Asset,
    url: &str,
    options: &Options,
    unreachable: &mut HashMap<String, String>,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Outcome {
    let mut replaced = false;
    if !options.force {
        match check::present(asset) {
            check::Present::Valid(model) => {
                let model = match model.map(check::record_if_missing).transpose() {
                    Ok(m) => m,
                    Err(e) => return Outcome::Failed(e),
                };
                on_event(Event::Present { name: asset.name });
                return Outcome::Present { model };
            }
            check::Present::Invalid(_) => replaced = true,
            check::Present::Missing => {}
        }
    }
    let host = http::host_of(url);
    if unreachable.contains_key(&host) {
        return Outcome::Failed(FetchError::Skipped {
            url: url.to_string(),
            host,
        });
    }
    match download(client, asset, url, options, on_event) {
        Ok((bytes, sha256, model)) => Outcome::Downloaded {
            bytes,
            sha256,
            replaced,
            model,
        },
        Err(e) => {
            if e.is_unreachable() {
                unreachable.insert(host, e.to_string());
            }
            Outcome::Failed(e)
        }
    }
}

/// Removes the partial file however the download ends.
pub(crate) struct PartFile(pub PathBuf);

impl Drop for PartFile {
    fn drop(&mut self) {
        std::fs::remove_file(&self.0).ok();
    }
}

pub(crate) fn part_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(".part");
    PathBuf::from(name)
}

fn download(
    client: &http::Client,
    asset: &Asset,
    url: &str,
    options: &Options,
    on_event: &mut dyn FnMut(Event<'_>),
) -> Result<(u64, String, Option<ModelInfo>), FetchError> {
    let dir = asset.path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| FetchError::io(dir, e))?;
    let part = PartFile(part_path(&asset.path));
    // A `.part` left by an interrupted earlier run is not trusted: start clean.
    match std::fs::remove_file(&part.0) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(FetchError::io(&part.0, e)),
    }
    let policy = http::Policy {
        retries: options.retries,
        first_delay: options.retry_delay,
    };
    let mut ctx = http::Ctx {
        name: asset.name,
        cancel: options.cancel.as_deref(),
        on_event,
    };
    let mut clean_retry = true;
    let (bytes, sha256, model) = loop {
        let got = client.download(url, &part.0, policy, &mut ctx)?;
        (ctx.on_event)(Event::Verifying { name: asset.name });
        match check::downloaded(asset, url, &part.0) {
            Ok(v) => break v,
            // A resumed download may have glued two different versions together: once more
            // from scratch before blaming the server.
            Err(FetchError::Checksum { .. } | FetchError::NotModel { .. })
                if got.resumed && clean_retry =>
            {
                clean_retry = false;
                std::fs::remove_file(&part.0).map_err(|e| FetchError::io(&part.0, e))?;
            }
            Err(e) => return Err(e),
        }
    };
    check::rename_into_place(&part.0, &asset.path)?;
    let model = match model {
        Some(m) => Some(check::record(m)?),
        None => None,
    };
    Ok((bytes, sha256, model))
}
