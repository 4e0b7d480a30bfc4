//! What `stylecam fetch` downloads and from where.
//!
//! The model comes from the reference's GitHub release `v0.1`, the style images from the
//! reference repository at commit `75d2560` (`experiments/images/21styles/`). The images'
//! SHA-256 values below were computed from those 21 files (the copies in the project's shared
//! test data, whose git blob hashes match that commit). The model has no published checksum: it
//! is checked by loading it, and its SHA-256 is recorded beside it.

use std::path::PathBuf;

use crate::paths::{DataDir, ORIGINAL_MODEL};

/// The reference repository on GitHub.
pub const REFERENCE_REPO: &str = "zhanghang1989/PyTorch-Multi-Style-Transfer";
/// The release that carries `21styles.model`.
pub const RELEASE: &str = "v0.1";
/// The commit the style images are taken from.
pub const COMMIT: &str = "75d2560";

const GITHUB: &str = "https://github.com/zhanghang1989/PyTorch-Multi-Style-Transfer";
const GITHUB_RAW: &str =
    "https://raw.githubusercontent.com/zhanghang1989/PyTorch-Multi-Style-Transfer";
const STYLES_PATH: &str = "experiments/images/21styles";

/// The 21 style images and their SHA-256, sorted by name.
pub const STYLE_IMAGES: [(&str, &str); 21] = [
    (
        "Robert_Delaunay,_1906,_Portrait.jpg",
        "fc89c275028b6a98e8e6896caf5df930eeda63d2314ddc60072d549f55fcc826",
    ),
    (
        "candy.jpg",
        "1af09b2c18a6674b7d88849cb87564dd77e1ce04d1517bb085449b614cc0c8d8",
    ),
    (
        "composition_vii.jpg",
        "8f992ed4aecd6dd56972d7bc8166761de7c94e670ee6effa8fd05f3daeb33409",
    ),
    (
        "escher_sphere.jpg",
        "555569cb64f86a136fb7a5ed7748ae712f2b6c0e42b4e85d17d1abf52350d10a",
    ),
    (
        "feathers.jpg",
        "d4b730ee0360cd9186de22177666223848e160c876082ccf24ed882340461cb9",
    ),
    (
        "frida_kahlo.jpg",
        "31464d00da060ef33943d16b0e941670a6944e29a688436b40d1b29eb3e23618",
    ),
    (
        "la_muse.jpg",
        "b8a36cd8752497510389782159ccf141d41c3446002a079b458fb7b774d3928a",
    ),
    (
        "mosaic.jpg",
        "17698add60e1ce8618103c04e6cdddc5ac21b82181a37b7517413f36a5b785a4",
    ),
    (
        "mosaic_ducks_massimo.jpg",
        "308a134e0275c7853ca85c2a9ea5d09bbd0ae24fd07804c21d7556fc374bcead",
    ),
    (
        "pencil.jpg",
        "5667f344ab50730aa9007f30deacd7b2f6599b9781a736332caa05fc123fa486",
    ),
    (
        "picasso_selfport1907.jpg",
        "d40e903db6c1e7b73974cebe3705d0c9a295455563b9a92d6ac717d224cc947a",
    ),
    (
        "rain_princess.jpg",
        "14f3fcd3d4984a8a78c75dc08a2b4cb30f949bc2281f980d59fd002beb73d123",
    ),
    (
        "seated-nude.jpg",
        "f398757cfb5346842c3bc309ca65d03381b38b1f5f8d7c60abe68a804a405cf1",
    ),
    (
        "shipwreck.jpg",
        "4f7cf34e3cd4a5daaf3f421f059ca9a01aaa2a3afd7243d6670c9c8bc001a213",
    ),
    (
        "starry_night.jpg",
        "0592ab0f7b51b3ce72608a95e53880bd93971e5b48f93a0ce8dfd3cbccf3d098",
    ),
    (
        "stars2.jpg",
        "28239c1be2ee0ff365f9885bba1594db0178058346d55043f9b9d6cbf0617998",
    ),
    (
        "strip.jpg",
        "a73c66d478e855e911b5fea6ddf8f64f58d8e90d83ba783ad9dd977e8f6be040",
    ),
    (
        "the_scream.jpg",
        "f3075cddeb974a9ee1d6418f7f33fd05185a7ac7dcb4288bd2805d499a9dcaee",
    ),
    (
        "udnie.jpg",
        "c3d3d4b9e325b485820d1a91df3bad591c2bab86919412e9f1b424e862cf204a",
    ),
    (
        "wave.jpg",
        "14bcf58a39b7095168f27756d76d0c615bb8954acc5eae9e62c66a9684c2ee2b",
    ),
    (
        "woman-with-hat-matisse.jpg",
        "6a8b2383d9c110354a97a42c74bdcc5341be879cbb842ddb7ab5843dbdf56d53",
    ),
];

/// Where the files come from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Source {
    /// GitHub: the release for the model, `raw.githubusercontent.com` for the images.
    #[default]
    GitHub,
    /// A mirror of both: `BASE/releases/download/v0.1/21styles.model` and
    /// `BASE/raw/75d2560/experiments/images/21styles/NAME`.
    Mirror(String),
}

impl Source {
    /// A mirror at `base` (a trailing `/` is ignored).
    pub fn mirror(base: &str) -> Self {
        Source::Mirror(base.trim_end_matches('/').to_string())
    }

    /// The URL of `asset`.
    pub fn url(&self, asset: &Asset) -> String {
        match (self, asset.kind) {
            (Source::GitHub, Kind::Model) => {
                format!("{GITHUB}/releases/download/{RELEASE}/{}", asset.name)
            }
            (Source::GitHub, Kind::Style { .. }) => {
                format!("{GITHUB_RAW}/{COMMIT}/{STYLES_PATH}/{}", asset.name)
            }
            (Source::Mirror(base), Kind::Model) => {
                format!("{base}/releases/download/{RELEASE}/{}", asset.name)
            }
            (Source::Mirror(base), Kind::Style { .. }) => {
                format!("{base}/raw/{COMMIT}/{STYLES_PATH}/{}", asset.name)
            }
        }
    }
}

/// What a file is, which says how it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The pretrained weights: checked by loading them; the SHA-256 is recorded beside them.
    Model,
    /// A style image with its pinned SHA-256 (lowercase hex).
    Style { sha256: &'static str },
}

/// Which files to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Only {
    /// The model and the style images.
    #[default]
    All,
    /// Only `21styles.model`.
    Model,
    /// Only the 21 style images.
    Styles,
}

/// One file the data dir should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// The file name, as on the server and on disk.
    pub name: &'static str,
    pub kind: Kind,
    /// Where it goes.
    pub path: PathBuf,
}

/// The files `only` selects, the model first.
pub fn assets(dir: &DataDir, only: Only) -> Vec<Asset> {
    let mut out = Vec::with_capacity(STYLE_IMAGES.len() + 1);
    if only != Only::Styles {
        out.push(Asset {
            name: ORIGINAL_MODEL,
            kind: Kind::Model,
            path: dir.original_model(),
        });
    }
    if only != Only::Model {
        let styles = dir.styles();
        out.extend(STYLE_IMAGES.iter().map(|&(name, sha256)| Asset {
            name,
            kind: Kind::Style { sha256 },
            path: styles.join(name),
        }));
    }
    out
}

/// The file beside the model that records its SHA-256 (`sha256sum` format).
pub fn model_record(dir: &DataDir) -> PathBuf {
    record_path(&dir.original_model())
}

pub(crate) fn record_path(model: &std::path::Path) -> PathBuf {
    let mut name = model.as_os_str().to_os_string();
    name.push(".sha256");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_github_and_the_mirror_layout() {
        let dir = DataDir::at("/d");
        let a = assets(&dir, Only::All);
        assert_eq!(a.len(), 22);
        assert_eq!(
            Source::GitHub.url(&a[0]),
            "https://github.com/zhanghang1989/PyTorch-Multi-Style-Transfer/releases/download/v0.1/21styles.model"
        );
        let candy = a.iter().find(|x| x.name == "candy.jpg").unwrap();
        assert_eq!(
            Source::GitHub.url(candy),
            "https://raw.githubusercontent.com/zhanghang1989/PyTorch-Multi-Style-Transfer/75d2560/experiments/images/21styles/candy.jpg"
        );
        let m = Source::mirror("http://h:1/x/");
        assert_eq!(
            m.url(&a[0]),
            "http://h:1/x/releases/download/v0.1/21styles.model"
        );
        assert_eq!(
            m.url(candy),
            "http://h:1/x/raw/75d2560/experiments/images/21styles/candy.jpg"
        );
        assert_eq!(
            candy.path,
            std::path::Path::new("/d/styles/21styles/candy.jpg")
        );
        assert_eq!(
            model_record(&dir),
            std::path::Path::new("/d/models/21styles.model.sha256")
        );
        assert_eq!(assets(&dir, Only::Model).len(), 1);
        assert_eq!(assets(&dir, Only::Styles).len(), 21);
    }

    #[test]
    fn pinned_hashes_are_sorted_unique_lowercase_hex() {
        for w in STYLE_IMAGES.windows(2) {
            assert!(w[0].0 < w[1].0, "{} before {}", w[0].0, w[1].0);
        }
        for (name, sha) in STYLE_IMAGES {
            assert_eq!(sha.len(), 64, "{name}");
            assert!(sha
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
    }
}
