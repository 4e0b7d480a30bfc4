//! CPU ops that candle lacks or runs slowly, each with a fallback built from candle's stock ops so
//! that CUDA and Metal builds need no custom kernels.
pub mod conv;
mod gemm;
pub mod norm;

pub use conv::{conv2d, ConvGeometry};
pub use norm::{add_upsampled, instance_norm};
