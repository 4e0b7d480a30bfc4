//! Where stylecam keeps its files.
//!
//! - The **data dir** holds what `stylecam fetch` downloads (`models/21styles.model`,
//!   `styles/21styles/*.jpg`) and the style-target cache (`cache/targets/`). `--data-dir DIR`
//!   beats `STYLECAM_DATA_DIR`, which beats the platform's data dir
//!   (`~/.local/share/stylecam` on Linux, `~/Library/Application Support/stylecam` on macOS,
//!   `%APPDATA%\stylecam\data` on Windows).
//! - The **config dir** holds the live window's settings; `STYLECAM_CONFIG_DIR` replaces it.
//! - Snapshots go to the platform's pictures dir plus `stylecam` unless `--snapshot-dir` says
//!   otherwise.

use std::path::{Path, PathBuf};

/// Environment variable that replaces the platform data dir.
pub const DATA_DIR_ENV: &str = "STYLECAM_DATA_DIR";
/// Environment variable that replaces the platform config dir.
pub const CONFIG_DIR_ENV: &str = "STYLECAM_CONFIG_DIR";

/// The file name of the original pretrained weights inside `models/`.
pub const ORIGINAL_MODEL: &str = "21styles.model";

#[derive(Debug, thiserror::Error)]
#[error(
    "cannot tell where to keep stylecam's data: this system reports no home or data directory; \
     pass --data-dir DIR or set {DATA_DIR_ENV}"
)]
pub struct NoDataDir;

fn project() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "stylecam")
}

fn from_env(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The data dir and the paths inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// `flag` (from `--data-dir`) if given, else `STYLECAM_DATA_DIR`, else the platform's.
    pub fn resolve(flag: Option<&Path>) -> Result<Self, NoDataDir> {
        let root = match flag {
            Some(p) => p.to_path_buf(),
            None => match from_env(DATA_DIR_ENV) {
                Some(p) => p,
                None => project().ok_or(NoDataDir)?.data_dir().to_path_buf(),
            },
        };
        Ok(Self { root })
    }

    /// A data dir at an explicit place (tests, embedding).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `fetch` puts the original pretrained weights.
    pub fn original_model(&self) -> PathBuf {
        self.root.join("models").join(ORIGINAL_MODEL)
    }

    /// Where `fetch` puts the 21 style images; also the default `--styles` folder.
    pub fn styles(&self) -> PathBuf {
        self.root.join("styles").join("21styles")
    }

    /// The on-disk cache of style targets.
    pub fn target_cache(&self) -> PathBuf {
        self.root.join("cache").join("targets")
    }
}

/// Where settings live: `STYLECAM_CONFIG_DIR`, else the platform config dir.
pub fn config_dir() -> Option<PathBuf> {
    from_env(CONFIG_DIR_ENV).or_else(|| project().map(|p| p.config_dir().to_path_buf()))
}

/// The default snapshot folder: the pictures dir (or home) plus `stylecam`.
pub fn default_snapshot_dir() -> Option<PathBuf> {
    let user = directories::UserDirs::new()?;
    let base = user
        .picture_dir()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| user.home_dir().to_path_buf());
    Some(base.join("stylecam"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_and_names_the_layout() {
        let d = DataDir::resolve(Some(Path::new("/x/data"))).unwrap();
        assert_eq!(
            d.original_model(),
            Path::new("/x/data/models/21styles.model")
        );
        assert_eq!(d.styles(), Path::new("/x/data/styles/21styles"));
        assert_eq!(d.target_cache(), Path::new("/x/data/cache/targets"));
    }
}
