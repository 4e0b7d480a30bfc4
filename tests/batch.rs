//! Batch `stylize`, the style bank and its target cache, through the real binary and real files.
//! The tiny fixture model keeps it quick; what is checked is the plumbing, not the art.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{fixtures, shared_dir, stylecam};

fn model() -> PathBuf {
    fixtures().join("parity/tiny_ngf16_b1.safetensors")
}

fn parity(name: &str) -> PathBuf {
    fixtures().join("parity").join(name)
}

fn run(args: &[&str], extra: &[&Path]) -> Output {
    let mut cmd = stylecam();
    cmd.args(["stylize", "--device", "cpu", "--model"])
        .arg(model());
    cmd.args(args);
    for p in extra {
        cmd.arg(p);
    }
    cmd.env("STYLECAM_LOG", "stylecam=info");
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A folder of styles named by stem, and a folder of photos with one broken file.
fn setup(tmp: &Path) -> (PathBuf, PathBuf) {
    let styles = tmp.join("styles");
    let photos = tmp.join("photos");
    std::fs::create_dir_all(&styles).unwrap();
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(parity("img_style.png"), styles.join("swirl.png")).unwrap();
    std::fs::copy(parity("img_content.png"), styles.join("photo_as_style.png")).unwrap();
    std::fs::copy(parity("img_content.png"), photos.join("a.png")).unwrap();
    std::fs::copy(parity("img_style.png"), photos.join("b.png")).unwrap();
    std::fs::write(photos.join("c-broken.jpg"), b"this is not a jpeg").unwrap();
    (styles, photos)
}

#[test]
fn batch_writes_every_good_photo_reports_the_bad_one_and_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let (styles, photos) = setup(tmp.path());
    let out = tmp.path().join("out");
    let data = tmp.path().join("data");
    let o = run(
        &["--style", "swirl", "--output"],
        &[
            &out,
            Path::new("--styles"),
            &styles,
            Path::new("--data-dir"),
            &data,
            &photos,
        ],
    );
    let err = stderr(&o);
    assert!(
        !o.status.success(),
        "a broken photo must fail the run:\n{err}"
    );
    assert!(
        err.contains("c-broken.jpg"),
        "the bad file is named:\n{err}"
    );
    assert!(err.contains("stylised 2 of 3 photos"), "summary:\n{err}");
    for (name, width) in [("a-swirl.png", 64), ("b-swirl.png", 32)] {
        let img = image::open(out.join(name)).unwrap();
        assert_eq!(img.width(), width, "{name} keeps its size");
    }
    assert!(!out.join("c-broken-swirl.png").exists());
    // Nothing half-written is left in the output folder.
    let names = common::file_names(&out);
    assert_eq!(names.len(), 2, "{names:?}");

    // Running again: nothing is overwritten without --force, and the target comes from the
    // disk cache, not the encoder.
    let before = std::fs::read(out.join("a-swirl.png")).unwrap();
    let o = run(
        &["--style", "swirl", "--output"],
        &[
            &out,
            Path::new("--styles"),
            &styles,
            Path::new("--data-dir"),
            &data,
            &photos.join("a.png"),
        ],
    );
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert!(
        err.contains("from the cache") && !err.contains("computing"),
        "{err}"
    );
    assert_eq!(std::fs::read(out.join("a-swirl.png")).unwrap(), before);
}

#[test]
fn globs_names_and_paths_pick_photos_and_styles() {
    let tmp = tempfile::tempdir().unwrap();
    let (styles, photos) = setup(tmp.path());
    let out = tmp.path().join("out");
    let glob = format!("{}/*.png", photos.display());
    let style_path = styles.join("photo_as_style.png");
    let o = run(
        &[
            "--style",
            "SWIRL",
            "--style",
            style_path.to_str().unwrap(),
            "--mix",
            "0.5",
            "--output",
        ],
        &[&out, Path::new("--styles"), &styles, Path::new(&glob)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("a-swirl+photo_as_style.png").is_file());
    assert!(out.join("b-swirl+photo_as_style.png").is_file());

    let o = run(
        &["--style", "nope", "--styles"],
        &[
            &styles,
            &photos.join("a.png"),
            Path::new("-o"),
            &tmp.path().join("x.png"),
        ],
    );
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("`nope`") && err.contains("swirl"),
        "lists the known styles: {err}"
    );

    let o = run(
        &["--style", "swirl", "--output"],
        &[
            &out,
            Path::new("--styles"),
            &styles,
            Path::new("nothing/*.jpg"),
        ],
    );
    assert!(stderr(&o).contains("matches no files"), "{}", stderr(&o));
}

#[test]
fn content_size_and_style_aspect_change_what_the_network_sees() {
    let tmp = tempfile::tempdir().unwrap();
    let (styles, photos) = setup(tmp.path());
    let photo = photos.join("a.png");
    let shot = |name: &str, args: &[&str]| -> image::RgbImage {
        let out = tmp.path().join(name);
        let mut all = args.to_vec();
        if !args.contains(&"--style") {
            all.extend(["--style", "swirl"]);
        }
        let o = run(
            &all,
            &[
                Path::new("--styles"),
                &styles,
                &photo,
                Path::new("-o"),
                &out,
            ],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        image::open(&out).unwrap().to_rgb8()
    };
    // The fixture photo is 64x48; --content-size sets the width and keeps the aspect.
    assert_eq!(
        shot("w32.png", &["--content-size", "32"]).dimensions(),
        (32, 24)
    );
    // A 4:1 style of fine stripes: squashed square, its stripes are stretched four times as
    // tall as when its aspect is kept, which changes its Gram matrix.
    let wide = image::RgbImage::from_fn(128, 32, |x, y| {
        let v = if (x / 2 + y / 3) % 2 == 0 { 230 } else { 20 };
        image::Rgb([v, 255 - v, (x * 2) as u8])
    });
    wide.save(styles.join("wide.png")).unwrap();
    let square = shot("square.png", &["--style", "wide", "--style-size", "64"]);
    let keep = shot(
        "keep.png",
        &[
            "--style",
            "wide",
            "--style-size",
            "64",
            "--style-aspect",
            "keep",
        ],
    );
    assert_ne!(square, keep);
}

#[test]
fn builtin_weights_and_styles_work_offline_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.png");
    let o = stylecam()
        .args([
            "stylize",
            "--device",
            "cpu",
            "--style",
            "candy",
            "--data-dir",
        ])
        .arg(tmp.path())
        .arg(parity("img_content.png"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let img = image::open(&out).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (64, 48));
    // Nothing was downloaded or cached: packed targets need no encoder run.
    assert!(!tmp.path().join("models").exists());
}

#[test]
fn other_weights_without_style_images_say_how_to_get_them() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(
        &["--style", "candy", "--data-dir"],
        &[
            tmp.path(),
            &parity("img_content.png"),
            Path::new("-o"),
            &tmp.path().join("x.png"),
        ],
    );
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("stylecam fetch") && err.contains("--styles"),
        "{err}"
    );
}

#[test]
fn batch_over_the_shared_photos_with_several_real_styles() {
    let Some(shared) = shared_dir("batch_over_the_shared_photos_with_several_real_styles") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let content = shared.join("content");
    let photos = std::fs::read_dir(&content).unwrap().count();
    for style in ["candy", "udnie", "la_muse"] {
        let out = tmp.path().join(style);
        let o = run(
            &[
                "--style",
                style,
                "--content-size",
                "96",
                "--style-size",
                "128",
                "--output",
            ],
            &[
                &out,
                Path::new("--styles"),
                &shared.join("styles/21styles"),
                &content,
            ],
        );
        assert!(o.status.success(), "{style}: {}", stderr(&o));
        let written = std::fs::read_dir(&out).unwrap().count();
        assert_eq!(written, photos, "{style}: one output per photo");
        for e in std::fs::read_dir(&out).unwrap() {
            let img = image::open(e.unwrap().path()).unwrap();
            assert_eq!(img.width(), 96);
        }
    }
}
