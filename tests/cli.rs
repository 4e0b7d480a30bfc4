//! The commands, run as a user would run them, on the committed fixtures.

mod common;

use common::{fixtures, stylecam};

fn parity(name: &str) -> std::path::PathBuf {
    fixtures().join("parity").join(name)
}

fn run_ok(cmd: &mut std::process::Command) -> (String, String) {
    let out = cmd.output().expect("run stylecam");
    let (so, se) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "stylecam failed:\n{so}\n{se}");
    (so, se)
}

/// The image pipeline end to end (PNG in, RGB PNG out) against PyTorch's, computed by the
/// reference pipeline in `tools/make_fixtures.py`. Pixels may differ by 1 only where PyTorch's
/// float output lies within 0.05 of a rounding boundary.
#[test]
fn stylize_matches_pytorch_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    run_ok(
        stylecam()
            .args([
                "stylize",
                "--device",
                "cpu",
                "--style-size",
                "32",
                "--model",
            ])
            .arg(parity("tiny_ngf8_b2_legacy_py2.model"))
            .arg("--style")
            .arg(parity("img_style.png"))
            .arg(parity("img_content.png"))
            .arg("-o")
            .arg(&out),
    );
    let got = image::open(&out).unwrap();
    assert!(
        matches!(got, image::DynamicImage::ImageRgb8(_)),
        "output must be RGB"
    );
    let got = got.to_rgb8();
    let want = image::open(parity("img_expected_ngf8_b2.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(got.dimensions(), want.dimensions());
    let float = common::read_tensor(&parity("img_expected_ngf8_b2.safetensors"), "output");
    let float: Vec<f32> = float.flatten_all().unwrap().to_vec1().unwrap();
    let mut exact = 0;
    for (i, (g, w)) in got.as_raw().iter().zip(want.as_raw()).enumerate() {
        if g == w {
            exact += 1;
            continue;
        }
        let v = float[i].clamp(0.0, 255.0);
        let near_boundary = (v - v.floor() - 0.5).abs() < 0.05;
        assert!(
            (*g as i32 - *w as i32).abs() == 1 && near_boundary,
            "byte {i}: got {g}, PyTorch {w} (float {})",
            float[i]
        );
    }
    assert!(
        exact * 100 >= got.as_raw().len() * 99,
        "only {exact} exact bytes"
    );
}

#[test]
fn stylize_never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    std::fs::write(&out, b"precious").unwrap();
    let mut cmd = stylecam();
    cmd.args([
        "stylize",
        "--device",
        "cpu",
        "--style-size",
        "32",
        "--model",
    ])
    .arg(parity("tiny_ngf8_b2.safetensors"))
    .arg("--style")
    .arg(parity("img_style.png"))
    .arg(parity("img_content.png"))
    .arg("-o")
    .arg(&out);
    let o = cmd.output().unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    run_ok(cmd.arg("--force"));
    assert!(image::open(&out).is_ok());
}

#[test]
fn stylize_reports_bad_inputs_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("broken.jpg");
    std::fs::write(&bad, b"\xff\xd8 not really a jpeg").unwrap();
    let out = dir.path().join("out.png");
    let o = stylecam()
        .args(["stylize", "--device", "cpu", "--model"])
        .arg(parity("tiny_ngf8_b2.safetensors"))
        .arg("--style")
        .arg(&bad)
        .arg(parity("img_content.png"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("broken.jpg"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!out.exists());

    let o = stylecam()
        .args(["stylize", "--model", "nope.model", "--style"])
        .arg(parity("img_style.png"))
        .arg(parity("img_content.png"))
        .args(["-o", "x.png"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("nope.model does not exist"));
}

#[test]
fn inspect_reports_format_shape_and_parameter_count() {
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(parity("tiny_ngf8_b2.json")).unwrap())
            .unwrap();
    let params = meta["params"].as_u64().unwrap();
    for (file, format) in [
        ("tiny_ngf8_b2_legacy_py2.model", "legacy"),
        ("tiny_ngf8_b2_legacy_py3.model", "legacy"),
        ("tiny_ngf8_b2.pth", "zip"),
        ("tiny_ngf8_b2.safetensors", "safetensors"),
    ] {
        let (out, _) = run_ok(stylecam().arg("inspect").arg(parity(file)));
        assert!(out.to_lowercase().contains(format), "{file}: {out}");
        assert!(out.contains("ngf:     8"), "{file}: {out}");
        assert!(out.contains("blocks:  2"), "{file}: {out}");
        assert!(out.contains(&format!("params:  {params}")), "{file}: {out}");
        assert!(out.contains("model1.0.conv2d.weight"), "{file}: {out}");
        assert!(out.contains("[64, 3, 7, 7]"), "{file}: {out}");
    }
}

#[test]
fn inspect_reports_the_widths_read_from_the_weights() {
    let (out, _) = run_ok(stylecam().arg("inspect").arg(parity("tiny_ngf8_b2.pth")));
    assert!(
        out.contains("widths:  c0 64, p1 32, u1 32, u2 16, first kernel 7, last kernel 7"),
        "{out}"
    );
    let (out, _) = run_ok(
        stylecam()
            .arg("inspect")
            .arg(parity("narrow_ngf8_b1_legacy_py2.model")),
    );
    assert!(
        out.contains("widths:  c0 8, p1 4, u1 4, u2 2, first kernel 5, last kernel 3"),
        "{out}"
    );
}

#[test]
fn convert_writes_loadable_safetensors_and_keeps_existing_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.safetensors");
    run_ok(
        stylecam()
            .arg("convert")
            .arg(parity("tiny_ngf16_b1_legacy_py2.model"))
            .arg(&out),
    );
    let (info, _) = run_ok(stylecam().arg("inspect").arg(&out));
    assert!(
        info.contains("ngf:     16") && info.contains("blocks:  1"),
        "{info}"
    );
    assert!(
        !info.contains("running_mean") && !info.contains("model.0."),
        "{info}"
    );
    // Converting again refuses to overwrite.
    let o = stylecam()
        .arg("convert")
        .arg(parity("tiny_ngf16_b1.pth"))
        .arg(&out)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
}

#[test]
fn bench_json_has_the_documented_fields() {
    let (out, _) = run_ok(
        stylecam()
            .args([
                "bench", "--device", "cpu", "--runs", "2", "--json", "--model",
            ])
            .arg(parity("tiny_ngf8_b2.safetensors"))
            .args(["--size", "32x24", "--size", "30x22"]),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for (line, size) in lines.iter().zip(["32x24", "30x22"]) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["size"], size);
        assert_eq!(v["device"], "cpu");
        assert_eq!(v["runs"], 2);
        assert!(v["median_ms"].as_f64().unwrap() > 0.0);
        assert!(v["min_ms"].as_f64().unwrap() <= v["median_ms"].as_f64().unwrap());
        assert!(v["gmac"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn parity_command_reports_agreement_and_fails_on_mismatch() {
    let (out, _) = run_ok(
        stylecam()
            .args(["parity", "--device", "cpu", "--model"])
            .arg(parity("tiny_ngf8_b2_legacy_py3.model"))
            .arg("--case")
            .arg(parity("case_tiny_ngf8_b2_30x42.safetensors")),
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["pass"], true);
    assert!(v["output_max_abs_diff"].as_f64().unwrap() <= 0.05);
    assert_eq!(v["size"], "42x30");
    // The other model's weights cannot reproduce this case: shapes or values differ.
    let o = stylecam()
        .args(["parity", "--device", "cpu", "--model"])
        .arg(parity("tiny_ngf16_b1.safetensors"))
        .arg("--case")
        .arg(parity("case_tiny_ngf8_b2_30x42.safetensors"))
        .output()
        .unwrap();
    assert!(!o.status.success());
}

/// Runs `stylize` on the image fixtures with extra flags and returns the RGB pixels.
fn stylize_with(extra: &[&str], styles: &[std::path::PathBuf]) -> image::RgbImage {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    let mut cmd = stylecam();
    cmd.args(["stylize", "--device", "cpu"]);
    if !extra.contains(&"--style-size") {
        cmd.args(["--style-size", "32"]);
    }
    cmd.arg("--model").arg(parity("tiny_ngf8_b2.safetensors"));
    for s in styles {
        cmd.arg("--style").arg(s);
    }
    cmd.args(extra)
        .arg(parity("img_content.png"))
        .arg("-o")
        .arg(&out);
    run_ok(&mut cmd);
    image::open(&out).unwrap().to_rgb8()
}

/// A second style: the first one's negative, written as a PNG.
fn negative_style(dir: &std::path::Path) -> std::path::PathBuf {
    let mut img = image::open(parity("img_style.png")).unwrap().to_rgb8();
    image::imageops::invert(&mut img);
    let p = dir.join("negative.png");
    img.save(&p).unwrap();
    p
}

#[test]
fn stylize_controls_keep_their_defining_properties() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (parity("img_style.png"), negative_style(dir.path()));
    let (only_a, only_b) = (vec![a.clone()], vec![b.clone()]);
    let both = vec![a, b];
    let plain = stylize_with(&[], &only_a);
    let plain_b = stylize_with(&[], &only_b);
    assert_ne!(plain, plain_b, "the two test styles must differ");
    // Mixing end points and an all-white mask are exactly one style.
    assert_eq!(stylize_with(&["--mix", "0"], &both), plain);
    assert_eq!(stylize_with(&["--mix", "1"], &both), plain_b);
    let white = dir.path().join("white.png");
    image::RgbImage::from_pixel(7, 5, image::Rgb([255, 255, 255]))
        .save(&white)
        .unwrap();
    let mask = ["--mask", white.to_str().unwrap()];
    assert_eq!(stylize_with(&mask, &both), plain);
    // Strength 1 is the plain style; a split differs from both single styles.
    assert_eq!(stylize_with(&["--strength", "1"], &only_a), plain);
    let split = stylize_with(&["--split", "vertical"], &both);
    assert!(split != plain && split != plain_b);
    // Brush 0.5 at style size 64 is style size 32.
    assert_eq!(
        stylize_with(&["--style-size", "64", "--brush", "0.5"], &only_a),
        plain
    );
}

#[test]
fn stylize_preserve_color_keeps_the_photo_colours() {
    let content = image::open(parity("img_content.png")).unwrap().to_rgb8();
    let chroma = |p: &image::Rgb<u8>| {
        let [r, g, b] = p.0.map(|v| v as f32);
        let y = 0.299 * r + 0.587 * g + 0.114 * b;
        (b - y, r - y)
    };
    // Mean chroma difference over the pixels that clamping to 0..255 did not touch (clamping
    // necessarily changes colour; this random-weight fixture overshoots a lot).
    let mean_chroma_diff = |img: &image::RgbImage| {
        let (mut sum, mut n) = (0f32, 0usize);
        for (p, q) in img.pixels().zip(content.pixels()) {
            if p.0.iter().any(|&v| v == 0 || v == 255) {
                continue;
            }
            let ((a1, a2), (b1, b2)) = (chroma(p), chroma(q));
            sum += (a1 - b1).abs() + (a2 - b2).abs();
            n += 1;
        }
        assert!(n > img.len() / 30, "too few unclamped pixels: {n}");
        sum / n as f32
    };
    let styled = stylize_with(&[], &[parity("img_style.png")]);
    let kept = stylize_with(&["--preserve-color"], &[parity("img_style.png")]);
    let (d_styled, d_kept) = (mean_chroma_diff(&styled), mean_chroma_diff(&kept));
    eprintln!("mean chroma difference: plain {d_styled:.2}, --preserve-color {d_kept:.2}");
    // Only clamping to 0..255 and rounding move the chroma.
    assert!(
        d_kept < 2.0 && d_kept * 5.0 < d_styled,
        "{d_kept} vs {d_styled}"
    );
}

#[test]
fn stylize_refuses_inconsistent_style_flags() {
    for (flags, styles, msg) in [
        (vec!["--mix", "0.5"], 1, "need two styles"),
        (vec![], 2, "say how to combine"),
        (vec!["--mix", "0.3"], 3, "at most two"),
        (vec!["--strength", "2"], 1, "between 0 and 1"),
        (vec!["--brush", "9"], 1, "between 0.25 and 4"),
    ] {
        let mut cmd = stylecam();
        cmd.args(["stylize", "--device", "cpu", "--model"])
            .arg(parity("tiny_ngf8_b2.safetensors"));
        for _ in 0..styles {
            cmd.arg("--style").arg(parity("img_style.png"));
        }
        let o = cmd
            .args(&flags)
            .arg(parity("img_content.png"))
            .args(["-o", "/nonexistent/never.png"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(msg), "{flags:?}: {err}");
    }
}
