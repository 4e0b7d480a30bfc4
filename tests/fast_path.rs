//! The reduced-precision CPU path (`--dtype bf16`) against f32, on the 0..255 scale of the
//! picture (both clamped as the app does): mean |Δ| <= 1.0 and 99th percentile |Δ| <= 6, on the
//! parity fixtures and on real photos (`../shared`) with the built-in weights.
//!
//! The bf16 products go through our AMX tile kernel on CPUs with Intel AMX (f32 sums written as
//! f32), and elsewhere through gemmkit, which runs `vdpbf16ps` on CPUs with AVX-512 BF16 and
//! otherwise widens the same bf16-rounded operands to f32 FMA, rounding its sums to bf16; so these
//! bounds are checked on any CPU, and gemmkit's extra rounding makes its path the stricter test.

mod common;

use candle_core::{DType, Device, Tensor};
use common::{fixtures, read_tensor, shared_dir};
use stylecam::model::{self, MsgNet, Precision};

const MEAN_MAX: f32 = 1.0;
const P99_MAX: f32 = 6.0;

/// (mean |Δ|, 99th percentile |Δ|, max |Δ|) between two outputs clamped to 0..255.
fn compare(a: &Tensor, b: &Tensor) -> (f32, f32, f32) {
    let clamp = |t: &Tensor| -> Vec<f32> {
        t.clamp(0f32, 255f32)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let (a, b) = (clamp(a), clamp(b));
    let mut d: Vec<f32> = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).collect();
    d.sort_by(f32::total_cmp);
    let mean = d.iter().sum::<f32>() / d.len() as f32;
    let p99 = d[((d.len() - 1) as f64 * 0.99).round() as usize];
    (mean, p99, d[d.len() - 1])
}

fn bf16_twin(net: &MsgNet) -> MsgNet {
    let mut fast = net.clone();
    fast.set_precision(Precision::Bf16).unwrap();
    assert_eq!(fast.precision(), Some(Precision::Bf16));
    fast
}

#[test]
fn bf16_quality_on_the_parity_fixtures() {
    let dir = fixtures().join("parity");
    for (name, case) in [
        ("tiny_ngf8_b2", "48x64"),
        ("tiny_ngf8_b2", "30x42"),
        ("tiny_ngf16_b1", "40x56"),
        ("narrow_ngf8_b1", "36x52"),
        ("narrow_ngf8_b1", "29x38"),
    ] {
        let net = model::load(
            &dir.join(format!("{name}.safetensors")),
            &Device::Cpu,
            DType::F32,
        )
        .unwrap()
        .net;
        assert_eq!(net.precision(), Some(Precision::F32));
        let fast = bf16_twin(&net);
        let case_file = dir.join(format!("case_{name}_{case}.safetensors"));
        let content = read_tensor(&case_file, "content");
        let target = net.style_target(&read_tensor(&case_file, "style")).unwrap();
        let want = net.forward(&content, &target).unwrap();
        let got = fast.forward(&content, &target).unwrap();
        let (mean, p99, max) = compare(&got, &want);
        eprintln!("bf16 {name} {case}: mean |Δ| {mean:.3}, p99 {p99:.2}, max {max:.2}");
        assert!(mean <= MEAN_MAX, "{name} {case}: mean |Δ| {mean}");
        assert!(p99 <= P99_MAX, "{name} {case}: p99 |Δ| {p99}");
        // The bf16 path really ran: rounding the operands changes the result somewhat.
        assert!(max > 0.0, "{name} {case}: bf16 gave exactly the f32 result");
    }
}

#[test]
fn bf16_quality_on_real_photos_with_the_built_in_weights() {
    let Some(shared) = shared_dir("bf16_quality_on_real_photos_with_the_built_in_weights") else {
        return;
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let net = model::load(
        &root.join("models/stylecam21.safetensors"),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap()
    .net;
    let fast = bf16_twin(&net);
    let style = image::open(shared.join("styles/21styles/candy.jpg"))
        .unwrap()
        .to_rgb8();
    let style = stylecam::image_io::resize_square(&style, 256);
    let style = stylecam::image_io::to_tensor(&style, &Device::Cpu, DType::F32).unwrap();
    let target = net.style_target(&style).unwrap();
    for photo in ["venice-boat.jpg", "flowers.jpg"] {
        let img = image::open(shared.join("content").join(photo))
            .unwrap()
            .to_rgb8();
        let h = (img.height() * 320 / img.width().max(1)).max(16);
        let img = image::imageops::resize(&img, 320, h, image::imageops::Triangle);
        let x = stylecam::image_io::to_tensor(&img, &Device::Cpu, DType::F32).unwrap();
        let want = net.forward(&x, &target).unwrap();
        let got = fast.forward(&x, &target).unwrap();
        let (mean, p99, max) = compare(&got, &want);
        eprintln!("bf16 built-in, {photo}: mean |Δ| {mean:.3}, p99 {p99:.2}, max {max:.2}");
        assert!(mean <= MEAN_MAX, "{photo}: mean |Δ| {mean}");
        assert!(p99 <= P99_MAX, "{photo}: p99 |Δ| {p99}");
    }
}

/// The f32 CPU executor and candle's own ops (the path every other device takes) agree.
#[test]
fn executor_matches_the_candle_path() {
    let dir = fixtures().join("parity");
    let case_file = dir.join("case_narrow_ngf8_b1_36x52.safetensors");
    let net = model::load(
        &dir.join("narrow_ngf8_b1.safetensors"),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap()
    .net;
    let content = read_tensor(&case_file, "content");
    let target = net.style_target(&read_tensor(&case_file, "style")).unwrap();
    let fast = net.forward(&content, &target).unwrap();
    // A batch of two takes candle's path; each image must match the executor's.
    let two = Tensor::cat(&[&content, &content], 0).unwrap();
    let slow = net.forward(&two, &target).unwrap();
    for i in 0..2 {
        let d = common::max_abs_diff(&slow.get(i).unwrap().unsqueeze(0).unwrap(), &fast);
        assert!(d < 0.01, "image {i}: {d}");
    }
}
