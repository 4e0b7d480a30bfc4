//! `--device auto|cpu|cuda[:N]|metal`: picking where the network runs.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

/// What the user asked for.
///
/// ```
/// use stylecam::device::DeviceSpec;
/// assert_eq!("cuda:1".parse::<DeviceSpec>(), Ok(DeviceSpec::Cuda(1)));
/// assert_eq!(DeviceSpec::Cuda(1).to_string(), "cuda:1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// CUDA if compiled in and a GPU answers, else Metal likewise, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
    Metal,
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            "metal" => Ok(Self::Metal),
            _ => match s.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(n)) => Ok(Self::Cuda(n)),
                _ => Err(format!(
                    "unknown device `{s}`: use auto, cpu, cuda, cuda:N or metal"
                )),
            },
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::Metal => write!(f, "metal"),
        }
    }
}

/// `--dtype f32|bf16|f16|auto`: the precision the network runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DtypeSpec {
    /// The fastest this device has: on the CPU bf16 where it has Intel AMX, else f32; on a
    /// GPU f32 (as before).
    #[default]
    Auto,
    F32,
    Bf16,
    /// Half precision: for GPUs (on the CPU it runs candle's slow generic path).
    F16,
}

impl FromStr for DtypeSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            "f16" => Ok(Self::F16),
            _ => Err(format!(
                "unknown precision `{s}`: use f32, bf16, f16 or auto"
            )),
        }
    }
}

impl fmt::Display for DtypeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        })
    }
}

/// Whether this CPU runs the bf16 path faster than f32: Intel AMX (AMX-BF16 tiles, with the
/// kernel's permission to use them). AVX-512 BF16 alone (`vdpbf16ps`) is not enough: on a Xeon
/// that has both, gemmkit's `vdpbf16ps` kernels ran at 0.65x our f32 GEMM (docs/PERF.md), and
/// without it bf16 operands are widened to f32 and run slower still.
pub fn cpu_has_bf16() -> bool {
    crate::ops::amx::available()
}

/// What a `--dtype` resolves to on a device: the dtype to load the weights in, the CPU
/// executor's precision, and a sentence saying why (for `auto`, and for a choice that will be
/// slow).
#[derive(Debug, Clone, PartialEq)]
pub struct DtypeChoice {
    pub dtype: candle_core::DType,
    /// `Some` on the CPU in f32: the executor's product precision.
    pub cpu: Option<crate::model::Precision>,
    pub note: Option<String>,
}

impl DtypeChoice {
    /// How to run on `device` for `spec`. `cpu_bf16` says whether the CPU has AMX
    /// (pass [`cpu_has_bf16`]; a parameter so that both answers are testable anywhere).
    pub fn resolve(spec: DtypeSpec, device: &Device, cpu_bf16: bool) -> Self {
        use crate::model::Precision as P;
        use candle_core::DType;
        let on_cpu = |p: P, note: Option<String>| Self {
            dtype: DType::F32,
            cpu: Some(p),
            note,
        };
        match (spec, device.is_cpu()) {
            (DtypeSpec::Auto, true) if cpu_bf16 => {
                on_cpu(P::Bf16, Some("auto: bf16 (this CPU has AMX)".into()))
            }
            (DtypeSpec::Auto, true) => on_cpu(
                P::F32,
                Some("auto: f32 (this CPU has no AMX, where bf16 would be slower)".into()),
            ),
            (DtypeSpec::F32, true) => on_cpu(P::F32, None),
            (DtypeSpec::Bf16, true) => on_cpu(
                P::Bf16,
                (!cpu_bf16).then(|| "bf16 on a CPU without AMX is slower than f32".into()),
            ),
            (DtypeSpec::F16, true) => Self {
                dtype: DType::F16,
                cpu: None,
                note: Some("f16 on the CPU runs candle's generic path: slow".into()),
            },
            (DtypeSpec::Auto | DtypeSpec::F32, false) => Self {
                dtype: DType::F32,
                cpu: None,
                note: None,
            },
            (DtypeSpec::Bf16, false) => Self {
                dtype: DType::BF16,
                cpu: None,
                note: None,
            },
            (DtypeSpec::F16, false) => Self {
                dtype: DType::F16,
                cpu: None,
                note: None,
            },
        }
    }

    /// A short name: `f32`, `bf16`, `f16`.
    pub fn name(&self) -> String {
        match self.cpu {
            Some(p) => p.to_string(),
            None => format!("{:?}", self.dtype).to_lowercase(),
        }
    }

    /// Puts the CPU executor's precision on a network loaded with [`DtypeChoice::dtype`].
    pub fn apply(&self, net: &mut crate::model::MsgNet) -> candle_core::Result<()> {
        match self.cpu {
            Some(p) => net.set_precision(p),
            None => Ok(()),
        }
    }
}

/// `cpu · f32`, `cuda · bf16`: where and in what precision a network runs.
pub fn describe(net: &crate::model::MsgNet) -> String {
    let precision = match net.precision() {
        Some(p) => p.to_string(),
        None => format!("{:?}", net.dtype()).to_lowercase(),
    };
    format!("{} · {precision}", name(net.device()))
}

/// The device chosen, and a note when it is not what was asked for.
pub struct Selected {
    pub device: Device,
    pub fallback: Option<String>,
}

/// A short name for a device, as printed by `bench` and the app.
pub fn name(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}

fn cuda(n: usize) -> Result<Device, String> {
    if !cfg!(feature = "cuda") {
        return Err("this build has no CUDA support (rebuild with `--features cuda`)".into());
    }
    // With cudarc's dynamic loading, a missing driver library is a panic inside cudarc, not an
    // error: catch it (silently) and fall back like any other failure.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let opened = std::panic::catch_unwind(|| Device::new_cuda(n));
    std::panic::set_hook(hook);
    match opened {
        Ok(Ok(device)) => Ok(device),
        Ok(Err(e)) => Err(format!("CUDA device {n} is not available: {e}")),
        Err(_) => Err("the CUDA driver library (libcuda.so.1) could not be loaded".into()),
    }
}

fn metal() -> Result<Device, String> {
    if !cfg!(feature = "metal") {
        return Err("this build has no Metal support (rebuild with `--features metal`)".into());
    }
    Device::new_metal(0).map_err(|e| format!("no Metal device: {e}"))
}

/// Opens the requested device, falling back to the CPU with a message rather than failing.
pub fn select(spec: DeviceSpec) -> Selected {
    let tried = match spec {
        DeviceSpec::Cpu => Ok(Device::Cpu),
        DeviceSpec::Cuda(n) => cuda(n),
        DeviceSpec::Metal => metal(),
        DeviceSpec::Auto => {
            let found = if cfg!(feature = "cuda") {
                cuda(0).ok()
            } else if cfg!(feature = "metal") {
                metal().ok()
            } else {
                None
            };
            Ok(found.unwrap_or(Device::Cpu))
        }
    };
    match tried {
        Ok(device) => Selected {
            device,
            fallback: None,
        },
        Err(why) => Selected {
            device: Device::Cpu,
            fallback: Some(format!("--device {spec}: {why}; using the CPU instead")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        assert_eq!("auto".parse(), Ok(DeviceSpec::Auto));
        assert_eq!("CPU".parse(), Ok(DeviceSpec::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceSpec::Cuda(0)));
        assert_eq!("cuda:2".parse(), Ok(DeviceSpec::Cuda(2)));
        assert_eq!("metal".parse(), Ok(DeviceSpec::Metal));
        let err = "tpu".parse::<DeviceSpec>().unwrap_err();
        assert!(err.contains("tpu") && err.contains("cuda:N"), "{err}");
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
    }

    #[test]
    fn dtype_auto_picks_bf16_only_where_the_cpu_has_it() {
        use crate::model::Precision as P;
        let cpu = Device::Cpu;
        let with = DtypeChoice::resolve(DtypeSpec::Auto, &cpu, true);
        assert_eq!(with.cpu, Some(P::Bf16));
        let without = DtypeChoice::resolve(DtypeSpec::Auto, &cpu, false);
        assert_eq!(without.cpu, Some(P::F32));
        assert!(without.note.unwrap().contains("no AMX"));
        let forced = DtypeChoice::resolve(DtypeSpec::Bf16, &cpu, false);
        assert_eq!(forced.cpu, Some(P::Bf16));
        assert!(forced.note.unwrap().contains("slower"));
        assert_eq!(
            DtypeChoice::resolve(DtypeSpec::F32, &cpu, true).cpu,
            Some(P::F32)
        );
        assert_eq!("BF16".parse(), Ok(DtypeSpec::Bf16));
        assert!("f8".parse::<DtypeSpec>().unwrap_err().contains("f32, bf16"));
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_falls_back_to_cpu_with_a_message() {
        let s = select(DeviceSpec::Cuda(0));
        assert!(s.device.is_cpu());
        let msg = s.fallback.unwrap();
        assert!(msg.contains("--features cuda"), "{msg}");
    }
}
