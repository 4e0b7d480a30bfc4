//! Stylising in tiles with thumbnail instance normalisation (issue #16, docs/MEMORY.md), run as
//! a user runs `stylecam stylize`: a photo over the memory budget is tiled rather than
//! refused, and at a size that fits both ways the tiles agree with the whole pass, without
//! seams.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{fixtures, shared_dir, stylecam};
use image::RgbImage;

fn parity(name: &str) -> PathBuf {
    fixtures().join("parity").join(name)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn succeeds(cmd: &mut Command) -> String {
    let o = cmd.output().expect("run stylecam");
    let err = stderr(&o);
    assert!(o.status.success(), "failed:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// `stylecam stylize` with the built-in weights and `candy` on the CPU.
fn stylize_builtin(photo: &Path, out: &Path) -> Command {
    let mut c = stylecam();
    c.args(["stylize", "--device", "cpu", "--style", "candy"])
        .arg(photo)
        .arg("-o")
        .arg(out);
    c
}

/// `stylecam stylize` with the tiny fixture model (fast), a small style size and the fixture style.
fn stylize_tiny_styled() -> Command {
    let mut c = common::stylize_tiny();
    c.arg("--style").arg(parity("img_style.png"));
    c
}

/// Mean |a - b| over the pixels (all channels) for which `pick(x, y)` holds, on 0..255.
fn mean_abs_diff_where(a: &RgbImage, b: &RgbImage, pick: impl Fn(u32, u32) -> bool) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let (mut sum, mut n) = (0u64, 0u64);
    for (x, y, p) in a.enumerate_pixels() {
        if pick(x, y) {
            let q = b.get_pixel(x, y);
            for c in 0..3 {
                sum += u64::from(p[c].abs_diff(q[c]));
            }
            n += 3;
        }
    }
    sum as f64 / n.max(1) as f64
}

/// Mean jump between neighbouring columns `x - 1` and `x` (0..255): a seam is a jump.
fn column_jump(img: &RgbImage, x: u32) -> f64 {
    let mut sum = 0u64;
    for y in 0..img.height() {
        let (p, q) = (img.get_pixel(x - 1, y), img.get_pixel(x, y));
        sum += (0..3).map(|c| u64::from(p[c].abs_diff(q[c]))).sum::<u64>();
    }
    sum as f64 / (3 * img.height()) as f64
}

/// How far `tiled` is from `whole` (0..255): the mean |Δ| over the picture, and the worst mean
/// |Δ| along a line of pixels beside a boundary between tiles of `cell` pixels.
fn compare(whole: &RgbImage, tiled: &RgbImage, cell: u32) -> (f64, f64) {
    let (w, h) = whole.dimensions();
    let mean = mean_abs_diff_where(whole, tiled, |_, _| true);
    let mut worst: f64 = 0.0;
    for b in (cell..w).step_by(cell as usize) {
        worst = worst.max(mean_abs_diff_where(whole, tiled, |x, _| {
            x == b || x + 1 == b
        }));
    }
    for b in (cell..h).step_by(cell as usize) {
        worst = worst.max(mean_abs_diff_where(whole, tiled, |_, y| {
            y == b || y + 1 == b
        }));
    }
    (mean, worst)
}

/// At a size that fits both ways, a picture stylised in 128-pixel tiles agrees with the whole
/// pass. With the whole picture as its own thumbnail the halo covers what each kept pixel
/// sees, so the result is the whole one exactly; with a smaller thumbnail (a small
/// --max-memory) the statistics are the thumbnail's: mean |Δ| <= 2 on 0..255, no line along a
/// tile boundary worse than twice that, and no jump across a boundary that the whole pass does
/// not have.
#[test]
fn tiles_agree_with_the_whole_pass_without_seams() {
    let Some(shared) = shared_dir("tiles_agree_with_the_whole_pass_without_seams") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("boat.png");
    let img = image::open(shared.join("content/venice-boat.jpg"))
        .unwrap()
        .to_rgb8();
    image::imageops::resize(&img, 512, 320, image::imageops::FilterType::Triangle)
        .save(&photo)
        .unwrap();
    let out = |name: &str| dir.path().join(name);
    let said = succeeds(&mut stylize_builtin(&photo, &out("whole.png")));
    assert!(!said.contains("tiles"), "{said}");
    let whole = image::open(out("whole.png")).unwrap().to_rgb8();

    let said = succeeds(stylize_builtin(&photo, &out("exact.png")).args(["--tile-size", "128"]));
    assert!(
        said.contains("512x320 is stylised in 12 tiles of up to 128 pixels")
            && said.contains("512x320 thumbnail"),
        "{said}"
    );
    let exact = image::open(out("exact.png")).unwrap().to_rgb8();
    assert_eq!(exact.dimensions(), (512, 320));
    assert_eq!(compare(&whole, &exact, 128), (0.0, 0.0));

    let said = succeeds(stylize_builtin(&photo, &out("thumb.png")).args([
        "--tile-size",
        "128",
        "--max-memory",
        "280M",
    ]));
    assert!(said.contains("is stylised in 12 tiles"), "{said}");
    assert!(
        !said.contains("512x320 thumbnail"),
        "the thumbnail is smaller: {said}"
    );
    let tiled = image::open(out("thumb.png")).unwrap().to_rgb8();
    let (mean, worst) = compare(&whole, &tiled, 128);
    eprintln!(
        "tiled vs whole, smaller thumbnail: mean |d| {mean:.3}, worst boundary line {worst:.3}"
    );
    assert!(mean > 0.0 && mean <= 2.0, "mean |d| {mean}");
    assert!(worst <= 2.0 * mean, "boundary {worst} against mean {mean}");
    // No seam: across each boundary the tiled result jumps no more than the whole one does.
    for b in [128u32, 256, 384] {
        let (t, w) = (column_jump(&tiled, b), column_jump(&whole, b));
        assert!(t <= w + 1.0, "column {b}: jump {t} tiled, {w} whole");
    }
}

/// A picture over a small --max-memory is tiled, not refused, and comes out at its size;
/// with two styles placed by a split, a lower strength and the colours kept, too.
#[test]
fn a_photo_over_the_budget_is_tiled_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("wide.png");
    common::server::photo(3000, 2000, 3).save(&photo).unwrap();
    let out = dir.path().join("out.png");
    let said = succeeds(
        stylize_tiny_styled()
            .args(["--max-memory", "900M"])
            .arg(&photo)
            .arg("-o")
            .arg(&out),
    );
    assert!(said.contains("3000x2000 is stylised in"), "{said}");
    assert!(said.contains("tiles of up to"), "{said}");
    let img = image::open(&out).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (3000, 2000));
    // Not a blank picture: the stylised result varies.
    let first = *img.get_pixel(0, 0);
    assert!(img.pixels().any(|p| *p != first));

    let small = dir.path().join("small.png");
    common::server::photo(300, 200, 5).save(&small).unwrap();
    let out2 = dir.path().join("split.png");
    let said = succeeds(
        stylize_tiny_styled()
            .arg("--style")
            .arg(parity("img_content.png"))
            .args([
                "--split",
                "vertical",
                "--strength",
                "0.6",
                "--preserve-color",
            ])
            .args(["--tile-size", "64"])
            .arg(&small)
            .arg("-o")
            .arg(&out2),
    );
    assert!(said.contains("300x200 is stylised in 20 tiles"), "{said}");
    assert_eq!(image::image_dimensions(&out2).unwrap(), (300, 200));
}

/// Ctrl-C while the tiles run: the command stops, says so, and leaves no file.
#[cfg(unix)]
#[test]
fn ctrl_c_during_tiles_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("big.png");
    common::server::photo(1200, 900, 1).save(&photo).unwrap();
    let outs = dir.path().join("outs");
    std::fs::create_dir(&outs).unwrap();
    let mut child = stylize_builtin(&photo, &outs.join("out.png"))
        .args(["--tile-size", "128", "--max-memory", "500M"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut before = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let found = line.contains("is stylised in");
        before.push(line);
        if found {
            break;
        }
    }
    assert!(
        before.last().is_some_and(|l| l.contains("is stylised in")),
        "{before:?}"
    );
    // The thumbnail pass is short at this budget; then the tiles run for a while.
    std::thread::sleep(Duration::from_millis(3000));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
    let end = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < end, "stylecam did not stop after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = child.wait().unwrap();
    let rest = rest.join("\n");
    assert!(!status.success(), "finished before Ctrl-C:\n{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    assert_eq!(common::file_names(&outs), Vec::<String>::new(), "{rest}");
}
