//! Which weights and styles a command uses when the user names none, and what to say when
//! there are none.
//!
//! Without `--model`, stylecam runs on its own weights and style pack (`models/`, compiled into
//! the binary): all 21 styles work offline. `--model FILE` (for example the original
//! `21styles.model`, which `stylecam fetch` downloads) takes its styles from image files:
//! `--styles DIR`, else the data dir's `styles/21styles`.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use candle_core::{DType, Device};

use crate::model::{self, LoadedModel};
use crate::paths::DataDir;
use crate::style::pack::StylePack;
use crate::style::{BankError, StyleBank, TargetCache};

/// stylecam's own MSG-Net weights (issue #5), compiled in.
pub const BUILTIN_MODEL: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/models/stylecam21.safetensors"
));
/// The targets and swatches of the 21 styles for [`BUILTIN_MODEL`], compiled in.
pub const BUILTIN_STYLES: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/models/stylecam21-styles.safetensors"
));
/// How the built-in weights are named in messages.
pub const BUILTIN_NAME: &str = "stylecam's built-in weights (models/stylecam21.safetensors)";

/// Weights with the styles that go with them.
pub struct Assets {
    pub model: LoadedModel,
    /// Where the weights came from, for messages.
    pub model_name: String,
    pub bank: StyleBank,
    /// Targets for the bank's packed styles (built-in weights only).
    pub pack: Option<Arc<StylePack>>,
    pub data: DataDir,
}

impl Assets {
    /// A target cache for these weights: packed styles from the pack, images through the
    /// encoder with the data dir's disk cache.
    pub fn target_cache(&self) -> TargetCache {
        let cache = TargetCache::new(&self.model.sha256, Some(self.data.target_cache()));
        match &self.pack {
            Some(p) => cache.with_pack(p.clone()),
            None => cache,
        }
    }
}

/// Loads the weights (`model`, else the built-in ones) and their styles (`styles`, else the
/// built-in pack, else the data dir's style images). `need_bank`: fail if there are no styles at
/// all (rather than leave it to style paths given by the user).
pub fn load(
    model: Option<&Path>,
    styles: Option<&Path>,
    data: DataDir,
    device: &Device,
    need_bank: bool,
) -> Result<Assets> {
    let (model, model_name, pack) = match model {
        Some(p) => {
            let m = model::load(p, device, DType::F32)
                .with_context(|| format!("loading the weights {}", p.display()))?;
            (m, p.display().to_string(), None)
        }
        None => {
            let m = model::load_bytes(BUILTIN_MODEL, BUILTIN_NAME, device, DType::F32)?;
            let pack = StylePack::from_bytes(BUILTIN_STYLES, "models/stylecam21-styles")?;
            (m, BUILTIN_NAME.to_owned(), Some(Arc::new(pack)))
        }
    };
    let bank = match (styles, &pack) {
        (Some(dir), _) => StyleBank::from_dir(dir)?,
        (None, Some(pack)) => StyleBank::from_pack(pack),
        (None, None) => match StyleBank::from_dir(&data.styles()) {
            Ok(b) => b,
            Err(BankError::NoFolder(_)) if !need_bank => StyleBank::default(),
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "{e}\n{}",
                    missing_styles_message(&data, &model_name)
                ))
            }
        },
    };
    Ok(Assets {
        model,
        model_name,
        bank,
        pack,
        data,
    })
}

/// What a user with their own weights and no style images is told.
pub fn missing_styles_message(data: &DataDir, model: &str) -> String {
    format!(
        "{model} needs style images: run `stylecam fetch` to download the reference's 21 \
         styles into {}, pass --styles DIR with a folder of images, or give --style the path of \
         any image. Without --model, stylecam uses its built-in weights and styles, which need \
         no download.",
        data.styles().display()
    )
}
