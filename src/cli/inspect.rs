//! `stylecam inspect FILE`.

use std::path::PathBuf;

use anyhow::Result;

use super::existing_file;
use crate::model::{self, weights, Config, StateDict};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A legacy .model, zip .pth or .safetensors file.
    #[arg(value_parser = existing_file)]
    pub file: PathBuf,
}

pub fn run(a: Args) -> Result<()> {
    let state = weights::load(&a.file)?;
    println!("file:    {}", a.file.display());
    println!("format:  {}", state.format);
    println!("keys:    {}", state.tensors.len());
    for (key, t) in &state.tensors {
        let note = if StateDict::is_running_stat(key) {
            "  (running stat, ignored)"
        } else {
            ""
        };
        println!("  {key:<48} {:<5} {:?}{note}", t.dtype.to_string(), t.shape);
    }
    match Config::infer(|k| state.tensors.get(k).map(|t| t.shape.clone())) {
        Ok(c) => {
            println!("ngf:     {}", c.ngf);
            println!("blocks:  {}", c.blocks);
            let w = c.widths;
            println!(
                "widths:  c0 {}, p1 {}, u1 {}, u2 {}, first kernel {}, last kernel {}",
                w.c0, w.p1, w.u1, w.u2, w.k_first, w.k_last
            );
        }
        Err(e) => println!("not MSG-Net: {e}"),
    }
    println!("params:  {}", parameter_count(&state));
    Ok(())
}

/// Parameters the network uses: tensors other than running stats, counting each storage once
/// (`model.0.*` and `model.1.weight` repeat `model1.*` and `ins.weight` in the reference file).
pub fn parameter_count(state: &StateDict) -> usize {
    state
        .params()
        .filter(|(k, _)| {
            // Skip the reference's second spelling when the first is there too.
            let repeated = k.starts_with("model.0.") || k.as_str() == "model.1.weight";
            !(repeated && model::alias(k).is_some_and(|a| state.tensors.contains_key(&a)))
        })
        .map(|(_, t)| t.numel())
        .sum()
}
