//! MSG-Net on candle: layers, the network, and weight loading.

mod backend;
pub mod cpu;
mod layers;
mod net;
mod targets;
pub mod tiled;
pub mod weights;

use sha2::Digest;
use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

pub use backend::{alias, RandomBackend, StateDictBackend};
pub use cpu::Precision;
pub use layers::{gram, Inspiration};
pub use net::{Config, MsgNet, Targets, WholeStats, Widths, MIN_SIDE};
pub use targets::{mix_targets, resize_mask};
pub use weights::{Format, StateDict, WeightsError};

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("{file}: {msg}")]
    Structure { file: String, msg: String },
    #[error("{0}")]
    Candle(#[from] candle_core::Error),
}

/// A network with the file it came from.
pub struct LoadedModel {
    pub net: MsgNet,
    pub format: Format,
    /// SHA-256 of the file's bytes, lowercase hex: names the weights in the style-target cache.
    pub sha256: String,
}

/// Builds the network from a state dict already read from `file` (used in error messages).
pub fn from_state_dict(
    file: &str,
    state: StateDict,
    device: &Device,
    dtype: DType,
) -> Result<MsgNet, ModelError> {
    let backend = StateDictBackend::new(file, state);
    let config = infer_config(&backend, file)?;
    let vb = VarBuilder::from_backend(Box::new(backend), dtype, device.clone());
    Ok(MsgNet::new(vb, config)?)
}

fn infer_config(backend: &StateDictBackend, file: &str) -> Result<Config, ModelError> {
    Config::infer(|k| backend.lookup(k).map(|t| t.shape.clone())).map_err(|msg| {
        ModelError::Structure {
            file: file.to_string(),
            msg,
        }
    })
}

/// The keys the network reads from `backend`, in reading order, under their canonical names
/// (`model1.*`, `ins.weight`, `model.N.*` for N >= 2). Fails like loading would.
pub fn canonical_keys(backend: &StateDictBackend, file: &str) -> Result<Vec<String>, ModelError> {
    struct Recorder<'a> {
        inner: &'a StateDictBackend,
        names: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    }
    impl candle_nn::var_builder::SimpleBackend for Recorder<'_> {
        fn get(
            &self,
            s: candle_core::Shape,
            name: &str,
            h: candle_nn::Init,
            dtype: DType,
            dev: &Device,
        ) -> candle_core::Result<candle_core::Tensor> {
            if let Ok(mut names) = self.names.lock() {
                names.push(name.to_string());
            }
            self.inner.get(s, name, h, dtype, dev)
        }
        fn get_unchecked(
            &self,
            name: &str,
            dtype: DType,
            dev: &Device,
        ) -> candle_core::Result<candle_core::Tensor> {
            self.inner.get_unchecked(name, dtype, dev)
        }
        fn contains_tensor(&self, name: &str) -> bool {
            self.inner.contains_tensor(name)
        }
    }
    let config = infer_config(backend, file)?;
    let names = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let recorder = Recorder {
        inner: backend,
        names: names.clone(),
    };
    let vb = VarBuilder::from_backend(Box::new(recorder), DType::F32, Device::Cpu);
    MsgNet::new(vb, config)?;
    let names = names.lock().map(|n| n.clone()).unwrap_or_default();
    Ok(names)
}

/// Loads MSG-Net weights from a legacy `.model`, a zip `.pth` or a `.safetensors` file.
pub fn load(path: &Path, device: &Device, dtype: DType) -> Result<LoadedModel, ModelError> {
    load_bytes(
        &weights::read_bounded(path)?,
        &path.display().to_string(),
        device,
        dtype,
    )
}

/// Loads MSG-Net weights held in memory; `name` stands for the file in messages.
pub fn load_bytes(
    bytes: &[u8],
    name: &str,
    device: &Device,
    dtype: DType,
) -> Result<LoadedModel, ModelError> {
    let sha256 = crate::hex(&sha2::Sha256::digest(bytes));
    let state = weights::load_bytes(bytes, name)?;
    let format = state.format;
    let net = from_state_dict(name, state, device, dtype)?;
    Ok(LoadedModel {
        net,
        format,
        sha256,
    })
}

/// A network of the given shape with random weights (benchmarks, tests).
pub fn random(config: Config, device: &Device, dtype: DType) -> Result<MsgNet, ModelError> {
    let vb = VarBuilder::from_backend(Box::new(RandomBackend), dtype, device.clone());
    Ok(MsgNet::new(vb, config)?)
}
