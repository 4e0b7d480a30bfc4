//! Direct convolution on Intel AMX tiles, for the bf16 path: every stride-1 k x k layer after
//! the Inspiration layer (the residual and upsampling blocks' 3x3s, the 7x7 output layer), and
//! the 7x7 input layer split for f32 accuracy ([`AmxDirectWeights::split`]). For the thin layers
//! it replaces `ops::direct`; for the 3x3s the im2col + packing of the GEMM path, which cost
//! more than the tile products (the built-in model's six residual 3x3s: 7.8 -> 3.3 ms).
//!
//! Each output tile is 16 pixels of a row x 16 output channels, so no im2col is needed. The input
//! band is rounded to bf16 once, padded and upsampled, and stored pixel-major (`HWC`, channels
//! padded to an even count `cp`). Then, for a kernel row `ky`, the `k * cp` values a pixel reads
//! from `x..x + k` are contiguous: the A tile of one 32-value slice of that run is 16 rows (16
//! consecutive pixels) at a row stride of `cp` values, loaded straight from the band. The weights
//! are laid out once at load as the matching B tiles (16 pairs of run positions x 16 output
//! channels, zero where the run ends or a channel is padding).
//! - 3 output channels waste 13 of a tile's 16 columns, and AMX still does it ~4x faster than
//!   f32 FMA. Four pixel tiles share each B tile.
//! - 64 output channels are four B tiles per A tile.
//!
//! Sums are f32, as in `ops::amx`; the outputs are transposed back to planes (`CHW`) with
//! gathers.

// Elsewhere `AmxDirectWeights::new` is always `None` and the kernels are not compiled.
#![cfg_attr(
    not(target_arch = "x86_64"),
    allow(dead_code, unused_imports, unused_variables)
)]

use candle_core::{bail, Result};
use half::bf16;
use rayon::prelude::*;

use super::amx::{self, SendPtr};
use super::conv::{ConvGeometry, Dims, LineCopy};

/// Bytes of bf16 input kept per band.
const BAND_BYTES: usize = 4 << 20;
/// Values of the run per tile step (one A tile row: 64 bytes of bf16).
const BK: usize = 32;

/// Weights as B tiles: for each `(ky, run slice, output-channel tile)`, 16 rows of 16 u32, each
/// holding the bf16 weights of run positions `2q` (low) and `2q + 1` (high) for one output
/// channel.
#[derive(Debug, Clone)]
pub(crate) struct AmxDirectWeights {
    packed: Vec<u32>,
    cout: usize,
    cin: usize,
    /// Three band channels per input channel (see [`AmxDirectWeights::split`]).
    split: bool,
    /// Channels of the pixel-major band: `cin` (`3 * cin` split) rounded up to even (pairs of
    /// bf16 are u32 lanes).
    cp: usize,
    k: usize,
    /// Run slices per kernel row: `ceil(k * cp / 32)`.
    slices: usize,
    /// Output-channel tiles, padded to 1, 2 or a multiple of 4 (the kernel's groups).
    co_tiles: usize,
}

impl AmxDirectWeights {
    /// `w` is (cout, cin, k, k) as PyTorch stores it. `None` where AMX is unavailable or the
    /// sizes do not fit.
    pub(crate) fn new(w: &[f32], cout: usize, cin: usize, k: usize) -> Option<Self> {
        Self::build(w, cout, cin, k, false)
    }

    /// The same to f32 accuracy ("bf16x3"): each value `v` is split into `hi = bf16(v)` and
    /// `lo = bf16(v - hi)`, and a product is `x_hi w_hi + x_hi w_lo + x_lo w_hi` (the band holds
    /// `x_hi, x_hi, x_lo` per channel, the weights `w_hi, w_lo, w_hi`), so the error is that of
    /// the dropped `x_lo w_lo`, about 2^-16 of the product. Three times the tile work: for the
    /// 7x7 input layer (3 channels, one run slice becomes three) it is still faster than f32,
    /// where rounding that layer to bf16 costs too much accuracy downstream.
    pub(crate) fn split(w: &[f32], cout: usize, cin: usize, k: usize) -> Option<Self> {
        if w.len() != cout.checked_mul(cin)?.checked_mul(k)?.checked_mul(k)? {
            return None;
        }
        let taps = k * k;
        let mut w3 = vec![0f32; cout * 3 * cin * taps];
        for co in 0..cout {
            for ci in 0..cin {
                for t in 0..taps {
                    let v = w[(co * cin + ci) * taps + t];
                    let hi = bf16::from_f32(v).to_f32();
                    let base = (co * 3 * cin + 3 * ci) * taps + t;
                    w3[base] = hi;
                    w3[base + taps] = v - hi;
                    w3[base + 2 * taps] = hi;
                }
            }
        }
        let mut built = Self::build(&w3, cout, 3 * cin, k, true)?;
        built.cin = cin;
        Some(built)
    }

    fn build(w: &[f32], cout: usize, cin: usize, k: usize, split: bool) -> Option<Self> {
        if !amx::available() || cout == 0 || cin == 0 || k == 0 {
            return None;
        }
        if w.len() != cout.checked_mul(cin)?.checked_mul(k)?.checked_mul(k)? {
            return None;
        }
        let cp = cin + cin % 2;
        let run = k * cp;
        let slices = run.div_ceil(BK);
        let tiles = cout.div_ceil(16);
        let co_tiles = if tiles <= 2 {
            tiles
        } else {
            tiles.div_ceil(4) * 4
        };
        let mut packed = vec![0u32; k * slices * co_tiles * 256];
        let value = |co: usize, ky: usize, pos: usize| -> u32 {
            let (kx, ci) = (pos / cp, pos % cp);
            if pos >= run || co >= cout || ci >= cin {
                return 0;
            }
            u32::from(bf16::from_f32(w[((co * cin + ci) * k + ky) * k + kx]).to_bits())
        };
        for ky in 0..k {
            for s in 0..slices {
                for t in 0..co_tiles {
                    let base = ((ky * slices + s) * co_tiles + t) * 256;
                    for q in 0..16 {
                        for j in 0..16 {
                            let (co, pos) = (t * 16 + j, s * BK + 2 * q);
                            packed[base + q * 16 + j] =
                                value(co, ky, pos) | (value(co, ky, pos + 1) << 16);
                        }
                    }
                }
            }
        }
        Some(Self {
            packed,
            cout,
            cin,
            split,
            cp,
            k,
            slices,
            co_tiles,
        })
    }

    /// Pixel tiles and output-channel tiles per block of four C tiles.
    fn shape(&self) -> (usize, usize) {
        match self.co_tiles {
            1 => (4, 1),
            2 => (2, 2),
            _ => (1, 4),
        }
    }
}

thread_local! {
    static LINE: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `out (Cout, Ho, Wo) = conv(pad(upsample(x)))` (`+=` with `accumulate`), plus `bias` if given,
/// in bf16 products with f32 sums. `scratch` holds one band of bf16 input; it only grows.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv(
    g: &ConvGeometry,
    d: &Dims,
    x: &[f32],
    w: &AmxDirectWeights,
    bias: Option<&[f32]>,
    out: &mut [f32],
    accumulate: bool,
    scratch: &mut Vec<u32>,
) -> Result<()> {
    let k = g.kernel;
    if g.stride != 1 || w.k != k || w.cin != d.cin || w.cout != d.cout {
        bail!("amx direct conv: weights do not fit the layer")
    }
    if x.len() < d.cin * d.h * d.w || out.len() < d.cout * d.ho * d.wo {
        bail!("amx direct conv: buffers too small")
    }
    if bias.is_some_and(|b| b.len() < d.cout) {
        bail!("amx direct conv: bias too short")
    }
    if !amx::available() {
        bail!("amx direct conv: this CPU has no AMX")
    }
    if d.ho == 0 || d.wo == 0 {
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    {
        let rows = g.index_map(d.h);
        let cols = g.index_map(d.w);
        let wp = cols.len();
        // A block's last tile row reads `slices * 32` values from its last pixel, at most
        // `k + 32` pixels on: the band's rows are padded past that (with zeros).
        let wpa = (d.wo.div_ceil(64) * 64 + k + BK).div_ceil(16) * 16;
        let row_words = wpa * w.cp / 2;
        let band = (BAND_BYTES / (row_words * 4))
            .saturating_sub(k - 1)
            .clamp(1, d.ho);
        let max_rows = band + k - 1;
        if scratch.len() < max_rows * row_words {
            scratch.resize(max_rows * row_words, 0);
        }
        let line = LineCopy::new(&cols, wp, 1, 0);
        let ptr = SendPtr(out.as_mut_ptr());
        for y0 in (0..d.ho).step_by(band) {
            let y1 = (y0 + band).min(d.ho);
            let nrows = y1 - y0 + k - 1;
            let xp = &mut scratch[..nrows * row_words];
            xp.par_chunks_mut(row_words)
                .enumerate()
                .for_each(|(r, dst)| {
                    LINE.with(|cell| {
                        let mut tmp = cell.borrow_mut();
                        tmp.resize(w.cp * wpa, 0.0);
                        let per = if w.split { 3 } else { 1 };
                        for (c, t) in tmp.chunks_mut(wpa * per).enumerate() {
                            if c >= d.cin {
                                t.fill(0.0);
                                continue;
                            }
                            let plane = &x[c * d.h * d.w..(c + 1) * d.h * d.w];
                            let (first, more) = t.split_at_mut(wpa.min(t.len()));
                            line.fill(&mut first[..wp], &plane[rows[y0 + r] * d.w..][..d.w]);
                            first[wp..].fill(0.0);
                            if w.split {
                                let (hi, lo) = more.split_at_mut(wpa);
                                for ((v, h), l) in first.iter_mut().zip(hi).zip(lo) {
                                    let rounded = bf16::from_f32(*v).to_f32();
                                    (*h, *l) = (rounded, *v - rounded);
                                    *v = rounded;
                                }
                            }
                        }
                        // SAFETY: `available()` implies AVX-512 BF16; `tmp` holds `cp` lines of
                        // `wpa` (a multiple of 16) and `dst` `wpa * cp / 2` words.
                        unsafe { pixel_major(dst, &tmp, w.cp, wpa) }
                    })
                });
            let xp = &scratch[..nrows * row_words];
            (y0..y1).into_par_iter().for_each(|y| {
                let job = RowJob {
                    xp: &xp[(y - y0) * row_words..],
                    wpa,
                    w,
                    bias,
                    out: ptr,
                    plane: d.ho * d.wo,
                    row: y * d.wo,
                    wo: d.wo,
                    accumulate,
                };
                // SAFETY: `available()` was checked; the band holds rows `y - y0 ..` `+ k` of
                // `wpa` pixels, padded as above; this task writes only output row `y` of each
                // of the `cout` planes of `out` (checked to hold them).
                unsafe { row(job) }
            });
        }
    }
    Ok(())
}

/// Channel-major lines (`cp` x `wpa` f32) -> one pixel-major row of bf16 pairs: word
/// `x * cp / 2 + p` holds channels `2p` (low) and `2p + 1` (high) of pixel `x`.
///
/// Safety: the CPU has AVX-512 BF16; `wpa` is a multiple of 16, `lines` holds `cp * wpa` values
/// and `dst` `wpa * cp / 2` words.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn pixel_major(dst: &mut [u32], lines: &[f32], cp: usize, wpa: usize) {
    use std::arch::x86_64::*;
    let half = cp / 2;
    let to_u32 = |v: __m512| {
        _mm512_cvtepu16_epi32(std::mem::transmute::<__m256bh, __m256i>(
            _mm512_cvtneps_pbh(v),
        ))
    };
    let step = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(half as i32),
    );
    let (src, out) = (lines.as_ptr(), dst.as_mut_ptr());
    for p in 0..half {
        let (lo, hi) = (src.add(2 * p * wpa), src.add((2 * p + 1) * wpa));
        for x in (0..wpa).step_by(16) {
            let pair = _mm512_or_si512(
                to_u32(_mm512_loadu_ps(lo.add(x))),
                _mm512_slli_epi32(to_u32(_mm512_loadu_ps(hi.add(x))), 16),
            );
            _mm512_i32scatter_epi32::<4>(out.add(x * half + p) as *mut _, step, pair);
        }
    }
}

/// One output row.
#[derive(Clone, Copy)]
struct RowJob<'a> {
    /// The band from this row's first input row on.
    xp: &'a [u32],
    wpa: usize,
    w: &'a AmxDirectWeights,
    bias: Option<&'a [f32]>,
    out: SendPtr,
    /// Values per output plane, and this row's offset in a plane.
    plane: usize,
    row: usize,
    wo: usize,
    accumulate: bool,
}

/// Safety: [`amx::available()`]; `j.xp` holds `k` rows of `wpa` pixel-major pixels padded as
/// [`conv`] pads them; `j.out` points at `cout` planes of `j.plane` values that hold row `j.row`
/// and that no other thread writes meanwhile.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn row(j: RowJob) {
    use std::arch::asm;
    use std::arch::x86_64::*;
    let w = j.w;
    let (px_tiles, co_group) = w.shape();
    let block = 16 * px_tiles;
    let a_stride = w.cp * 2; // bytes between pixels
    let pix = |r: usize, x: usize| (j.xp.as_ptr() as *const u16).add((r * j.wpa + x) * w.cp);
    let rows_b = 64usize; // bytes per B tile row
    let mut buf = [0f32; 4 * 256];
    let gather_idx = _mm512_setr_epi32(
        0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240,
    );
    amx::configure_tiles();
    for x0 in (0..j.wo).step_by(block) {
        for cg in (0..w.co_tiles).step_by(co_group) {
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            );
            for ky in 0..w.k {
                for s in 0..w.slices {
                    let a0 = pix(ky, x0).add(s * BK);
                    let b0 = w
                        .packed
                        .as_ptr()
                        .add(((ky * w.slices + s) * w.co_tiles + cg) * 256);
                    match (px_tiles, co_group) {
                        (4, 1) => asm!(
                            "tileloadd tmm6, [{b0} + {sb}]",
                            "tileloadd tmm4, [{a0} + {sa}]",
                            "tdpbf16ps tmm0, tmm4, tmm6",
                            "tileloadd tmm5, [{a1} + {sa}]",
                            "tdpbf16ps tmm1, tmm5, tmm6",
                            "tileloadd tmm4, [{a2} + {sa}]",
                            "tdpbf16ps tmm2, tmm4, tmm6",
                            "tileloadd tmm5, [{a3} + {sa}]",
                            "tdpbf16ps tmm3, tmm5, tmm6",
                            a0 = in(reg) a0, a1 = in(reg) a0.add(16 * w.cp),
                            a2 = in(reg) a0.add(32 * w.cp), a3 = in(reg) a0.add(48 * w.cp),
                            b0 = in(reg) b0, sa = in(reg) a_stride, sb = in(reg) rows_b,
                            options(nostack, readonly),
                        ),
                        (2, 2) => asm!(
                            "tileloadd tmm6, [{b0} + {sb}]",
                            "tileloadd tmm7, [{b1} + {sb}]",
                            "tileloadd tmm4, [{a0} + {sa}]",
                            "tileloadd tmm5, [{a1} + {sa}]",
                            "tdpbf16ps tmm0, tmm4, tmm6",
                            "tdpbf16ps tmm1, tmm4, tmm7",
                            "tdpbf16ps tmm2, tmm5, tmm6",
                            "tdpbf16ps tmm3, tmm5, tmm7",
                            a0 = in(reg) a0, a1 = in(reg) a0.add(16 * w.cp),
                            b0 = in(reg) b0, b1 = in(reg) b0.add(256),
                            sa = in(reg) a_stride, sb = in(reg) rows_b,
                            options(nostack, readonly),
                        ),
                        _ => asm!(
                            "tileloadd tmm4, [{a0} + {sa}]",
                            "tileloadd tmm6, [{b0} + {sb}]",
                            "tdpbf16ps tmm0, tmm4, tmm6",
                            "tileloadd tmm7, [{b1} + {sb}]",
                            "tdpbf16ps tmm1, tmm4, tmm7",
                            "tileloadd tmm6, [{b2} + {sb}]",
                            "tdpbf16ps tmm2, tmm4, tmm6",
                            "tileloadd tmm7, [{b3} + {sb}]",
                            "tdpbf16ps tmm3, tmm4, tmm7",
                            a0 = in(reg) a0, b0 = in(reg) b0, b1 = in(reg) b0.add(256),
                            b2 = in(reg) b0.add(512), b3 = in(reg) b0.add(768),
                            sa = in(reg) a_stride, sb = in(reg) rows_b,
                            options(nostack, readonly),
                        ),
                    }
                }
            }
            let o = buf.as_mut_ptr();
            asm!(
                "tilestored [{c0} + {sc}], tmm0",
                "tilestored [{c1} + {sc}], tmm1",
                "tilestored [{c2} + {sc}], tmm2",
                "tilestored [{c3} + {sc}], tmm3",
                c0 = in(reg) o, c1 = in(reg) o.add(256), c2 = in(reg) o.add(512),
                c3 = in(reg) o.add(768), sc = in(reg) 64usize,
                options(nostack),
            );
            // Tile t holds pixels x0 + 16 (t / co_group) .. and channels of tile cg + t % co_group,
            // one pixel per row: gather each channel's column back into its plane.
            for t in 0..4 {
                let px = x0 + 16 * (t / co_group);
                if px >= j.wo {
                    continue;
                }
                let mask = amx::lanes(j.wo - px);
                for c in 0..16 {
                    let co = (cg + t % co_group) * 16 + c;
                    if co >= w.cout {
                        break;
                    }
                    let col = _mm512_i32gather_ps::<4>(
                        gather_idx,
                        buf.as_ptr().add(t * 256 + c) as *const _,
                    );
                    let mut v = match j.bias {
                        Some(b) => _mm512_add_ps(col, _mm512_set1_ps(b[co])),
                        None => col,
                    };
                    let d = j.out.0.add(co * j.plane + j.row + px);
                    if j.accumulate {
                        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, d));
                    }
                    _mm512_mask_storeu_ps(d, mask, v);
                }
            }
        }
    }
    asm!("tilerelease", options(nostack, nomem));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv::conv2d_generic;
    use crate::ops::seeded;
    use candle_core::Tensor;

    /// Against the f64 convolution of the bf16-rounded input and weights (candle's conv of the
    /// rounded tensors, in f32), for the shapes MSG-Net runs here: 3 -> 64 and 64 -> 3 at 7x7,
    /// the 3x3s (upsampling or not) of 16 to 128 channels, odd channel counts and widths, with and
    /// without accumulation.
    #[test]
    fn matches_the_rounded_convolution() {
        if !amx::available() {
            eprintln!("SKIPPED amx direct conv: this CPU (or OS) has no AMX-BF16");
            return;
        }
        let cases = [
            (3, 64, 13, 37, ConvGeometry::new(7, 1, 3, 1)),
            (64, 3, 12, 70, ConvGeometry::new(7, 1, 3, 1)),
            (16, 16, 9, 21, ConvGeometry::new(3, 1, 1, 2)),
            (5, 20, 6, 7, ConvGeometry::new(5, 1, 2, 1)),
            (3, 40, 30, 130, ConvGeometry::new(7, 1, 3, 1)),
            // The residual blocks' and the upsampling blocks' 3x3s; 48 outputs pad a tile group.
            (64, 64, 10, 37, ConvGeometry::new(3, 1, 1, 1)),
            (32, 48, 6, 11, ConvGeometry::new(3, 1, 1, 2)),
            (128, 32, 5, 20, ConvGeometry::new(3, 1, 1, 1)),
        ];
        let round = |t: &Tensor| {
            t.to_dtype(candle_core::DType::BF16)
                .unwrap()
                .to_dtype(candle_core::DType::F32)
                .unwrap()
        };
        for (i, (cin, cout, h, wd, g)) in cases.into_iter().enumerate() {
            let x = (seeded(&[1, cin, h, wd], i as u32) * 60.0).unwrap();
            let wt = seeded(&[cout, cin, g.kernel, g.kernel], 10 + i as u32);
            let b = seeded(&[cout], 20 + i as u32);
            let want = conv2d_generic(&round(&x), &round(&wt), &b, g).unwrap();
            let (ho, wo) = g.output_hw(h, wd).unwrap();
            let d = Dims {
                cin,
                h,
                w: wd,
                cout,
                ho,
                wo,
            };
            let xs: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
            let ws: Vec<f32> = wt.flatten_all().unwrap().to_vec1().unwrap();
            let bs: Vec<f32> = b.to_vec1().unwrap();
            let packed = AmxDirectWeights::new(&ws, cout, cin, g.kernel).unwrap();
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
            let want: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
            let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
            for (n, (&got, &exp)) in out.iter().zip(&want).enumerate() {
                assert!(
                    (got - exp).abs() <= 1e-4 * scale,
                    "case {i} ({cin}->{cout}) at {n}: {got} vs {exp}"
                );
            }
            let mut acc = out.clone();
            conv(&g, &d, &xs, &packed, None, &mut acc, true, &mut scratch).unwrap();
            for (n, (&a, &o)) in acc.iter().zip(&out).enumerate() {
                let bias = bs[n / (ho * wo)];
                assert!(
                    (a - (2.0 * o - bias)).abs() <= 1e-4 * scale,
                    "case {i} accumulate at {n}: {a} vs {}",
                    2.0 * o - bias
                );
            }
        }
    }

    /// Split into three bf16 products, the input layer's shapes match the f32 convolution of the
    /// unrounded values to about 2^-16 (plain bf16 would be off by about 2^-9).
    #[test]
    fn split_matches_the_f32_convolution() {
        if !amx::available() {
            eprintln!("SKIPPED amx direct conv (split): this CPU (or OS) has no AMX-BF16");
            return;
        }
        let cases = [
            (3, 64, 13, 37, ConvGeometry::new(7, 1, 3, 1)),
            (3, 5, 20, 70, ConvGeometry::new(7, 1, 3, 1)),
            (2, 16, 9, 21, ConvGeometry::new(3, 1, 1, 2)),
        ];
        for (i, (cin, cout, h, wd, g)) in cases.into_iter().enumerate() {
            // Non-integer inputs, so that the input's own split matters too.
            let x = (seeded(&[1, cin, h, wd], 30 + i as u32) * 60.7).unwrap();
            let wt = seeded(&[cout, cin, g.kernel, g.kernel], 40 + i as u32);
            let b = seeded(&[cout], 50 + i as u32);
            let want = conv2d_generic(&x, &wt, &b, g).unwrap();
            let plain = conv2d_generic(
                &x.to_dtype(candle_core::DType::BF16)
                    .unwrap()
                    .to_dtype(candle_core::DType::F32)
                    .unwrap(),
                &wt.to_dtype(candle_core::DType::BF16)
                    .unwrap()
                    .to_dtype(candle_core::DType::F32)
                    .unwrap(),
                &b,
                g,
            )
            .unwrap();
            let (ho, wo) = g.output_hw(h, wd).unwrap();
            let d = Dims {
                cin,
                h,
                w: wd,
                cout,
                ho,
                wo,
            };
            let xs: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
            let ws: Vec<f32> = wt.flatten_all().unwrap().to_vec1().unwrap();
            let bs: Vec<f32> = b.to_vec1().unwrap();
            let packed = AmxDirectWeights::split(&ws, cout, cin, g.kernel).unwrap();
            let mut out = vec![f32::NAN; cout * ho * wo];
            conv(
                &g,
                &d,
                &xs,
                &packed,
                Some(&bs),
                &mut out,
                false,
                &mut Vec::new(),
            )
            .unwrap();
            let want: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
            let plain: Vec<f32> = plain.flatten_all().unwrap().to_vec1().unwrap();
            let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
            let worst = |v: &[f32]| {
                v.iter()
                    .zip(&want)
                    .fold(0f32, |m, (a, b)| m.max((a - b).abs()))
                    / scale
            };
            let (split_err, plain_err) = (worst(&out), worst(&plain));
            assert!(
                split_err <= 2e-5,
                "case {i}: split error {split_err} of the scale"
            );
            // The check can tell: plain bf16 is far off the same bound.
            assert!(
                plain_err > 20.0 * split_err,
                "case {i}: {plain_err} vs {split_err}"
            );
        }
    }

    #[test]
    fn refuses_weights_that_do_not_fit() {
        assert!(AmxDirectWeights::new(&[1.0; 26], 1, 3, 3).is_none());
        assert!(AmxDirectWeights::split(&[1.0; 26], 1, 3, 3).is_none());
        if !amx::available() {
            return;
        }
        let w = AmxDirectWeights::new(&[1.0; 27], 1, 3, 3).unwrap();
        let g = ConvGeometry::new(3, 1, 1, 1);
        let d = Dims {
            cin: 2,
            h: 4,
            w: 4,
            cout: 1,
            ho: 4,
            wo: 4,
        };
        let mut out = vec![0.0; 16];
        assert!(conv(
            &g,
            &d,
            &[0.0; 32],
            &w,
            None,
            &mut out,
            false,
            &mut Vec::new()
        )
        .is_err());
    }
}
