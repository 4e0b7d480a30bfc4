//! A style pack: Inspiration targets precomputed at a few style sizes, with a swatch per style,
//! in one safetensors file. stylecam's own weights ship with one (`models/`), so all 21 styles
//! work offline and without the style images, which cannot be redistributed.
//!
//! Format `stylecam-styles-v1` (written by `tools/train/export.py`):
//! - `gram.<style>.<size>`: the target `[1, C, C]` (any float dtype) of `<style>` at style size
//!   `<size>`;
//! - `swatch.<style>`: `[h, w, 3]` u8 RGB, the network's own rendering of a synthetic picture;
//! - metadata `styles` and `sizes`: JSON lists.
//!
//! A target between two stored sizes is interpolated linearly in log-size; outside them the
//! nearest stored size is used.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use image::RgbImage;
use safetensors::{Dtype, SafeTensors};

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{file}: not a style pack: {reason}")]
    Format { file: String, reason: String },
    #[error("{file}: {source}")]
    Tensor {
        file: String,
        source: candle_core::Error,
    },
    #[error("no style `{0}` in the built-in pack")]
    Unknown(String),
}

pub struct StylePack {
    styles: Vec<String>,
    sizes: Vec<u32>,
    /// Targets on the CPU in f32, by (style, size).
    grams: HashMap<(String, u32), Tensor>,
    swatches: HashMap<String, RgbImage>,
}

fn tensor_of(view: &safetensors::tensor::TensorView) -> candle_core::Result<Tensor> {
    let shape = view.shape().to_vec();
    let dtype = match view.dtype() {
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        other => candle_core::bail!("unsupported dtype {other:?} for a target"),
    };
    Tensor::from_raw_buffer(view.data(), dtype, &shape, &Device::Cpu)?.to_dtype(DType::F32)
}

impl StylePack {
    /// Reads a pack held in memory; `file` names it in errors.
    pub fn from_bytes(bytes: &[u8], file: &str) -> Result<Self, PackError> {
        let format = |reason: String| PackError::Format {
            file: file.to_owned(),
            reason,
        };
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| format(e.to_string()))?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| format(e.to_string()))?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let list = |key: &str| -> Result<serde_json::Value, PackError> {
            let raw = meta
                .get(key)
                .ok_or_else(|| format(format!("no `{key}` in the metadata")))?;
            serde_json::from_str(raw).map_err(|e| format(format!("metadata `{key}`: {e}")))
        };
        let styles: Vec<String> = serde_json::from_value(list("styles")?)
            .map_err(|e| format(format!("metadata `styles`: {e}")))?;
        let mut sizes: Vec<u32> = serde_json::from_value(list("sizes")?)
            .map_err(|e| format(format!("metadata `sizes`: {e}")))?;
        sizes.sort_unstable();
        sizes.dedup();
        if styles.is_empty() || sizes.is_empty() {
            return Err(format("no styles or no sizes".into()));
        }
        let mut grams = HashMap::new();
        let mut swatches = HashMap::new();
        let mut channels = None;
        for style in &styles {
            for &size in &sizes {
                let key = format!("gram.{style}.{size}");
                let view = st
                    .tensor(&key)
                    .map_err(|_| format(format!("missing tensor {key}")))?;
                let t = tensor_of(&view).map_err(|source| PackError::Tensor {
                    file: file.to_owned(),
                    source,
                })?;
                let dims = t.dims().to_vec();
                match (dims.as_slice(), channels) {
                    ([1, c, c2], None) if c == c2 => channels = Some(*c),
                    ([1, c, c2], Some(k)) if c == c2 && *c == k => {}
                    _ => return Err(format(format!("{key} has shape {dims:?}"))),
                }
                grams.insert((style.clone(), size), t);
            }
            if let Ok(view) = st.tensor(&format!("swatch.{style}")) {
                if let ([h, w, 3], Dtype::U8) = (view.shape(), view.dtype()) {
                    if let Some(img) =
                        RgbImage::from_raw(*w as u32, *h as u32, view.data().to_vec())
                    {
                        swatches.insert(style.clone(), img);
                    }
                }
            }
        }
        Ok(Self {
            styles,
            sizes,
            grams,
            swatches,
        })
    }

    pub fn styles(&self) -> &[String] {
        &self.styles
    }

    pub fn sizes(&self) -> &[u32] {
        &self.sizes
    }

    pub fn contains(&self, style: &str) -> bool {
        self.styles.iter().any(|s| s == style)
    }

    pub fn swatch(&self, style: &str) -> Option<&RgbImage> {
        self.swatches.get(style)
    }

    /// The target of `style` at `size` on `device`, interpolated between stored sizes.
    pub fn target(&self, style: &str, size: u32, device: &Device) -> Result<Tensor, PackError> {
        if !self.contains(style) {
            return Err(PackError::Unknown(style.to_owned()));
        }
        let get = |s: u32| {
            self.grams
                .get(&(style.to_owned(), s))
                .cloned()
                .ok_or_else(|| PackError::Unknown(style.to_owned()))
        };
        let tensor = |r: candle_core::Result<Tensor>| {
            r.map_err(|source| PackError::Tensor {
                file: "the built-in style pack".into(),
                source,
            })
        };
        let (lo, hi) = match self.sizes.iter().position(|&s| s >= size) {
            Some(0) => (self.sizes[0], self.sizes[0]),
            Some(i) => (self.sizes[i - 1], self.sizes[i]),
            None => {
                let last = self.sizes[self.sizes.len() - 1];
                (last, last)
            }
        };
        let t = if lo == hi || size == hi {
            get(hi)?
        } else if size == lo {
            get(lo)?
        } else {
            let w = ((size as f64).ln() - (lo as f64).ln()) / ((hi as f64).ln() - (lo as f64).ln());
            tensor(crate::model::mix_targets(&get(lo)?, &get(hi)?, w))?
        };
        tensor(t.to_device(device))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack_bytes() -> Vec<u8> {
        let g = |v: f32| {
            let data: Vec<u8> = (0..4).flat_map(|_| v.to_le_bytes()).collect();
            data
        };
        let bufs: Vec<(String, Vec<u8>, Vec<usize>, Dtype)> = vec![
            ("gram.a.128".into(), g(1.0), vec![1, 2, 2], Dtype::F32),
            ("gram.a.512".into(), g(3.0), vec![1, 2, 2], Dtype::F32),
            (
                "swatch.a".into(),
                vec![7u8; 2 * 2 * 3],
                vec![2, 2, 3],
                Dtype::U8,
            ),
        ];
        let views: Vec<(String, safetensors::tensor::TensorView)> = bufs
            .iter()
            .map(|(k, d, s, t)| {
                (
                    k.clone(),
                    safetensors::tensor::TensorView::new(*t, s.clone(), d).unwrap(),
                )
            })
            .collect();
        let meta = HashMap::from([
            ("styles".to_owned(), "[\"a\"]".to_owned()),
            ("sizes".to_owned(), "[128, 512]".to_owned()),
        ]);
        safetensors::serialize(views, Some(meta)).unwrap()
    }

    fn value(t: &Tensor) -> f32 {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()[0]
    }

    #[test]
    fn stored_sizes_are_exact_and_between_is_log_interpolated() {
        let p = StylePack::from_bytes(&pack_bytes(), "test").unwrap();
        let dev = Device::Cpu;
        assert_eq!(value(&p.target("a", 128, &dev).unwrap()), 1.0);
        assert_eq!(value(&p.target("a", 512, &dev).unwrap()), 3.0);
        // 256 is half way between 128 and 512 in log-size.
        assert!((value(&p.target("a", 256, &dev).unwrap()) - 2.0).abs() < 1e-6);
        // Outside: the nearest end.
        assert_eq!(value(&p.target("a", 64, &dev).unwrap()), 1.0);
        assert_eq!(value(&p.target("a", 2048, &dev).unwrap()), 3.0);
        assert!(p.target("b", 256, &dev).is_err());
        assert_eq!(p.swatch("a").unwrap().dimensions(), (2, 2));
    }

    #[test]
    fn a_truncated_pack_is_an_error_naming_the_file() {
        let bytes = pack_bytes();
        let e = StylePack::from_bytes(&bytes[..bytes.len() / 2], "pack.safetensors")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("pack.safetensors"), "{e}");
    }
}
