//! Where the network's tensors come from: a loaded state dict (with the reference file's aliases
//! and precise errors), or random weights for benchmarks.

use candle_core::{DType, Device, Error, Result, Shape, Tensor};
use candle_nn::{var_builder::SimpleBackend, Init};

use super::weights::{RawTensor, StateDict};

/// Keys that the reference file stores twice: `model.0` is the same module as `model1`, and
/// `model.1` the same as `ins`. Either spelling is accepted.
pub fn alias(name: &str) -> Option<String> {
    if let Some(rest) = name.strip_prefix("model1.") {
        Some(format!("model.0.{rest}"))
    } else if let Some(rest) = name.strip_prefix("model.0.") {
        Some(format!("model1.{rest}"))
    } else if name == "ins.weight" {
        Some("model.1.weight".into())
    } else if name == "model.1.weight" {
        Some("ins.weight".into())
    } else {
        None
    }
}

/// Serves a state dict's tensors by key, checking shapes; errors name the file and the key.
pub struct StateDictBackend {
    file: String,
    state: StateDict,
}

impl StateDictBackend {
    pub fn new(file: impl Into<String>, state: StateDict) -> Self {
        Self {
            file: file.into(),
            state,
        }
    }

    pub fn lookup(&self, name: &str) -> Option<&RawTensor> {
        if StateDict::is_running_stat(name) {
            return None;
        }
        self.state
            .tensors
            .get(name)
            .or_else(|| alias(name).and_then(|a| self.state.tensors.get(&a)))
    }
}

impl SimpleBackend for StateDictBackend {
    fn get(&self, s: Shape, name: &str, _: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let raw = self.lookup(name).ok_or_else(|| {
            Error::Msg(format!(
                "{}: missing key {name} (expected {:?})",
                self.file,
                s.dims()
            ))
        })?;
        if raw.shape != s.dims() {
            return Err(Error::Msg(format!(
                "{}: key {name} has shape {:?}, expected {:?}",
                self.file,
                raw.shape,
                s.dims()
            )));
        }
        self.get_unchecked(name, dtype, dev)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, dev: &Device) -> Result<Tensor> {
        let raw = self
            .lookup(name)
            .ok_or_else(|| Error::Msg(format!("{}: missing key {name}", self.file)))?;
        let data = raw
            .to_f32()
            .map_err(|e| Error::Msg(format!("{}: key {name}: {e}", self.file)))?;
        Tensor::from_vec(data, raw.shape.as_slice(), dev)?.to_dtype(dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.lookup(name).is_some()
    }
}

/// Uniform random weights in PyTorch's default range (+-1/sqrt(fan_in)), for benchmarks.
pub struct RandomBackend;

impl SimpleBackend for RandomBackend {
    fn get(&self, s: Shape, _: &str, _: Init, dtype: DType, dev: &Device) -> Result<Tensor> {
        let dims = s.dims();
        let fan_in: usize = dims.iter().skip(1).product::<usize>().max(1);
        let bound = 1.0 / (fan_in as f64).sqrt();
        Tensor::rand(-bound as f32, bound as f32, s, dev)?.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> Result<Tensor> {
        Err(Error::Msg(format!(
            "random weights have no shape for {name}"
        )))
    }

    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}
