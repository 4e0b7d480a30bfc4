//! `stylecam parity`: compare this build's output with a PyTorch reference case on any device.
//!
//! A case file (written by `tools/make_fixtures.py` or `tools/gpu/torch_reference.py`) holds
//! `content`, `style`, and PyTorch's `features`, `gram` and raw `output` for one model.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use candle_core::{DType, IndexOp, Tensor};

use super::{bench::parse_dtype, existing_file, DeviceArg};
use crate::{device, model};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The weights the reference was computed with.
    #[arg(long, value_parser = existing_file)]
    pub model: PathBuf,
    /// A safetensors case with `content`, `style`, `features`, `gram` and `output`.
    #[arg(long, value_parser = existing_file)]
    pub case: PathBuf,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Precision to run in: f32, f16 or bf16.
    #[arg(long, default_value = "f32", value_parser = parse_dtype)]
    pub dtype: DType,
    /// Largest acceptable max |Δ| of the output on the 0..255 scale.
    #[arg(long, default_value_t = 0.05)]
    pub tol: f32,
}

fn max_abs(t: &Tensor) -> Result<f32> {
    Ok(t.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?)
}

fn diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    if a.dims() != b.dims() {
        bail!("shapes differ: {:?} vs {:?}", a.dims(), b.dims());
    }
    max_abs(&(a.to_dtype(DType::F32)? - b)?)
}

pub fn run(a: Args) -> Result<()> {
    let dev = a.device.open();
    let net = model::load(&a.model, &dev, a.dtype)?.net;
    let case = candle_core::safetensors::load(&a.case, &candle_core::Device::Cpu)
        .with_context(|| format!("reading {}", a.case.display()))?;
    let get = |k: &str| -> Result<Tensor> {
        let t = case
            .get(k)
            .with_context(|| format!("{}: no tensor `{k}`", a.case.display()))?;
        Ok(t.to_dtype(DType::F32)?)
    };
    let on_dev = |t: &Tensor| -> Result<Tensor> { Ok(t.to_device(&dev)?.to_dtype(a.dtype)?) };
    let content = get("content")?;
    let (_, _, h, w) = content.dims4()?;
    let features = net
        .encode(&on_dev(&content)?)?
        .to_device(&candle_core::Device::Cpu)?;
    let gram = net.style_target(&on_dev(&get("style")?)?)?;
    let out = net.forward(&on_dev(&content)?, &gram)?;
    let want_features = get("features")?;
    let want_gram = get("gram")?;
    let want = get("output")?.i((.., .., ..h, ..w))?;
    let d_out = diff(&out.to_device(&candle_core::Device::Cpu)?, &want)?;
    let report = serde_json::json!({
        "model": a.model.display().to_string(),
        "case": a.case.display().to_string(),
        "device": device::name(&dev),
        "dtype": format!("{:?}", a.dtype).to_lowercase(),
        "size": format!("{w}x{h}"),
        "features_max_abs_diff": diff(&features, &want_features)?,
        "features_max_abs": max_abs(&want_features)?,
        "gram_max_abs_diff": diff(&gram.to_device(&candle_core::Device::Cpu)?, &want_gram)?,
        "gram_max_abs": max_abs(&want_gram)?,
        "output_max_abs_diff": d_out,
        "tolerance": a.tol,
        "pass": d_out <= a.tol,
    });
    println!("{report}");
    if d_out > a.tol {
        bail!("output differs from the reference by {d_out} > {}", a.tol);
    }
    Ok(())
}
