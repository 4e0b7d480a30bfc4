//! `stylecam convert IN OUT.safetensors`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use candle_core::{DType, Device};

use super::existing_file;
use crate::model::{self, weights};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A legacy .model, zip .pth or .safetensors file.
    #[arg(value_parser = existing_file)]
    pub input: PathBuf,
    /// The safetensors file to write.
    pub output: PathBuf,
    /// Overwrite OUTPUT if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Writes only what the network reads: no running stats, no `model.0.*`/`model.1.weight`
/// aliases, all as f32. The result is checked by loading it back.
pub fn run(a: Args) -> Result<()> {
    if !a.force && a.output.exists() {
        bail!(
            "{} already exists (pass --force to overwrite it)",
            a.output.display()
        );
    }
    let name = a.input.display().to_string();
    let state = weights::load(&a.input)?;
    let format = state.format;
    // Building the network validates the structure and gives the canonical key list.
    let backend = model::StateDictBackend::new(name.clone(), state);
    let keys = model::canonical_keys(&backend, &name)?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let Some(t) = backend.lookup(&key) else {
            bail!("{name}: missing key {key}")
        };
        let data = t.to_f32()?;
        let bytes = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        out.push((
            key,
            weights::RawTensor {
                dtype: weights::DType::F32,
                shape: t.shape.clone(),
                data: bytes,
            },
        ));
    }
    weights::save_safetensors(&a.output, &out)?;
    let check = model::load(&a.output, &Device::Cpu, DType::F32)?;
    let c = check.net.config();
    println!(
        "{} ({format}) -> {} (safetensors): {} tensors, ngf {}, {} blocks",
        a.input.display(),
        a.output.display(),
        out.len(),
        c.ngf,
        c.blocks
    );
    Ok(())
}
