//! Direct convolution for MSG-Net's "thin" layers: the full-resolution 7x7 convolutions with 3
//! input or 3 output channels, and the upsampling 3x3 convolutions with a handful of channels.
//!
//! GEMM is a poor fit there. im2col writes `Cin*k*k` floats per pixel (147 for the 3->c0 input
//! layer, 1568 for the 32->3 output layer) and the GEMM then packs them once more, so those
//! layers are bound by memory traffic, and the 3-row output makes the GEMM's microkernel waste
//! most of its registers. Here each output row is computed in registers: a block of `CO` output
//! channels times `XV` vectors of pixels, accumulated over every tap `(ci, ky, kx)` from the
//! (reflection-padded, upsampled) input rows, which a band buffer holds.
//!
//! SIMD width and FMA come from `pulp`'s runtime dispatch (AVX2+FMA, AVX-512 where enabled, NEON,
//! or scalar), so the same binary runs everywhere.

use candle_core::{bail, Result};
use pulp::{Simd, WithSimd};
use rayon::prelude::*;

use super::conv::{ConvGeometry, Dims, LineCopy};

/// Bytes of padded input kept per band.
const BAND_BYTES: usize = 4 << 20;

/// Weights packed for the kernel: for each block of `co_block` output channels, for each tap
/// `(ci, ky, kx)`, the block's `co_block` weights (zero past `cout`).
#[derive(Debug, Clone)]
pub(crate) struct DirectWeights {
    pub(crate) co_block: usize,
    packed: Vec<f32>,
    cout: usize,
    cin: usize,
    k: usize,
}

impl DirectWeights {
    /// `w` is (cout, cin, k, k) as PyTorch stores it.
    pub(crate) fn new(w: &[f32], cout: usize, cin: usize, k: usize) -> Self {
        // With AVX-512's 32 registers, eight channels x two vectors of accumulators make the
        // multiply-adds, not the loads, the bound (the 16-register AVX2 block is 4 x 2; 6 x 4
        // was measured slower, 13.6 against 6.7 ms for the 3 -> 64 input layer at 320x240).
        let co_block = match cout {
            3 => 3,
            _ if wide_registers() => 8,
            _ => 4,
        };
        let blocks = cout.div_ceil(co_block);
        let taps = cin * k * k;
        let mut packed = vec![0f32; blocks * taps * co_block];
        for co in 0..cout {
            let (b, c) = (co / co_block, co % co_block);
            for t in 0..taps {
                packed[(b * taps + t) * co_block + c] = w[co * taps + t];
            }
        }
        Self {
            co_block,
            packed,
            cout,
            cin,
            k,
        }
    }
}

/// Whether a convolution is one the direct kernel does better than GEMM: stride 1 with few input
/// or few output channels. Only where the CPU has FMA vectors (the scalar fallback would be slow).
pub(crate) fn suits(g: &ConvGeometry, cin: usize, cout: usize) -> bool {
    g.stride == 1
        && g.kernel > 1
        && (cin <= 4 || cout <= 4 || cin.max(cout) <= 16)
        && has_fma()
        && std::env::var_os("STYLECAM_NO_DIRECT").is_none()
}

/// Whether pulp dispatches to AVX-512 here (32 vector registers).
fn wide_registers() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether pulp dispatches to vector code with fused multiply-add here.
pub(crate) fn has_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(target_arch = "aarch64")]
    {
        true
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// `out (Cout, Ho, Wo) = conv(pad(upsample(x)))` (`+=` with `accumulate`), plus `bias` if given.
/// `scratch` holds one band of padded input; it only grows.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv(
    g: &ConvGeometry,
    d: &Dims,
    x: &[f32],
    w: &DirectWeights,
    bias: Option<&[f32]>,
    out: &mut [f32],
    accumulate: bool,
    scratch: &mut Vec<f32>,
) -> Result<()> {
    let k = g.kernel;
    if g.stride != 1 || w.k != k || w.cin != d.cin || w.cout != d.cout {
        bail!("direct conv: weights do not fit the layer")
    }
    if x.len() < d.cin * d.h * d.w || out.len() < d.cout * d.ho * d.wo {
        bail!("direct conv: buffers too small")
    }
    if bias.is_some_and(|b| b.len() < d.cout) {
        bail!("direct conv: bias too short")
    }
    if d.ho == 0 || d.wo == 0 {
        return Ok(());
    }
    let rows = g.index_map(d.h);
    let cols = g.index_map(d.w);
    let wp = cols.len();
    // Every vector load of the last chunk of a row (at most 16 lanes x 4 vectors) stays inside
    // the padded row.
    let wpa = d.wo + 64 + k - 1;
    let line = LineCopy::new(&cols, wp, 1, 0);
    let per_row = d.cin * wpa * 4;
    let band = (BAND_BYTES / per_row.max(1))
        .saturating_sub(k - 1)
        .clamp(1, d.ho);
    let threads = rayon::current_num_threads().max(1);
    let max_rows = band + k - 1;
    if scratch.len() < d.cin * max_rows * wpa {
        scratch.resize(d.cin * max_rows * wpa, 0.0);
    }
    let plane_out = d.ho * d.wo;
    for y0 in (0..d.ho).step_by(band) {
        let y1 = (y0 + band).min(d.ho);
        let nrows = y1 - y0 + k - 1;
        let xp = &mut scratch[..d.cin * nrows * wpa];
        xp.par_chunks_mut(nrows * wpa)
            .enumerate()
            .for_each(|(ci, chunk)| {
                let plane = &x[ci * d.h * d.w..(ci + 1) * d.h * d.w];
                for (r, dst) in chunk.chunks_mut(wpa).enumerate() {
                    line.fill(&mut dst[..wp], &plane[rows[y0 + r] * d.w..][..d.w]);
                    dst[wp..].fill(0.0);
                }
            });
        let xp = &scratch[..d.cin * nrows * wpa];
        // Rows per task: enough tasks to balance the threads, each a few rows.
        let task_rows = (y1 - y0).div_ceil(threads * 4).max(1);
        let ntasks = (y1 - y0).div_ceil(task_rows);
        let mut tasks: Vec<Vec<&mut [f32]>> =
            (0..ntasks).map(|_| Vec::with_capacity(d.cout)).collect();
        for plane in out.chunks_mut(plane_out).take(d.cout) {
            let rows_slice = &mut plane[y0 * d.wo..y1 * d.wo];
            for (t, chunk) in rows_slice.chunks_mut(task_rows * d.wo).enumerate() {
                tasks[t].push(chunk);
            }
        }
        tasks
            .into_par_iter()
            .enumerate()
            .for_each(|(t, mut planes)| {
                let r0 = t * task_rows;
                let job = RowsJob {
                    xp,
                    nrows,
                    wpa,
                    d,
                    k,
                    w,
                    bias,
                    r0,
                    planes: &mut planes,
                    accumulate,
                };
                pulp::Arch::new().dispatch(job);
            });
    }
    Ok(())
}

/// The rows of one task: local rows `r0..` of the band, written into `planes` (one row-range
/// slice per output channel).
struct RowsJob<'a, 'b> {
    xp: &'a [f32],
    nrows: usize,
    wpa: usize,
    d: &'a Dims,
    k: usize,
    w: &'a DirectWeights,
    bias: Option<&'a [f32]>,
    r0: usize,
    planes: &'a mut [&'b mut [f32]],
    accumulate: bool,
}

impl WithSimd for RowsJob<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        // Registers: CO broadcast weights + one input vector + CO*XV accumulators <= 16 (32 with
        // AVX-512, the only place `co_block` 8 is chosen).
        match self.w.co_block {
            3 => rows::<S, 3, 4>(simd, self),
            8 => rows::<S, 8, 2>(simd, self),
            _ => rows::<S, 4, 2>(simd, self),
        }
    }
}

#[inline(always)]
fn load<S: Simd>(src: &[f32]) -> S::f32s {
    bytemuck::pod_read_unaligned::<S::f32s>(bytemuck::cast_slice(&src[..S::F32_LANES]))
}

#[inline(always)]
fn rows<S: Simd, const CO: usize, const XV: usize>(simd: S, j: RowsJob) {
    let lanes = S::F32_LANES;
    let chunk = lanes * XV;
    let (k, wpa, wo) = (j.k, j.wpa, j.d.wo);
    let taps = j.d.cin * k * k;
    let blocks = j.d.cout.div_ceil(CO);
    let task_rows = j.planes.first().map_or(0, |p| p.len() / wo);
    // Row segments read for one chunk: `chunk + k - 1` values from x0.
    let seg = chunk + k - 1;
    for lr in 0..task_rows {
        let r = j.r0 + lr;
        for b in 0..blocks {
            let wb = &j.w.packed[b * taps * CO..(b + 1) * taps * CO];
            let mut init = [simd.splat_f32s(0.0); CO];
            for (c, v) in init.iter_mut().enumerate() {
                let co = b * CO + c;
                if let (Some(bias), true) = (j.bias, co < j.d.cout) {
                    *v = simd.splat_f32s(bias[co]);
                }
            }
            for x0 in (0..wo).step_by(chunk) {
                let mut acc = [[simd.splat_f32s(0.0); XV]; CO];
                for (a, &i) in acc.iter_mut().zip(&init) {
                    *a = [i; XV];
                }
                // One (ci, ky) input row and its k taps' weights at a time.
                for (ck, wk) in wb.chunks_exact(k * CO).enumerate() {
                    let (ci, ky) = (ck / k, ck % k);
                    let start = (ci * j.nrows + r + ky) * wpa + x0;
                    let row = &j.xp[start..start + seg];
                    for (kx, wt) in wk.chunks_exact(CO).enumerate() {
                        let mut wv = [simd.splat_f32s(0.0); CO];
                        for (v, &w) in wv.iter_mut().zip(wt) {
                            *v = simd.splat_f32s(w);
                        }
                        for v in 0..XV {
                            let xv = load::<S>(&row[kx + v * lanes..]);
                            for c in 0..CO {
                                acc[c][v] = simd.mul_add_e_f32s(wv[c], xv, acc[c][v]);
                            }
                        }
                    }
                }
                let n = (wo - x0).min(chunk);
                for (c, a) in acc.iter().enumerate() {
                    let co = b * CO + c;
                    if co >= j.d.cout {
                        break;
                    }
                    let dst = &mut j.planes[co][lr * wo + x0..lr * wo + x0 + n];
                    let vals: &[f32] = bytemuck::cast_slice(a.as_slice());
                    if j.accumulate {
                        for (o, &v) in dst.iter_mut().zip(vals) {
                            *o += v;
                        }
                    } else {
                        dst.copy_from_slice(&vals[..n]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv::conv2d_generic;
    use crate::ops::seeded;
    use candle_core::{Device, Tensor};

    /// The direct kernel against candle's conv2d (via the generic path) for the shapes MSG-Net
    /// uses it on, odd widths included, with and without accumulation.
    #[test]
    fn matches_the_generic_path() {
        if !has_fma() {
            eprintln!("SKIPPED direct conv: no FMA vectors on this CPU");
            return;
        }
        let cases = [
            (3, 8, 13, 29, ConvGeometry::new(7, 1, 3, 1)),
            (8, 3, 12, 70, ConvGeometry::new(7, 1, 3, 1)),
            (5, 3, 9, 9, ConvGeometry::new(3, 1, 1, 1)),
            (4, 6, 5, 33, ConvGeometry::new(3, 1, 1, 2)),
            (2, 5, 6, 7, ConvGeometry::new(5, 1, 2, 1)),
        ];
        for (i, (cin, cout, h, w, g)) in cases.into_iter().enumerate() {
            let x = seeded(&[1, cin, h, w], i as u32);
            let wt = seeded(&[cout, cin, g.kernel, g.kernel], 10 + i as u32);
            let b = seeded(&[cout], 20 + i as u32);
            let want = conv2d_generic(&x, &wt, &b, g).unwrap();
            let (ho, wo) = g.output_hw(h, w).unwrap();
            let d = Dims {
                cin,
                h,
                w,
                cout,
                ho,
                wo,
            };
            let xs: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
            let ws: Vec<f32> = wt.flatten_all().unwrap().to_vec1().unwrap();
            let bs: Vec<f32> = b.to_vec1().unwrap();
            let packed = DirectWeights::new(&ws, cout, cin, g.kernel);
            let mut scratch = Vec::new();
            let mut out = vec![f32::NAN; cout * ho * wo];
            conv(
                &g,
                &d,
                &xs,
                &packed,
                Some(&bs),
                &mut out,
                false,
                &mut scratch,
            )
            .unwrap();
            let got = Tensor::from_vec(out.clone(), (1, cout, ho, wo), &Device::Cpu).unwrap();
            // f32 sums of up to 392 products: relative to the output's scale.
            let scale = want
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let tol = 1e-5 * scale.max(1.0);
            let diff = crate::ops::max_abs_diff(&got, &want);
            assert!(diff < tol, "case {i} {g:?}: {diff}");
            // Accumulating adds the convolution (without bias) once more.
            conv(&g, &d, &xs, &packed, None, &mut out, true, &mut scratch).unwrap();
            let twice = Tensor::from_vec(out, (1, cout, ho, wo), &Device::Cpu).unwrap();
            let want2 = ((&want * 2.0).unwrap()
                - b.reshape((1, cout, 1, 1))
                    .unwrap()
                    .broadcast_as(want.dims())
                    .unwrap())
            .unwrap();
            let diff = crate::ops::max_abs_diff(&twice, &want2);
            assert!(diff < 2.0 * tol, "case {i} accumulate: {diff}");
        }
    }
}

/// Timing by hand: `cargo test --release --lib direct::speed -- --ignored --nocapture`. The direct
/// kernel against the GEMM strategies on MSG-Net's thin layers at 320x240, interleaved, min of
/// 15 (one thread, then two).
#[cfg(test)]
mod speed {
    use super::*;
    use crate::ops::conv::{conv_into, ConvScratch, GemmWeights};
    use std::time::Instant;

    #[test]
    #[ignore]
    fn speed_vs_gemm() {
        let cases = [
            (
                "input 3->64 k7",
                3,
                64,
                240,
                320,
                ConvGeometry::new(7, 1, 3, 1),
            ),
            (
                "input 3->32 k7",
                3,
                32,
                240,
                320,
                ConvGeometry::new(7, 1, 3, 1),
            ),
            (
                "output 64->3 k7",
                64,
                3,
                240,
                320,
                ConvGeometry::new(7, 1, 3, 1),
            ),
            (
                "output 32->3 k7",
                32,
                3,
                240,
                320,
                ConvGeometry::new(7, 1, 3, 1),
            ),
            (
                "up 16->16 k3",
                16,
                16,
                120,
                160,
                ConvGeometry::new(3, 1, 1, 2),
            ),
            ("up 8->8 k3", 8, 8, 120, 160, ConvGeometry::new(3, 1, 1, 2)),
            (
                "up 32->32 k3",
                32,
                32,
                60,
                80,
                ConvGeometry::new(3, 1, 1, 2),
            ),
        ];
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                for (name, cin, cout, h, w, g) in cases {
                    let d = Dims::new(&g, cin, h, w, cout).unwrap();
                    let x: Vec<f32> = (0..cin * h * w).map(|i| (i as f32 * 0.1).sin()).collect();
                    let wt: Vec<f32> = (0..cout * cin * g.kernel * g.kernel)
                        .map(|i| (i as f32 * 0.3).cos())
                        .collect();
                    let packed = DirectWeights::new(&wt, cout, cin, g.kernel);
                    let mut out = vec![0f32; cout * d.ho * d.wo];
                    let mut s1 = Vec::new();
                    let mut s2 = ConvScratch::default();
                    let (mut td, mut tg) = (f64::MAX, f64::MAX);
                    for _ in 0..15 {
                        let t = Instant::now();
                        conv(&g, &d, &x, &packed, None, &mut out, false, &mut s1).unwrap();
                        td = td.min(t.elapsed().as_secs_f64() * 1e3);
                        let t = Instant::now();
                        conv_into(&g, &d, &x, GemmWeights::F32(&wt), &mut out, false, &mut s2)
                            .unwrap();
                        tg = tg.min(t.elapsed().as_secs_f64() * 1e3);
                    }
                    let gmac = (cout * cin * g.kernel * g.kernel * d.ho * d.wo) as f64 / 1e9;
                    eprintln!(
                        "{threads}t {name:<18} direct {td:7.2} ms ({:5.1} GMAC/s)  gemm {tg:7.2} ms ({:5.1} GMAC/s)",
                        gmac / td * 1e3,
                        gmac / tg * 1e3
                    );
                }
            });
        }
    }
}
