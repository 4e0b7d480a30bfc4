//! Colour preservation by luminance transfer: the output keeps the content's chroma and takes only
//! the luminance of the stylised image. Computed as tensor ops on whatever device the images are.
//!
//! In BGR 0..255 with BT.601 weights: `Y = 0.114 B + 0.587 G + 0.299 R`. The result is
//! `content + (Y_stylised - Y_content)` in every channel, which leaves the content's colour
//! differences (`B - Y`, `R - Y`: the chroma) untouched and has the stylised luminance.

use candle_core::{Result, Tensor};

/// BT.601 luma weights in BGR order.
const LUMA_BGR: [f64; 3] = [0.114, 0.587, 0.299];

/// Luminance (B, 1, H, W) of a BGR image (B, 3, H, W).
pub fn luminance(bgr: &Tensor) -> Result<Tensor> {
    let mut y = (bgr.narrow(1, 0, 1)? * LUMA_BGR[0])?;
    for (c, w) in LUMA_BGR.iter().enumerate().skip(1) {
        y = (y + (bgr.narrow(1, c, 1)? * *w)?)?;
    }
    Ok(y)
}

/// Chroma (B, 2, H, W) of a BGR image: the colour differences `B - Y` and `R - Y`.
pub fn chroma(bgr: &Tensor) -> Result<Tensor> {
    let y = luminance(bgr)?;
    Tensor::cat(
        &[(bgr.narrow(1, 0, 1)? - &y)?, (bgr.narrow(1, 2, 1)? - &y)?],
        1,
    )
}

/// The stylised luminance with the content's chroma; both (B, 3, H, W) BGR of the same size.
pub fn preserve_color(stylised: &Tensor, content: &Tensor) -> Result<Tensor> {
    let content = content.to_dtype(stylised.dtype())?;
    let shift = (luminance(stylised)? - luminance(&content)?)?;
    content.broadcast_add(&shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn output_has_content_chroma_and_stylised_luminance() {
        let dev = Device::Cpu;
        let content = Tensor::rand(0f32, 255., (1, 3, 6, 7), &dev).unwrap();
        let stylised = Tensor::rand(-30f32, 280., (1, 3, 6, 7), &dev).unwrap();
        let out = preserve_color(&stylised, &content).unwrap();
        let d = |a: &Tensor, b: &Tensor| -> f32 {
            (a - b)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar()
                .unwrap()
        };
        assert!(d(&chroma(&out).unwrap(), &chroma(&content).unwrap()) < 1e-3);
        assert!(d(&luminance(&out).unwrap(), &luminance(&stylised).unwrap()) < 1e-3);
        // And it is not simply the content.
        assert!(d(&out, &content) > 1.0);
        assert_eq!(out.dtype(), DType::F32);
    }
}
