//! Video files through the real binary: clips made here (a moving pattern with a 440 Hz tone,
//! `stylecam::video::synth`), stylised by `stylecam stylize` with the tiny fixture model, and
//! read back with FFmpeg. What is checked: frame count, times, size, rate and length match the
//! input; the audio packets are the input's, byte for byte; every frame is the photo path's
//! stylisation of the input frame (up to H.264's loss); bad files are refused by name and
//! leave nothing behind; Ctrl-C leaves nothing.
#![cfg(feature = "video")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{file_names, fixtures, stylecam};
use ffmpeg_next as ff;
use image::RgbImage;
use stylecam::video::synth::Synth;
use stylecam::video::{self, Reader, VideoFrame};

fn model() -> PathBuf {
    fixtures().join("parity/tiny_ngf16_b1.safetensors")
}

fn style() -> PathBuf {
    fixtures().join("parity/img_style.png")
}

/// `stylecam stylize --device cpu --model <tiny> --style <fixture> ARGS`.
fn stylize(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let mut cmd = stylecam();
    cmd.args(["stylize", "--device", "cpu", "--model"])
        .arg(model())
        .arg("--style")
        .arg(style());
    for a in args {
        cmd.arg(a);
    }
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn frames(path: &Path) -> Vec<VideoFrame> {
    Reader::open(path)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// The audio stream's packets: (pts in seconds, bytes).
fn audio_packets(path: &Path) -> Vec<(f64, Vec<u8>)> {
    let mut ictx = ff::format::input(path).unwrap();
    let Some(stream) = ictx.streams().best(ff::media::Type::Audio) else {
        return Vec::new();
    };
    let (index, tb) = (stream.index(), f64::from(stream.time_base()));
    ictx.packets()
        .filter(|(s, _)| s.index() == index)
        .map(|(_, p)| {
            (
                p.pts().unwrap_or(0) as f64 * tb,
                p.data().unwrap_or(&[]).to_vec(),
            )
        })
        .collect()
}

/// Mean |Δ| of BT.601 luma.
fn luma_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let l = |p: &image::Rgb<u8>| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64;
    a.pixels()
        .zip(b.pixels())
        .map(|(x, y)| (l(x) - l(y)).abs())
        .sum::<f64>()
        / (a.width() * a.height()) as f64
}

/// Mean |Δ| of Cb and Cr (BT.601) averaged over 2x2 blocks: the colour that 4:2:0 video keeps.
fn block_chroma_diff(a: &RgbImage, b: &RgbImage) -> f64 {
    let cbcr = |p: &image::Rgb<u8>| {
        let (r, g, b) = (p[0] as f64, p[1] as f64, p[2] as f64);
        (
            -0.168736 * r - 0.331264 * g + 0.5 * b,
            0.5 * r - 0.418688 * g - 0.081312 * b,
        )
    };
    let block = |img: &RgbImage, x: u32, y: u32| {
        let mut s = (0.0, 0.0);
        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            let c = cbcr(img.get_pixel(x + dx, y + dy));
            s = (s.0 + c.0 / 4.0, s.1 + c.1 / 4.0);
        }
        s
    };
    let (mut sum, mut n) = (0.0, 0.0);
    for y in (0..a.height() - 1).step_by(2) {
        for x in (0..a.width() - 1).step_by(2) {
            let (p, q) = (block(a, x, y), block(b, x, y));
            sum += (p.0 - q.0).abs() + (p.1 - q.1).abs();
            n += 2.0;
        }
    }
    sum / n
}

/// The folder holds exactly these names (no hidden temporary file either).
fn assert_only(dir: &Path, names: &[&str]) {
    assert_eq!(file_names(dir), names, "in {}", dir.display());
}

/// The "done when": a phone clip (portrait, stored sideways with a rotation matrix,
/// with a tone) goes in; a stylised MP4 with the same audio comes out.
#[test]
fn a_phone_clip_comes_out_stylised_upright_with_its_audio_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = tmp.path().join("phone.mp4");
    let mut synth = Synth::new(96, 64, 15, 30);
    synth.rotation = 90;
    synth.write(&clip).unwrap();
    let src = video::probe(&clip).unwrap();
    assert_eq!(
        (src.width, src.height, src.rotation),
        (64, 96, 90),
        "{src:?}"
    );

    let out = tmp.path().join("styled.mp4");
    let o = stylize(&[&clip, &"-o", &out, &"--crf", &"0"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("30 frames at 64x96") && stderr(&o).contains("audio copied"),
        "{}",
        stderr(&o)
    );
    assert_only(tmp.path(), &["phone.mp4", "styled.mp4"]);

    let info = video::probe(&out).unwrap();
    assert_eq!((info.width, info.height, info.rotation), (64, 96, 0));
    assert_eq!(info.codec, "h264");
    assert_eq!(info.audio.as_deref(), Some("aac"));
    let rate = info.frame_rate.unwrap();
    assert!((rate - 15.0).abs() < 0.01, "rate {rate}");
    assert!(
        (info.duration.unwrap() - src.duration.unwrap()).abs() < 0.1,
        "{info:?} vs {src:?}"
    );

    let (ins, outs) = (frames(&clip), frames(&out));
    assert_eq!(outs.len(), 30);
    for (i, (a, b)) in ins.iter().zip(&outs).enumerate() {
        assert!(
            (a.time - b.time).abs() < 1e-3,
            "frame {i}: {} vs {}",
            a.time,
            b.time
        );
        assert_eq!(b.image.dimensions(), (64, 96));
    }

    // The audio: the very same packets.
    let (a_in, a_out) = (audio_packets(&clip), audio_packets(&out));
    assert!(a_in.len() > 30, "{} audio packets", a_in.len());
    assert_eq!(a_in.len(), a_out.len());
    for (x, y) in a_in.iter().zip(&a_out) {
        assert_eq!(x.1, y.1, "packet at {:.3} s differs", x.0);
    }

    // Frames are stylised, and each is what stylising that frame as a photo gives.
    for k in [0, 17] {
        let photo = tmp.path().join(format!("frame{k}.png"));
        ins[k].image.save(&photo).unwrap();
        let styled = tmp.path().join(format!("frame{k}-styled.png"));
        let o = stylize(&[&photo, &"-o", &styled]);
        assert!(o.status.success(), "{}", stderr(&o));
        let expected = image::open(&styled).unwrap().to_rgb8();
        // 4:2:0 video keeps full-resolution brightness and quarter-resolution colour: compare
        // those (at --crf 0, so what remains is the colour subsampling and YUV rounding).
        let luma = luma_diff(&outs[k].image, &expected);
        let chroma = block_chroma_diff(&outs[k].image, &expected);
        let luma_src = luma_diff(&outs[k].image, &ins[k].image);
        let chroma_src = block_chroma_diff(&outs[k].image, &ins[k].image);
        eprintln!("frame {k}: vs photo path luma {luma:.2} chroma {chroma:.2}; vs source luma {luma_src:.2} chroma {chroma_src:.2}");
        assert!(
            luma_src > 20.0 && chroma_src > 10.0,
            "frame {k} looks unstylised"
        );
        assert!(
            luma < 3.0,
            "frame {k}: luma differs from the photo path by {luma:.2}"
        );
        assert!(
            chroma < 6.0,
            "frame {k}: colour differs from the photo path by {chroma:.2}"
        );
    }
}

/// Variable frame rate: every frame keeps its time. `--content-size`, `--start` and
/// `--duration` take a part at another size, the audio cut to match.
#[test]
fn frame_times_survive_and_start_and_duration_cut_a_part() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = tmp.path().join("vfr.mkv");
    let mut synth = Synth::new(64, 48, 10, 24);
    synth.vfr = true;
    synth.write(&clip).unwrap();
    let ins = frames(&clip);
    let steps: Vec<f64> = ins.windows(2).map(|w| w[1].time - w[0].time).collect();
    assert!(
        steps.iter().any(|&s| (s - 0.1).abs() < 0.002)
            && steps.iter().any(|&s| (s - 0.2).abs() < 0.002),
        "the clip is not variable-rate: {steps:?}"
    );
    let out = tmp.path().join("vfr-styled.mp4");
    let o = stylize(&[&clip, &"-o", &out]);
    assert!(o.status.success(), "{}", stderr(&o));
    let outs = frames(&out);
    assert_eq!(outs.len(), ins.len());
    for (a, b) in ins.iter().zip(&outs) {
        assert!((a.time - b.time).abs() < 2e-3, "{} vs {}", a.time, b.time);
    }

    // 24 frames of 0.1 and 0.2 s: 3.6 s in all. From 1.2 s for 1.5 s: the frames at
    // 1.2, 1.3, 1.5, 1.8, 1.9, 2.1, 2.4, 2.5 (8 frames), shifted to start at 0.
    let part = tmp.path().join("part.mp4");
    let o = stylize(&[
        &clip,
        &"-o",
        &part,
        &"--start",
        &"1.2",
        &"--duration",
        &"0:01.5",
        &"--content-size",
        &"32",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cut = frames(&part);
    let expected: Vec<f64> = ins
        .iter()
        .map(|f| f.time)
        .filter(|&t| (1.2 - 1e-3..2.7 - 1e-3).contains(&t))
        .collect();
    assert_eq!(
        cut.len(),
        expected.len(),
        "{:?}",
        cut.iter().map(|f| f.time).collect::<Vec<_>>()
    );
    for (f, t) in cut.iter().zip(&expected) {
        assert!(
            (f.time - (t - 1.2)).abs() < 2e-3,
            "{} vs {}",
            f.time,
            t - 1.2
        );
        assert_eq!(f.image.dimensions(), (32, 24));
    }
    let audio: Vec<(f64, Vec<u8>)> = audio_packets(&clip)
        .into_iter()
        .filter(|(t, _)| (1.2 - 1e-4..2.7 - 1e-4).contains(t))
        .collect();
    let cut_audio = audio_packets(&part);
    assert_eq!(cut_audio.len(), audio.len());
    assert!(cut_audio.iter().zip(&audio).all(|(a, b)| a.1 == b.1));
    assert!(
        cut_audio[0].0.abs() < 0.03,
        "audio starts at {}",
        cut_audio[0].0
    );
}

/// A folder with a photo and a video: both are stylised, each to its own kind of file.
#[test]
fn batch_mode_takes_videos_like_photos() {
    let tmp = tempfile::tempdir().unwrap();
    let inputs = tmp.path().join("in");
    std::fs::create_dir_all(&inputs).unwrap();
    Synth::new(48, 32, 10, 5)
        .write(&inputs.join("clip.mov"))
        .unwrap();
    std::fs::copy(
        fixtures().join("parity/img_content.png"),
        inputs.join("photo.png"),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let o = stylize(&[&"--output", &out, &inputs]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("stylised 2 of 2 files"),
        "{}",
        stderr(&o)
    );
    assert_only(&out, &["clip-img_style.mp4", "photo-img_style.png"]);
    assert_eq!(frames(&out.join("clip-img_style.mp4")).len(), 5);
    // Run again: nothing is overwritten.
    let o = stylize(&[&"--output", &out, &inputs]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_only(&out, &["clip-img_style.mp4", "photo-img_style.png"]);
}

/// A WAV file: sound, no picture.
fn wav(path: &Path) {
    let samples: Vec<i16> = (0..8000)
        .map(|i| ((i as f64 * 0.3).sin() * 8000.0) as i16)
        .collect();
    let data: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes()); // PCM
    b.extend_from_slice(&1u16.to_le_bytes()); // mono
    b.extend_from_slice(&8000u32.to_le_bytes());
    b.extend_from_slice(&16000u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&data);
    std::fs::write(path, b).unwrap();
}

/// An MKV whose video stream is in a codec that this FFmpeg lists but cannot decode; returns
/// the codec's name, or `None` if this FFmpeg decodes every codec Matroska can hold.
fn undecodable(path: &Path) -> Option<String> {
    ff::init().unwrap();
    let mut octx = ff::format::output_as(path, "matroska").unwrap();
    // SAFETY (test): walks FFmpeg's static codec descriptor list and reads its tables.
    let id = unsafe {
        let ofmt = (*octx.as_ptr()).oformat;
        let mut d = ff::ffi::avcodec_descriptor_next(std::ptr::null());
        let mut found = None;
        while !d.is_null() {
            let id = (*d).id;
            if (*d).type_ == ff::ffi::AVMediaType::AVMEDIA_TYPE_VIDEO
                && ff::ffi::avcodec_find_decoder(id).is_null()
                && ff::ffi::avformat_query_codec(ofmt, id, ff::ffi::FF_COMPLIANCE_NORMAL) == 1
            {
                found = Some(id);
                break;
            }
            d = ff::ffi::avcodec_descriptor_next(d);
        }
        found?
    };
    let id = ff::codec::Id::from(id);
    {
        let mut ost = octx
            .add_stream(ff::encoder::find(ff::codec::Id::None))
            .unwrap();
        let mut params = ff::codec::Parameters::new();
        params.set_medium(ff::media::Type::Video);
        params.set_id(id);
        // SAFETY (test): plain fields of parameters owned here.
        unsafe {
            (*params.as_mut_ptr()).width = 64;
            (*params.as_mut_ptr()).height = 48;
        }
        ost.set_parameters(params);
        ost.set_time_base(ff::Rational(1, 1000));
    }
    octx.write_header().unwrap();
    for i in 0..5 {
        let mut p = ff::Packet::copy(&[0x42; 64]);
        p.set_stream(0);
        p.set_pts(Some(i * 40));
        p.set_dts(Some(i * 40));
        p.set_flags(ff::codec::packet::Flags::KEY);
        p.write_interleaved(&mut octx).unwrap();
    }
    octx.write_trailer().unwrap();
    Some(id.name().to_owned())
}

/// Each bad input is refused with a message that names the file and the trouble, and leaves
/// no output and no temporary file.
#[test]
fn bad_videos_are_refused_by_name_and_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let good = dir.join("good.mp4");
    Synth::new(64, 48, 10, 20).write(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(dir.join("truncated.mp4"), &bytes[..bytes.len() * 2 / 3]).unwrap();
    let mut garbage = bytes.clone();
    for b in garbage.iter_mut().skip(64).step_by(3) {
        *b ^= 0x5a;
    }
    std::fs::write(dir.join("corrupt.mp4"), &garbage).unwrap();
    std::fs::write(
        dir.join("random.mp4"),
        (0..5000u32)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    wav(&dir.join("sound-only.mp4"));
    // Zero frames. (MP4 drops an empty track altogether; Matroska keeps it.)
    let mut empty = Synth::new(64, 48, 10, 0);
    empty.tone_hz = None;
    empty.write(&dir.join("empty.mkv")).unwrap();
    let mut huge = Synth::new(3856, 2176, 10, 1);
    huge.tone_hz = None;
    huge.write(&dir.join("huge.mp4")).unwrap();
    let codec = undecodable(&dir.join("odd-codec.mkv"));

    let mut cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "truncated.mp4",
            vec!["truncated.mp4", "damaged or truncated"],
        ),
        ("corrupt.mp4", vec!["corrupt.mp4"]),
        (
            "random.mp4",
            vec!["random.mp4", "cannot read it as a video"],
        ),
        (
            "sound-only.mp4",
            vec!["sound-only.mp4", "no video stream", "audio"],
        ),
        ("empty.mkv", vec!["empty.mkv", "no video frames"]),
        (
            "huge.mp4",
            vec![
                "huge.mp4",
                "3856x2176",
                "8.4 megapixels",
                "--content-size 3824",
            ],
        ),
    ];
    match &codec {
        Some(name) => cases.push((
            "odd-codec.mkv",
            vec!["odd-codec.mkv", name.as_str(), "cannot decode"],
        )),
        None => eprintln!("note: this FFmpeg decodes every video codec Matroska holds"),
    }
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    for (name, needles) in &cases {
        let out = out_dir.join(format!("{name}.mp4"));
        let o = stylize(&[&dir.join(name), &"-o", &out]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{name} was accepted:\n{err}");
        for n in needles {
            assert!(err.contains(n), "{name}: no `{n}` in:\n{err}");
        }
        assert!(!err.contains("panicked"), "{err}");
        assert_only(&out_dir, &[]);
    }
    // --start past the end: no frames, said as such.
    let o = stylize(&[&good, &"-o", &out_dir.join("late.mp4"), &"--start", &"9"]);
    assert!(
        stderr(&o).contains("no video frames between 9.00 s"),
        "{}",
        stderr(&o)
    );
    assert_only(&out_dir, &[]);
    // The wrong kind of output file.
    let o = stylize(&[&good, &"-o", &out_dir.join("x.png")]);
    assert!(
        stderr(&o).contains("x.png") && stderr(&o).contains(".mp4"),
        "{}",
        stderr(&o)
    );
    let o = stylize(&[&style(), &"-o", &out_dir.join("x.mp4")]);
    assert!(stderr(&o).contains("is a photo"), "{}", stderr(&o));
    let o = stylize(&[&style(), &"-o", &out_dir.join("y.png"), &"--start", &"1"]);
    assert!(stderr(&o).contains("are for videos"), "{}", stderr(&o));
    assert_only(&out_dir, &[]);
}

/// Ctrl-C mid-video: the run stops, says so, and leaves no output and no temporary file.
#[test]
fn ctrl_c_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = tmp.path().join("long.mp4");
    Synth::new(320, 240, 30, 300).write(&clip).unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let mut child = stylecam()
        .args(["stylize", "--device", "cpu", "--model"])
        .arg(model())
        .arg("--style")
        .arg(style())
        .arg(&clip)
        .arg("-o")
        .arg(out_dir.join("long-styled.mp4"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the temporary file: work is under way.
    let end = Instant::now() + Duration::from_secs(60);
    while file_names(&out_dir).is_empty() {
        assert!(Instant::now() < end, "no temporary file appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished too soon to interrupt"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_only(&out_dir, &[]);
}

/// A recording onto a disk that fills up: the error says so, and no file (not even the
/// temporary one) is left. Needs a small tmpfs, so root; skipped elsewhere.
#[test]
fn a_full_disk_ends_a_recording_with_a_clear_error_and_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mnt)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("SKIPPED full-disk recording: cannot mount a small tmpfs (needs root)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            std::process::Command::new("umount")
                .arg(&self.0)
                .status()
                .ok();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let shots = mnt.join("shots");
    let mut rec = video::Recorder::new(&shots, "full");
    let t0 = Instant::now();
    // Noise does not compress: 256 KiB fill within a few frames.
    let mut seed = 1u32;
    let mut error = None;
    for i in 0..400u64 {
        let img = RgbImage::from_fn(320, 240, |_, _| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let v = (seed >> 24) as u8;
            image::Rgb([v, v.wrapping_mul(3), v.wrapping_mul(7)])
        });
        if let Err(e) = rec.push(&img, t0 + Duration::from_millis(i * 40)) {
            error = Some(e.to_string());
            break;
        }
    }
    let error = match error {
        Some(e) => {
            drop(rec);
            e
        }
        None => rec.finish(Instant::now()).unwrap_err().to_string(),
    };
    assert!(error.contains("No space left"), "{error}");
    assert!(error.contains("full.mp4"), "{error}");
    assert_only(&shots, &[]);
}
