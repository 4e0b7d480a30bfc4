//! Arithmetic on Inspiration targets and masks: mixing two styles' Gram matrices, and bringing a
//! spatial mask to the feature map's size. Used by [`super::MsgNet::forward_with`], the engine and
//! the style pack.

use candle_core::{bail, DType, Result, Tensor};

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
    use candle_core::Device;

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

    /// A (1, 1, 8, 10) mask whose first five columns are 1.
    fn left_half() -> Tensor {
        let v: Vec<f32> = (0..80)
            .map(|i| if i % 10 < 5 { 1.0 } else { 0.0 })
            .collect();
        Tensor::from_vec(v, (1, 1, 8, 10), &Device::Cpu).unwrap()
    }

    #[test]
    fn resized_masks_average_the_covered_area() {
        let m = left_half();
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
