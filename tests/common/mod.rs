//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `../shared` beside the checkout (CI has it, a fresh clone does not). Returns `None` and says
/// why when it is missing, unless STYLECAM_REQUIRE_SHARED=1 makes that a failure.
pub fn shared_dir(test: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("STYLECAM_REQUIRE_SHARED").as_deref() == Ok("1") {
        panic!("{test}: ../shared is missing and STYLECAM_REQUIRE_SHARED=1");
    }
    eprintln!("SKIPPED {test}: ../shared (test data beside the checkout) is not there");
    None
}

/// Reads one tensor from a safetensors fixture.
pub fn read_tensor(file: &Path, key: &str) -> Tensor {
    let all = candle_core::safetensors::load(file, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    all.get(key)
        .unwrap_or_else(|| panic!("{}: no tensor {key}", file.display()))
        .clone()
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// The `stylecam` binary built for this test run. Its data dir (target cache, downloads) is a
/// folder of this test process under the system's temp dir, never the user's own; tests that
/// care pass `--data-dir`.
pub fn stylecam() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_stylecam"));
    let data = std::env::temp_dir().join(format!("stylecam-test-data-{}", std::process::id()));
    cmd.env("STYLECAM_DATA_DIR", data)
        .env(
            "STYLECAM_CONFIG_DIR",
            std::env::temp_dir().join("stylecam-test-config"),
        )
        .env_remove("STYLECAM_LOG");
    cmd
}

/// A file of the PyTorch parity fixtures (`tests/fixtures/parity`).
pub fn parity_fixture(name: &str) -> PathBuf {
    fixtures().join("parity").join(name)
}

/// `stylecam stylize` on the tiny fixture model with a small style size (fast); the caller adds
/// the style, photos and output.
pub fn stylize_tiny() -> std::process::Command {
    let mut c = stylecam();
    c.args([
        "stylize",
        "--device",
        "cpu",
        "--style-size",
        "32",
        "--model",
    ])
    .arg(parity_fixture("tiny_ngf8_b2.safetensors"));
    c
}

/// The names of the entries of `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

pub mod server;
