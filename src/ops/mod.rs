//! CPU ops that candle lacks or runs slowly, each with a fallback built from candle's stock ops so
//! that CUDA and Metal builds need no custom kernels.
pub(crate) mod amx;
pub(crate) mod amx_conv;
pub mod conv;
pub(crate) mod direct;
pub(crate) mod gemm;
pub mod norm;

pub use conv::{conv2d, ConvGeometry};

/// Runs `f` inside pulp's runtime dispatch, so that the plain loops it inlines are compiled (and
/// auto-vectorised) for the widest vectors this CPU has, AVX2 or AVX-512, instead of the x86-64
/// baseline's SSE2. Loops meant to benefit must be `#[inline(always)]` down to `f`.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    struct Op<F>(F);
    impl<R, F: FnOnce() -> R> pulp::WithSimd for Op<F> {
        type Output = R;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) -> R {
            (self.0)()
        }
    }
    pulp::Arch::new().dispatch(Op(f))
}

/// The f32 values a CPU op reads: `s` must hold f32 and `l` be contiguous.
fn f32_slice<'a>(
    s: &'a candle_core::CpuStorage,
    l: &candle_core::Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    let candle_core::CpuStorage::F32(data) = s else {
        candle_core::bail!("{what} must be f32")
    };
    let Some((start, end)) = l.contiguous_offsets() else {
        candle_core::bail!("{what} must be contiguous")
    };
    Ok(&data[start..end])
}
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

/// A deterministic test tensor on the CPU: a sine of the index, amplitude 2 (tests).
#[cfg(test)]
pub(crate) fn seeded(shape: &[usize], seed: u32) -> candle_core::Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| ((i as f32 + seed as f32 * 7.13) * 0.731).sin() * 2.0)
        .collect();
    candle_core::Tensor::from_vec(v, shape, &candle_core::Device::Cpu).unwrap()
}
