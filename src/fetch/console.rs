//! Fetch progress for a terminal: a bar per file on stderr (hidden when stderr is not a
//! terminal), one line per file on stdout, retries and the failure summary on stderr.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::{http, run, Event, FetchError, ItemReport, Options, Outcome, Report, Source};
use crate::paths::DataDir;

/// Turns [`Event`]s into bars and lines. `Console::default()` then `|e| console.event(e)`.
#[derive(Default)]
pub struct Console {
    bar: Option<ProgressBar>,
}

impl Console {
    pub fn event(&mut self, e: Event<'_>) {
        match e {
            Event::Present { .. } | Event::Verifying { .. } => {}
            Event::Started {
                name, from, total, ..
            } => {
                if let Some(old) = self.bar.take() {
                    old.finish_and_clear();
                }
                self.bar = Some(new_bar(name, from, total));
            }
            Event::Progress { done, .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_position(done);
                }
            }
            Event::Retrying {
                name,
                reason,
                retry,
                retries,
                delay,
            } => {
                let line = format!(
                    "  {name}: {reason}; retry {retry} of {retries} in {:.1} s",
                    delay.as_secs_f64()
                );
                match &self.bar {
                    Some(bar) => bar.suspend(|| eprintln!("{line}")),
                    None => eprintln!("{line}"),
                }
            }
            Event::Finished(item) => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                print_item(item);
            }
        }
    }
}

fn new_bar(name: &str, from: u64, total: Option<u64>) -> ProgressBar {
    let bar = match total {
        Some(t) => {
            let bar = ProgressBar::new(t);
            if let Ok(style) = ProgressStyle::default_bar()
                .template("  {msg:<36} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) =
                ProgressStyle::default_spinner().template("  {spinner} {bytes:>10} {wide_msg}")
            {
                bar.set_style(style);
            }
            bar
        }
    };
    bar.set_message(name.to_string());
    bar.set_position(from);
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn print_item(item: &ItemReport) {
    let name = item.asset.name;
    match &item.outcome {
        Outcome::Present { model } => {
            println!("  present     {name}");
            if let Some(m) = model {
                print_model(m);
            }
        }
        Outcome::Downloaded {
            bytes,
            replaced,
            model,
            ..
        } => {
            let again = if *replaced {
                " (replaced an invalid copy)"
            } else {
                ""
            };
            match model {
                Some(m) => {
                    println!("  downloaded  {name}  {bytes} bytes{again}, loads as MSG-Net");
                    print_model(m);
                }
                None => println!("  downloaded  {name}  {bytes} bytes{again}, SHA-256 ok"),
            }
        }
        Outcome::Failed(FetchError::Skipped { host, .. }) => {
            println!("  not tried   {name}: {host} could not be reached")
        }
        Outcome::Failed(e) => println!("  FAILED      {name}: {e}"),
    }
}

fn print_model(m: &super::ModelInfo) {
    println!(
        "              {}, ngf {}, {} blocks",
        m.format, m.ngf, m.blocks
    );
    let note = if m.newly_recorded {
        "recorded in"
    } else {
        "matches"
    };
    println!(
        "              sha256 {}  ({note} {})",
        m.sha256,
        m.record.display()
    );
}

/// Runs [`run`] with [`Console`] output, a header naming the data dir, the source and any
/// proxy, and a closing summary (failures on stderr, each with what to do).
pub fn run_console(dir: &DataDir, options: &Options) -> Report {
    println!("fetching into {}", dir.root().display());
    let probe = super::assets(dir, options.only)
        .first()
        .map(|a| options.source.url(a));
    match &options.source {
        Source::GitHub => println!("  from GitHub ({})", super::REFERENCE_REPO),
        Source::Mirror(base) => println!("  from the mirror {base}"),
    }
    if let Some(vars) = http::unusable_proxy_vars() {
        eprintln!(
            "warning: {vars} set, but not to a proxy URL (like http://host:3128 or \
             socks5://host:1080): connecting directly"
        );
    }
    if let Some(proxy) = probe.as_deref().and_then(http::proxy_for) {
        println!("  through the {proxy} (from the proxy environment variables)");
    }
    let mut console = Console::default();
    let report = run(dir, options, &mut |e| console.event(e));
    print_summary(&report);
    report
}

/// The closing lines: what happened, and on failure each file with its reason and a hint.
pub fn print_summary(report: &Report) {
    let total = report.items.len();
    let downloaded = report.downloaded();
    let failed: Vec<_> = report.failures().collect();
    if failed.is_empty() {
        if downloaded == 0 {
            println!(
                "nothing to download: {} present and valid",
                files(total, "the file is", "all {} files are")
            );
        } else {
            println!(
                "done: downloaded {downloaded} of {}; all present and valid",
                files(total, "1 file", "{} files")
            );
        }
        return;
    }
    eprintln!(
        "{} of {} failed:",
        failed.len(),
        files(total, "1 file", "{} files")
    );
    let mut hints: Vec<&str> = Vec::new();
    // Files not tried because their host was unreachable: one line per host.
    let mut skipped: Vec<(&str, Vec<&str>)> = Vec::new();
    for (item, e) in &failed {
        if !hints.contains(&e.hint()) {
            hints.push(e.hint());
        }
        if let FetchError::Skipped { host, .. } = e {
            match skipped.iter_mut().find(|(h, _)| h == host) {
                Some((_, names)) => names.push(item.asset.name),
                None => skipped.push((host, vec![item.asset.name])),
            }
            continue;
        }
        eprintln!("  {}: {e}", item.asset.name);
    }
    for (host, names) in skipped {
        let which = match names.as_slice() {
            [one] => one.to_string(),
            [first, rest @ ..] => format!("{first} and {} more", rest.len()),
            [] => continue,
        };
        eprintln!("  {which}: not tried, because {host} could not be reached for an earlier file");
    }
    for h in hints {
        eprintln!("what to do: {h}");
    }
}

/// `one` for 1, else `many` with `{}` replaced by `n`.
pub(crate) fn files(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        one.to_string()
    } else {
        many.replace("{}", &n.to_string())
    }
}
