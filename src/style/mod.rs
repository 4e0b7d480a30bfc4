//! Styles: the bank of style images and their cached targets ([`bank`]), and the creative
//! controls that act on targets and the Inspiration layer: mixing two styles and spatial masks
//! for two styles in one frame.

pub mod bank;
pub mod pack;

pub use bank::{Aspect, BankError, Style, StyleBank, StyleImage, StyleSource, TargetCache};

use candle_core::{bail, DType, Device, Result, Tensor};

/// `(1 - r) a + r b`: the target between two Gram matrices. `r = 0` gives exactly `a` and
/// `r = 1` exactly `b`.
pub fn mix_targets(a: &Tensor, b: &Tensor, r: f64) -> Result<Tensor> {
    if !(0.0..=1.0).contains(&r) {
        bail!("the mix ratio must be between 0 and 1, got {r}")
    }
    if r == 0.0 {
        return Ok(a.clone());
    }
    if r == 1.0 {
        return Ok(b.clone());
    }
    (a * (1.0 - r))? + (b * r)?
}

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

/// Brings a mask of any size to the feature map's (h, w) by averaging over the area each feature
/// covers, so borders get fractional weights. Values must be in 0..1.
pub fn resize_mask(mask: &Tensor, h: usize, w: usize) -> Result<Tensor> {
    let (_, c, mh, mw) = mask.dims4()?;
    if c != 1 {
        bail!("a mask has one channel, got {c}")
    }
    let mask = mask.to_dtype(DType::F32)?;
    if (mh, mw) == (h, w) {
        return Ok(mask);
    }
    // Nearest-upsample to a multiple of (h, w), then average pool.
    let (fy, fx) = (mh.div_ceil(h), mw.div_ceil(w));
    mask.upsample_nearest2d(h * fy, w * fx)?
        .avg_pool2d((fy, fx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_end_points_are_exact() {
        let dev = Device::Cpu;
        let a = Tensor::rand(0f32, 1., (1, 4, 4), &dev).unwrap();
        let b = Tensor::rand(0f32, 1., (1, 4, 4), &dev).unwrap();
        let eq = |x: &Tensor, y: &Tensor| {
            x.flatten_all().unwrap().to_vec1::<f32>().unwrap()
                == y.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        assert!(eq(&mix_targets(&a, &b, 0.0).unwrap(), &a));
        assert!(eq(&mix_targets(&a, &b, 1.0).unwrap(), &b));
        let half = mix_targets(&a, &b, 0.5).unwrap();
        assert!(eq(&half, &((&a + &b).unwrap() * 0.5).unwrap()));
        assert!(mix_targets(&a, &b, 1.5).is_err());
    }

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

    #[test]
    fn resized_masks_average_the_covered_area() {
        let m = split_mask(Split::Vertical, 8, 10, &Device::Cpu).unwrap();
        let s = resize_mask(&m, 2, 3).unwrap();
        assert_eq!(s.dims(), &[1, 1, 2, 3]);
        let v: Vec<f32> = s.flatten_all().unwrap().to_vec1().unwrap();
        // Columns 0..5 are 1. Upsampled to 12 wide, output column 1 averages source columns
        // 3, 4, 5, 5: half first style.
        assert_eq!(v[0], 1.0);
        assert_eq!(v[2], 0.0);
        assert_eq!(v[1], 0.5, "{v:?}");
    }
}
