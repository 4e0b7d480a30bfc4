//! The decoded form of a weight file: raw little-endian tensors by key.

use std::collections::BTreeMap;
use std::fmt;

use super::WeightsError;

/// The container a weight file was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// PyTorch's pre-1.6 stream of pickles (`torch.save(..., _use_new_zipfile_serialization=False)`).
    Legacy,
    /// PyTorch's zip archive (>= 1.6).
    TorchZip,
    /// Hugging Face safetensors.
    Safetensors,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Legacy => "PyTorch legacy (pre-1.6)",
            Format::TorchZip => "PyTorch zip",
            Format::Safetensors => "safetensors",
        })
    }
}

/// Element type of a stored tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl DType {
    pub fn size_in_bytes(&self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 | DType::Bool => 1,
        }
    }

    pub fn is_float(&self) -> bool {
        matches!(self, DType::F32 | DType::F64 | DType::F16 | DType::BF16)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I64 => "i64",
            DType::I32 => "i32",
            DType::I16 => "i16",
            DType::I8 => "i8",
            DType::U8 => "u8",
            DType::Bool => "bool",
        })
    }
}

/// A tensor as stored: contiguous, row-major, little-endian bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawTensor {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub data: Vec<u8>,
}

impl RawTensor {
    /// Number of elements (1 for a scalar). Saturates instead of overflowing.
    pub fn numel(&self) -> usize {
        self.shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .unwrap_or(usize::MAX)
    }

    /// The values as f32 (f64 is rounded, f16/bf16 widened). Integer tensors are an error.
    pub fn to_f32(&self) -> Result<Vec<f32>, WeightsError> {
        let expected = self.numel() as u128 * self.dtype.size_in_bytes() as u128;
        if expected != self.data.len() as u128 {
            return Err(WeightsError::BadLength {
                dtype: self.dtype,
                shape: self.shape.clone(),
                expected,
                actual: self.data.len(),
            });
        }
        let d = &self.data;
        Ok(match self.dtype {
            DType::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F64 => d
                .chunks_exact(8)
                .map(|c| {
                    f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                })
                .collect(),
            DType::F16 => d
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::BF16 => d
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => return Err(WeightsError::NotFloat { dtype: other }),
        })
    }
}

/// Every tensor of a weight file, by state-dict key.
#[derive(Debug, Clone, PartialEq)]
pub struct StateDict {
    pub format: Format,
    pub tensors: BTreeMap<String, RawTensor>,
}

impl StateDict {
    /// BatchNorm/InstanceNorm running statistics, which inference with instance norm ignores.
    pub fn is_running_stat(key: &str) -> bool {
        key.ends_with(".running_mean")
            || key.ends_with(".running_var")
            || key.ends_with(".num_batches_tracked")
    }

    /// Learned parameters: every tensor except running statistics.
    pub fn params(&self) -> impl Iterator<Item = (&String, &RawTensor)> {
        self.tensors
            .iter()
            .filter(|(k, _)| !Self::is_running_stat(k))
    }
}
