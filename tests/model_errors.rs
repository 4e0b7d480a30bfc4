//! Weight files that parse but do not fit the network: every error names the file, the key and
//! the expected shape, and nothing panics.

mod common;

use candle_core::{DType, Device};
use stylecam::model::{self, weights};

fn tiny() -> Vec<(String, weights::RawTensor)> {
    let file = common::fixtures().join("parity/tiny_ngf8_b2.safetensors");
    weights::load(&file).unwrap().tensors.into_iter().collect()
}

fn write(
    dir: &tempfile::TempDir,
    name: &str,
    t: &[(String, weights::RawTensor)],
) -> std::path::PathBuf {
    let p = dir.path().join(name);
    weights::save_safetensors(&p, t).unwrap();
    p
}

fn load_err(p: &std::path::Path) -> String {
    match model::load(p, &Device::Cpu, DType::F32) {
        Ok(_) => panic!("{} loaded", p.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn missing_key_names_file_key_and_shape() {
    let dir = tempfile::tempdir().unwrap();
    let t: Vec<_> = tiny()
        .into_iter()
        .filter(|(k, _)| k != "model.2.conv_block.5.conv2d.weight")
        .collect();
    let p = write(&dir, "missing.safetensors", &t);
    let err = load_err(&p);
    assert!(err.contains("missing.safetensors"), "{err}");
    assert!(
        err.contains("missing key model.2.conv_block.5.conv2d.weight (expected [8, 8, 3, 3])"),
        "{err}"
    );
}

#[test]
fn wrong_shape_names_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = tiny();
    for (k, v) in &mut t {
        if k == "model1.0.conv2d.bias" {
            // 64 values reshaped to 32x2: same bytes, wrong shape.
            v.shape = vec![32, 2];
        }
    }
    let p = write(&dir, "shape.safetensors", &t);
    let err = load_err(&p);
    assert!(err.contains("shape.safetensors"), "{err}");
    assert!(
        err.contains("model1.0.conv2d.bias has shape [32, 2], expected [64]"),
        "{err}"
    );
}

#[test]
fn a_file_without_the_inspiration_layer_is_not_msgnet() {
    let dir = tempfile::tempdir().unwrap();
    let t: Vec<_> = tiny()
        .into_iter()
        .filter(|(k, _)| k != "ins.weight")
        .collect();
    let p = write(&dir, "other.safetensors", &t);
    let err = load_err(&p);
    assert!(
        err.contains("other.safetensors") && err.contains("missing key ins.weight"),
        "{err}"
    );
}

#[test]
fn legacy_aliases_alone_are_enough() {
    // Files that only carry the `model.0.*` / `model.1.weight` spelling load the same network.
    let dir = tempfile::tempdir().unwrap();
    let t: Vec<_> = tiny()
        .into_iter()
        .map(|(k, v)| {
            let k = if let Some(rest) = k.strip_prefix("model1.") {
                format!("model.0.{rest}")
            } else if k == "ins.weight" {
                "model.1.weight".into()
            } else {
                k
            };
            (k, v)
        })
        .collect();
    let p = write(&dir, "aliases.safetensors", &t);
    let net = model::load(&p, &Device::Cpu, DType::F32).unwrap().net;
    assert_eq!(net.config(), model::Config::reference(8, 2));
}

#[test]
fn too_small_images_are_refused_with_the_minimum() {
    let file = common::fixtures().join("parity/tiny_ngf8_b2.safetensors");
    let net = model::load(&file, &Device::Cpu, DType::F32).unwrap().net;
    let x = candle_core::Tensor::zeros((1, 3, 4, 40), DType::F32, &Device::Cpu).unwrap();
    let err = net.style_target(&x).unwrap_err().to_string();
    assert!(
        err.contains("40x4") && err.contains("at least 5x5"),
        "{err}"
    );
    // 5x5 is the smallest that works, and keeps its size.
    let x = candle_core::Tensor::zeros((1, 3, 5, 5), DType::F32, &Device::Cpu).unwrap();
    let g = net.style_target(&x).unwrap();
    assert_eq!(net.forward(&x, &g).unwrap().dims(), &[1, 3, 5, 5]);
}
