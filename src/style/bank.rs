//! The style bank: style images in a folder, named by file stem, and the Inspiration targets
//! computed from them, cached in memory and on disk.
//!
//! A target depends on the weights, the image's bytes, the style size and how the image is
//! resized, so the disk cache is keyed by exactly those four: a second run with the same model
//! and styles computes nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Tensor};
use image::RgbImage;
use sha2::{Digest, Sha256};

use super::pack::StylePack;
use crate::image_io::{self, ImageError};
use crate::model::MsgNet;

/// The image extensions the bank picks up from a folder.
pub const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "bmp", "webp", "gif"];

#[derive(Debug, thiserror::Error)]
pub enum BankError {
    #[error(
        "{}: no style folder there; run `stylecam fetch` to download the 21 styles, or pass \
         --styles DIR with a folder of images",
        .0.display()
    )]
    NoFolder(PathBuf),
    #[error("{}: cannot list the style folder: {source}", path.display())]
    List {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}: the style folder has no images ({}); add some, or run `stylecam fetch`",
        .0.display(), IMAGE_EXTENSIONS.join(", ")
    )]
    Empty(PathBuf),
    #[error("no style named `{name}` and no such file; known styles: {known}")]
    Unknown { name: String, known: String },
    #[error("{}: cannot read the style image: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("style `{name}`: {reason}")]
    Pack { name: String, reason: String },
    #[error("computing the style target of {}: {source}", path.display())]
    Target {
        path: PathBuf,
        source: candle_core::Error,
    },
}

/// How a style image is resized before the encoder sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Aspect {
    /// Squashed to SIZE x SIZE, as the reference does.
    #[default]
    Square,
    /// SIZE wide, the height following the image's aspect ratio.
    Keep,
}

impl Aspect {
    pub fn label(self) -> &'static str {
        match self {
            Aspect::Square => "square",
            Aspect::Keep => "keep",
        }
    }

    /// Resizes `img` for a style target of `size`. `Keep` follows the reference's
    /// `keep_asp`: width `size`, height `size * h / w` rounded down (at least 16).
    pub fn resize(self, img: &RgbImage, size: u32) -> RgbImage {
        match self {
            Aspect::Square => image_io::resize_square(img, size),
            Aspect::Keep => {
                let h = (size as u64 * img.height() as u64 / img.width().max(1) as u64) as u32;
                image_io::resize_to(img, size, h.max(16))
            }
        }
    }
}

impl std::str::FromStr for Aspect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "square" => Ok(Aspect::Square),
            "keep" => Ok(Aspect::Keep),
            _ => Err(format!("unknown style aspect `{s}`: use square or keep")),
        }
    }
}

/// Where a style's targets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StyleSource {
    /// An image, through the encoder.
    Image(PathBuf),
    /// Precomputed targets in a [`StylePack`].
    Pack,
    /// A decoded image held in memory (a picture uploaded to `stylecam serve`), through the
    /// encoder; its targets are cached in memory only.
    Memory(StyleImage),
}

/// A style picture in memory, identified by the SHA-256 of its pixels.
#[derive(Clone)]
pub struct StyleImage {
    image: Arc<RgbImage>,
    sha256: String,
}

impl StyleImage {
    pub fn new(image: RgbImage) -> Self {
        let mut h = Sha256::new();
        h.update(image.width().to_le_bytes());
        h.update(image.height().to_le_bytes());
        h.update(image.as_raw());
        Self {
            sha256: crate::hex(&h.finalize()),
            image: Arc::new(image),
        }
    }

    pub fn image(&self) -> &RgbImage {
        &self.image
    }
}

impl PartialEq for StyleImage {
    fn eq(&self, other: &Self) -> bool {
        self.sha256 == other.sha256
    }
}

impl Eq for StyleImage {}

impl std::fmt::Debug for StyleImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "StyleImage({}x{}, {})",
            self.image.width(),
            self.image.height(),
            &self.sha256[..12]
        )
    }
}

/// One style: a name and where its targets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Style {
    pub name: String,
    pub source: StyleSource,
}

impl Style {
    /// A style from any image file, named by its stem.
    pub fn from_path(path: &Path) -> Self {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Self {
            name,
            source: StyleSource::Image(path.to_path_buf()),
        }
    }

    /// The image, for styles that have one.
    pub fn image(&self) -> Option<&Path> {
        match &self.source {
            StyleSource::Image(p) => Some(p),
            StyleSource::Pack | StyleSource::Memory(_) => None,
        }
    }
}

/// Whether the file name has one of [`IMAGE_EXTENSIONS`].
pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The styles of a folder, sorted by name.
#[derive(Debug, Clone, Default)]
pub struct StyleBank {
    styles: Vec<Style>,
}

impl StyleBank {
    /// Every image in `dir` (not recursive), named by file stem, sorted by name.
    pub fn from_dir(dir: &Path) -> Result<Self, BankError> {
        if !dir.is_dir() {
            return Err(BankError::NoFolder(dir.to_path_buf()));
        }
        let list = |source| BankError::List {
            path: dir.to_path_buf(),
            source,
        };
        let mut styles = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(list)? {
            let path = entry.map_err(list)?.path();
            if path.is_file() && is_image(&path) {
                styles.push(Style::from_path(&path));
            }
        }
        if styles.is_empty() {
            return Err(BankError::Empty(dir.to_path_buf()));
        }
        styles.sort_by_key(|s| s.name.to_lowercase());
        Ok(Self { styles })
    }

    /// The styles of a pack, in its order.
    pub fn from_pack(pack: &StylePack) -> Self {
        Self {
            styles: pack
                .styles()
                .iter()
                .map(|name| Style {
                    name: name.clone(),
                    source: StyleSource::Pack,
                })
                .collect(),
        }
    }

    pub fn styles(&self) -> &[Style] {
        &self.styles
    }

    pub fn len(&self) -> usize {
        self.styles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.styles.is_empty()
    }

    /// Adds a style, replacing one of the same name.
    pub fn add(&mut self, style: Style) {
        match self.styles.iter_mut().find(|s| s.name == style.name) {
            Some(s) => *s = style,
            None => self.styles.push(style),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Style> {
        self.styles.iter().find(|s| s.name == name).or_else(|| {
            self.styles
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(name))
        })
    }

    /// A style by name (exact, then ignoring case) or by path to any image.
    pub fn resolve(&self, spec: &str) -> Result<Style, BankError> {
        if let Some(s) = self.get(spec) {
            return Ok(s.clone());
        }
        let path = Path::new(spec);
        if path.is_file() {
            return Ok(Style::from_path(path));
        }
        let known = if self.styles.is_empty() {
            "none (no style folder)".to_owned()
        } else {
            self.styles
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Err(BankError::Unknown {
            name: spec.to_owned(),
            known,
        })
    }
}

/// What identifies a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    image_sha256: String,
    size: u32,
    aspect: Aspect,
}

/// Style targets by (weights, image, size, aspect), in memory and optionally on disk; packed
/// styles come from their pack.
pub struct TargetCache {
    model_sha256: String,
    pack: Option<Arc<StylePack>>,
    disk: Option<PathBuf>,
    memory: HashMap<Key, Tensor>,
    /// Image hashes by path, with the length and mtime they were taken at.
    hashes: HashMap<PathBuf, (u64, Option<std::time::SystemTime>, String)>,
}

impl TargetCache {
    /// `model_sha256` names the weights; `disk` is the cache folder (created on first write),
    /// or `None` to keep targets in memory only.
    pub fn new(model_sha256: &str, disk: Option<PathBuf>) -> Self {
        Self {
            model_sha256: model_sha256.to_owned(),
            pack: None,
            disk,
            memory: HashMap::new(),
            hashes: HashMap::new(),
        }
    }

    /// Serves packed styles from `pack` (which must belong to the same weights).
    pub fn with_pack(mut self, pack: Arc<StylePack>) -> Self {
        self.pack = Some(pack);
        self
    }

    fn image_sha256(&mut self, path: &Path) -> Result<String, BankError> {
        let read = |source| BankError::Read {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        let stamp = (meta.len(), meta.modified().ok());
        if let Some((len, mtime, h)) = self.hashes.get(path) {
            if (*len, *mtime) == stamp {
                return Ok(h.clone());
            }
        }
        let bytes = std::fs::read(path).map_err(read)?;
        let h = crate::hex(&Sha256::digest(&bytes));
        self.hashes
            .insert(path.to_path_buf(), (stamp.0, stamp.1, h.clone()));
        Ok(h)
    }

    fn file_name(&self, key: &Key) -> String {
        format!(
            "{}-{}-{}-{}.safetensors",
            &self.model_sha256[..self.model_sha256.len().min(32)],
            &key.image_sha256[..32],
            key.size,
            key.aspect.label()
        )
    }

    /// The target of `style` at `size`: from its pack, or from memory, then disk, then the
    /// encoder.
    pub fn target(
        &mut self,
        net: &MsgNet,
        style: &Style,
        size: u32,
        aspect: Aspect,
    ) -> Result<Tensor, BankError> {
        match &style.source {
            StyleSource::Image(path) => self.image_target(net, path, size, aspect),
            StyleSource::Memory(img) => {
                let key = Key {
                    image_sha256: img.sha256.clone(),
                    size,
                    aspect,
                };
                if let Some(t) = self.memory.get(&key) {
                    return Ok(t.clone());
                }
                self.encode(net, img.image(), key, Path::new(&style.name))
            }
            StyleSource::Pack => {
                let pack = self.pack.as_ref().ok_or_else(|| BankError::Pack {
                    name: style.name.clone(),
                    reason: "these weights have no style pack".into(),
                })?;
                pack.target(&style.name, size, net.device())
                    .map_err(|e| BankError::Pack {
                        name: style.name.clone(),
                        reason: e.to_string(),
                    })
            }
        }
    }

    /// The target of the image `style` at `size`, from memory, then disk, then the encoder.
    pub fn image_target(
        &mut self,
        net: &MsgNet,
        style: &Path,
        size: u32,
        aspect: Aspect,
    ) -> Result<Tensor, BankError> {
        let key = Key {
            image_sha256: self.image_sha256(style)?,
            size,
            aspect,
        };
        if let Some(t) = self.memory.get(&key) {
            return Ok(t.clone());
        }
        let file = self.disk.as_ref().map(|d| d.join(self.file_name(&key)));
        if let Some(t) = file.as_deref().and_then(|f| read_cached(f, net)) {
            tracing::info!("style target {} at {size}: from the cache", style.display());
            self.memory.insert(key, t.clone());
            return Ok(t);
        }
        let target = self.encode(net, &image_io::load_rgb(style)?, key, style)?;
        if let Some(f) = &file {
            // A cache that cannot be written costs time on the next run, nothing else.
            if let Err(e) = write_cached(f, &target) {
                tracing::warn!("{}: cannot write the style-target cache: {e}", f.display());
            }
        }
        Ok(target)
    }

    /// Runs the encoder on `img` for `key` and keeps the target in memory; `what` names the
    /// style in messages.
    fn encode(
        &mut self,
        net: &MsgNet,
        img: &RgbImage,
        key: Key,
        what: &Path,
    ) -> Result<Tensor, BankError> {
        tracing::info!("style target {} at {}: computing", what.display(), key.size);
        let img = key.aspect.resize(img, key.size);
        let target = image_io::to_tensor(&img, net.device(), DType::F32)
            .and_then(|x| net.style_target(&x))
            .map_err(|source| BankError::Target {
                path: what.to_path_buf(),
                source,
            })?;
        self.memory.insert(key, target.clone());
        Ok(target)
    }
}

const CACHE_TENSOR: &str = "target";

fn read_cached(file: &Path, net: &MsgNet) -> Option<Tensor> {
    if !file.is_file() {
        return None;
    }
    let c = net.config().channels();
    match candle_core::safetensors::load(file, net.device()) {
        Ok(mut m) => match m.remove(CACHE_TENSOR) {
            Some(t) if t.dims() == [1, c, c] => Some(t),
            _ => {
                tracing::warn!("{}: unexpected cache contents, recomputing", file.display());
                None
            }
        },
        Err(e) => {
            tracing::warn!(
                "{}: unreadable cache entry ({e}), recomputing",
                file.display()
            );
            None
        }
    }
}

fn write_cached(file: &Path, target: &Tensor) -> anyhow::Result<()> {
    let dir = file
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no parent folder"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile::Builder::new()
        .prefix(".target-")
        .suffix(".part")
        .tempfile_in(dir)?;
    let t = target
        .to_dtype(DType::F32)?
        .to_device(&candle_core::Device::Cpu)?;
    candle_core::safetensors::save(&HashMap::from([(CACHE_TENSOR, t)]), tmp.path())?;
    tmp.persist(file)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_aspect_follows_the_reference() {
        let img = RgbImage::new(400, 300);
        let r = Aspect::Keep.resize(&img, 512);
        assert_eq!(r.dimensions(), (512, 384));
        assert_eq!(Aspect::Square.resize(&img, 64).dimensions(), (64, 64));
        assert_eq!("keep".parse::<Aspect>(), Ok(Aspect::Keep));
        assert!("wide".parse::<Aspect>().is_err());
    }

    #[test]
    fn bank_lists_images_by_stem_and_resolves_names_and_paths() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["b.png", "A.jpg", "notes.txt"] {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        let bank = StyleBank::from_dir(dir.path()).unwrap();
        let names: Vec<_> = bank.styles().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["A", "b"]);
        assert_eq!(bank.resolve("a").unwrap().name, "A");
        let other = dir.path().join("notes.txt");
        assert_eq!(bank.resolve(other.to_str().unwrap()).unwrap().name, "notes");
        let err = bank.resolve("nope").unwrap_err().to_string();
        assert!(err.contains("`nope`") && err.contains("A, b"), "{err}");
    }

    #[test]
    fn missing_or_empty_folders_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let e = StyleBank::from_dir(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("no images") && e.contains("stylecam fetch"),
            "{e}"
        );
        let e = StyleBank::from_dir(&dir.path().join("x"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("stylecam fetch") && e.contains("--styles"),
            "{e}"
        );
    }
}
