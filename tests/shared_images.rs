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
