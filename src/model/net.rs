//! The whole network: `model1` (the encoder, shared with the style branch), the Inspiration layer,
//! the residual blocks and the decoder, with its size inferred from the weights.

use candle_core::{bail, DType, Module, Result, Tensor};
use candle_nn::VarBuilder;

use std::sync::Arc;

use super::cpu::{CpuNet, NormRecord, NormStats, Precision, Workspace};
use super::layers::{conv_layer, gram, Bottleneck, Conv, Inspiration, UpBottleneck};
use crate::ops::instance_norm;

/// The widths that the reference fixes but a training may change (`DEFAULT_WIDTHS` in
/// `tools/msgnet.py`): the full-resolution ConvLayer's output `c0`, the first down Bottleneck's
/// planes `p1` (its output is `4*p1`), the two UpBottlenecks' planes `u1` and `u2` (outputs `4*u1`,
/// `4*u2`), and the first and last ConvLayers' (odd) kernel sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Widths {
    pub c0: usize,
    pub p1: usize,
    pub u1: usize,
    pub u2: usize,
    pub k_first: usize,
    pub k_last: usize,
}

impl Widths {
    /// The reference's values, which the pretrained `21styles.model` has.
    pub const REFERENCE: Widths = Widths {
        c0: 64,
        p1: 32,
        u1: 32,
        u2: 16,
        k_first: 7,
        k_last: 7,
    };
}

impl Default for Widths {
    fn default() -> Self {
        Self::REFERENCE
    }
}

/// The sizes that vary between trainings. The pretrained `21styles.model` is ngf 128, 6 blocks,
/// reference widths (the reference class default, ngf 64, does not match that file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub ngf: usize,
    pub blocks: usize,
    pub widths: Widths,
}

impl Config {
    /// The 21-style pretrained shape.
    pub const PRETRAINED: Config = Config {
        ngf: 128,
        blocks: 6,
        widths: Widths::REFERENCE,
    };

    /// `ngf` and `blocks` with the reference widths.
    pub fn reference(ngf: usize, blocks: usize) -> Self {
        Self {
            ngf,
            blocks,
            widths: Widths::REFERENCE,
        }
    }

    /// Infers the shape from the weights: ngf from `ins.weight` (1, 4ngf, 4ngf), the number of
    /// residual blocks from the `model.N.conv_block.2.weight` keys that follow the Inspiration
    /// layer, and every width from the layer that sets it (see [`Widths`]). `shape_of` returns the
    /// shape stored under a key, if any; the reference's second spellings (`model.0.*`,
    /// `model.1.weight`) are tried too. Errors name the key and the shape expected.
    pub fn infer(
        shape_of: impl Fn(&str) -> Option<Vec<usize>>,
    ) -> std::result::Result<Self, String> {
        let shape_of =
            |k: &str| shape_of(k).or_else(|| super::backend::alias(k).and_then(|a| shape_of(&a)));
        let ins = shape_of("ins.weight").ok_or(
            "missing key ins.weight (expected [1, 4*ngf, 4*ngf]); is this an MSG-Net file?",
        )?;
        let c = match ins.as_slice() {
            [1, a, b] if a == b && a % 4 == 0 && *a > 0 => *a,
            other => {
                return Err(format!(
                    "key ins.weight has shape {other:?}, expected [1, 4*ngf, 4*ngf]"
                ))
            }
        };
        let mut blocks = 0;
        while shape_of(&format!("model.{}.conv_block.2.weight", 2 + blocks)).is_some()
            && shape_of(&format!(
                "model.{}.residual_layer.conv2d.weight",
                2 + blocks
            ))
            .is_none()
        {
            blocks += 1;
        }
        // One dimension of the weight under `key`, which must have 4 dimensions.
        let dim = |key: &str, what: &str, i: usize| -> std::result::Result<usize, String> {
            match shape_of(key) {
                Some(s) if s.len() == 4 && s[i] > 0 => Ok(s[i]),
                Some(s) => Err(format!("key {key} has shape {s:?}, expected {what}")),
                None => Err(format!(
                    "missing key {key} (expected {what}); is this an MSG-Net file?"
                )),
            }
        };
        let kernel = |key: &str, what: &str| -> std::result::Result<usize, String> {
            let k = dim(key, what, 3)?;
            match shape_of(key).as_deref() {
                Some([_, _, kh, _]) if *kh == k && k % 2 == 1 => Ok(k),
                Some(s) => Err(format!(
                    "key {key} has shape {s:?}, expected {what} with an odd square kernel"
                )),
                None => Err(format!("missing key {key}")),
            }
        };
        let first = "model1.0.conv2d.weight";
        let up1 = 2 + blocks;
        let last = format!("model.{}.conv2d.weight", up1 + 4);
        let widths = Widths {
            c0: dim(first, "[c0, 3, k, k]", 0)?,
            k_first: kernel(first, "[c0, 3, k, k]")?,
            p1: dim("model1.3.conv_block.2.weight", "[p1, c0, 1, 1]", 0)?,
            u1: dim(
                &format!("model.{up1}.conv_block.2.weight"),
                "[u1, 4*ngf, 1, 1]",
                0,
            )?,
            u2: dim(
                &format!("model.{}.conv_block.2.weight", up1 + 1),
                "[u2, 4*u1, 1, 1]",
                0,
            )?,
            k_last: kernel(&last, "[3, 4*u2, k, k]")?,
        };
        Ok(Config {
            ngf: c / 4,
            blocks,
            widths,
        })
    }

    /// Channels of the encoder output, the Gram target and the Inspiration layer: 4*ngf.
    pub fn channels(&self) -> usize {
        self.ngf * 4
    }
}

/// The style input of [`MsgNet::forward_with`].
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a> {
    One(&'a Tensor),
    /// Two styles; `mask` (1, 1, h, w) of any size, 1 where the first style goes.
    Masked {
        first: &'a Tensor,
        second: &'a Tensor,
        mask: &'a Tensor,
    },
}

/// Smallest input side: after two stride-2 layers the map must still be 2 pixels wide for the
/// residual blocks' reflection padding.
pub const MIN_SIDE: usize = 5;

/// `model1` in the reference: ConvLayer k_first 3->c0, IN, ReLU, Bottleneck(c0, p1, 2),
/// Bottleneck(4*p1, ngf, 2) (7x7, 64, 32 in the reference).
#[derive(Debug, Clone)]
pub(super) struct Encoder {
    pub(super) conv: Conv,
    pub(super) down1: Bottleneck,
    pub(super) down2: Bottleneck,
}

impl Encoder {
    fn new(vb: VarBuilder, ngf: usize, w: &Widths) -> Result<Self> {
        Ok(Self {
            conv: conv_layer(vb.pp(0), 3, w.c0, w.k_first, 1)?,
            down1: Bottleneck::new(vb.pp(3), w.c0, w.p1, 2, true)?,
            down2: Bottleneck::new(vb.pp(4), w.p1 * 4, ngf, 2, true)?,
        })
    }

    fn macs(&self, h: usize, w: usize) -> Result<(u64, usize, usize)> {
        let (m0, h, w) = self.conv.macs(h, w)?;
        let (m1, h, w) = self.down1.macs(h, w)?;
        let (m2, h, w) = self.down2.macs(h, w)?;
        Ok((m0 + m1 + m2, h, w))
    }
}

impl Module for Encoder {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let h = instance_norm(&self.conv.forward(xs)?, true)?;
        self.down2.forward(&self.down1.forward(&h)?)
    }
}

/// MSG-Net (Zhang & Dana 2017). Input and output are BGR, 0..255, (B, 3, H, W).
#[derive(Debug, Clone)]
pub struct MsgNet {
    config: Config,
    pub(super) model1: Encoder,
    ins: Inspiration,
    pub(super) blocks: Vec<Bottleneck>,
    pub(super) up1: UpBottleneck,
    pub(super) up2: UpBottleneck,
    pub(super) out_conv: Conv,
    /// The CPU executor (`cpu.rs`), for networks loaded in f32 on the CPU.
    cpu: Option<Arc<CpuNet>>,
}

impl MsgNet {
    /// Builds the network from `vb`, whose keys are those of the reference state dict.
    pub fn new(vb: VarBuilder, config: Config) -> Result<Self> {
        let Config {
            ngf,
            blocks: n,
            widths: w,
        } = config;
        let c = config.channels();
        let model = vb.pp("model");
        let blocks = (0..n)
            .map(|i| Bottleneck::new(model.pp(2 + i), c, ngf, 1, false))
            .collect::<Result<Vec<_>>>()?;
        let mut net = Self {
            config,
            model1: Encoder::new(vb.pp("model1"), ngf, &w)?,
            ins: Inspiration::new(vb.pp("ins"), c)?,
            blocks,
            up1: UpBottleneck::new(model.pp(2 + n), c, w.u1)?,
            up2: UpBottleneck::new(model.pp(3 + n), w.u1 * 4, w.u2)?,
            // model.(4+n) and model.(5+n) are the final IN and ReLU.
            out_conv: conv_layer(model.pp(6 + n), w.u2 * 4, 3, w.k_last, 1)?,
            cpu: None,
        };
        if net.device().is_cpu() && net.dtype() == DType::F32 {
            net.cpu = Some(Arc::new(CpuNet::new(&net, Precision::F32)?));
        }
        Ok(net)
    }

    /// The precision of the CPU executor's products, for a network loaded in f32 on the CPU;
    /// `None` elsewhere (the network then runs in its own dtype on its device).
    pub fn precision(&self) -> Option<Precision> {
        self.cpu.as_ref().map(|c| c.precision())
    }

    /// Switches the CPU executor to `precision` (repacking the weights). Fails for a network
    /// that is not f32 on the CPU.
    pub fn set_precision(&mut self, precision: Precision) -> Result<()> {
        match &self.cpu {
            None => {
                bail!(
                "the {precision} CPU path needs the network in f32 on the CPU (it is {:?} on {})",
                self.dtype(),
                if self.device().is_cpu() { "the CPU" } else { "a GPU" }
            )
            }
            Some(c) if c.precision() == precision => Ok(()),
            Some(_) => {
                self.cpu = Some(Arc::new(CpuNet::new(self, precision)?));
                Ok(())
            }
        }
    }

    /// The CPU executor, for profiling (`stylecam bench --layers`).
    pub fn cpu_executor(&self) -> Option<&CpuNet> {
        self.cpu.as_deref()
    }

    /// The CPU executor, when it applies to `xs` (one f32 image on the CPU).
    fn cpu_for(&self, xs: &Tensor) -> Option<&CpuNet> {
        let cpu = self.cpu.as_deref()?;
        let one = matches!(xs.dims4(), Ok((1, 3, _, _)));
        (one && xs.device().is_cpu() && xs.dtype() == DType::F32).then_some(cpu)
    }

    pub fn config(&self) -> Config {
        self.config
    }

    /// The dtype and device the weights were loaded with.
    pub fn dtype(&self) -> DType {
        self.ins.weight().dtype()
    }

    pub fn device(&self) -> &candle_core::Device {
        self.ins.weight().device()
    }

    /// The encoder features `model1(x)`.
    pub fn encode(&self, xs: &Tensor) -> Result<Tensor> {
        check_size(xs)?;
        if let Some(cpu) = self.cpu_for(xs) {
            // Style images come at their own sizes and rarely: a workspace of their own, freed
            // at once, so the frames' workspace keeps the live stream's size.
            let (_, _, h, w) = xs.dims4()?;
            let input = xs.flatten_all()?.to_vec1::<f32>()?;
            let mut ws = super::cpu::Workspace::default();
            cpu.encode(&mut ws, &input, h, w)?;
            return ws.activation();
        }
        self.model1.forward(xs)
    }

    /// The style target `Gram(model1(style))`, (B, 4ngf, 4ngf).
    pub fn style_target(&self, style: &Tensor) -> Result<Tensor> {
        gram(&self.encode(style)?)
    }

    /// Stylises `xs` (B, 3, H, W) towards `target`. The output has the input's size: the network
    /// itself produces `4*ceil(ceil(H/2)/2)` rows (and likewise columns), cropped back here.
    pub fn forward(&self, xs: &Tensor, target: &Tensor) -> Result<Tensor> {
        if self.cpu_for(xs).is_some() {
            return self.forward_with(xs, Targets::One(target), 1.0);
        }
        let features = self.encode(xs)?;
        let mixed = self.ins.forward(&features, target)?;
        self.decode(&mixed, xs.dims4()?)
    }

    /// Everything after the Inspiration layer, cropped to `input`'s (B, C, H, W).
    pub fn decode(&self, mixed: &Tensor, input: (usize, usize, usize, usize)) -> Result<Tensor> {
        let mut h = mixed.clone();
        for block in &self.blocks {
            h = block.forward(&h)?;
        }
        let h = self.up2.forward(&self.up1.forward(&h)?)?;
        let out = self.out_conv.forward(&instance_norm(&h, true)?)?;
        let (_, _, ih, iw) = input;
        out.narrow(2, 0, ih)?.narrow(3, 0, iw)
    }

    /// Forward pass with the creative controls: `strength` (0..1) moves the target from the
    /// content's own Gram (0: the network's reconstruction of the content, no style) to the style's
    /// (1: exactly `forward`), and `targets` may give two styles blended by a spatial mask at the
    /// Inspiration layer, `Y = M (P1^T X) + (1 - M) (P2^T X)`, so the rest of the network runs once.
    pub fn forward_with(&self, xs: &Tensor, targets: Targets, strength: f64) -> Result<Tensor> {
        check_strength(strength)?;
        if let Some(cpu) = self.cpu_for(xs) {
            check_size(xs)?;
            let mut ws = cpu.take_workspace();
            let out = self.forward_cpu(cpu, &mut ws, xs, targets, strength, None);
            cpu.give_back(ws);
            return out.map(|(out, _)| out);
        }
        let features = self.encode(xs)?;
        let own = if strength < 1.0 {
            Some(gram(&features)?)
        } else {
            None
        };
        let target = |t: &Tensor| match &own {
            Some(g) => super::mix_targets(g, t, strength),
            None => Ok(t.clone()),
        };
        let mixed = match targets {
            Targets::One(t) => self.ins.forward(&features, &target(t)?)?,
            Targets::Masked {
                first,
                second,
                mask,
            } => {
                let (_, _, h, w) = features.dims4()?;
                let m = super::resize_mask(mask, h, w)?.to_dtype(features.dtype())?;
                let y1 = self.ins.forward(&features, &target(first)?)?;
                let y2 = self.ins.forward(&features, &target(second)?)?;
                (y1.broadcast_mul(&m)? + y2.broadcast_mul(&m.affine(-1.0, 1.0)?)?)?
            }
        };
        self.decode(&mixed, xs.dims4()?)
    }

    /// The CPU executor, or an error saying that tiles need it.
    fn tile_executor(&self) -> Result<&CpuNet> {
        match self.cpu.as_deref() {
            Some(cpu) => Ok(cpu),
            None => bail!(
                "stylising in tiles needs the network in f32 on the CPU (it is {:?} on {})",
                self.dtype(),
                if self.device().is_cpu() {
                    "the CPU"
                } else {
                    "a GPU"
                }
            ),
        }
    }

    /// Whether [`MsgNet::whole_stats`] and [`MsgNet::forward_tile`] can run (the network is
    /// f32 on the CPU).
    pub fn can_tile(&self) -> bool {
        self.cpu.is_some()
    }

    /// Frees the workspace kept for the next frame (before a tiled pass, which brings its own).
    pub fn release_workspace(&self) {
        if let Some(cpu) = &self.cpu {
            drop(cpu.take_workspace());
        }
    }

    /// The thumbnail pass of a tiled picture: runs [`MsgNet::forward_with`] on `xs` (the whole
    /// picture, downscaled) and keeps what tiles need to be normalised like the whole picture:
    /// every instance norm's statistics and, with `strength < 1`, the content's Gram matrix.
    /// `ws`: the workspace the tiles use next (memory is not freed and taken again between).
    pub fn whole_stats(
        &self,
        ws: &mut Workspace,
        xs: &Tensor,
        targets: Targets,
        strength: f64,
    ) -> Result<WholeStats> {
        check_strength(strength)?;
        check_size(xs)?;
        let cpu = self.tile_executor()?;
        ws.set_norms(NormStats::Record(Vec::new()));
        let out = self.forward_cpu(cpu, ws, xs, targets, strength, None);
        let recorded = ws.take_norms();
        let (_, own) = out?;
        let NormStats::Record(norms) = recorded? else {
            bail!("norm statistics: the thumbnail pass did not record")
        };
        Ok(WholeStats {
            norms: Arc::new(norms),
            own,
        })
    }

    /// One tile of a tiled picture: [`MsgNet::forward_with`] on `xs` with the instance norm
    /// statistics (and the content Gram) of the whole picture's thumbnail pass, in `ws`.
    pub fn forward_tile(
        &self,
        ws: &mut Workspace,
        xs: &Tensor,
        targets: Targets,
        strength: f64,
        whole: &WholeStats,
    ) -> Result<Tensor> {
        check_strength(strength)?;
        check_size(xs)?;
        let cpu = self.tile_executor()?;
        let own = match (&whole.own, strength < 1.0) {
            (_, false) => None,
            (Some(g), true) => Some(g),
            (None, true) => bail!(
                "the thumbnail pass ran at full strength and kept no content Gram for strength \
                 {strength}"
            ),
        };
        ws.set_norms(NormStats::Replay {
            stats: whole.norms.clone(),
            next: 0,
        });
        let out = self.forward_cpu(cpu, ws, xs, targets, strength, own);
        let replayed = ws.take_norms();
        let (out, _) = out?;
        replayed?;
        Ok(out)
    }

    /// [`MsgNet::forward_with`] through the CPU executor; `own`: the content's Gram matrix for
    /// `strength < 1` when given (a tile's comes from the whole picture's thumbnail). Returns
    /// the output and the content Gram it used.
    fn forward_cpu(
        &self,
        cpu: &CpuNet,
        ws: &mut Workspace,
        xs: &Tensor,
        targets: Targets,
        strength: f64,
        own: Option<&Tensor>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (_, _, h, w) = xs.dims4()?;
        let input = xs.flatten_all()?.to_vec1::<f32>()?;
        cpu.encode(ws, &input, h, w)?;
        drop(input);
        let own = match (strength < 1.0, own) {
            (false, _) => None,
            (true, Some(g)) => Some(g.clone()),
            (true, None) => Some(gram(&ws.activation()?)?),
        };
        let mixing = |t: &Tensor| -> Result<Vec<f32>> {
            let t = match &own {
                Some(g) => super::mix_targets(g, t, strength)?,
                None => t.clone(),
            };
            self.ins.mixing_matrix(&t)?.flatten_all()?.to_vec1::<f32>()
        };
        match targets {
            Targets::One(t) => cpu.inspire(ws, &mixing(t)?, None)?,
            Targets::Masked {
                first,
                second,
                mask,
            } => {
                let (_, fh, fw) = ws.shape();
                let m = super::resize_mask(mask, fh, fw)?
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                cpu.inspire(ws, &mixing(first)?, Some((&mixing(second)?, &m)))?
            }
        }
        Ok((cpu.decode(ws, h, w)?, own))
    }

    /// Multiply-adds of one forward pass at `h x w` (the reference's count: upsampling 1x1
    /// convolutions counted at full size), without the style target.
    pub fn macs(&self, h: usize, w: usize) -> Result<u64> {
        let (mut total, mut h, mut w) = self.model1.macs(h, w)?;
        total += self.ins.macs(h, w);
        for b in &self.blocks {
            let (m, h2, w2) = b.macs(h, w)?;
            (total, h, w) = (total + m, h2, w2);
        }
        let (m1, h1, w1) = self.up1.macs(h, w)?;
        let (m2, h2, w2) = self.up2.macs(h1, w1)?;
        let (m3, _, _) = self.out_conv.macs(h2, w2)?;
        Ok(total + m1 + m2 + m3)
    }
}

fn check_strength(strength: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&strength) {
        bail!("the strength must be between 0 and 1, got {strength}")
    }
    Ok(())
}

/// What the tiles of a picture take from its thumbnail pass ([`MsgNet::whole_stats`]): each
/// instance norm's statistics, and the content's Gram matrix for `strength < 1`.
#[derive(Debug, Clone)]
pub struct WholeStats {
    norms: Arc<NormRecord>,
    own: Option<Tensor>,
}

impl WholeStats {
    /// How many norms were recorded.
    pub fn norms(&self) -> usize {
        self.norms.len()
    }
}

fn check_size(xs: &Tensor) -> Result<()> {
    let (_, c, h, w) = xs.dims4()?;
    if c != 3 {
        bail!("MSG-Net takes 3-channel (BGR) images, got {c} channels")
    }
    if h < MIN_SIDE || w < MIN_SIDE {
        bail!("the image is {w}x{h}; MSG-Net needs at least {MIN_SIDE}x{MIN_SIDE} pixels")
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// MSGNET.md: about 13.2 G multiply-adds at 256x256 and 61.9 G at 640x480 for the pretrained
    /// shape (tools/msgnet.py counts 13.20 G and 61.85 G with PyTorch hooks).
    #[test]
    fn multiply_adds_match_the_reference_count() {
        let net = crate::model::random(Config::PRETRAINED, &Device::Cpu, DType::F32).unwrap();
        let g = |h, w| net.macs(h, w).unwrap() as f64 / 1e9;
        assert!((g(256, 256) - 13.20).abs() < 0.01, "{}", g(256, 256));
        assert!((g(480, 640) - 61.85).abs() < 0.01, "{}", g(480, 640));
    }

    #[test]
    fn config_is_inferred_from_key_shapes() {
        // ngf 64, 2 blocks, widths c0 8, p1 4, u1 6, u2 2, kernels 5 and 3.
        let shapes = |k: &str| -> Option<Vec<usize>> {
            match k {
                "ins.weight" => Some(vec![1, 256, 256]),
                "model.0.0.conv2d.weight" => Some(vec![8, 3, 5, 5]),
                "model1.3.conv_block.2.weight" => Some(vec![4, 8, 1, 1]),
                "model.2.conv_block.2.weight" | "model.3.conv_block.2.weight" => {
                    Some(vec![64, 256, 1, 1])
                }
                "model.4.conv_block.2.weight" => Some(vec![6, 256, 1, 1]),
                "model.4.residual_layer.conv2d.weight" => Some(vec![24, 256, 1, 1]),
                "model.5.conv_block.2.weight" => Some(vec![2, 24, 1, 1]),
                "model.5.residual_layer.conv2d.weight" => Some(vec![8, 24, 1, 1]),
                "model.8.conv2d.weight" => Some(vec![3, 8, 3, 3]),
                _ => None,
            }
        };
        let widths = Widths {
            c0: 8,
            p1: 4,
            u1: 6,
            u2: 2,
            k_first: 5,
            k_last: 3,
        };
        assert_eq!(
            Config::infer(shapes),
            Ok(Config {
                ngf: 64,
                blocks: 2,
                widths
            })
        );
        let bad = |k: &str| (k == "ins.weight").then(|| vec![1, 30, 31]);
        assert!(Config::infer(bad).unwrap_err().contains("[1, 30, 31]"));
        // A missing or malformed width names its key.
        let no_last = |k: &str| (k != "model.8.conv2d.weight").then(|| shapes(k)).flatten();
        let e = Config::infer(no_last).unwrap_err();
        assert!(e.contains("missing key model.8.conv2d.weight"), "{e}");
        let even = |k: &str| match k {
            "model.0.0.conv2d.weight" => Some(vec![8, 3, 4, 4]),
            _ => shapes(k),
        };
        let e = Config::infer(even).unwrap_err();
        assert!(
            e.contains("model1.0.conv2d.weight") && e.contains("odd"),
            "{e}"
        );
        let flat = |k: &str| match k {
            "model1.3.conv_block.2.weight" => Some(vec![4, 8]),
            _ => shapes(k),
        };
        let e = Config::infer(flat).unwrap_err();
        assert!(
            e.contains("model1.3.conv_block.2.weight has shape [4, 8]"),
            "{e}"
        );
    }

    fn picture(h: usize, w: usize) -> Tensor {
        let v: Vec<f32> = (0..3 * h * w)
            .map(|i| ((i as f32 * 0.013).sin() * 0.5 + 0.5) * 255.0)
            .collect();
        Tensor::from_vec(v, (1, 3, h, w), &Device::Cpu).unwrap()
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// Thumbnail instance normalisation at its fixed point: tiles replaying the statistics that
    /// the same picture recorded give exactly the plain pass, for one style, at a lower
    /// strength (the content Gram comes from the recording) and with two styles and a mask.
    #[test]
    fn replaying_a_recording_of_the_same_picture_is_the_plain_pass_exactly() {
        let dev = Device::Cpu;
        let net = crate::model::random(Config::reference(8, 2), &dev, DType::F32).unwrap();
        let x = picture(36, 52);
        let style = net.style_target(&picture(32, 32)).unwrap();
        let other = net.style_target(&picture(24, 40)).unwrap();
        let mask = crate::style::split_mask(crate::style::Split::Vertical, 36, 52, &dev).unwrap();
        let cases = [
            (Targets::One(&style), 1.0),
            (Targets::One(&style), 0.4),
            (
                Targets::Masked {
                    first: &style,
                    second: &other,
                    mask: &mask,
                },
                0.7,
            ),
        ];
        for (targets, strength) in cases {
            let plain = net.forward_with(&x, targets, strength).unwrap();
            let whole = net
                .whole_stats(&mut Workspace::default(), &x, targets, strength)
                .unwrap();
            // The input conv, 3 per block (2 down, 2 residual, 2 up), the output's.
            assert_eq!(whole.norms(), 1 + 3 * 6 + 1);
            let mut ws = Workspace::default();
            let tiled = net
                .forward_tile(&mut ws, &x, targets, strength, &whole)
                .unwrap();
            assert_eq!(values(&plain), values(&tiled), "strength {strength}");
            // A second tile in the same workspace replays from the start again.
            let again = net
                .forward_tile(&mut ws, &x, targets, strength, &whole)
                .unwrap();
            assert_eq!(values(&plain), values(&again));
        }
        // Another picture's statistics do change the result (they are applied, not ignored).
        let whole = net
            .whole_stats(
                &mut Workspace::default(),
                &picture(40, 40),
                Targets::One(&style),
                1.0,
            )
            .unwrap();
        let other_stats = net
            .forward_tile(
                &mut Workspace::default(),
                &x,
                Targets::One(&style),
                1.0,
                &whole,
            )
            .unwrap();
        let plain = net.forward_with(&x, Targets::One(&style), 1.0).unwrap();
        assert_ne!(values(&plain), values(&other_stats));
        // Recorded at full strength: no content Gram for a lower strength.
        let err = net
            .forward_tile(
                &mut Workspace::default(),
                &x,
                Targets::One(&style),
                0.5,
                &whole,
            )
            .unwrap_err();
        assert!(err.to_string().contains("content Gram"), "{err}");
    }

    /// A replay that does not match the pass is an error (the count checks: `cpu.rs`).
    #[test]
    fn a_mismatched_replay_is_an_error() {
        let dev = Device::Cpu;
        let x = picture(32, 32);
        let two = crate::model::random(Config::reference(8, 2), &dev, DType::F32).unwrap();
        let one = crate::model::random(Config::reference(8, 1), &dev, DType::F32).unwrap();
        let wide = crate::model::random(Config::reference(16, 2), &dev, DType::F32).unwrap();
        let target = |n: &MsgNet| n.style_target(&picture(16, 16)).unwrap();
        let stats = |n: &MsgNet| {
            n.whole_stats(&mut Workspace::default(), &x, Targets::One(&target(n)), 1.0)
                .unwrap()
        };
        let replay = |n: &MsgNet, s: &WholeStats| {
            n.forward_tile(
                &mut Workspace::default(),
                &x,
                Targets::One(&target(n)),
                1.0,
                s,
            )
            .unwrap_err()
            .to_string()
        };
        // After the residual blocks one network is in its decoder while the other is not.
        let e = replay(&two, &stats(&one));
        assert!(
            e.contains("norm 11 was recorded over 32 channels, this pass has 8"),
            "{e}"
        );
        let e = replay(&one, &stats(&two));
        assert!(
            e.contains("norm 11 was recorded over 8 channels, this pass has 32"),
            "{e}"
        );
        let e = replay(&wide, &stats(&two));
        assert!(
            e.contains("was recorded over 8 channels, this pass has 16"),
            "{e}"
        );
    }
}
