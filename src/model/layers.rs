//! MSG-Net's building blocks, named as in the reference `net.py`; `vb.pp(..)` segments spell the
//! PyTorch state-dict keys.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::VarBuilder;

use crate::ops::{add_upsampled, conv2d, instance_norm, ConvGeometry};

/// Multiply-adds of a convolution producing `cout x ho x wo` from `cin` channels.
fn conv_macs(cout: usize, cin: usize, k: usize, ho: usize, wo: usize) -> u64 {
    (cout * cin * k * k) as u64 * (ho * wo) as u64
}

/// A weight and bias applied with a fixed geometry: PyTorch `Conv2d`, possibly after an upsample
/// and a reflection pad.
#[derive(Debug, Clone)]
pub struct Conv {
    pub(super) weight: Tensor,
    pub(super) bias: Tensor,
    pub(super) geometry: ConvGeometry,
}

impl Conv {
    /// A plain `nn.Conv2d(cin, cout, k, stride)` without padding: keys `<vb>.weight`, `<vb>.bias`.
    pub fn new(vb: VarBuilder, cin: usize, cout: usize, k: usize, stride: usize) -> Result<Self> {
        Self::with_geometry(vb, cin, cout, ConvGeometry::new(k, stride, 0, 1))
    }

    fn with_geometry(vb: VarBuilder, cin: usize, cout: usize, g: ConvGeometry) -> Result<Self> {
        let weight = vb.get((cout, cin, g.kernel, g.kernel), "weight")?;
        let bias = vb.get(cout, "bias")?;
        Ok(Self {
            weight,
            bias,
            geometry: g,
        })
    }

    fn channels(&self) -> (usize, usize) {
        let d = self.weight.dims();
        (d[1], d[0])
    }

    /// Multiply-adds for an `h x w` input, and the output size.
    pub fn macs(&self, h: usize, w: usize) -> Result<(u64, usize, usize)> {
        let (cin, cout) = self.channels();
        let (ho, wo) = self.geometry.output_hw(h, w)?;
        Ok((conv_macs(cout, cin, self.geometry.kernel, ho, wo), ho, wo))
    }
}

impl Module for Conv {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        conv2d(xs, &self.weight, &self.bias, self.geometry)
    }
}

/// `ConvLayer(cin, cout, k, stride)`: ReflectionPad2d(k/2) then Conv2d. Keys `<vb>.conv2d.*`.
pub fn conv_layer(
    vb: VarBuilder,
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
) -> Result<Conv> {
    Conv::with_geometry(
        vb.pp("conv2d"),
        cin,
        cout,
        ConvGeometry::new(k, stride, k / 2, 1),
    )
}

/// `UpsampleConvLayer(cin, cout, k, stride=1, upsample)`: nearest upsample, reflection pad k/2,
/// Conv2d. Keys `<vb>.conv2d.*`.
#[derive(Debug, Clone)]
pub struct UpsampleConvLayer {
    pub(super) conv: Conv,
    pub(super) upsample: usize,
}

impl UpsampleConvLayer {
    pub fn new(vb: VarBuilder, cin: usize, cout: usize, k: usize, upsample: usize) -> Result<Self> {
        // A 1x1 convolution commutes with nearest upsampling: run it on the small map and
        // upsample afterwards, four times less work for the same numbers.
        let g = if k == 1 {
            ConvGeometry::new(1, 1, 0, 1)
        } else {
            ConvGeometry::new(k, 1, k / 2, upsample)
        };
        let conv = Conv::with_geometry(vb.pp("conv2d"), cin, cout, g)?;
        Ok(Self { conv, upsample })
    }

    /// For a 1x1 layer, the output before its upsampling (see `forward`).
    fn forward_low_res(&self, xs: &Tensor) -> Result<Option<Tensor>> {
        if self.conv.geometry.kernel == 1 && self.upsample > 1 {
            Ok(Some(self.conv.forward(xs)?))
        } else {
            Ok(None)
        }
    }

    /// Multiply-adds as the reference computes them (upsample, then convolve), and the output size.
    pub fn macs(&self, h: usize, w: usize) -> Result<(u64, usize, usize)> {
        if self.conv.geometry.kernel == 1 {
            let (m, ho, wo) = self.conv.macs(h, w)?;
            let f = (self.upsample * self.upsample) as u64;
            Ok((m * f, ho * self.upsample, wo * self.upsample))
        } else {
            self.conv.macs(h, w)
        }
    }
}

impl Module for UpsampleConvLayer {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        match self.forward_low_res(xs)? {
            Some(small) => {
                let (_, _, h, w) = small.dims4()?;
                small.upsample_nearest2d(h * self.upsample, w * self.upsample)
            }
            None => self.conv.forward(xs),
        }
    }
}

// Indices of the weighted layers in Bottleneck's `conv_block` Sequential; 0, 1, 3, 4, 6, 7 are the
// instance norms and ReLUs, which have no weights.
const BLOCK_CONV_IN: &str = "2";
const BLOCK_CONV_MID: &str = "5";
const BLOCK_CONV_OUT: &str = "8";
const EXPANSION: usize = 4;

/// The middle layer of a bottleneck: a strided ConvLayer, or an UpsampleConvLayer.
#[derive(Debug, Clone)]
pub(super) enum Middle {
    Conv(Conv),
    Up(UpsampleConvLayer),
}

/// `IN, ReLU, Conv2d 1x1, IN, ReLU, <middle 3x3>, IN, ReLU, Conv2d 1x1`.
#[derive(Debug, Clone)]
pub(super) struct ConvBlock {
    pub(super) conv_in: Conv,
    pub(super) middle: Middle,
    pub(super) conv_out: Conv,
}

impl ConvBlock {
    /// `vb` is the block's `conv_block` prefix; `middle` builds the layer at index 5.
    fn new(
        vb: VarBuilder,
        inplanes: usize,
        planes: usize,
        middle: impl FnOnce(VarBuilder) -> Result<Middle>,
    ) -> Result<Self> {
        Ok(Self {
            conv_in: Conv::new(vb.pp(BLOCK_CONV_IN), inplanes, planes, 1, 1)?,
            middle: middle(vb.pp(BLOCK_CONV_MID))?,
            conv_out: Conv::new(vb.pp(BLOCK_CONV_OUT), planes, planes * EXPANSION, 1, 1)?,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let h = self.conv_in.forward(&instance_norm(xs, true)?)?;
        let h = instance_norm(&h, true)?;
        let h = match &self.middle {
            Middle::Conv(c) => c.forward(&h)?,
            Middle::Up(u) => u.forward(&h)?,
        };
        self.conv_out.forward(&instance_norm(&h, true)?)
    }

    fn macs(&self, h: usize, w: usize) -> Result<(u64, usize, usize)> {
        let (m1, h1, w1) = self.conv_in.macs(h, w)?;
        let (m2, h2, w2) = match &self.middle {
            Middle::Conv(c) => c.macs(h1, w1)?,
            Middle::Up(u) => u.macs(h1, w1)?,
        };
        let (m3, h3, w3) = self.conv_out.macs(h2, w2)?;
        Ok((m1 + m2 + m3, h3, w3))
    }
}

/// Pre-activation residual block: `residual(x) + conv_block(x)` (expansion 4).
#[derive(Debug, Clone)]
pub struct Bottleneck {
    pub(super) residual_layer: Option<Conv>,
    pub(super) conv_block: ConvBlock,
}

impl Bottleneck {
    /// `Bottleneck(inplanes, planes, stride, downsample)`; `downsample` adds the 1x1
    /// `residual_layer`.
    pub fn new(
        vb: VarBuilder,
        inplanes: usize,
        planes: usize,
        stride: usize,
        downsample: bool,
    ) -> Result<Self> {
        let residual_layer = if downsample {
            Some(Conv::new(
                vb.pp("residual_layer"),
                inplanes,
                planes * EXPANSION,
                1,
                stride,
            )?)
        } else {
            None
        };
        let conv_block = ConvBlock::new(vb.pp("conv_block"), inplanes, planes, |vb| {
            Ok(Middle::Conv(conv_layer(vb, planes, planes, 3, stride)?))
        })?;
        Ok(Self {
            residual_layer,
            conv_block,
        })
    }

    pub fn macs(&self, h: usize, w: usize) -> Result<(u64, usize, usize)> {
        let (m, ho, wo) = self.conv_block.macs(h, w)?;
        let r = match &self.residual_layer {
            Some(c) => c.macs(h, w)?.0,
            None => 0,
        };
        Ok((m + r, ho, wo))
    }
}

impl Module for Bottleneck {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let out = self.conv_block.forward(xs)?;
        match &self.residual_layer {
            Some(r) => add_upsampled(&out, &r.forward(xs)?, 1),
            None => add_upsampled(&out, xs, 1),
        }
    }
}

/// `UpBottleneck(inplanes, planes)`: upsampling residual block, x2.
#[derive(Debug, Clone)]
pub struct UpBottleneck {
    pub(super) residual_layer: UpsampleConvLayer,
    pub(super) conv_block: ConvBlock,
}

impl UpBottleneck {
    pub fn new(vb: VarBuilder, inplanes: usize, planes: usize) -> Result<Self> {
        let residual_layer =
            UpsampleConvLayer::new(vb.pp("residual_layer"), inplanes, planes * EXPANSION, 1, 2)?;
        let conv_block = ConvBlock::new(vb.pp("conv_block"), inplanes, planes, |vb| {
            Ok(Middle::Up(UpsampleConvLayer::new(
                vb, planes, planes, 3, 2,
            )?))
        })?;
        Ok(Self {
            residual_layer,
            conv_block,
        })
    }

    pub fn macs(&self, h: usize, w: usize) -> Result<(u64, usize, usize)> {
        let (m, ho, wo) = self.conv_block.macs(h, w)?;
        Ok((m + self.residual_layer.macs(h, w)?.0, ho, wo))
    }
}

impl Module for UpBottleneck {
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let out = self.conv_block.forward(xs)?;
        match self.residual_layer.forward_low_res(xs)? {
            Some(small) => add_upsampled(&out, &small, 2),
            None => add_upsampled(&out, &self.residual_layer.forward(xs)?, 1),
        }
    }
}

/// `Gram(F) = F' F'^T / (C*H*W)` with `F' = F.view(B, C, H*W)`, in f32 at least: the sum over
/// H*W overflows f16 for any real style image.
pub fn gram(features: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = features.dims4()?;
    let dtype = match features.dtype() {
        DType::F16 | DType::BF16 => DType::F32,
        d => d,
    };
    let f = features.to_dtype(dtype)?.reshape((b, c, h * w))?;
    let g = f.matmul(&f.t()?)?;
    g / (c * h * w) as f64
}

/// The CoMatch layer: `P = W G`, `Y = P^T X` with the target Gram `G` given at run time.
#[derive(Debug, Clone)]
pub struct Inspiration {
    weight: Tensor,
}

impl Inspiration {
    pub fn new(vb: VarBuilder, channels: usize) -> Result<Self> {
        Ok(Self {
            weight: vb.get((1, channels, channels), "weight")?,
        })
    }

    pub fn channels(&self) -> usize {
        self.weight.dims()[1]
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// `P^T` for a target `G` (B, C, C): the matrix that mixes the channels of `X`.
    pub fn mixing_matrix(&self, target: &Tensor) -> Result<Tensor> {
        let p = self
            .weight
            .broadcast_matmul(&target.to_dtype(self.weight.dtype())?)?;
        p.transpose(1, 2)?.contiguous()
    }

    /// `Y = P^T X` for features `X` (B, C, H, W).
    pub fn forward(&self, xs: &Tensor, target: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = xs.dims4()?;
        let pt = self.mixing_matrix(target)?;
        let y = pt.broadcast_matmul(&xs.reshape((b, c, h * w))?)?;
        y.reshape((b, c, h, w))
    }

    pub fn macs(&self, h: usize, w: usize) -> u64 {
        let c = self.channels() as u64;
        c * c * (h * w) as u64
    }
}
