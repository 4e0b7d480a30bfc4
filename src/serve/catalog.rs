//! The styles as the HTTP API shows them: the server's own (the built-in pack or `--styles`)
//! and pictures uploaded while it runs, each with a swatch.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};

use axum::http::StatusCode;
use bytes::Bytes;
use image::RgbImage;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Serialize;

use super::error::ApiError;
use super::picture;
use crate::style::StyleBank;

/// The longer side of a swatch, in pixels.
pub const SWATCH_SIZE: u32 = 128;
/// What a style name keeps unescaped in a URL path: letters, digits, `-` and `_` (a dot is
/// escaped, so that a style named `..` cannot look like a parent folder).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_');
/// The longest uploaded style name.
pub const MAX_NAME: usize = 40;

/// Where a swatch comes from.
pub enum SwatchSource {
    /// A picture in memory (the built-in styles' own renderings, uploads).
    Image(RgbImage),
    /// A style image of the server's own folder, read when first asked for.
    File(PathBuf),
    None,
}

pub struct Entry {
    pub name: String,
    /// The server's own style (not uploaded).
    pub builtin: bool,
    source: SwatchSource,
    png: OnceLock<Option<Bytes>>,
}

impl Entry {
    pub fn new(name: String, builtin: bool, source: SwatchSource) -> Self {
        Self {
            name,
            builtin,
            source,
            png: OnceLock::new(),
        }
    }

    /// The swatch as PNG, made on first use (this may decode a file: call it off the async
    /// threads).
    pub fn swatch_png(&self) -> Option<Bytes> {
        self.png
            .get_or_init(|| {
                let img = match &self.source {
                    SwatchSource::Image(img) => img.clone(),
                    SwatchSource::File(p) => match crate::image_io::load_rgb(p) {
                        Ok(img) => img,
                        Err(e) => {
                            tracing::warn!("swatch of `{}`: {e}", self.name);
                            return None;
                        }
                    },
                    SwatchSource::None => return None,
                };
                picture::thumbnail(&img, SWATCH_SIZE).ok().map(Bytes::from)
            })
            .clone()
    }

    pub fn swatch_url(&self) -> String {
        format!(
            "/api/styles/{}/swatch.png",
            utf8_percent_encode(&self.name, PATH_SEGMENT)
        )
    }
}

/// One style in `GET /api/styles`.
#[derive(Debug, Serialize)]
pub struct StyleView {
    pub name: String,
    pub builtin: bool,
    pub swatch: String,
}

pub struct Catalog {
    entries: RwLock<Vec<Arc<Entry>>>,
    max_uploads: usize,
}

impl Catalog {
    /// The bank's styles, with swatches from `swatch` (by style name).
    pub fn new(
        bank: &StyleBank,
        swatch: impl Fn(&str) -> Option<RgbImage>,
        max_uploads: usize,
    ) -> Self {
        let entries = bank
            .styles()
            .iter()
            .map(|s| {
                let source = match (s.image(), swatch(&s.name)) {
                    (Some(p), _) => SwatchSource::File(p.to_path_buf()),
                    (None, Some(img)) => SwatchSource::Image(img),
                    (None, None) => SwatchSource::None,
                };
                Arc::new(Entry::new(s.name.clone(), true, source))
            })
            .collect();
        Self {
            entries: RwLock::new(entries),
            max_uploads,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Entry>>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn names(&self) -> Vec<String> {
        self.read().iter().map(|e| e.name.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    pub fn views(&self) -> Vec<StyleView> {
        self.read()
            .iter()
            .map(|e| StyleView {
                name: e.name.clone(),
                builtin: e.builtin,
                swatch: e.swatch_url(),
            })
            .collect()
    }

    /// A style by its exact name.
    pub fn get(&self, name: &str) -> Option<Arc<Entry>> {
        self.read().iter().find(|e| e.name == name).cloned()
    }

    /// Whether `name` may be given to an upload now: a valid name, not taken (ignoring case,
    /// as style names are looked up), and room left.
    pub fn check_upload(&self, name: &str) -> Result<(), ApiError> {
        check_name(name)?;
        let entries = self.read();
        if let Some(e) = entries.iter().find(|e| e.name.eq_ignore_ascii_case(name)) {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "name_taken",
                format!(
                    "there is a style named `{}` already; pick another name",
                    e.name
                ),
            ));
        }
        let uploads = entries.iter().filter(|e| !e.builtin).count();
        if uploads >= self.max_uploads {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "too_many_styles",
                format!(
                    "this server holds {uploads} uploaded styles, the most it keeps \
                     (--max-styles); restart it to start afresh"
                ),
            ));
        }
        Ok(())
    }

    /// Adds an uploaded style (after [`Catalog::check_upload`], under the caller's upload lock).
    pub fn add_upload(&self, name: String, swatch: RgbImage) -> Arc<Entry> {
        let e = Arc::new(Entry::new(name, false, SwatchSource::Image(swatch)));
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(e.clone());
        e
    }
}

/// Upload names: 1 to 40 ASCII letters, digits, `-` and `_`, starting with a letter or digit.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(
            "bad_name",
            format!(
                "`{}` cannot name a style: use 1 to {MAX_NAME} letters, digits, - and _, \
                 starting with a letter or digit",
                name.chars().take(60).collect::<String>()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_words() {
        for ok in ["starry", "my-style_2", "A"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../etc/passwd",
            "a/b",
            "-x",
            "two words",
            &"x".repeat(41),
        ] {
            assert_eq!(check_name(bad).unwrap_err().kind, "bad_name", "{bad}");
        }
    }

    #[test]
    fn uploads_are_bounded_and_names_unique() {
        let c = Catalog {
            entries: RwLock::new(vec![Arc::new(Entry::new(
                "candy".into(),
                true,
                SwatchSource::None,
            ))]),
            max_uploads: 1,
        };
        assert_eq!(c.check_upload("Candy").unwrap_err().kind, "name_taken");
        c.check_upload("mine").unwrap();
        c.add_upload("mine".into(), RgbImage::new(4, 4));
        let e = c.check_upload("other").unwrap_err();
        assert_eq!((e.status.as_u16(), e.kind), (409, "too_many_styles"));
        assert_eq!(c.names(), ["candy", "mine"]);
        assert!(c.get("mine").unwrap().swatch_png().is_some());
        assert!(c.get("candy").unwrap().swatch_png().is_none());
        assert_eq!(
            c.get("mine").unwrap().swatch_url(),
            "/api/styles/mine/swatch.png"
        );
    }
}
