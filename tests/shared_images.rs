//! Real photos and paintings from `../shared` (CI has them; a fresh clone does not, and these
//! tests then say they were skipped). The tiny fixture model keeps this fast: what is checked is
//! the image path (JPEG decoding, the 512x512 style squash, odd sizes, RGB PNG out), not the art.

mod common;

use common::{fixtures, shared_dir, stylecam};

#[test]
fn stylize_real_photos_with_real_styles_keeps_their_size() {
    let Some(shared) = shared_dir("stylize_real_photos_with_real_styles_keeps_their_size") else {
        return;
    };
    let model = fixtures().join("parity/tiny_ngf8_b2_legacy_py2.model");
    let dir = tempfile::tempdir().unwrap();
    for (photo, style) in [
        ("shenyang.jpg", "candy.jpg"),
        ("venice-boat.jpg", "Robert_Delaunay,_1906,_Portrait.jpg"),
    ] {
        let input = shared.join("content").join(photo);
        let out = dir.path().join(format!("{photo}.png"));
        let o = stylecam()
            .args(["stylize", "--device", "cpu", "--model"])
            .arg(&model)
            .arg("--style")
            .arg(shared.join("styles/21styles").join(style))
            .arg(&input)
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let src = image::open(&input).unwrap();
        let got = image::open(&out).unwrap();
        assert!(matches!(got, image::DynamicImage::ImageRgb8(_)));
        assert_eq!(
            (got.width(), got.height()),
            (src.width(), src.height()),
            "{photo}"
        );
        // A real picture came out, not a flat colour.
        let px = got.to_rgb8();
        let first = *px.get_pixel(0, 0);
        assert!(
            px.pixels().filter(|p| **p != first).count() > px.len() / 6,
            "{photo}"
        );
    }
}

#[test]
fn style_size_changes_the_result() {
    let Some(shared) = shared_dir("style_size_changes_the_result") else {
        return;
    };
    let model = fixtures().join("parity/tiny_ngf16_b1.safetensors");
    let dir = tempfile::tempdir().unwrap();
    let mut outs = Vec::new();
    for size in ["128", "512"] {
        let out = dir.path().join(format!("{size}.png"));
        let o = stylecam()
            .args([
                "stylize",
                "--device",
                "cpu",
                "--style-size",
                size,
                "--model",
            ])
            .arg(&model)
            .arg("--style")
            .arg(shared.join("styles/21styles/starry_night.jpg"))
            .arg(shared.join("content/shenyang3.jpg"))
            .arg("-o")
            .arg(&out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        outs.push(image::open(&out).unwrap().to_rgb8());
    }
    let differing = outs[0]
        .pixels()
        .zip(outs[1].pixels())
        .filter(|(a, b)| a != b)
        .count();
    assert!(
        differing > outs[0].len() / 10,
        "only {differing} pixels differ"
    );
}

/// The built-in style pack was computed by PyTorch (`tools/train/export.py`) from the style
/// images; our encoder on the same images must give the same targets, up to f16 storage and the
/// two libraries' Lanczos resizing.
#[test]
fn builtin_style_pack_matches_our_encoder_on_the_style_images() {
    let Some(shared) = shared_dir("builtin_style_pack_matches_our_encoder_on_the_style_images")
    else {
        return;
    };
    use candle_core::{DType, Device};
    use stylecam::{assets, image_io, model, style::pack::StylePack};
    let dev = Device::Cpu;
    let net = model::load_bytes(assets::BUILTIN_MODEL, "built-in", &dev, DType::F32)
        .unwrap()
        .net;
    let pack = StylePack::from_bytes(assets::BUILTIN_STYLES, "built-in").unwrap();
    assert_eq!(pack.styles().len(), 21);
    for style in ["candy", "udnie", "escher_sphere"] {
        let img = image_io::load_rgb(&shared.join(format!("styles/21styles/{style}.jpg"))).unwrap();
        let x = image_io::to_tensor(&image_io::resize_square(&img, 512), &dev, DType::F32).unwrap();
        let ours = net.style_target(&x).unwrap();
        let packed = pack.target(style, 512, &dev).unwrap();
        let norm = |t: &candle_core::Tensor| -> f32 {
            t.sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                .sqrt()
        };
        let rel = norm(&(&ours - &packed).unwrap()) / norm(&packed);
        eprintln!("{style}: relative Frobenius difference {rel:.5}");
        assert!(rel < 0.02, "{style}: {rel}");
    }
}
