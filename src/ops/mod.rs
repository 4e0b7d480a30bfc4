//! CPU ops that candle lacks or runs slowly, each with a fallback built from candle's stock ops so
//! that CUDA and Metal builds need no custom kernels.
pub mod conv;
mod gemm;
pub mod norm;

pub use conv::{conv2d, ConvGeometry};
pub use norm::{add_upsampled, instance_norm};

/// Largest absolute difference between two tensors of the same shape (tests).
#[cfg(test)]
pub(crate) fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_dtype(candle_core::DType::F32))
        .and_then(|d| d.to_scalar::<f32>())
        .unwrap()
}
