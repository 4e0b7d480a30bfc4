//! Instance normalisation without affine parameters (PyTorch `InstanceNorm2d(affine=False)`),
//! optionally fused with the ReLU that follows every norm in MSG-Net.
//!
//! Statistics are always the image's own: the mean and the biased variance over H*W for each image
//! and channel, eps inside the square root. The running statistics stored in old files are never
//! used.

use candle_core::{bail, CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

pub const EPS: f64 = 1e-5;

/// `relu?((x - mean) / sqrt(var + eps))` per image and channel, for `x` (B, C, H, W).
pub fn instance_norm(x: &Tensor, relu: bool) -> Result<Tensor> {
    x.dims4()?;
    match x.device() {
        Device::Cpu if x.dtype() == DType::F32 => {
            x.contiguous()?.apply_op1_no_bwd(&CpuInstanceNorm { relu })
        }
        _ => instance_norm_generic(x, relu),
    }
}

/// The same from candle's stock ops. Statistics are taken in f32 even for half-precision inputs:
/// squared activations of a few hundred overflow f16.
pub fn instance_norm_generic(x: &Tensor, relu: bool) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let dtype = x.dtype();
    let xs = x.to_dtype(DType::F32)?.reshape((b, c, h * w))?;
    let mean = xs.mean_keepdim(D::Minus1)?;
    let centred = xs.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    let y = centred.broadcast_div(&(var + EPS)?.sqrt()?)?;
    let y = if relu { y.relu()? } else { y };
    y.reshape((b, c, h, w))?.to_dtype(dtype)
}

/// Mean and biased variance of one plane. 64 f32 lanes per block of 1024 values (so the
/// compiler vectorises it into independent chains of adds, not one latency-bound chain),
/// blocks summed in f64; the variance is taken around the mean.
#[inline(always)]
fn plane_stats(src: &[f32]) -> (f64, f64) {
    #[inline(always)]
    fn lanes(src: &[f32], f: impl Fn(f32) -> f32) -> f64 {
        src.chunks(1024)
            .map(|block| {
                let mut acc = [0f32; 64];
                let mut it = block.chunks_exact(64);
                for c in &mut it {
                    for (a, &v) in acc.iter_mut().zip(c) {
                        *a += f(v);
                    }
                }
                let tail: f32 = it.remainder().iter().map(|&v| f(v)).sum();
                acc.iter().map(|&a| a as f64).sum::<f64>() + tail as f64
            })
            .sum()
    }
    let n = src.len() as f64;
    let mean = lanes(src, |v| v) / n;
    let m = mean as f32;
    let var = lanes(src, |v| (v - m) * (v - m)) / n;
    (mean, var)
}

/// One plane's (mean, 1 / sqrt(var + eps)) in f32, as the normalisation applies them.
#[inline(always)]
fn plane_norm_stats(src: &[f32]) -> (f32, f32) {
    let (mean, var) = plane_stats(src);
    (mean as f32, (1.0 / (var + EPS).sqrt()) as f32)
}

/// `relu?((v - mean) * inv)` over one plane, from `src` into `dst`.
#[inline(always)]
fn normalise(dst: &mut [f32], src: &[f32], (mean, inv): (f32, f32), relu: bool) {
    if relu {
        for (o, &v) in dst.iter_mut().zip(src) {
            *o = ((v - mean) * inv).max(0.0);
        }
    } else {
        for (o, &v) in dst.iter_mut().zip(src) {
            *o = (v - mean) * inv;
        }
    }
}

/// The same in place.
#[inline(always)]
fn normalise_inplace(plane: &mut [f32], (mean, inv): (f32, f32), relu: bool) {
    if relu {
        for v in plane.iter_mut() {
            *v = ((*v - mean) * inv).max(0.0);
        }
    } else {
        for v in plane.iter_mut() {
            *v = (*v - mean) * inv;
        }
    }
}

/// Instance norm (+ ReLU) of every `plane`-sized plane of `x`, in place.
pub(crate) fn norm_inplace(x: &mut [f32], plane: usize, relu: bool) {
    if plane == 0 {
        return;
    }
    x.par_chunks_mut(plane).for_each(|p| {
        super::vectorized(|| {
            let s = plane_norm_stats(p);
            normalise_inplace(p, s, relu)
        })
    });
}

/// Instance norm (+ ReLU) of every `plane`-sized plane of `src`, written to `dst`.
pub(crate) fn norm_into(src: &[f32], dst: &mut [f32], plane: usize, relu: bool) {
    if plane == 0 {
        return;
    }
    dst.par_chunks_mut(plane)
        .zip(src.par_chunks(plane))
        .for_each(|(d, s)| super::vectorized(|| normalise(d, s, plane_norm_stats(s), relu)));
}

/// Each `plane`-sized plane's (mean, 1 / sqrt(var + eps)): exactly what [`norm_inplace`] and
/// [`norm_into`] normalise with.
pub(crate) fn stats(x: &[f32], plane: usize) -> Vec<(f32, f32)> {
    if plane == 0 {
        return Vec::new();
    }
    x.par_chunks(plane)
        .map(|p| super::vectorized(|| plane_norm_stats(p)))
        .collect()
}

/// Normalises (+ ReLU) every `plane`-sized plane of `x` in place with given statistics, one
/// (mean, 1 / sqrt(var + eps)) per plane (from [`stats`], possibly of another picture).
pub(crate) fn norm_with(x: &mut [f32], plane: usize, stats: &[(f32, f32)], relu: bool) {
    if plane == 0 {
        return;
    }
    x.par_chunks_mut(plane)
        .zip(stats.par_iter())
        .for_each(|(p, &s)| super::vectorized(|| normalise_inplace(p, s, relu)));
}

/// [`norm_with`] from `src` into `dst`.
pub(crate) fn norm_with_into(
    src: &[f32],
    dst: &mut [f32],
    plane: usize,
    stats: &[(f32, f32)],
    relu: bool,
) {
    if plane == 0 {
        return;
    }
    dst.par_chunks_mut(plane)
        .zip(src.par_chunks(plane))
        .zip(stats.par_iter())
        .for_each(|((d, s), &st)| super::vectorized(|| normalise(d, s, st, relu)));
}

struct CpuInstanceNorm {
    relu: bool,
}

impl CustomOp1 for CpuInstanceNorm {
    fn name(&self) -> &'static str {
        "instance-norm"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = super::f32_slice(s, l, "instance-norm input")?;
        let (_, _, h, w) = l.shape().dims4()?;
        let plane = h * w;
        let mut out = vec![0f32; x.len()];
        if plane == 0 {
            return Ok((CpuStorage::F32(out), l.shape().clone()));
        }
        norm_into(x, &mut out, plane, self.relu);
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

/// `big + upsample_nearest(small, factor)`: the residual sum of Bottleneck (factor 1) and of
/// UpBottleneck, whose 1x1 residual convolution is run before its upsampling (the two commute).
pub fn add_upsampled(big: &Tensor, small: &Tensor, factor: usize) -> Result<Tensor> {
    let (b, c, h, w) = big.dims4()?;
    let (sb, sc, sh, sw) = small.dims4()?;
    if (sb, sc, sh * factor, sw * factor) != (b, c, h, w) {
        bail!(
            "residual: {:?} upsampled x{factor} does not match {:?}",
            small.dims(),
            big.dims()
        )
    }
    match big.device() {
        Device::Cpu if big.dtype() == DType::F32 && small.dtype() == DType::F32 => big
            .contiguous()?
            .apply_op2_no_bwd(&small.contiguous()?, &CpuAddUpsampled { factor }),
        _ if factor == 1 => big + small,
        _ => big + small.upsample_nearest2d(h, w)?,
    }
}

struct CpuAddUpsampled {
    factor: usize,
}

impl candle_core::CustomOp2 for CpuAddUpsampled {
    fn name(&self) -> &'static str {
        "add-upsampled"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let a = super::f32_slice(s1, l1, "add-upsampled input")?;
        let b = super::f32_slice(s2, l2, "add-upsampled residual")?;
        let (_, _, _, w) = l1.shape().dims4()?;
        let f = self.factor;
        let sw = w / f;
        let mut out = vec![0f32; a.len()];
        if w == 0 {
            return Ok((CpuStorage::F32(out), l1.shape().clone()));
        }
        // Row r of the big map (over all images and channels) reads row r / f of the small one.
        out.par_chunks_mut(w)
            .zip(a.par_chunks(w))
            .enumerate()
            .for_each(|(r, (dst, src))| {
                let small = &b[(r / f) * sw..][..sw];
                for (x, (o, &v)) in dst.iter_mut().zip(src).enumerate() {
                    *o = v + small[x / f];
                }
            });
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded(shape: &[usize]) -> Tensor {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n)
            .map(|i| (i as f32 * 0.377).sin() * 40.0 + 10.0)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    #[test]
    fn cpu_instance_norm_matches_generic_and_normalises() {
        let x = seeded(&[2, 3, 5, 7]);
        for relu in [false, true] {
            let fast = instance_norm(&x, relu).unwrap();
            let slow = instance_norm_generic(&x, relu).unwrap();
            let d = crate::ops::max_abs_diff(&fast, &slow);
            assert!(d < 1e-5, "relu={relu}: {d}");
        }
        // Without ReLU every plane has mean 0 and variance var/(var+eps) ~ 1.
        let y = instance_norm(&x, false).unwrap().reshape((6, 35)).unwrap();
        let mean: Vec<f32> = y.mean(1).unwrap().to_vec1().unwrap();
        let var: Vec<f32> = y.sqr().unwrap().mean(1).unwrap().to_vec1().unwrap();
        for (m, v) in mean.iter().zip(&var) {
            assert!(m.abs() < 1e-5 && (v - 1.0).abs() < 1e-4, "{m} {v}");
        }
    }

    /// Normalising with recorded statistics is exactly the plain norm, in place and into
    /// another buffer; statistics of another picture are applied as given.
    #[test]
    fn norm_with_recorded_stats_equals_the_plain_norm_exactly() {
        let plane = 37 * 29;
        let x: Vec<f32> = (0..5 * plane)
            .map(|i| (i as f32 * 0.0137).sin() * 55.0 + (i / plane) as f32 * 3.0 - 7.0)
            .collect();
        for relu in [false, true] {
            let mut own = x.clone();
            norm_inplace(&mut own, plane, relu);
            let mut own_into = vec![0f32; x.len()];
            norm_into(&x, &mut own_into, plane, relu);
            let s = stats(&x, plane);
            assert_eq!(s.len(), 5);
            let mut replay = x.clone();
            norm_with(&mut replay, plane, &s, relu);
            let mut replay_into = vec![0f32; x.len()];
            norm_with_into(&x, &mut replay_into, plane, &s, relu);
            assert_eq!(own, replay, "relu={relu}");
            assert_eq!(own_into, replay_into, "relu={relu}");
            assert_eq!(own, own_into, "relu={relu}");
        }
        // Someone else's statistics: (v - mean) * inv, plane by plane.
        let given = vec![
            (1.0f32, 0.5f32),
            (-2.0, 2.0),
            (0.0, 1.0),
            (3.0, 0.25),
            (10.0, 0.1),
        ];
        let mut y = x.clone();
        norm_with(&mut y, plane, &given, false);
        for (p, &(m, inv)) in given.iter().enumerate() {
            let i = p * plane + 11;
            assert_eq!(y[i], (x[i] - m) * inv);
        }
    }

    #[test]
    fn add_upsampled_matches_generic() {
        let big = seeded(&[1, 2, 6, 8]);
        let small = seeded(&[1, 2, 3, 4]);
        let fast = add_upsampled(&big, &small, 2).unwrap();
        let slow = (&big + small.upsample_nearest2d(6, 8).unwrap()).unwrap();
        let d = crate::ops::max_abs_diff(&fast, &slow);
        assert_eq!(d, 0.0);
        assert!(add_upsampled(&big, &big.narrow(3, 0, 4).unwrap(), 2).is_err());
    }
}
