//! MSG-Net's convolution: nearest upsample, reflection pad, then a strided convolution with bias.
//!
//! On the CPU this is one custom op that never materialises the upsampled or padded image: an index
//! map sends each padded row/column back to its source pixel, and the work is done in bands of
//! output rows (bounded memory) by two strategies:
//! - im2col + one GEMM per band, when the convolution widens or keeps the channel count;
//! - "GEMM then shift-add" when it narrows them (the 7x7 64->3 output layer): multiply the weights
//!   for every kernel tap with the input once (`Cout*k*k x Cin @ Cin x pixels`), then add the k*k
//!   shifted planes. im2col there would write `Cin*k*k` = 3136 floats per pixel for 3 outputs.
//!
//! On other devices it is built from candle's own ops (`upsample_nearest2d`, `index_select`,
//! `conv2d`), so CUDA and Metal builds work without custom kernels.

use candle_core::{bail, CpuStorage, CustomOp3, DType, Device, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

use super::f32_slice;
use super::gemm::{matmul_any, Bf16Scratch, Lhs, Mat};

/// Elements of scratch space (im2col columns or shift-add planes) per band: 16 MiB of f32.
const BAND_ELEMS: usize = 4 << 20;

/// What happens to the input before the convolution proper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub kernel: usize,
    pub stride: usize,
    /// Reflection padding on every side (PyTorch `ReflectionPad2d`).
    pub pad: usize,
    /// Nearest-neighbour upsampling factor applied first (1 = none).
    pub upsample: usize,
}

impl ConvGeometry {
    pub fn new(kernel: usize, stride: usize, pad: usize, upsample: usize) -> Self {
        Self {
            kernel,
            stride,
            pad,
            upsample,
        }
    }

    /// The output height and width for an `h x w` input, or an error when the input is too small
    /// for the reflection padding (PyTorch requires pad < size) or the kernel.
    pub fn output_hw(&self, h: usize, w: usize) -> Result<(usize, usize)> {
        let (hu, wu) = (h * self.upsample, w * self.upsample);
        if self.pad > 0 && (self.pad >= hu || self.pad >= wu) {
            bail!(
                "a {hu}x{wu} feature map is too small for reflection padding of {}",
                self.pad
            )
        }
        let (hp, wp) = (hu + 2 * self.pad, wu + 2 * self.pad);
        if hp < self.kernel || wp < self.kernel || self.stride == 0 {
            bail!(
                "a {hp}x{wp} feature map is too small for a {0}x{0} kernel",
                self.kernel
            )
        }
        Ok((
            (hp - self.kernel) / self.stride + 1,
            (wp - self.kernel) / self.stride + 1,
        ))
    }

    /// For every padded coordinate `0..size*upsample + 2*pad`, the source coordinate it reads.
    pub(crate) fn index_map(&self, size: usize) -> Vec<usize> {
        let up = size * self.upsample;
        (0..up + 2 * self.pad)
            .map(|i| {
                let r = i as isize - self.pad as isize;
                let r = if r < 0 {
                    -r
                } else if r >= up as isize {
                    2 * (up as isize - 1) - r
                } else {
                    r
                };
                r as usize / self.upsample
            })
            .collect()
    }
}

/// `conv2d(pad(upsample(x)))` + bias, for `x` (B, Cin, H, W), `w` (Cout, Cin, k, k), `b` (Cout).
pub fn conv2d(x: &Tensor, w: &Tensor, b: &Tensor, g: ConvGeometry) -> Result<Tensor> {
    let (_, cin, h, wd) = x.dims4()?;
    let (cout, wcin, kh, kw) = w.dims4()?;
    if wcin != cin || kh != g.kernel || kw != g.kernel || b.dims1()? != cout {
        bail!(
            "conv2d: input has {cin} channels, weight is {:?}, bias is {:?}, kernel {}",
            w.dims(),
            b.dims(),
            g.kernel
        )
    }
    g.output_hw(h, wd)?;
    match x.device() {
        Device::Cpu if x.dtype() == DType::F32 => {
            let w = w.to_dtype(DType::F32)?.contiguous()?;
            let b = b.to_dtype(DType::F32)?.contiguous()?;
            x.contiguous()?.apply_op3_no_bwd(&w, &b, &CpuConv(g))
        }
        _ => conv2d_generic(x, w, b, g),
    }
}

/// The same computation from candle's stock ops, for every device and dtype. Pointwise layers are
/// a plain matmul, and layers that narrow the channels use the shift-add form (see the module
/// docs), which spares candle's im2col `Cin*k*k` values per output pixel.
pub fn conv2d_generic(x: &Tensor, w: &Tensor, b: &Tensor, g: ConvGeometry) -> Result<Tensor> {
    let (n, cin, h, wd) = x.dims4()?;
    let (cout, _, k, _) = w.dims4()?;
    let w = w.to_dtype(x.dtype())?;
    let bias = b.to_dtype(x.dtype())?.reshape((1, cout, 1, 1))?;
    if k == 1 && g.stride == 1 && g.pad == 0 && g.upsample == 1 {
        let y = w
            .reshape((cout, cin))?
            .broadcast_matmul(&x.reshape((n, cin, h * wd))?)?;
        return y.reshape((n, cout, h, wd))?.broadcast_add(&bias);
    }
    let x = if g.upsample > 1 {
        x.upsample_nearest2d(h * g.upsample, wd * g.upsample)?
    } else {
        x.clone()
    };
    let x = if g.pad > 0 {
        reflection_pad_generic(&x, g.pad)?
    } else {
        x
    };
    if k > 1 && g.stride == 1 && cout < cin {
        let (_, _, hp, wp) = x.dims4()?;
        let (ho, wo) = (hp - k + 1, wp - k + 1);
        // W'[(co, ky, kx), ci], then Z = W' @ X: (n, Cout*k*k, Hp, Wp).
        let wt = w.permute((0, 2, 3, 1))?.reshape((cout * k * k, cin))?;
        let z = wt
            .broadcast_matmul(&x.reshape((n, cin, hp * wp))?)?
            .reshape((n, cout, k * k, hp, wp))?;
        let mut acc = bias.broadcast_as((n, cout, ho, wo))?.contiguous()?;
        for ky in 0..k {
            for kx in 0..k {
                let tap = z.narrow(2, ky * k + kx, 1)?.squeeze(2)?;
                acc = (acc + tap.narrow(2, ky, ho)?.narrow(3, kx, wo)?)?;
            }
        }
        return Ok(acc);
    }
    let y = x.conv2d(&w, 0, g.stride, 1, 1)?;
    y.broadcast_add(&bias)
}

/// `ReflectionPad2d(pad)` from two gathers, one per spatial axis.
pub fn reflection_pad_generic(x: &Tensor, pad: usize) -> Result<Tensor> {
    let g = ConvGeometry::new(1, 1, pad, 1);
    let (_, _, h, w) = x.dims4()?;
    g.output_hw(h, w)?;
    let rows: Vec<u32> = g.index_map(h).into_iter().map(|i| i as u32).collect();
    let cols: Vec<u32> = g.index_map(w).into_iter().map(|i| i as u32).collect();
    let rows = Tensor::new(rows, x.device())?;
    let cols = Tensor::new(cols, x.device())?;
    x.index_select(&rows, D::Minus2)?
        .index_select(&cols, D::Minus1)
}

struct CpuConv(ConvGeometry);

/// Shapes of one convolution call, in the names the loops use.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub(crate) cin: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) cout: usize,
    pub(crate) ho: usize,
    pub(crate) wo: usize,
}

impl Dims {
    /// The shapes of `g` applied to a `cin x h x w` input with `cout` outputs.
    pub(crate) fn new(
        g: &ConvGeometry,
        cin: usize,
        h: usize,
        w: usize,
        cout: usize,
    ) -> Result<Self> {
        let (ho, wo) = g.output_hw(h, w)?;
        Ok(Self {
            cin,
            h,
            w,
            cout,
            ho,
            wo,
        })
    }
}

/// How a convolution is computed on the CPU (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// 1x1, stride 1, no padding or upsampling: one GEMM on the input as it is.
    Pointwise,
    /// im2col of a band of output rows, then one GEMM.
    Im2col,
    /// `Z = W' X`, then the k*k shifted planes of Z summed (layers that narrow the channels).
    ShiftAdd,
}

impl Strategy {
    pub(crate) fn of(g: &ConvGeometry, cin: usize, cout: usize) -> Self {
        if g.kernel == 1 && g.stride == 1 && g.pad == 0 && g.upsample == 1 {
            Self::Pointwise
        } else if g.kernel > 1 && cout < cin {
            Self::ShiftAdd
        } else {
            Self::Im2col
        }
    }
}

/// `W'[(co, ky, kx), ci] = w[co, ci, ky, kx]`: the weight layout of the shift-add strategy.
pub(crate) fn shift_add_weights(w: &[f32], cout: usize, cin: usize, k: usize) -> Vec<f32> {
    let kk = k * k;
    let mut wt = vec![0f32; cout * kk * cin];
    for co in 0..cout {
        for ci in 0..cin {
            for t in 0..kk {
                wt[(co * kk + t) * cin + ci] = w[(co * cin + ci) * kk + t];
            }
        }
    }
    wt
}

/// Scratch space a convolution reuses between calls; it only grows.
#[derive(Debug, Default)]
pub(crate) struct ConvScratch {
    pub(crate) a: Vec<f32>,
    pub(crate) b: Vec<f32>,
    pub(crate) bf16: Bf16Scratch,
    /// The bf16 band of the AMX direct convolution.
    pub(crate) words: Vec<u32>,
}

/// The weights of one convolution in the form its GEMM takes.
#[derive(Clone, Copy)]
pub(crate) enum GemmWeights<'a> {
    /// f32 (Cout, Cin, k, k) as stored; the shift-add layout is derived when needed.
    F32(&'a [f32]),
    /// f32 already in the layout of the strategy (`shift_add_weights` for shift-add).
    F32Laid(&'a [f32]),
    /// bf16, packed in the layout of the strategy.
    Bf16(&'a super::gemm::Bf16Weights),
}

/// `out (Cout, Ho*Wo) = conv(x)`, or `+=` with `accumulate`. No bias.
#[allow(clippy::too_many_arguments)]
pub(crate) fn conv_into(
    g: &ConvGeometry,
    d: &Dims,
    x: &[f32],
    w: GemmWeights,
    out: &mut [f32],
    accumulate: bool,
    scratch: &mut ConvScratch,
) -> Result<()> {
    let strategy = Strategy::of(g, d.cin, d.cout);
    let kk = g.kernel * g.kernel;
    let (rows, cols) = match strategy {
        Strategy::ShiftAdd => (d.cout * kk, d.cin),
        _ => (d.cout, d.cin * kk),
    };
    let laid;
    let m;
    let lhs = match w {
        GemmWeights::F32(w) if strategy == Strategy::ShiftAdd => {
            laid = shift_add_weights(w, d.cout, d.cin, g.kernel);
            m = Mat::new(&laid, rows, cols, cols);
            Lhs::F32(&m)
        }
        GemmWeights::F32(w) | GemmWeights::F32Laid(w) => {
            m = Mat::new(w, rows, cols, cols);
            Lhs::F32(&m)
        }
        GemmWeights::Bf16(w) => Lhs::Bf16(w),
    };
    match strategy {
        Strategy::Pointwise => {
            let xm = Mat::new(x, d.cin, d.h * d.w, d.h * d.w);
            matmul_any(out, d.ho * d.wo, lhs, &xm, accumulate, &mut scratch.bf16)
        }
        Strategy::ShiftAdd => {
            if !accumulate {
                out[..d.cout * d.ho * d.wo].fill(0.0);
            }
            shift_add(g, d, x, lhs, out, scratch)
        }
        Strategy::Im2col => im2col(g, d, x, lhs, out, accumulate, scratch),
    }
}

impl CustomOp3 for CpuConv {
    fn name(&self) -> &'static str {
        "msgnet-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let x = f32_slice(s1, l1, "conv2d input")?;
        let w = f32_slice(s2, l2, "conv2d weight")?;
        let b = f32_slice(s3, l3, "conv2d bias")?;
        let (batch, cin, h, wd) = l1.shape().dims4()?;
        let cout = l2.shape().dims()[0];
        let (ho, wo) = g.output_hw(h, wd)?;
        let d = Dims {
            cin,
            h,
            w: wd,
            cout,
            ho,
            wo,
        };
        let mut out = vec![0f32; batch * cout * ho * wo];
        let mut scratch = ConvScratch::default();
        for n in 0..batch {
            let xb = &x[n * cin * h * wd..(n + 1) * cin * h * wd];
            let ob = &mut out[n * cout * ho * wo..(n + 1) * cout * ho * wo];
            ob.par_chunks_mut(ho * wo)
                .zip(b.par_iter())
                .for_each(|(plane, &bias)| plane.fill(bias));
            conv_into(&g, &d, xb, GemmWeights::F32(w), ob, true, &mut scratch)?;
        }
        Ok((CpuStorage::F32(out), Shape::from((batch, cout, ho, wo))))
    }
}

/// How to fill one output line from one source row: runs of consecutive source pixels are copied
/// with `copy_from_slice` (the interior of a stride-1 layer); anything else is gathered.
pub(crate) enum LineCopy {
    Runs(Vec<(usize, usize, usize)>),
    Gather(Vec<usize>),
}

impl LineCopy {
    /// For output columns `0..wo`, reading padded column `xo * stride + offset` through `cols`.
    pub(crate) fn new(cols: &[usize], wo: usize, stride: usize, offset: usize) -> Self {
        let idx: Vec<usize> = (0..wo).map(|xo| cols[xo * stride + offset]).collect();
        let mut runs: Vec<(usize, usize, usize)> = Vec::new();
        for (xo, &c) in idx.iter().enumerate() {
            match runs.last_mut() {
                Some((d, s, len)) if *d + *len == xo && *s + *len == c => *len += 1,
                _ => runs.push((xo, c, 1)),
            }
        }
        if runs.len() <= 8 {
            Self::Runs(runs)
        } else {
            Self::Gather(idx)
        }
    }

    pub(crate) fn fill(&self, dst: &mut [f32], src: &[f32]) {
        match self {
            Self::Runs(runs) => {
                for &(d, s, len) in runs {
                    dst[d..d + len].copy_from_slice(&src[s..s + len]);
                }
            }
            Self::Gather(idx) => {
                for (v, &i) in dst.iter_mut().zip(idx) {
                    *v = src[i];
                }
            }
        }
    }
}

/// One image: `out (Cout, Ho*Wo) (+)= W (Cout, Cin*k*k) @ columns`, a band of output rows at a
/// time; `col` holds the columns of one band.
fn im2col(
    g: &ConvGeometry,
    d: &Dims,
    x: &[f32],
    w: Lhs,
    out: &mut [f32],
    accumulate: bool,
    scratch: &mut ConvScratch,
) -> Result<()> {
    let col = &mut scratch.a;
    let (k, s) = (g.kernel, g.stride);
    let kk = k * k;
    let rows = g.index_map(d.h);
    let cols = g.index_map(d.w);
    let lines: Vec<LineCopy> = (0..k).map(|kx| LineCopy::new(&cols, d.wo, s, kx)).collect();
    let band = (BAND_ELEMS / (d.cin * kk * d.wo).max(1)).clamp(1, d.ho);
    if col.len() < d.cin * kk * band * d.wo {
        col.resize(d.cin * kk * band * d.wo, 0.0);
    }
    for y0 in (0..d.ho).step_by(band) {
        let y1 = (y0 + band).min(d.ho);
        let n = (y1 - y0) * d.wo;
        col.par_chunks_mut(kk * n)
            .take(d.cin)
            .enumerate()
            .for_each(|(ci, chunk)| {
                let plane = &x[ci * d.h * d.w..(ci + 1) * d.h * d.w];
                for ky in 0..k {
                    for (kx, line) in lines.iter().enumerate() {
                        let dst = &mut chunk[(ky * k + kx) * n..(ky * k + kx + 1) * n];
                        for y in y0..y1 {
                            let src = &plane[rows[y * s + ky] * d.w..][..d.w];
                            line.fill(&mut dst[(y - y0) * d.wo..(y - y0 + 1) * d.wo], src);
                        }
                    }
                }
            });
        let cm = Mat::new(col, d.cin * kk, n, n);
        matmul_any(
            &mut out[y0 * d.wo..],
            d.ho * d.wo,
            w,
            &cm,
            accumulate,
            &mut scratch.bf16,
        )?;
    }
    Ok(())
}

/// One image, for convolutions that narrow the channels: `Z = W' (Cout*k*k, Cin) @ padded input`,
/// then `out[co, y, x] += sum over taps of Z[tap, y*s + ky, x*s + kx]`. `wt` is `W'`
/// ([`shift_add_weights`]).
fn shift_add(
    g: &ConvGeometry,
    d: &Dims,
    x: &[f32],
    wt: Lhs,
    out: &mut [f32],
    scratch: &mut ConvScratch,
) -> Result<()> {
    let (k, s) = (g.kernel, g.stride);
    let kk = k * k;
    let rows = g.index_map(d.h);
    let cols = g.index_map(d.w);
    let wp = cols.len();
    let pad_line = LineCopy::new(&cols, wp, 1, 0);
    let band = (BAND_ELEMS / (d.cout * kk * wp * s).max(1)).clamp(1, d.ho);
    let max_rows = (band - 1) * s + k;
    let (xp, z, bf) = (&mut scratch.a, &mut scratch.b, &mut scratch.bf16);
    if xp.len() < d.cin * max_rows * wp {
        xp.resize(d.cin * max_rows * wp, 0.0);
    }
    if z.len() < d.cout * kk * max_rows * wp {
        z.resize(d.cout * kk * max_rows * wp, 0.0);
    }
    for y0 in (0..d.ho).step_by(band) {
        let y1 = (y0 + band).min(d.ho);
        let (p0, p1) = (y0 * s, (y1 - 1) * s + k);
        let n = (p1 - p0) * wp;
        xp.par_chunks_mut(n)
            .take(d.cin)
            .enumerate()
            .for_each(|(ci, chunk)| {
                let plane = &x[ci * d.h * d.w..(ci + 1) * d.h * d.w];
                for (pr, line) in chunk.chunks_mut(wp).enumerate() {
                    pad_line.fill(line, &plane[rows[p0 + pr] * d.w..][..d.w]);
                }
            });
        let xm = Mat::new(xp, d.cin, n, n);
        matmul_any(z, n, wt, &xm, false, bf)?;
        let z = &*z;
        out.par_chunks_mut(d.ho * d.wo)
            .take(d.cout)
            .enumerate()
            .for_each(|(co, plane)| {
                for y in y0..y1 {
                    let line = &mut plane[y * d.wo..(y + 1) * d.wo];
                    for ky in 0..k {
                        for kx in 0..k {
                            let tap = &z[(co * kk + ky * k + kx) * n..][..n];
                            let src = &tap[(y * s + ky - p0) * wp + kx..];
                            for (xo, v) in line.iter_mut().enumerate() {
                                *v += src[xo * s];
                            }
                        }
                    }
                }
            });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::seeded;

    use crate::ops::max_abs_diff as max_diff;

    /// Every strategy of the CPU op (pointwise, im2col, shift-add, with stride, padding and
    /// upsampling) against candle's stock conv2d on the explicitly upsampled and padded input.
    #[test]
    fn cpu_op_matches_candle_conv2d() {
        let cases = [
            // (cin, cout, h, w, geometry)
            (5, 7, 9, 11, ConvGeometry::new(1, 1, 0, 1)),
            (5, 7, 9, 11, ConvGeometry::new(1, 2, 0, 1)),
            (4, 6, 9, 10, ConvGeometry::new(3, 1, 1, 1)),
            (4, 6, 9, 10, ConvGeometry::new(3, 2, 1, 1)),
            (3, 8, 12, 13, ConvGeometry::new(7, 1, 3, 1)),
            (8, 3, 12, 13, ConvGeometry::new(7, 1, 3, 1)),
            (8, 3, 5, 6, ConvGeometry::new(3, 2, 1, 2)),
            (6, 4, 5, 7, ConvGeometry::new(3, 1, 1, 2)),
            (6, 9, 5, 7, ConvGeometry::new(1, 1, 0, 2)),
        ];
        for (i, (cin, cout, h, w, g)) in cases.into_iter().enumerate() {
            let x = seeded(&[2, cin, h, w], i as u32);
            let wt = seeded(&[cout, cin, g.kernel, g.kernel], 100 + i as u32);
            let b = seeded(&[cout], 200 + i as u32);
            let fast = conv2d(&x, &wt, &b, g).unwrap();
            let slow = conv2d_generic(&x, &wt, &b, g).unwrap();
            let d = max_diff(&fast, &slow);
            assert!(d < 1e-4, "case {i} {g:?}: max diff {d}");
        }
    }

    /// The generic path's matmul and shift-add forms against candle's conv2d on padded input.
    #[test]
    fn generic_path_matches_candle_conv2d() {
        for (i, (cin, cout, k)) in [(5, 7, 1), (8, 3, 7), (8, 3, 3), (3, 8, 3)]
            .into_iter()
            .enumerate()
        {
            let p = k / 2;
            let g = ConvGeometry::new(k, 1, p, 1);
            let x = seeded(&[2, cin, 9, 11], i as u32);
            let wt = seeded(&[cout, cin, k, k], 10 + i as u32);
            let b = seeded(&[cout], 20 + i as u32);
            let xp = if p > 0 {
                reflection_pad_generic(&x, p).unwrap()
            } else {
                x.clone()
            };
            let want = xp
                .conv2d(&wt, 0, 1, 1, 1)
                .unwrap()
                .broadcast_add(&b.reshape((1, cout, 1, 1)).unwrap())
                .unwrap();
            let d = max_diff(&conv2d_generic(&x, &wt, &b, g).unwrap(), &want);
            assert!(d < 1e-4, "case {i}: {d}");
        }
    }

    #[test]
    fn reflection_pad_matches_pytorch_definition() {
        // PyTorch: ReflectionPad2d(2) of [[0,1,2],[3,4,5],[6,7,8]] has first row [8,7,6,7,8,7,6].
        let x = Tensor::arange(0f32, 9., &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 3, 3))
            .unwrap();
        let p = reflection_pad_generic(&x, 2).unwrap();
        assert_eq!(p.dims(), &[1, 1, 7, 7]);
        let row: Vec<f32> = p
            .get(0)
            .unwrap()
            .get(0)
            .unwrap()
            .get(0)
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(row, vec![8., 7., 6., 7., 8., 7., 6.]);
    }

    #[test]
    fn too_small_input_is_an_error_not_a_panic() {
        let x = seeded(&[1, 2, 3, 3], 1);
        let w = seeded(&[2, 2, 7, 7], 2);
        let b = seeded(&[2], 3);
        let err = conv2d(&x, &w, &b, ConvGeometry::new(7, 1, 3, 1)).unwrap_err();
        assert!(err.to_string().contains("too small"), "{err}");
    }
}
