//! Snapshots, side-by-side composites and GIF clips, written to real files in temporary
//! folders.

mod common;

use common::file_names as names;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{Local, TimeZone};
use image::codecs::gif::GifDecoder;
use image::{AnimationDecoder, Rgb, RgbImage};
use stylecam::snapshot::{save_snapshot, side_by_side, ClipRecorder, SnapshotError};

fn noon() -> chrono::DateTime<Local> {
    Local.with_ymd_and_hms(2026, 11, 27, 14, 3, 5).unwrap()
}

/// A picture where every pixel differs from its neighbours.
fn pattern(w: u32, h: u32, seed: u8) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (x * 7 + y) as u8 ^ seed,
            (y * 13 + x * 3) as u8,
            seed.wrapping_mul(31),
        ])
    })
}

fn no_temp_files(dir: &Path) {
    let names = names(dir);
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with('.') && !n.ends_with(".part")),
        "{names:?}"
    );
}

#[test]
fn two_snapshots_in_one_second_keep_both_and_spare_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let taken = dir.path().join("stylecam-2026-11-27_14-03-05-candy.png");
    std::fs::write(&taken, b"precious").unwrap();

    let a = pattern(32, 24, 1);
    let b = pattern(32, 24, 2);
    let pa = save_snapshot(dir.path(), &a, "candy", noon()).unwrap();
    let pb = save_snapshot(dir.path(), &b, "candy", noon()).unwrap();

    assert_eq!(
        pa,
        dir.path().join("stylecam-2026-11-27_14-03-05-candy-2.png")
    );
    assert_eq!(
        pb,
        dir.path().join("stylecam-2026-11-27_14-03-05-candy-3.png")
    );
    assert_eq!(std::fs::read(&taken).unwrap(), b"precious");
    assert_eq!(image::open(&pa).unwrap().to_rgb8(), a);
    assert_eq!(image::open(&pb).unwrap().to_rgb8(), b);
    assert_eq!(names(dir.path()).len(), 3);
    no_temp_files(dir.path());
}

#[test]
fn racing_snapshots_all_survive() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8u8)
            .map(|i| {
                let dir = dir.path();
                s.spawn(move || save_snapshot(dir, &pattern(16, 16, i), "", noon()).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut unique = paths.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 8, "{paths:?}");
    // Each file holds the picture its own thread wrote.
    for (i, p) in paths.iter().enumerate() {
        assert_eq!(image::open(p).unwrap().to_rgb8(), pattern(16, 16, i as u8));
    }
    assert_eq!(names(dir.path()).len(), 8);
    no_temp_files(dir.path());
}

#[test]
fn png_round_trips_exactly_and_the_folder_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a").join("b");
    let img = pattern(257, 131, 77);
    let p = save_snapshot(&nested, &img, "la muse", noon()).unwrap();
    assert_eq!(
        p.file_name().unwrap(),
        "stylecam-2026-11-27_14-03-05-la-muse.png"
    );
    assert_eq!(image::open(&p).unwrap().to_rgb8(), img);
    no_temp_files(&nested);
}

#[test]
fn a_folder_that_is_a_file_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("pictures");
    std::fs::write(&not_a_dir, b"i am a file").unwrap();
    let err = save_snapshot(&not_a_dir, &pattern(4, 4, 0), "x", noon()).unwrap_err();
    assert!(matches!(err, SnapshotError::CreateDir { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&not_a_dir.display().to_string()), "{msg}");
    assert!(msg.contains("--snapshot-dir"), "{msg}");
    assert_eq!(names(dir.path()), ["pictures"]);
    assert_eq!(std::fs::read(&not_a_dir).unwrap(), b"i am a file");
}

#[test]
fn side_by_side_puts_the_original_left_at_the_stylised_height() {
    let red = Rgb([255, 0, 0]);
    let blue = Rgb([0, 0, 255]);
    let original = RgbImage::from_pixel(320, 240, red);
    let stylized = RgbImage::from_pixel(160, 120, blue);
    let out = side_by_side(&original, &stylized);
    assert_eq!(out.dimensions(), (320, 120));
    assert!((0..160).all(|x| (0..120).all(|y| *out.get_pixel(x, y) == red)));
    assert!((160..320).all(|x| (0..120).all(|y| *out.get_pixel(x, y) == blue)));

    // Same heights: no resizing, widths add up, pixels copied exactly.
    let a = pattern(30, 20, 3);
    let b = pattern(50, 20, 4);
    let out = side_by_side(&a, &b);
    assert_eq!(out.dimensions(), (80, 20));
    assert_eq!(*out.get_pixel(29, 19), *a.get_pixel(29, 19));
    assert_eq!(*out.get_pixel(30, 0), *b.get_pixel(0, 0));
    assert_eq!(*out.get_pixel(79, 19), *b.get_pixel(49, 19));
}

#[test]
fn a_clip_is_a_looping_gif_with_one_frame_per_kept_push() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = Instant::now();
    let mut rec = ClipRecorder::new(Duration::from_secs(1), 80);
    // A 30 fps source for 2 s; the recorder keeps ~10 fps for 1 s.
    for i in 0..60u64 {
        let shade = if i % 2 == 0 { 30 } else { 220 };
        rec.push(
            &RgbImage::from_pixel(640, 480, Rgb([shade, 100, 255 - shade])),
            t0 + Duration::from_millis(i * 33),
        );
    }
    assert!(rec.is_done());
    let kept = rec.len();
    assert!((9..=11).contains(&kept), "{kept}");

    let p = rec.finish(dir.path(), noon()).unwrap();
    assert_eq!(
        p.file_name().unwrap(),
        "stylecam-2026-11-27_14-03-05-clip.gif"
    );
    let bytes = std::fs::read(&p).unwrap();
    // The NETSCAPE2.0 application block is what makes a GIF loop.
    assert!(bytes.windows(11).any(|w| w == b"NETSCAPE2.0"));
    let frames = GifDecoder::new(std::io::Cursor::new(&bytes))
        .unwrap()
        .into_frames()
        .collect_frames()
        .unwrap();
    assert_eq!(frames.len(), kept);
    for f in &frames {
        assert_eq!(f.buffer().dimensions(), (80, 60));
        let (num, den) = f.delay().numer_denom_ms();
        let ms = num / den;
        assert!((90..=140).contains(&ms), "{ms} ms");
    }

    // Saved again in the same second: a new name, the first file untouched.
    let p2 = rec.finish(dir.path(), noon()).unwrap();
    assert_eq!(
        p2.file_name().unwrap(),
        "stylecam-2026-11-27_14-03-05-clip-2.gif"
    );
    assert_eq!(std::fs::read(&p).unwrap(), bytes);
    assert_eq!(names(dir.path()).len(), 2);
    no_temp_files(dir.path());
}

#[test]
fn an_empty_clip_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("clips");
    let rec = ClipRecorder::new(Duration::from_secs(3), 320);
    let err = rec.finish(&target, noon()).unwrap_err();
    assert!(matches!(err, SnapshotError::EmptyClip), "{err:?}");
    assert!(!target.exists());
}
