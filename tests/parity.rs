//! candle vs PyTorch, on random-weight models written by `tools/make_fixtures.py` in every format
//! (see tests/fixtures/README.md). PyTorch computed the references in float64; we run f32.
//!
//! Tolerance: max |Δ| <= 0.05 on the 0..255 output scale for the image, 1e-3 relative for the
//! encoder features and the Gram target.

mod common;

use candle_core::{DType, Device, IndexOp};
use common::{fixtures, max_abs_diff, read_tensor};
use stylecam::model;

const OUTPUT_TOL: f32 = 0.05;
/// f16 keeps 11 significant bits (a step of 0.25 at 255) through 20 layers: measured max |Δ| 4.7
/// and mean |Δ| 0.38 on this case, whose output spans -211..332. A broken path is off by tens.
const HALF_TOL: f32 = 8.0;
const HALF_MEAN_TOL: f32 = 1.0;

const FORMATS: [&str; 4] = [
    ".safetensors",
    ".pth",
    "_legacy_py3.model",
    "_legacy_py2.model",
];

fn check_case(model_name: &str, case: &str) {
    let dir = fixtures().join("parity");
    let case_file = dir.join(format!("case_{model_name}_{case}.safetensors"));
    let content = read_tensor(&case_file, "content");
    let style = read_tensor(&case_file, "style");
    let want_gram = read_tensor(&case_file, "gram");
    let want_features = read_tensor(&case_file, "features");
    let want = read_tensor(&case_file, "output");
    let (_, _, h, w) = content.dims4().unwrap();
    for suffix in FORMATS {
        let file = dir.join(format!("{model_name}{suffix}"));
        let net = model::load(&file, &Device::Cpu, DType::F32)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .net;

        let features = net.encode(&content).unwrap();
        let scale = want_features
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let d = max_abs_diff(&features, &want_features);
        assert!(
            d <= 1e-3 * scale,
            "{suffix} {case}: features differ by {d} (scale {scale})"
        );

        let gram = net.style_target(&style).unwrap();
        let scale = want_gram
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        let d = max_abs_diff(&gram, &want_gram);
        assert!(
            d <= 1e-3 * scale,
            "{suffix} {case}: gram differs by {d} (scale {scale})"
        );

        // PyTorch's output is 4*ceil(ceil(H/2)/2) tall; ours is cropped to the input size.
        let out = net.forward(&content, &gram).unwrap();
        assert_eq!(
            out.dims(),
            &[1, 3, h, w],
            "{suffix}: output must be the input's size"
        );
        let want = want.i((.., .., ..h, ..w)).unwrap();
        let d = max_abs_diff(&out, &want);
        eprintln!("{model_name} {case} {suffix}: max |Δ| = {d:.5}");
        assert!(
            d <= OUTPUT_TOL,
            "{suffix} {case}: max |Δ| {d} > {OUTPUT_TOL}"
        );
    }
}

#[test]
fn ngf8_two_blocks_matches_pytorch_in_every_format() {
    check_case("tiny_ngf8_b2", "48x64");
}

#[test]
fn sides_not_multiple_of_four_match_pytorch_cropped() {
    check_case("tiny_ngf8_b2", "30x42");
}

#[test]
fn ngf16_one_block_matches_pytorch_in_every_format() {
    check_case("tiny_ngf16_b1", "40x56");
}

/// Every width differs from the reference's (c0 8, p1 4, u1 4, u2 2, kernels 5 and 3).
#[test]
fn non_default_widths_match_pytorch_in_every_format() {
    check_case("narrow_ngf8_b1", "36x52");
}

#[test]
fn non_default_widths_with_odd_sides_match_pytorch_cropped() {
    check_case("narrow_ngf8_b1", "29x38");
}

#[test]
fn shape_is_inferred_from_the_weights() {
    let dir = fixtures().join("parity");
    let narrow = model::Widths {
        c0: 8,
        p1: 4,
        u1: 4,
        u2: 2,
        k_first: 5,
        k_last: 3,
    };
    for (name, ngf, blocks, widths) in [
        ("tiny_ngf8_b2", 8, 2, model::Widths::REFERENCE),
        ("tiny_ngf16_b1", 16, 1, model::Widths::REFERENCE),
        ("narrow_ngf8_b1", 8, 1, narrow),
    ] {
        // The listing make_fixtures.py wrote says the same.
        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(meta["widths"]["c0"], widths.c0, "{name}");
        assert_eq!(meta["widths"]["k_last"], widths.k_last, "{name}");
        for suffix in FORMATS {
            let file = dir.join(format!("{name}{suffix}"));
            let net = model::load(&file, &Device::Cpu, DType::F32).unwrap().net;
            assert_eq!(
                net.config(),
                model::Config {
                    ngf,
                    blocks,
                    widths
                },
                "{}",
                file.display()
            );
        }
    }
}

/// Full-size check, run by hand: `tools/make_fixtures.py --full DIR` writes an ngf-128 model and a
/// 256x256 case; `STYLECAM_FULLSIZE_DIR=DIR cargo test --release --test parity -- --ignored`.
#[test]
#[ignore]
fn full_size_ngf128_matches_pytorch() {
    let Ok(dir) = std::env::var("STYLECAM_FULLSIZE_DIR") else {
        panic!("set STYLECAM_FULLSIZE_DIR to the folder written by make_fixtures.py --full");
    };
    let dir = std::path::PathBuf::from(dir);
    let case = dir.join("case_full_ngf128_256x256.safetensors");
    for file in ["full_ngf128_legacy_py2.model", "full_ngf128.safetensors"] {
        let net = model::load(&dir.join(file), &Device::Cpu, DType::F32)
            .unwrap()
            .net;
        assert_eq!(net.config(), model::Config::PRETRAINED);
        let gram = net.style_target(&read_tensor(&case, "style")).unwrap();
        let out = net.forward(&read_tensor(&case, "content"), &gram).unwrap();
        let d = max_abs_diff(&out, &read_tensor(&case, "output"));
        eprintln!("full size {file}: max |Δ| = {d:.5}");
        assert!(d <= OUTPUT_TOL, "{file}: max |Δ| {d}");
    }
}

/// The generic path (candle's stock ops: what CUDA and Metal run) in f64 and f16 on the CPU, where
/// the fused f32 ops do not apply.
#[test]
fn generic_ops_path_matches_pytorch() {
    let dir = fixtures().join("parity");
    let case_file = dir.join("case_tiny_ngf8_b2_30x42.safetensors");
    let (_, _, h, w) = read_tensor(&case_file, "content").dims4().unwrap();
    let want = read_tensor(&case_file, "output")
        .i((.., .., ..h, ..w))
        .unwrap();
    for (dtype, tol) in [(DType::F64, OUTPUT_TOL), (DType::F16, HALF_TOL)] {
        let net = model::load(&dir.join("tiny_ngf8_b2.safetensors"), &Device::Cpu, dtype)
            .unwrap()
            .net;
        let load = |k| read_tensor(&case_file, k).to_dtype(dtype).unwrap();
        let gram = net.style_target(&load("style")).unwrap();
        let out = net.forward(&load("content"), &gram).unwrap();
        let out = out.to_dtype(DType::F32).unwrap();
        let d = max_abs_diff(&out, &want);
        let mean = (&out - &want).unwrap().abs().unwrap().mean_all().unwrap();
        let mean = mean.to_scalar::<f32>().unwrap();
        eprintln!("generic path {dtype:?}: max |Δ| = {d:.4}, mean |Δ| = {mean:.4}");
        assert!(d <= tol, "{dtype:?}: max |Δ| {d} > {tol}");
        assert!(mean <= HALF_MEAN_TOL, "{dtype:?}: mean |Δ| {mean}");
    }
}
