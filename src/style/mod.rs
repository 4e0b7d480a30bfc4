//! Styles: the bank of style images and their cached targets ([`bank`]), and the creative
//! controls that pick targets for the Inspiration layer: two styles mixed, or split by a spatial
//! mask ([`Split`], [`split_mask`]). The arithmetic on targets and masks is the network's
//! ([`crate::model::mix_targets`], [`crate::model::resize_mask`]).

pub mod bank;
pub mod pack;

/// Mixing targets and resizing masks act on the network's tensors, so they live with it.
pub use crate::model::{mix_targets, resize_mask};
pub use bank::{Aspect, BankError, Style, StyleBank, StyleImage, StyleSource, TargetCache};

use candle_core::{Device, Result, Tensor};

/// How a frame is split between two styles; the first style fills the left, top or centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Vertical,
    Horizontal,
    Radial,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Vertical, Split::Horizontal, Split::Radial];

    pub fn label(self) -> &'static str {
        match self {
            Split::Vertical => "vertical",
            Split::Horizontal => "horizontal",
            Split::Radial => "radial",
        }
    }
}

impl std::str::FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "vertical" => Ok(Self::Vertical),
            "horizontal" => Ok(Self::Horizontal),
            "radial" => Ok(Self::Radial),
            _ => Err(format!(
                "unknown split `{s}`: use vertical, horizontal or radial"
            )),
        }
    }
}

/// A (1, 1, h, w) mask, 1 where the first style goes and 0 elsewhere.
pub fn split_mask(split: Split, h: usize, w: usize, device: &Device) -> Result<Tensor> {
    let (cy, cx) = (h as f32 / 2.0, w as f32 / 2.0);
    // The centre disc covers half the frame's area.
    let r2 = (h * w) as f32 / (2.0 * std::f32::consts::PI);
    let v: Vec<f32> = (0..h * w)
        .map(|i| {
            let (y, x) = ((i / w) as f32 + 0.5, (i % w) as f32 + 0.5);
            let first = match split {
                Split::Vertical => x < cx,
                Split::Horizontal => y < cy,
                Split::Radial => (y - cy).powi(2) + (x - cx).powi(2) < r2,
            };
            if first {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    Tensor::from_vec(v, (1, 1, h, w), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_give_the_first_style_the_documented_region() {
        let dev = Device::Cpu;
        let at = |m: &Tensor, y: usize, x: usize| -> f32 {
            m.get(0)
                .unwrap()
                .get(0)
                .unwrap()
                .get(y)
                .unwrap()
                .get(x)
                .unwrap()
                .to_scalar()
                .unwrap()
        };
        let v = split_mask(Split::Vertical, 4, 6, &dev).unwrap();
        assert_eq!((at(&v, 0, 0), at(&v, 3, 2), at(&v, 0, 3)), (1.0, 1.0, 0.0));
        let h = split_mask(Split::Horizontal, 4, 6, &dev).unwrap();
        assert_eq!((at(&h, 1, 5), at(&h, 2, 0)), (1.0, 0.0));
        let r = split_mask(Split::Radial, 20, 20, &dev).unwrap();
        assert_eq!((at(&r, 10, 10), at(&r, 0, 0)), (1.0, 0.0));
        let area: f32 = r.sum_all().unwrap().to_scalar().unwrap();
        assert!((area / 400.0 - 0.5).abs() < 0.05, "{area}");
    }
}
