//! The CPU executor: MSG-Net's forward pass on plain buffers, for f32 and bf16 on the CPU.
//!
//! Built once from the loaded network, it keeps the weights in the form each kernel wants (packed
//! for the direct convolution, laid out for shift-add, rounded and packed for bf16) and runs a
//! frame through a [`Workspace`] of buffers that are reused from frame to frame, so a live
//! stream allocates nothing after its first frame. Passes are fused where the network allows:
//! - a bias in front of an instance norm is dropped (the norm subtracts it anyway);
//! - instance norm + ReLU run in place wherever their input is not needed again;
//! - the residual sum is the GEMM's own accumulation into the residual buffer, whose biases
//!   (the residual layer's and the block's last convolution's) are written once, and
//!   UpBottleneck's low-resolution residual is upsampled by that same write;
//! - the thin full-resolution layers use the direct convolution (`ops::direct`; in bf16 on AMX,
//!   `ops::amx_conv`);
//! - plain loops (norms, biases, upsampling) run inside pulp's dispatch (`ops::vectorized`), so
//!   they are compiled for AVX2/AVX-512 rather than the x86-64 baseline.
//!
//! Everything else follows the candle path in `layers.rs` exactly, which the parity tests hold
//! against PyTorch.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candle_core::{bail, Result, Tensor};
use rayon::prelude::*;

use super::layers::{Bottleneck, Conv, Middle, UpBottleneck};
use crate::ops::amx_conv::{self, AmxDirectWeights};
use crate::ops::conv::{conv_into, shift_add_weights, ConvScratch, Dims, GemmWeights, Strategy};
use crate::ops::direct::{self, DirectWeights};
use crate::ops::gemm::{matmul_any, Bf16Weights, Lhs, Mat};
use crate::ops::norm::{norm_inplace, norm_into, norm_with, norm_with_into, stats};
use crate::ops::ConvGeometry;

/// The precision of the CPU path's products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// f32 throughout (parity with PyTorch).
    #[default]
    F32,
    /// bf16 operands, f32 accumulation, for the layers after the Inspiration layer (the
    /// residual and upsampling blocks and the 7x7 output layer: most of the work). On AMX their
    /// stride-1 k x k layers run as direct tile convolutions (`ops::amx_conv`); elsewhere the
    /// thin ones stay f32 (`ops::direct`).
    /// The encoder and the Inspiration layer, where the style statistics are matched, the norms
    /// and the sums stay f32: on the random-weight parity fixtures that halves bf16's error
    /// (mean |Δ| 0.4-0.8 instead of 0.6-2.4 on 0..255, see `tests/fast_path.rs`). The encoder's
    /// 7x7 input layer in plain bf16 took one fixture to 1.22; on AMX it runs as three bf16
    /// products with f32 accuracy instead (`AmxDirectWeights::split`).
    Bf16,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        })
    }
}

/// How a convolution runs.
#[derive(Debug)]
enum Kernel {
    /// GEMM on f32 weights laid out for the strategy.
    F32(Vec<f32>),
    Bf16(Bf16Weights),
    Direct(DirectWeights),
    /// The direct convolution on AMX tiles (bf16 on a CPU with AMX).
    AmxDirect(AmxDirectWeights),
}

#[derive(Debug)]
struct CpuConv {
    g: ConvGeometry,
    cin: usize,
    cout: usize,
    kernel: Kernel,
    /// `None` where an instance norm follows (the bias would cancel).
    bias: Option<Vec<f32>>,
}

fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()
}

impl CpuConv {
    fn new(c: &Conv, keep_bias: bool, precision: Precision) -> Result<Self> {
        let (cout, cin, k, _) = c.weight.dims4()?;
        let g = c.geometry;
        let w = values(&c.weight)?;
        let strategy = Strategy::of(&g, cin, cout);
        // In bf16 on AMX every stride-1 k x k layer runs straight from a pixel-major band
        // (`ops::amx_conv`): the thin layers, and the 3x3s of the residual and upsampling
        // blocks, whose im2col + packing cost more than their tile products.
        let amx = match precision {
            Precision::Bf16 if g.stride == 1 && k > 1 => AmxDirectWeights::new(&w, cout, cin, k),
            _ => None,
        };
        let kernel = if let Some(a) = amx {
            Kernel::AmxDirect(a)
        } else if direct::suits(&g, cin, cout) {
            Kernel::Direct(DirectWeights::new(&w, cout, cin, k))
        } else {
            let laid = match strategy {
                Strategy::ShiftAdd => shift_add_weights(&w, cout, cin, k),
                _ => w,
            };
            match precision {
                Precision::F32 => Kernel::F32(laid),
                Precision::Bf16 => {
                    let (rows, cols) = match strategy {
                        Strategy::ShiftAdd => (cout * k * k, cin),
                        _ => (cout, cin * k * k),
                    };
                    Kernel::Bf16(Bf16Weights::new(&laid, rows, cols)?)
                }
            }
        };
        Ok(Self {
            g,
            cin,
            cout,
            kernel,
            bias: if keep_bias {
                Some(values(&c.bias)?)
            } else {
                None
            },
        })
    }

    /// The encoder's 7x7 input layer: f32, except in bf16 on AMX, where it runs split into
    /// three bf16 products ([`AmxDirectWeights::split`]), as accurate as f32 and faster.
    fn input_layer(c: &Conv, precision: Precision) -> Result<Self> {
        let mut conv = Self::new(c, false, Precision::F32)?;
        if precision == Precision::Bf16 && matches!(conv.kernel, Kernel::Direct(_)) {
            let (cout, cin, k, _) = c.weight.dims4()?;
            if let Some(a) = AmxDirectWeights::split(&values(&c.weight)?, cout, cin, k) {
                conv.kernel = Kernel::AmxDirect(a);
            }
        }
        Ok(conv)
    }

    fn bias(c: &Conv) -> Result<Vec<f32>> {
        values(&c.bias)
    }

    fn dims(&self, h: usize, w: usize) -> Result<Dims> {
        Dims::new(&self.g, self.cin, h, w, self.cout)
    }

    /// `out (+)= conv(x)` + this layer's bias if it kept one. `x` is (cin, h, w); `out` must be
    /// exactly (cout, ho, wo).
    fn run(
        &self,
        x: &[f32],
        h: usize,
        w: usize,
        out: &mut [f32],
        accumulate: bool,
        scratch: &mut ConvScratch,
    ) -> Result<Dims> {
        let d = self.dims(h, w)?;
        if x.len() != d.cin * d.h * d.w || out.len() != d.cout * d.ho * d.wo {
            bail!("cpu conv: buffer sizes do not match {d:?}")
        }
        if let Kernel::Direct(dw) = &self.kernel {
            direct::conv(
                &self.g,
                &d,
                x,
                dw,
                self.bias.as_deref(),
                out,
                accumulate,
                &mut scratch.a,
            )?;
            return Ok(d);
        }
        if let Kernel::AmxDirect(aw) = &self.kernel {
            amx_conv::conv(
                &self.g,
                &d,
                x,
                aw,
                self.bias.as_deref(),
                out,
                accumulate,
                &mut scratch.words,
            )?;
            return Ok(d);
        }
        let mut accumulate = accumulate;
        if let Some(b) = &self.bias {
            add_bias(out, b, d.ho * d.wo, accumulate);
            accumulate = true;
        }
        let weights = match &self.kernel {
            Kernel::F32(w) => GemmWeights::F32Laid(w),
            Kernel::Bf16(w) => GemmWeights::Bf16(w),
            Kernel::Direct(_) | Kernel::AmxDirect(_) => unreachable_direct()?,
        };
        conv_into(&self.g, &d, x, weights, out, accumulate, scratch)?;
        Ok(d)
    }
}

fn unreachable_direct<T>() -> Result<T> {
    bail!("cpu conv: the direct kernel was handled above")
}

/// `out[c] = b[c]` (or `+= b[c]`) over planes of `plane` values.
fn add_bias(out: &mut [f32], b: &[f32], plane: usize, accumulate: bool) {
    out.par_chunks_mut(plane.max(1))
        .zip(b.par_iter())
        .for_each(|(p, &v)| {
            crate::ops::vectorized(|| {
                if accumulate {
                    p.iter_mut().for_each(|o| *o += v);
                } else {
                    p.fill(v);
                }
            })
        });
}

/// `dst` (rows of `ow`) = `src` (rows of `w`) upsampled `f` times (nearest) + `bias`: each
/// source row is expanded once and copied to the other `f - 1` rows.
#[inline(always)]
fn upsample_row_bias(dst: &mut [f32], src: &[f32], w: usize, ow: usize, f: usize, bias: f32) {
    for (rows, s) in dst.chunks_mut(ow * f).zip(src.chunks(w)) {
        let (first, rest) = rows.split_at_mut(ow.min(rows.len()));
        if f == 2 {
            for (o, &v) in first.chunks_exact_mut(2).zip(s) {
                o[0] = v + bias;
                o[1] = v + bias;
            }
        } else {
            for (xo, o) in first.iter_mut().enumerate() {
                *o = s[xo / f] + bias;
            }
        }
        for r in rest.chunks_mut(ow) {
            r.copy_from_slice(&first[..r.len()]);
        }
    }
}

/// A residual block: Bottleneck (stride 1 or 2) or UpBottleneck.
#[derive(Debug)]
struct CpuBlock {
    /// The 1x1 residual convolution, without bias (strided for the encoder's blocks, at low
    /// resolution for UpBottleneck); `None`: the identity.
    residual: Option<CpuConv>,
    conv_in: CpuConv,
    middle: CpuConv,
    conv_out: CpuConv,
    /// The residual layer's bias plus `conv_out`'s.
    out_bias: Vec<f32>,
    /// 2 for UpBottleneck: the residual is upsampled.
    up: usize,
}

impl CpuBlock {
    fn down(b: &Bottleneck, p: Precision) -> Result<Self> {
        let cb = &b.conv_block;
        let Middle::Conv(middle) = &cb.middle else {
            bail!("cpu executor: a Bottleneck with an upsampling middle layer")
        };
        let mut out_bias = CpuConv::bias(&cb.conv_out)?;
        let residual = match &b.residual_layer {
            Some(r) => {
                for (o, v) in out_bias.iter_mut().zip(CpuConv::bias(r)?) {
                    *o += v;
                }
                Some(CpuConv::new(r, false, p)?)
            }
            None => None,
        };
        Ok(Self {
            residual,
            conv_in: CpuConv::new(&cb.conv_in, false, p)?,
            middle: CpuConv::new(middle, false, p)?,
            conv_out: CpuConv::new(&cb.conv_out, false, p)?,
            out_bias,
            up: 1,
        })
    }

    fn up(b: &UpBottleneck, p: Precision) -> Result<Self> {
        let cb = &b.conv_block;
        let Middle::Up(middle) = &cb.middle else {
            bail!("cpu executor: an UpBottleneck without an upsampling middle layer")
        };
        let r = &b.residual_layer;
        if r.conv.geometry != ConvGeometry::new(1, 1, 0, 1) || r.upsample != 2 {
            bail!("cpu executor: unexpected UpBottleneck residual layer")
        }
        let mut out_bias = CpuConv::bias(&cb.conv_out)?;
        for (o, v) in out_bias.iter_mut().zip(CpuConv::bias(&r.conv)?) {
            *o += v;
        }
        Ok(Self {
            residual: Some(CpuConv::new(&r.conv, false, p)?),
            conv_in: CpuConv::new(&cb.conv_in, false, p)?,
            middle: CpuConv::new(&middle.conv, false, p)?,
            conv_out: CpuConv::new(&cb.conv_out, false, p)?,
            out_bias,
            up: 2,
        })
    }
}

/// Each instance norm's per-channel (mean, 1 / sqrt(var + eps)), in the order the pass runs
/// them (the input conv's; per block: its input's, conv_in's, the middle's; the output's).
pub type NormRecord = Vec<Vec<(f32, f32)>>;

/// Where the instance norms take their statistics from (thumbnail instance normalisation,
/// docs/MEMORY.md).
#[derive(Debug, Clone, Default)]
pub enum NormStats {
    /// Each buffer's own per-plane statistics (the plain network; the default).
    #[default]
    Own,
    /// As `Own`, and each norm's statistics are appended to the record.
    Record(NormRecord),
    /// The recorded statistics, norm by norm, instead of the buffer's own. A pass that runs
    /// more norms than were recorded, or a norm over another number of channels, is an error.
    Replay { stats: Arc<NormRecord>, next: usize },
}

impl NormStats {
    /// `x` (planes of `plane` values) normalised (+ ReLU) in place.
    fn apply(&mut self, x: &mut [f32], plane: usize, relu: bool) -> Result<()> {
        match self {
            NormStats::Own => norm_inplace(x, plane, relu),
            NormStats::Record(r) => {
                let s = stats(x, plane);
                norm_with(x, plane, &s, relu);
                r.push(s);
            }
            NormStats::Replay { stats, next } => {
                let s = replayed(stats, next, x.len(), plane)?;
                norm_with(x, plane, s, relu);
            }
        }
        Ok(())
    }

    /// `src` normalised (+ ReLU) into `dst`.
    fn apply_into(&mut self, src: &[f32], dst: &mut [f32], plane: usize, relu: bool) -> Result<()> {
        match self {
            NormStats::Own => norm_into(src, dst, plane, relu),
            NormStats::Record(r) => {
                let s = stats(src, plane);
                norm_with_into(src, dst, plane, &s, relu);
                r.push(s);
            }
            NormStats::Replay { stats, next } => {
                let s = replayed(stats, next, src.len(), plane)?;
                norm_with_into(src, dst, plane, s, relu);
            }
        }
        Ok(())
    }
}

/// The next recorded statistics, checked against a norm over `len` values in planes of `plane`.
fn replayed<'a>(
    stats: &'a NormRecord,
    next: &mut usize,
    len: usize,
    plane: usize,
) -> Result<&'a [(f32, f32)]> {
    let Some(s) = stats.get(*next) else {
        bail!(
            "norm statistics: the recording holds {} norms, this pass runs more",
            stats.len()
        )
    };
    let channels = len.checked_div(plane).unwrap_or(0);
    if s.len() != channels {
        bail!(
            "norm statistics: norm {} was recorded over {} channels, this pass has {channels}",
            *next,
            s.len()
        )
    }
    *next += 1;
    Ok(s)
}

/// Buffers reused between frames. Each only grows.
#[derive(Debug, Default)]
pub struct Workspace {
    /// The activation between blocks (the residual stream).
    x: Vec<f32>,
    /// The next block's output.
    y: Vec<f32>,
    /// The normalised block input, or UpBottleneck's low-resolution residual.
    t: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    conv: ConvScratch,
    /// (channels, height, width) of `x`.
    shape: (usize, usize, usize),
    /// Where the norms take their statistics from.
    norms: NormStats,
}

/// `v[..n]`, growing `v` if needed.
///
/// Every caller overwrites the slice it gets, so a buffer that must grow is freed first and
/// allocated anew, never reallocated: a reallocation holds the old and the new block at once
/// (the allocator copies; 40 MB more at the peak of a first 640x480 frame).
fn grow(v: &mut Vec<f32>, n: usize) -> &mut [f32] {
    if v.len() < n {
        *v = Vec::new();
        *v = vec![0.0; n];
    }
    &mut v[..n]
}

impl Workspace {
    /// Sets where the next passes' norms take their statistics from.
    pub fn set_norms(&mut self, norms: NormStats) {
        self.norms = norms;
    }

    /// The norm mode (with what it recorded), leaving `Own`. A replay that did not use every
    /// recorded norm is an error.
    pub fn take_norms(&mut self) -> Result<NormStats> {
        let norms = std::mem::take(&mut self.norms);
        if let NormStats::Replay { stats, next } = &norms {
            if *next != stats.len() {
                bail!(
                    "norm statistics: the recording holds {} norms, this pass ran {next}",
                    stats.len()
                )
            }
        }
        Ok(norms)
    }

    /// (channels, height, width) of the activation.
    pub fn shape(&self) -> (usize, usize, usize) {
        self.shape
    }

    /// The activation `x` as a (1, C, H, W) tensor (a copy).
    pub fn activation(&self) -> Result<Tensor> {
        let (c, h, w) = self.shape;
        Tensor::from_slice(
            &self.x[..c * h * w],
            (1, c, h, w),
            &candle_core::Device::Cpu,
        )
    }
}

/// (stage order, stage, operation).
type OpKey = (usize, &'static str, &'static str);

/// Time per (stage, operation), when enabled (`stylecam bench --layers`).
#[derive(Debug, Default)]
struct Profile {
    on: AtomicBool,
    times: Mutex<BTreeMap<OpKey, (Duration, u64)>>,
}

impl Profile {
    /// Runs `f`, adding its time under (stage, op) when profiling. `order` sorts the stages.
    fn time<R>(
        &self,
        order: usize,
        stage: &'static str,
        op: &'static str,
        f: impl FnOnce() -> R,
    ) -> R {
        if !self.on.load(Ordering::Relaxed) {
            return f();
        }
        let t0 = Instant::now();
        let r = f();
        if let Ok(mut m) = self.times.lock() {
            let e = m.entry((order, stage, op)).or_default();
            e.0 += t0.elapsed();
            e.1 += 1;
        }
        r
    }
}

/// Where a forward pass's time went: (stage, operation, total time, calls).
pub type LayerTimes = Vec<(&'static str, &'static str, Duration, u64)>;

/// The network, ready for the CPU.
#[derive(Debug)]
pub struct CpuNet {
    precision: Precision,
    first: CpuConv,
    down1: CpuBlock,
    down2: CpuBlock,
    channels: usize,
    blocks: Vec<CpuBlock>,
    up1: CpuBlock,
    up2: CpuBlock,
    last: CpuConv,
    /// One workspace kept for the frames (the live stream's sizes never change).
    pool: Mutex<Option<Workspace>>,
    profile: Profile,
}

impl CpuNet {
    pub(super) fn new(net: &super::MsgNet, precision: Precision) -> Result<Self> {
        let p = precision;
        Ok(Self {
            precision,
            first: CpuConv::input_layer(&net.model1.conv, p)?,
            down1: CpuBlock::down(&net.model1.down1, Precision::F32)?,
            down2: CpuBlock::down(&net.model1.down2, Precision::F32)?,
            channels: net.config().channels(),
            blocks: net
                .blocks
                .iter()
                .map(|b| CpuBlock::down(b, p))
                .collect::<Result<_>>()?,
            up1: CpuBlock::up(&net.up1, p)?,
            up2: CpuBlock::up(&net.up2, p)?,
            last: CpuConv::new(&net.out_conv, true, p)?,
            pool: Mutex::new(None),
            profile: Profile::default(),
        })
    }

    /// Starts (or stops) timing every operation, clearing what was measured.
    pub fn set_profiling(&self, on: bool) {
        self.profile.on.store(on, Ordering::Relaxed);
        if let Ok(mut m) = self.profile.times.lock() {
            m.clear();
        }
    }

    /// Stops timing, keeping what was measured.
    pub fn profile_off(&self) {
        self.profile.on.store(false, Ordering::Relaxed);
    }

    /// The times measured since profiling started, in network order.
    pub fn layer_times(&self) -> LayerTimes {
        self.profile
            .times
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(&(_, stage, op), &(d, n))| (stage, op, d, n))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The kept workspace, or a new one.
    pub fn take_workspace(&self) -> Workspace {
        self.pool
            .lock()
            .map(|mut p| p.take())
            .unwrap_or_default()
            .unwrap_or_default()
    }

    /// Keeps `ws` for the next frame.
    pub fn give_back(&self, ws: Workspace) {
        if let Ok(mut p) = self.pool.lock() {
            *p = Some(ws);
        }
    }

    /// `model1(x)` for one BGR image (3, h, w), left in the workspace's activation.
    pub fn encode(&self, ws: &mut Workspace, x: &[f32], h: usize, w: usize) -> Result<()> {
        if x.len() != 3 * h * w {
            bail!("cpu executor: the input is not 3x{h}x{w}")
        }
        let d = self.first.dims(h, w)?;
        let n = d.cout * d.ho * d.wo;
        let p = &self.profile;
        p.time(0, "input conv", "conv", || {
            self.first
                .run(x, h, w, grow(&mut ws.x, n), false, &mut ws.conv)
        })?;
        p.time(0, "input conv", "norm", || {
            ws.norms.apply(&mut ws.x[..n], d.ho * d.wo, true)
        })?;
        ws.shape = (d.cout, d.ho, d.wo);
        self.block(ws, &self.down1, (1, "down 1"))?;
        self.block(ws, &self.down2, (2, "down 2"))
    }

    /// The Inspiration layer on the workspace's features: `x <- P^T x`, or with a second mixing
    /// matrix and a mask `m` (h x w of the features), `x <- m P1^T x + (1 - m) P2^T x`.
    pub fn inspire(
        &self,
        ws: &mut Workspace,
        pt: &[f32],
        second: Option<(&[f32], &[f32])>,
    ) -> Result<()> {
        let (c, h, w) = ws.shape;
        let n = h * w;
        if c != self.channels || pt.len() != c * c {
            bail!("cpu executor: the mixing matrix does not fit {c} channels")
        }
        let xm = Mat::new(&ws.x[..c * n], c, n, n);
        let y = grow(&mut ws.y, c * n);
        let p = &self.profile;
        p.time(3, "inspiration", "gemm", || {
            self.mix(pt, c, &xm, y, &mut ws.conv)
        })?;
        if let Some((pt2, mask)) = second {
            if pt2.len() != c * c || mask.len() != n {
                bail!("cpu executor: the second mixing matrix or the mask does not fit")
            }
            let t = grow(&mut ws.t, c * n);
            self.mix(pt2, c, &xm, t, &mut ws.conv)?;
            y.par_chunks_mut(n).zip(t.par_chunks(n)).for_each(|(a, b)| {
                for ((o, &s), &m) in a.iter_mut().zip(b).zip(mask) {
                    *o = m * *o + (1.0 - m) * s;
                }
            });
        }
        std::mem::swap(&mut ws.x, &mut ws.y);
        Ok(())
    }

    /// `out = pt (c x c) @ x`, in f32 (see [`Precision::Bf16`]).
    fn mix(
        &self,
        pt: &[f32],
        c: usize,
        x: &Mat,
        out: &mut [f32],
        scratch: &mut ConvScratch,
    ) -> Result<()> {
        let m = Mat::new(pt, c, c, c);
        matmul_any(out, x.cols, Lhs::F32(&m), x, false, &mut scratch.bf16)
    }

    /// Everything after the Inspiration layer; returns the output (1, 3, H', W') cropped to
    /// `h x w`.
    pub fn decode(&self, ws: &mut Workspace, h: usize, w: usize) -> Result<Tensor> {
        for b in &self.blocks {
            self.block(ws, b, (4, "residual blocks"))?;
        }
        self.block(ws, &self.up1, (5, "up 1"))?;
        self.block(ws, &self.up2, (6, "up 2"))?;
        let (c, hh, ww) = ws.shape;
        let p = &self.profile;
        p.time(7, "output conv", "norm", || {
            ws.norms.apply(&mut ws.x[..c * hh * ww], hh * ww, true)
        })?;
        let d = self.last.dims(hh, ww)?;
        let out = grow(&mut ws.y, d.cout * d.ho * d.wo);
        p.time(7, "output conv", "conv", || {
            self.last
                .run(&ws.x[..c * hh * ww], hh, ww, out, false, &mut ws.conv)
        })?;
        if h > d.ho || w > d.wo {
            bail!(
                "cpu executor: a {}x{} output cannot be cropped to {w}x{h}",
                d.wo,
                d.ho
            )
        }
        let mut cropped = Vec::with_capacity(d.cout * h * w);
        for plane in out.chunks(d.ho * d.wo) {
            for row in plane.chunks(d.wo).take(h) {
                cropped.extend_from_slice(&row[..w]);
            }
        }
        Tensor::from_vec(cropped, (1, d.cout, h, w), &candle_core::Device::Cpu)
    }

    /// One residual block on the workspace's activation; `stage` names it in the profile.
    fn block(&self, ws: &mut Workspace, b: &CpuBlock, stage: (usize, &'static str)) -> Result<()> {
        let (order, stage) = stage;
        let p = &self.profile;
        let (c, h, w) = ws.shape;
        let n = c * h * w;
        let plane = h * w;
        let d_in = b.conv_in.dims(h, w)?;
        let d_mid = b.middle.dims(h, w)?;
        let d_out = b.conv_out.dims(d_mid.ho, d_mid.wo)?;
        let (oc, oh, ow) = (d_out.cout, d_out.ho, d_out.wo);
        let out_n = oc * oh * ow;
        let identity = b.residual.is_none();
        // The conv block's input: normalised in place when x is not needed again (the residual
        // is computed first), into `t` for the identity residual.
        match &b.residual {
            None => {
                p.time(order, stage, "norm", || {
                    ws.norms
                        .apply_into(&ws.x[..n], grow(&mut ws.t, n), plane, true)
                })?;
            }
            Some(r) if b.up == 1 => {
                // Strided 1x1: the block's output starts as residual + biases.
                let y = grow(&mut ws.y, out_n);
                p.time(order, stage, "bias", || {
                    add_bias(y, &b.out_bias, oh * ow, false)
                });
                p.time(order, stage, "residual 1x1", || {
                    r.run(&ws.x[..n], h, w, y, true, &mut ws.conv)
                })?;
                p.time(order, stage, "norm", || {
                    ws.norms.apply(&mut ws.x[..n], plane, true)
                })?;
            }
            Some(r) => {
                // UpBottleneck: the 1x1 residual at low resolution, upsampled below.
                let rd = r.dims(h, w)?;
                let t = grow(&mut ws.t, rd.cout * plane);
                p.time(order, stage, "residual 1x1", || {
                    r.run(&ws.x[..n], h, w, t, false, &mut ws.conv)
                })?;
                p.time(order, stage, "norm", || {
                    ws.norms.apply(&mut ws.x[..n], plane, true)
                })?;
            }
        }
        let src: &[f32] = if identity { &ws.t[..n] } else { &ws.x[..n] };
        let a = grow(&mut ws.a, d_in.cout * plane);
        p.time(order, stage, "conv_in 1x1", || {
            b.conv_in.run(src, h, w, a, false, &mut ws.conv)
        })?;
        p.time(order, stage, "norm", || ws.norms.apply(a, plane, true))?;
        let bm = grow(&mut ws.b, d_mid.cout * d_mid.ho * d_mid.wo);
        p.time(order, stage, "middle 3x3", || {
            b.middle
                .run(&ws.a[..d_in.cout * plane], h, w, bm, false, &mut ws.conv)
        })?;
        p.time(order, stage, "norm", || {
            ws.norms.apply(bm, d_mid.ho * d_mid.wo, true)
        })?;
        let mid = &ws.b[..d_mid.cout * d_mid.ho * d_mid.wo];
        if identity {
            let x = &mut ws.x[..n];
            p.time(order, stage, "bias", || {
                add_bias(x, &b.out_bias, plane, true)
            });
            p.time(order, stage, "conv_out 1x1", || {
                b.conv_out
                    .run(mid, d_mid.ho, d_mid.wo, x, true, &mut ws.conv)
            })?;
            return Ok(());
        }
        let y = grow(&mut ws.y, out_n);
        if b.up > 1 {
            let f = b.up;
            let small = &ws.t[..oc * plane];
            p.time(order, stage, "bias + upsample", || {
                y.par_chunks_mut(oh * ow)
                    .zip(small.par_chunks(plane))
                    .zip(b.out_bias.par_iter())
                    .for_each(|((dst, src), &bias)| {
                        crate::ops::vectorized(|| upsample_row_bias(dst, src, w, ow, f, bias))
                    })
            });
        }
        p.time(order, stage, "conv_out 1x1", || {
            b.conv_out
                .run(mid, d_mid.ho, d_mid.wo, y, true, &mut ws.conv)
        })?;
        std::mem::swap(&mut ws.x, &mut ws.y);
        ws.shape = (oc, oh, ow);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replay with more norms than recorded, or fewer, or over another number of channels,
    /// is an error; a recording holds what the norms used.
    #[test]
    fn replay_counts_and_channels_are_checked() {
        let plane = 6;
        let x: Vec<f32> = (0..2 * plane).map(|i| i as f32).collect();
        let mut rec = NormStats::Record(Vec::new());
        let mut a = x.clone();
        rec.apply(&mut a, plane, false).unwrap();
        let mut b = vec![0f32; x.len()];
        rec.apply_into(&x, &mut b, plane, true).unwrap();
        let NormStats::Record(r) = rec else {
            panic!("not a recording")
        };
        assert_eq!(r.len(), 2);
        assert_eq!(r[0], stats(&x, plane));
        let stats = Arc::new(r);

        let mut ws = Workspace::default();
        ws.set_norms(NormStats::Replay {
            stats: stats.clone(),
            next: 0,
        });
        let mut y = x.clone();
        ws.norms.apply(&mut y, plane, false).unwrap();
        assert_eq!(y, a);
        let e = ws.take_norms().unwrap_err().to_string();
        assert!(e.contains("holds 2 norms, this pass ran 1"), "{e}");

        let mut replay = NormStats::Replay { stats, next: 0 };
        let mut y = x.clone();
        let e = replay
            .apply(&mut y[..plane], plane, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("recorded over 2 channels, this pass has 1"),
            "{e}"
        );
        replay.apply(&mut y, plane, false).unwrap();
        replay.apply(&mut y, plane, false).unwrap();
        let e = replay.apply(&mut y, plane, false).unwrap_err().to_string();
        assert!(e.contains("holds 2 norms, this pass runs more"), "{e}");
    }
}
