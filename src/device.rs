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

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_falls_back_to_cpu_with_a_message() {
        let s = select(DeviceSpec::Cuda(0));
        assert!(s.device.is_cpu());
        let msg = s.fallback.unwrap();
        assert!(msg.contains("--features cuda"), "{msg}");
    }
}
