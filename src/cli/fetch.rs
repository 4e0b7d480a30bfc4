//! `stylecam fetch`: downloads the pretrained model and the 21 style images into the data dir.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::fetch::{self, Only, Options, Source, State};
use crate::paths::DataDir;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to put the files; default: $STYLECAM_DATA_DIR, else the platform's data dir.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Download from a mirror instead of GitHub: BASE_URL/releases/download/v0.1/21styles.model
    /// and BASE_URL/raw/75d2560/experiments/images/21styles/NAME.
    #[arg(long, value_name = "BASE_URL", value_parser = mirror_url)]
    pub mirror: Option<String>,
    /// Fetch only the model or only the style images.
    #[arg(long, value_enum)]
    pub only: Option<Which>,
    /// Download again even the files that are present and valid.
    #[arg(long)]
    pub force: bool,
    /// Seconds to wait for a connection, or for more data, before an attempt fails.
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
    /// Further attempts per file after a connection error, a stall, a cut-off download or a
    /// 5xx answer (waiting 0.5 s, 1 s, 2 s, ... between them).
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(0..=20))]
    pub retries: u32,
    /// Only check what is present (hashes, model structure); download nothing.
    #[arg(long, conflicts_with_all = ["force", "mirror"])]
    pub check: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Which {
    Model,
    Styles,
}

fn mirror_url(s: &str) -> std::result::Result<String, String> {
    let ok = s.starts_with("http://") || s.starts_with("https://");
    if !ok || s.parse::<ureq::http::Uri>().is_err() {
        return Err(format!(
            "`{s}` is not an http:// or https:// URL; give the mirror's base, e.g. \
             https://example.org/PyTorch-Multi-Style-Transfer"
        ));
    }
    Ok(s.to_string())
}

pub fn run(a: Args) -> Result<()> {
    let dir = DataDir::resolve(a.data_dir.as_deref())?;
    let only = match a.only {
        None => Only::All,
        Some(Which::Model) => Only::Model,
        Some(Which::Styles) => Only::Styles,
    };
    if a.check {
        return check(&dir, only);
    }
    let options = Options {
        source: a.mirror.as_deref().map_or(Source::GitHub, Source::mirror),
        only,
        force: a.force,
        timeout: Duration::from_secs(a.timeout),
        retries: a.retries,
        ..Options::default()
    };
    let report = fetch::run_console(&dir, &options);
    let failed = report.failures().count();
    if failed > 0 {
        bail!(
            "{failed} of {} could not be fetched into {}",
            fetch::console_files(report.items.len()),
            dir.root().display()
        );
    }
    Ok(())
}

fn check(dir: &DataDir, only: Only) -> Result<()> {
    let status = fetch::status(dir);
    let wanted = fetch::assets(dir, only);
    let mut bad = 0;
    for (asset, state) in status.entries.iter().filter(|(a, _)| wanted.contains(a)) {
        match state {
            State::Valid => println!("  ok       {}", asset.name),
            State::Missing => {
                bad += 1;
                println!("  missing  {}", asset.path.display());
            }
            State::Invalid(why) => {
                bad += 1;
                println!("  invalid  {}: {why}", asset.path.display());
            }
        }
    }
    if bad > 0 {
        bail!(
            "{bad} of {} in {} are missing or invalid; run `stylecam fetch` to download them",
            fetch::console_files(wanted.len()),
            dir.root().display()
        );
    }
    let n = wanted.len();
    if n == 1 {
        println!("the file is present and valid");
    } else {
        println!("all {n} files are present and valid");
    }
    Ok(())
}
