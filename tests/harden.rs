//! Regression tests for the bugs and weak messages a hostile tester found (issue #16), run as a
//! user would run the commands. docs/HOSTILE.md lists every hostile input tested and what it
//! gets; keep it in step with this file.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{fixtures, stylecam, stylize_tiny};

fn parity(name: &str) -> PathBuf {
    fixtures().join("parity").join(name)
}

/// [`stylize`] of one `photo` into `out` with the fixture style.
fn stylize_one(photo: impl AsRef<std::ffi::OsStr>, out: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = stylize_tiny();
    c.arg("--style")
        .arg(parity("img_style.png"))
        .arg(photo)
        .arg("-o")
        .arg(out);
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and expects failure; returns stderr.
fn fails(cmd: &mut Command) -> String {
    let o = cmd.output().expect("run stylecam");
    let err = stderr(&o);
    assert!(!o.status.success(), "should have failed:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn succeeds(cmd: &mut Command) -> String {
    let o = cmd.output().expect("run stylecam");
    let err = stderr(&o);
    assert!(o.status.success(), "failed:\n{err}");
    err
}

/// A JPEG of `img` with an EXIF APP1 segment saying `orientation` (1..8) right after SOI.
fn jpeg_with_orientation(img: &image::RgbImage, orientation: u16) -> Vec<u8> {
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .encode_image(img)
        .unwrap();
    // Exif header, big-endian TIFF header, one IFD entry: Orientation (0x0112), SHORT, 1.
    let mut exif = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01".to_vec();
    exif.extend(orientation.to_be_bytes());
    exif.extend([0, 0, 0, 0, 0, 0]);
    let mut seg = vec![0xFF, 0xE1];
    seg.extend(u16::try_from(exif.len() + 2).unwrap().to_be_bytes());
    seg.extend(exif);
    jpeg.splice(2..2, seg);
    jpeg
}

/// A 64x48 picture: red on the left half, blue on the right, a green top-left corner.
fn marked_picture() -> image::RgbImage {
    image::RgbImage::from_fn(64, 48, |x, y| {
        if x < 8 && y < 8 {
            image::Rgb([0, 255, 0])
        } else if x < 32 {
            image::Rgb([255, 0, 0])
        } else {
            image::Rgb([0, 0, 255])
        }
    })
}

#[test]
fn exif_orientation_is_followed_in_stylize_and_in_image_sources() {
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("phone.jpg");
    // 6: the picture must be turned 90° clockwise to be upright.
    std::fs::write(&photo, jpeg_with_orientation(&marked_picture(), 6)).unwrap();
    let upright = stylecam::image_io::load_rgb(&photo).unwrap();
    assert_eq!(upright.dimensions(), (48, 64));
    // Turned clockwise, the green corner is top right and the red half is on top.
    let px = |x, y| upright.get_pixel(x, y).0;
    assert!(px(44, 3)[1] > 200 && px(3, 3)[1] < 100, "{:?}", px(44, 3));
    assert!(px(24, 20)[0] > 200, "red on top: {:?}", px(24, 20));
    assert!(px(24, 50)[2] > 200, "blue below: {:?}", px(24, 50));

    // Pictures sent to `stylecam serve`.
    let sent = stylecam::serve::picture::decode(&std::fs::read(&photo).unwrap(), 1 << 20).unwrap();
    assert_eq!(sent, upright);

    // The window's image source.
    let mut source = stylecam::capture::ImageFile::open(&photo, 5).unwrap();
    use stylecam::capture::FrameSource;
    assert_eq!(source.next_frame().unwrap().image.dimensions(), (48, 64));

    // stylize.
    let out = dir.path().join("out.png");
    succeeds(&mut stylize_one(&photo, &out));
    assert_eq!(
        image::open(&out).unwrap().into_rgb8().dimensions(),
        (48, 64)
    );
}

#[test]
fn a_truncated_jpeg_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&image::RgbImage::from_fn(96, 64, |x, y| {
            image::Rgb([x as u8 * 2, y as u8 * 3, 90])
        }))
        .unwrap();
    let photo = dir.path().join("cut.jpg");
    std::fs::write(&photo, &jpeg[..jpeg.len() * 4 / 10]).unwrap();
    let out = dir.path().join("out.png");
    let err = fails(&mut stylize_one(&photo, &out));
    assert!(
        err.contains("cut.jpg") && err.contains("cut short"),
        "{err}"
    );
    assert!(err.contains("photo"), "{err}");
    assert!(!out.exists());
    // The same sent to `stylecam serve`.
    let sent = stylecam::serve::picture::decode(&jpeg[..jpeg.len() * 4 / 10], 1 << 20);
    let err = sent.err().map(|e| format!("{e:?}")).unwrap_or_default();
    assert!(err.contains("cut short"), "{err}");
    // The whole file is fine.
    std::fs::write(&photo, &jpeg).unwrap();
    assert!(stylecam::image_io::load_rgb(&photo).is_ok());
    assert!(stylecam::serve::picture::decode(&jpeg, 1 << 20).is_ok());
    // Cut PNGs are refused too.
    let mut png = Vec::new();
    image::RgbImage::from_pixel(96, 64, image::Rgb([1, 2, 3]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let cut = dir.path().join("cut.png");
    std::fs::write(&cut, &png[..png.len() - 20]).unwrap();
    let err = stylecam::image_io::load_rgb(&cut).unwrap_err().to_string();
    assert!(err.contains("cut.png"), "{err}");
}

#[cfg(unix)]
#[test]
fn force_never_replaces_anything_but_a_regular_file() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.png");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let real = dir.path().join("real.png");
    std::fs::write(&real, b"keep").unwrap();
    let link = dir.path().join("link.png");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let folder = dir.path().join("folder.png");
    std::fs::create_dir(&folder).unwrap();
    for (target, says) in [
        (&fifo, "not a regular file"),
        (&link, "symbolic link"),
        (&folder, "is a folder"),
    ] {
        let err = fails(stylize_one(parity("img_content.png"), target).arg("--force"));
        assert!(err.contains(says), "{err}");
    }
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&real).unwrap(), b"keep");
    assert!(folder.is_dir());
}

#[cfg(unix)]
#[test]
fn outputs_follow_the_umask_and_a_replaced_file_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let run = |umask: &str, force: bool| {
        let mut cmd = stylize_one(parity("img_content.png"), &out);
        if force {
            cmd.arg("--force");
        }
        // The umask is the shell's; the command line is stylecam's own.
        let line = format!("umask {umask}; exec \"$@\"",);
        let mut sh = Command::new("sh");
        sh.args(["-c", &line, "sh"])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => sh.env(k, v),
                None => sh.env_remove(k),
            };
        }
        succeeds(&mut sh);
    };
    run("022", false);
    assert_eq!(mode(&out), 0o644);
    std::fs::remove_file(&out).unwrap();
    run("027", false);
    assert_eq!(mode(&out), 0o640);
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o604)).unwrap();
    run("077", true);
    assert_eq!(mode(&out), 0o604, "--force kept the file's mode");
}

#[test]
fn stale_temporary_files_are_removed_and_fresh_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join(".stylecam-AbC123.png.part");
    let fresh = dir.path().join(".stylecam-XyZ789.png.part");
    let other = dir.path().join(".other-AbC123.png.part");
    for p in [&stale, &fresh, &other] {
        std::fs::write(p, b"half").unwrap();
    }
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for p in [&stale, &other] {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
    }
    succeeds(&mut stylize_one(
        parity("img_content.png"),
        dir.path().join("out.png"),
    ));
    assert!(!stale.exists(), "a stale temporary file was left");
    assert!(
        fresh.exists(),
        "a temporary file in use may belong to another run"
    );
    assert!(other.exists(), "only stylecam's own files are removed");
}

#[cfg(unix)]
#[test]
fn ctrl_c_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("big.png");
    // Big enough to be stylised for a while with the built-in weights.
    image::RgbImage::from_fn(1600, 1200, |x, y| {
        image::Rgb([x as u8, y as u8, (x ^ y) as u8])
    })
    .save(&photo)
    .unwrap();
    let outs = dir.path().join("outs");
    std::fs::create_dir(&outs).unwrap();
    let mut child = stylecam()
        .args(["stylize", "--device", "cpu", "--style", "candy"])
        .arg(&photo)
        .arg("-o")
        .arg(outs.join("out.png"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let end = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < end, "stylecam did not stop after Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(!o.status.success(), "finished before Ctrl-C:\n{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(common::file_names(&outs), Vec::<String>::new(), "{err}");
}

#[test]
fn out_writes_the_format_its_name_says() {
    let dir = tempfile::tempdir().unwrap();
    for (name, magic) in [
        ("o.jpg", &b"\xff\xd8\xff"[..]),
        ("o.JPEG", &b"\xff\xd8\xff"[..]),
        ("o.webp", &b"RIFF"[..]),
        ("o.png", &b"\x89PNG"[..]),
    ] {
        let out = dir.path().join(name);
        succeeds(&mut stylize_one(parity("img_content.png"), &out));
        let bytes = std::fs::read(&out).unwrap();
        assert!(bytes.starts_with(magic), "{name}: {:02x?}", &bytes[..4]);
        assert_eq!(
            image::open(&out).unwrap().into_rgb8().dimensions(),
            (64, 48)
        );
    }
    let out = dir.path().join("o.tiff");
    let err = fails(&mut stylize_one(parity("img_content.png"), &out));
    assert!(err.contains(".tiff") && err.contains(".jpg"), "{err}");
    assert!(!out.exists());
}

#[test]
fn contradictory_and_out_of_range_flags_are_refused() {
    for flag in ["--mask", "--split"] {
        let mut cmd = stylize_tiny();
        cmd.args(["--style", "a", "--style", "b", "--mix", "0.3", flag]);
        if flag == "--mask" {
            cmd.arg(parity("img_style.png"));
        } else {
            cmd.arg("vertical");
        }
        cmd.arg(parity("img_content.png")).args(["-o", "x.png"]);
        let err = fails(&mut cmd);
        assert!(err.contains("--mix") && err.contains(flag), "{err}");
    }
    // The window refuses --fps 0 before opening anything (it used to become 5).
    for fps in ["0", "241"] {
        let err = fails(stylecam().args(["--fps", fps, "--source", "test-pattern"]));
        assert!(err.contains("--fps"), "{err}");
    }
}

#[test]
fn existing_output_is_found_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.png");
    std::fs::write(&out, b"precious").unwrap();
    // The photo is broken: had it been read first, that would be the error.
    let photo = dir.path().join("broken.jpg");
    std::fs::write(&photo, b"\xff\xd8 not a jpeg").unwrap();
    let err = fails(&mut stylize_one(&photo, &out));
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    // A missing folder is named as the folder to create, not as a temporary file.
    let err = fails(&mut stylize_one(
        parity("img_content.png"),
        dir.path().join("no/such/out.png"),
    ));
    assert!(
        err.contains("no/such does not exist") && err.contains("create it"),
        "{err}"
    );
    assert!(!err.contains(".stylecam-"), "{err}");
}

#[test]
fn each_error_is_said_once_and_names_what_it_concerns() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.png");
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let err = fails(
        stylize_tiny()
            .arg("--style")
            .arg(&bad)
            .arg(parity("img_content.png"))
            .arg("-o")
            .arg(dir.path().join("o.png")),
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--style") && err.contains("style image"),
        "{err}"
    );
    let words: Vec<&str> = err.split(": ").collect();
    let mut seen = std::collections::HashSet::new();
    for w in &words {
        assert!(seen.insert(*w), "`{w}` said twice: {err}");
    }

    // A batch: each failure once, then the count.
    let outs = dir.path().join("outs");
    let err = fails(
        stylize_tiny()
            .arg("--style")
            .arg(parity("img_style.png"))
            .arg(&bad)
            .arg(parity("img_content.png"))
            .arg("--output")
            .arg(&outs),
    );
    assert_eq!(err.matches("bad.png").count(), 1, "{err}");
    assert!(err.contains("1 of 2 inputs failed"), "{err}");

    // A mask that cannot be read is called the mask.
    let err = fails(
        stylize_tiny()
            .args(["--style", "a", "--style", "b"])
            .arg("--mask")
            .arg(&bad)
            .arg(parity("img_content.png"))
            .arg("-o")
            .arg(dir.path().join("m.png"))
            .arg("--styles")
            .arg(style_pair(dir.path())),
    );
    assert!(err.contains("mask") && err.contains("bad.png"), "{err}");
}

/// A style folder with `a` and `b`.
fn style_pair(dir: &Path) -> PathBuf {
    let styles = dir.join("styles");
    std::fs::create_dir_all(&styles).unwrap();
    std::fs::copy(parity("img_style.png"), styles.join("a.png")).unwrap();
    std::fs::copy(parity("img_content.png"), styles.join("b.png")).unwrap();
    styles
}

#[test]
fn no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let o = stylize_one(parity("img_content.png"), dir.path().join("o.png"))
        .env("STYLECAM_LOG", "stylecam=info")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("INFO"), "the log says something: {err}");
    assert!(!err.contains('\x1b'), "colour codes: {err:?}");
}

/// A small PNG whose header says `w`x`h` (a decompression bomb's shape): decoding it would need
/// w*h*3 bytes.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (&b"IHDR"[..], &ihdr[..]),
        // A zlib stream's start: decoding would go on for gigabytes.
        (&b"IDAT"[..], &b"\x78\x9c\x00\x00\x00\xff\xff"[..]),
        (&b"IEND"[..], &b""[..]),
    ] {
        png.extend(u32::try_from(data.len()).unwrap().to_be_bytes());
        let mut chunk = kind.to_vec();
        chunk.extend(data);
        png.extend(&chunk);
        png.extend(crc32(&chunk).to_be_bytes());
    }
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn huge_pictures_are_refused_with_their_size_and_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.png");
    std::fs::write(&huge, png_header(30_000, 30_000)).unwrap();
    let start = Instant::now();
    let err = fails(&mut stylize_one(&huge, dir.path().join("o.png")));
    assert!(
        err.contains("30000x30000") && err.contains("900.0 megapixels"),
        "{err}"
    );
    assert!(err.contains("limit of 200 megapixels"), "{err}");

    // --content-size on a tall strip: 8192 wide would be 8192x3276800.
    let strip = dir.path().join("strip.png");
    image::RgbImage::from_pixel(5, 2000, image::Rgb([9, 9, 9]))
        .save(&strip)
        .unwrap();
    let err = fails(
        stylize_tiny()
            .args(["--content-size", "8192", "--style"])
            .arg(parity("img_style.png"))
            .arg(&strip)
            .arg("-o")
            .arg(dir.path().join("s.png")),
    );
    assert!(
        err.contains("8192x3276800") && err.contains("--content-size"),
        "{err}"
    );

    // Over the memory budget: the need, the budget and the size that fits.
    let err = fails(
        stylize_tiny()
            .args(["--content-size", "4096", "--max-memory", "300M", "--style"])
            .arg(parity("img_style.png"))
            .arg(parity("img_content.png"))
            .arg("-o")
            .arg(dir.path().join("m.png")),
    );
    assert!(err.contains("4096x3072"), "{err}");
    assert!(
        err.contains("memory budget of 315 MB (--max-memory)"),
        "{err}"
    );
    assert!(err.contains("pass --content-size"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "refusals take no work"
    );
}

#[test]
fn a_large_file_that_is_not_weights_is_refused_from_its_first_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.model");
    let f = std::fs::File::create(&big).unwrap();
    // Sparse: 3 GB that take no disk.
    f.set_len(3 << 30).unwrap();
    drop(f);
    let err = fails(stylecam().arg("inspect").arg(&big));
    assert!(err.contains("not a PyTorch or safetensors file"), "{err}");
}
