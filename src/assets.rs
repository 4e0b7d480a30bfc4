//! Which weights and styles a command uses when the user names none, and what to say when
//! there are none yet.

use std::path::PathBuf;

use anyhow::{Context, Result};
use candle_core::{DType, Device};

use crate::model::{self, LoadedModel};
use crate::paths::DataDir;

/// The flags every command that runs the network shares.
#[derive(Debug, Clone, clap::Args)]
pub struct AssetArgs {
    /// Weights: the original 21styles.model, a .pth, or a .safetensors file. Default: the
    /// original weights in the data dir (`stylecam fetch` downloads them).
    #[arg(long, value_parser = crate::cli::existing_file)]
    pub model: Option<PathBuf>,
    /// A folder of style images, named by file stem. Default: the 21 styles in the data dir.
    #[arg(long, value_name = "DIR")]
    pub styles: Option<PathBuf>,
    /// Where downloads and the style-target cache live (also STYLECAM_DATA_DIR). Default: the
    /// platform's data dir, e.g. ~/.local/share/stylecam.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl AssetArgs {
    pub fn data_dir(&self) -> Result<DataDir> {
        Ok(DataDir::resolve(self.data_dir.as_deref())?)
    }

    /// The style folder: `--styles`, else the data dir's.
    pub fn styles_dir(&self, data: &DataDir) -> Option<PathBuf> {
        Some(self.styles.clone().unwrap_or_else(|| data.styles()))
    }

    /// The weights named by `--model`, else the data dir's original weights; with neither, an
    /// error that says how to get them.
    pub fn load_model(&self, data: &DataDir, device: &Device) -> Result<LoadedModel> {
        let path = match &self.model {
            Some(p) => p.clone(),
            None => {
                let p = data.original_model();
                if !p.is_file() {
                    anyhow::bail!(first_run_message(data));
                }
                p
            }
        };
        model::load(&path, device, DType::F32)
            .with_context(|| format!("loading the weights {}", path.display()))
    }
}

/// What a new user is told when no weights are there yet.
pub fn first_run_message(data: &DataDir) -> String {
    format!(
        "no weights found: {} is missing.\n\
         Run `stylecam fetch` to download the original 21styles.model and its 21 style images \
         into {} (pass --data-dir DIR or set STYLECAM_DATA_DIR to put them elsewhere), or pass \
         --model FILE.",
        data.original_model().display(),
        data.root().display()
    )
}
