//! The real MSG-Net engine in the live pipeline: a fixture model, the test pattern, real threads.
//! Each output is checked against the network run directly on the frame the engine saw, so
//! what is tested is that the controls reach the network, not the network itself (parity.rs
//! does that against PyTorch).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use candle_core::{DType, Device};
use image::RgbImage;
use stylecam::capture::{SourceConfig, SourceSpec};
use stylecam::controls::{Controls, Resolution};
use stylecam::engine::Engine;
use stylecam::model::{self, MsgNet, Targets};
use stylecam::pipeline::{Command, Output, Pipeline, PipelineConfig};
use stylecam::style::{Aspect, StyleBank, TargetCache};
use stylecam::{color, image_io};

const GUARD: Duration = Duration::from_secs(30);

fn net() -> (MsgNet, String) {
    let m = model::load(
        &common::fixtures().join("parity/tiny_ngf8_b2.safetensors"),
        &Device::Cpu,
        DType::F32,
    )
    .unwrap();
    (m.net, m.sha256)
}

fn styles(dir: &Path) -> StyleBank {
    let parity = common::fixtures().join("parity");
    std::fs::copy(parity.join("img_style.png"), dir.join("swirl.png")).unwrap();
    std::fs::copy(parity.join("img_content.png"), dir.join("photo.png")).unwrap();
    StyleBank::from_dir(dir).unwrap()
}

fn controls(style: &str, resolution: Resolution) -> Controls {
    Controls {
        style: style.into(),
        resolution,
        ..Controls::default()
    }
}

fn start(engine: Engine, c: &Controls) -> Pipeline {
    Pipeline::start(
        PipelineConfig {
            source: SourceSpec::TestPattern,
            source_config: SourceConfig {
                resolution: Some((160, 120)),
                fps: Some(30),
                ..SourceConfig::default()
            },
            fallback_to_pattern: false,
            controls: Some(c.clone()),
            ..PipelineConfig::default()
        },
        engine,
    )
    .unwrap()
}

/// The next output that satisfies `ok`.
fn output_where(p: &Pipeline, mut ok: impl FnMut(&Output) -> bool) -> Output {
    let end = Instant::now() + GUARD;
    loop {
        assert!(Instant::now() < end, "no such output within {GUARD:?}");
        match p.recv_timeout(Duration::from_millis(200)) {
            Some(Ok(o)) if ok(&o) => return o,
            Some(Err(e)) => panic!("{e}"),
            _ => {}
        }
    }
}

/// What the network makes of `frame` with the target of `style` at brush 1.
fn expected(net: &MsgNet, style: &Path, frame: &RgbImage, preserve: bool) -> RgbImage {
    let s = image_io::resize_square(&image_io::load_rgb(style).unwrap(), 512);
    let t = net
        .style_target(&image_io::to_tensor(&s, &Device::Cpu, DType::F32).unwrap())
        .unwrap();
    let x = image_io::to_tensor(frame, &Device::Cpu, DType::F32).unwrap();
    let mut y = net.forward_with(&x, Targets::One(&t), 1.0).unwrap();
    if preserve {
        y = color::preserve_color(&y, &x).unwrap();
    }
    image_io::to_image(&y).unwrap()
}

fn max_diff(a: &RgbImage, b: &RgbImage) -> u8 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

#[test]
fn the_engine_stylises_pattern_frames_and_follows_the_controls() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = styles(tmp.path());
    let (net, sha) = net();
    let check = net.clone();
    let c = controls("swirl", Resolution::Native);
    let engine = Engine::new(
        net,
        bank,
        TargetCache::new(&sha, None),
        Aspect::Square,
        c.clone(),
    )
    .unwrap();
    let p = start(engine, &c);

    // Frames flow, at the source's size, stylised with the first style.
    let out = output_where(&p, |_| true);
    assert_eq!(out.original.dimensions(), (160, 120));
    let swirl = tmp.path().join("swirl.png");
    let photo = tmp.path().join("photo.png");
    assert!(
        max_diff(
            &out.stylized,
            &expected(&check, &swirl, &out.original, false)
        ) <= 1
    );

    // Another style: outputs keep coming while its target is computed, then use it.
    p.send(Command::Controls(controls("photo", Resolution::Native)));
    let out = output_where(&p, |o| {
        max_diff(&o.stylized, &expected(&check, &photo, &o.original, false)) <= 1
    });
    assert_ne!(
        out.stylized,
        expected(&check, &swirl, &out.original, false),
        "the two styles must differ for this test to mean anything"
    );

    // The processing resolution scales the frame down, keeping the aspect.
    p.send(Command::Controls(controls("photo", Resolution::P240)));
    // 160x120 is below 240p: unchanged. (The fit itself is unit-tested in controls.rs.)
    let out = output_where(&p, |o| o.original.dimensions() == (160, 120));
    assert_eq!(out.stylized.dimensions(), (160, 120));

    // Colour preservation reaches the network's output.
    let kept = Controls {
        preserve_color: true,
        ..controls("photo", Resolution::Native)
    };
    p.send(Command::Controls(kept));
    output_where(&p, |o| {
        max_diff(&o.stylized, &expected(&check, &photo, &o.original, true)) <= 1
    });

    // An unknown style is an error for the UI; the engine keeps the last good controls.
    p.send(Command::Controls(controls("nope", Resolution::Native)));
    let end = Instant::now() + GUARD;
    while p.inference_status().banner().is_none() {
        assert!(Instant::now() < end, "no error for an unknown style");
        std::thread::sleep(Duration::from_millis(20));
    }
    let banner = p.inference_status().banner().unwrap();
    assert!(banner.contains("nope"), "{banner}");
    output_where(&p, |o| {
        max_diff(&o.stylized, &expected(&check, &photo, &o.original, true)) <= 1
    });

    let report = p.shutdown();
    assert!(
        report.capture_joined && report.inference_joined,
        "{report:?}"
    );
}

#[test]
fn the_engine_mixes_and_splits_two_styles() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = styles(tmp.path());
    let (net, sha) = net();
    let mixed = Controls {
        second_style: Some("photo".into()),
        mix: 1.0,
        ..controls("swirl", Resolution::Native)
    };
    let mut engine = Engine::new(
        net.clone(),
        bank,
        TargetCache::new(&sha, None),
        Aspect::Square,
        mixed,
    )
    .unwrap();
    let frame = stylecam::capture::TestPattern::new(96, 64, 30).render(7);
    // mix 1 is exactly the second style.
    let out = engine.stylize(&frame).unwrap();
    let photo = tmp.path().join("photo.png");
    assert!(max_diff(&out.stylized, &expected(&net, &photo, &frame, false)) <= 1);
    // A vertical split: the left half is nearer the first style, the right the second.
    engine
        .apply(&Controls {
            second_style: Some("photo".into()),
            split: Some(stylecam::style::Split::Vertical),
            ..controls("swirl", Resolution::Native)
        })
        .unwrap();
    let out = engine.stylize(&frame).unwrap();
    let a = expected(&net, &tmp.path().join("swirl.png"), &frame, false);
    let b = expected(&net, &photo, &frame, false);
    let dist = |x: &RgbImage, y: &RgbImage, left: bool| -> f64 {
        let mut s = 0f64;
        for ((col, _, p), q) in x.enumerate_pixels().zip(y.pixels()) {
            if (col < 48) == left {
                s += (0..3)
                    .map(|c| (p[c] as f64 - q[c] as f64).abs())
                    .sum::<f64>();
            }
        }
        s
    };
    assert!(dist(&out.stylized, &a, true) < dist(&out.stylized, &b, true));
    assert!(dist(&out.stylized, &b, false) < dist(&out.stylized, &a, false));
}

#[test]
fn the_engine_says_which_style_it_is_preparing_until_it_is_ready_or_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let bank = styles(tmp.path());
    let (net, sha) = net();
    let mut engine = Engine::new(
        net.clone(),
        bank,
        TargetCache::new(&sha, None),
        Aspect::Square,
        controls("swirl", Resolution::Native),
    )
    .unwrap();
    assert_eq!(
        engine.preparing(),
        None,
        "the first style is ready at start"
    );
    let frame = stylecam::capture::TestPattern::new(64, 48, 30).render(3);
    let photo = tmp.path().join("photo.png");

    // A new style: prepared in the background, named until its target is in use.
    engine
        .apply(&controls("photo", Resolution::Native))
        .unwrap();
    assert_eq!(engine.preparing().as_deref(), Some("photo"));
    let end = Instant::now() + GUARD;
    let mut out = engine.stylize(&frame).unwrap();
    while engine.preparing().is_some() {
        assert!(Instant::now() < end, "the target never arrived");
        std::thread::sleep(Duration::from_millis(5));
        out = engine.stylize(&frame).unwrap();
    }
    let out = if max_diff(&out.stylized, &expected(&net, &photo, &frame, false)) <= 1 {
        out
    } else {
        // The target arrived during the last call's collection: the next frame uses it.
        engine.stylize(&frame).unwrap()
    };
    assert!(max_diff(&out.stylized, &expected(&net, &photo, &frame, false)) <= 1);

    // A style image that cannot be read: prepared, then failed, and no longer "preparing".
    let bad = tmp.path().join("elsewhere/broken.png");
    std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
    std::fs::write(&bad, b"not a png").unwrap();
    engine
        .apply(&controls(bad.to_str().unwrap(), Resolution::Native))
        .unwrap();
    assert_eq!(engine.preparing().as_deref(), Some("broken"));
    while engine.preparing().is_some() {
        assert!(Instant::now() < end, "the failure never arrived");
        std::thread::sleep(Duration::from_millis(5));
        engine.stylize(&frame).unwrap();
    }
}
