//! The capture sources and the live pipeline with real threads and real sources (no camera:
//! the test pattern, PNG files written here, and test doubles). Waits are polls with generous
//! upper bounds that only guard against hangs; nothing asserts that something is fast, except
//! the shutdown bound, which is the behaviour under test.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel as cb;
use image::{Rgb, RgbImage};
use stylecam::capture::{
    self, list_cameras, CaptureError, Frame, FrameSource, SourceConfig, SourceSpec, TestPattern,
};
use stylecam::controls::Controls;
use stylecam::pipeline::{
    CaptureState, Command, InferenceError, Opener, Output, Pipeline, PipelineConfig, Stylized,
    Stylizer,
};

/// Upper bound for anything that should happen: only a hang guard.
const GUARD: Duration = Duration::from_secs(10);

fn pattern_config(w: u32, h: u32, fps: u32) -> PipelineConfig {
    PipelineConfig {
        source: SourceSpec::TestPattern,
        source_config: SourceConfig {
            resolution: Some((w, h)),
            fps: Some(fps),
            ..SourceConfig::default()
        },
        fallback_to_pattern: false,
        ..PipelineConfig::default()
    }
}

/// Polls `f` until it holds; panics with `what` after [`GUARD`].
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < GUARD, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The next successful output, within [`GUARD`].
fn next_output(p: &Pipeline) -> Output {
    let start = Instant::now();
    loop {
        let left = GUARD.saturating_sub(start.elapsed());
        assert!(!left.is_zero(), "timed out waiting for an output");
        match p.recv_timeout(left) {
            Some(Ok(out)) => return out,
            Some(Err(e)) => panic!("unexpected error: {e}"),
            None => {}
        }
    }
}

fn invert(img: &RgbImage) -> RgbImage {
    let mut out = img.clone();
    image::imageops::invert(&mut out);
    out
}

/// Inverts colours, after an optional sleep; counts calls and remembers applied controls.
#[derive(Default, Clone)]
struct Invert {
    delay: Duration,
    calls: Arc<AtomicU64>,
    applied: Arc<Mutex<Vec<Controls>>>,
}

impl Stylizer for Invert {
    fn apply(&mut self, controls: &Controls) -> anyhow::Result<()> {
        self.applied.lock().unwrap().push(controls.clone());
        Ok(())
    }

    fn stylize(&mut self, frame: &Frame) -> anyhow::Result<Stylized> {
        std::thread::sleep(self.delay);
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(Stylized {
            original: frame.image.clone(),
            stylized: invert(&frame.image),
        })
    }

    fn describe_device(&self) -> String {
        "test inverter".into()
    }
}

#[test]
fn frames_flow_end_to_end_with_the_test_pattern() {
    let p = Pipeline::start(pattern_config(64, 48, 60), Invert::default()).unwrap();
    assert_eq!(p.device(), "test inverter");
    let reference = TestPattern::new(64, 48, 60);
    let mut last = None;
    for _ in 0..5 {
        let out = next_output(&p);
        assert_eq!(out.original.dimensions(), (64, 48));
        // The frame is the pattern's frame `seq`, and the output is its inverse.
        assert_eq!(out.original, reference.render(out.seq));
        assert_eq!(out.stylized, invert(&out.original));
        assert!(out.finished_at >= out.captured_at);
        if let Some(prev) = last {
            assert!(out.seq > prev, "seqs go up: {prev} then {}", out.seq);
        }
        last = Some(out.seq);
    }
    let status = p.status();
    assert_eq!(status.state, CaptureState::Running);
    assert_eq!(status.requested, "test-pattern");
    assert_eq!(
        status.source.as_deref(),
        Some("test pattern 64x48 at 60 fps")
    );
    assert_eq!(status.banner(), None);
    let stats = p.stats();
    assert!(
        stats.frames_stylized >= 5 && stats.frames_captured >= 5,
        "{stats:?}"
    );
    assert!(
        stats.latency_ms.is_some() && stats.inference_ms.is_some(),
        "{stats:?}"
    );
    assert_eq!(stats.errors, 0);
    let report = p.shutdown();
    assert!(
        report.capture_joined && report.inference_joined,
        "{report:?}"
    );
}

#[test]
fn a_slow_stylizer_gets_the_newest_frame_and_drops_are_counted() {
    let slow = Invert {
        delay: Duration::from_millis(200),
        ..Invert::default()
    };
    let p = Pipeline::start(pattern_config(32, 24, 60), slow).unwrap();
    let seqs: Vec<u64> = (0..3).map(|_| next_output(&p).seq).collect();
    assert!(
        seqs.windows(2).any(|w| w[1] - w[0] > 1),
        "frames were skipped for newer ones: {seqs:?}"
    );
    let stats = p.stats();
    assert!(stats.dropped_before_inference > 0, "{stats:?}");
    assert!(stats.camera_fps > stats.inference_fps, "{stats:?}");
}

/// Blocks in `stylize` until the test opens the gate; reports each entry.
struct Gated {
    entered: cb::Sender<u64>,
    gate: cb::Receiver<()>,
    applied: Arc<Mutex<Vec<Controls>>>,
}

impl Stylizer for Gated {
    fn apply(&mut self, controls: &Controls) -> anyhow::Result<()> {
        self.applied.lock().unwrap().push(controls.clone());
        Ok(())
    }

    fn stylize(&mut self, frame: &Frame) -> anyhow::Result<Stylized> {
        self.entered.send(frame.seq).ok();
        // Returns at once once the gate's sender is dropped.
        self.gate.recv_timeout(GUARD).ok();
        Ok(Stylized {
            original: frame.image.clone(),
            stylized: frame.image.clone(),
        })
    }

    fn describe_device(&self) -> String {
        "gated".into()
    }
}

#[test]
fn only_the_last_controls_of_a_burst_are_applied() {
    let (entered_tx, entered) = cb::unbounded();
    let (open_gate, gate) = cb::bounded::<()>(0);
    let applied = Arc::new(Mutex::new(Vec::new()));
    let stylizer = Gated {
        entered: entered_tx,
        gate,
        applied: applied.clone(),
    };
    let first = Controls {
        style: "first".into(),
        ..Controls::default()
    };
    let config = PipelineConfig {
        controls: Some(first.clone()),
        ..pattern_config(32, 24, 60)
    };
    let p = Pipeline::start(config, stylizer).unwrap();
    // The thread is inside `stylize` now; a burst of controls piles up meanwhile.
    entered
        .recv_timeout(GUARD)
        .expect("a frame reaches the stylizer");
    let burst: Vec<Controls> = (1..=10)
        .map(|i| Controls {
            style: format!("style{i}"),
            brush: i as f32 * 0.25,
            ..Controls::default()
        })
        .collect();
    for c in &burst {
        p.send(Command::Controls(c.clone()));
    }
    drop(open_gate);
    next_output(&p);
    // A later frame proves the commands were handled.
    next_output(&p);
    let applied = applied.lock().unwrap().clone();
    assert_eq!(applied, vec![first, burst[9].clone()]);
}

#[test]
fn pause_stops_outputs_and_resume_restarts_them() {
    let stylizer = Invert::default();
    let calls = stylizer.calls.clone();
    let p = Pipeline::start(pattern_config(32, 24, 60), stylizer).unwrap();
    next_output(&p);
    p.send(Command::Pause(true));
    assert!(p.is_paused());
    // Let a frame that was being stylised finish.
    let mut settled = calls.load(Ordering::SeqCst);
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = calls.load(Ordering::SeqCst);
        if now == settled {
            break;
        }
        settled = now;
    }
    while p.try_latest().is_some() {}
    let drops = p.stats().dropped_before_inference;
    let captured = p.stats().frames_captured;
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        settled,
        "no inference while paused"
    );
    assert!(p.try_latest().is_none(), "no outputs while paused");
    let stats = p.stats();
    assert_eq!(
        stats.dropped_before_inference, drops,
        "nothing queued, so nothing dropped"
    );
    assert!(
        stats.frames_captured > captured,
        "the source is still read: {stats:?}"
    );

    p.send(Command::Pause(false));
    assert!(!p.is_paused());
    let out = next_output(&p);
    assert!(calls.load(Ordering::SeqCst) > settled);
    assert_eq!(out.stylized, invert(&out.original));
}

#[test]
fn shutdown_joins_within_a_second_with_a_slow_stylizer() {
    let slow = Invert {
        delay: Duration::from_millis(200),
        ..Invert::default()
    };
    let calls = slow.calls.clone();
    let p = Pipeline::start(pattern_config(32, 24, 60), slow).unwrap();
    // Make sure the stylizer is busy.
    wait_for("a first inference", || calls.load(Ordering::SeqCst) > 0);
    let start = Instant::now();
    let report = p.shutdown();
    let took = start.elapsed();
    assert!(
        report.capture_joined && report.inference_joined,
        "{report:?}"
    );
    assert!(took < Duration::from_millis(1500), "shutdown took {took:?}");
}

#[test]
fn shutdown_leaves_a_stuck_stylizer_behind_instead_of_hanging() {
    let (entered_tx, entered) = cb::unbounded();
    // Never opened: `stylize` blocks for GUARD.
    let (_gate_tx, gate) = cb::bounded::<()>(0);
    let stylizer = Gated {
        entered: entered_tx,
        gate,
        applied: Arc::default(),
    };
    let p = Pipeline::start(pattern_config(32, 24, 60), stylizer).unwrap();
    entered
        .recv_timeout(GUARD)
        .expect("a frame reaches the stylizer");
    let start = Instant::now();
    let report = p.shutdown();
    let took = start.elapsed();
    assert!(report.capture_joined, "{report:?}");
    assert!(!report.inference_joined, "{report:?}");
    assert!(took < Duration::from_millis(1500), "shutdown took {took:?}");
}

/// Errors on frames with an odd seq, panics on seqs 2, 6, 10, ...; cannot apply controls.
struct Moody;

impl Stylizer for Moody {
    fn apply(&mut self, _: &Controls) -> anyhow::Result<()> {
        anyhow::bail!("no such style `nope`")
    }

    fn stylize(&mut self, frame: &Frame) -> anyhow::Result<Stylized> {
        if frame.seq % 4 == 2 {
            panic!("boom");
        }
        if frame.seq % 2 == 1 {
            anyhow::bail!("odd frame");
        }
        Ok(Stylized {
            original: frame.image.clone(),
            stylized: frame.image.clone(),
        })
    }

    fn describe_device(&self) -> String {
        "moody".into()
    }
}

#[test]
fn stylizer_errors_and_panics_travel_as_data_and_the_thread_carries_on() {
    // 10 fps so that every frame is stylised (the stylizer is instant).
    let p = Pipeline::start(pattern_config(16, 16, 10), Moody).unwrap();
    p.send(Command::Controls(Controls::default()));
    let (mut stylize_err, mut panic_seq, mut ok_after_panic) = (false, None, false);
    let start = Instant::now();
    // Outputs replace each other, so keep reading until each kind has been seen.
    while !(stylize_err && ok_after_panic) {
        assert!(
            start.elapsed() < GUARD,
            "saw stylize {stylize_err}, panic {panic_seq:?}, ok after {ok_after_panic}"
        );
        match p.recv_timeout(Duration::from_millis(100)) {
            Some(Err(e @ InferenceError::Controls { .. })) => {
                panic!("controls errors go to the status, not the channel: {e}")
            }
            Some(Err(InferenceError::Stylize { seq, message })) => {
                assert_eq!((seq % 2, message.as_str()), (1, "odd frame"));
                stylize_err = true;
            }
            Some(Err(e @ InferenceError::Panic { seq, .. })) => {
                let seq = seq.expect("a frame's panic names the frame");
                let text = e.to_string();
                assert!(
                    text.contains(&format!("panicked on frame {seq}: boom")),
                    "{text}"
                );
                panic_seq = Some(seq);
            }
            Some(Ok(out)) => ok_after_panic |= panic_seq.is_some_and(|s| out.seq > s),
            None => {}
        }
    }
    assert!(p.stats().errors >= 3);
    wait_for("the controls error", || {
        p.inference_status().controls_error.is_some()
    });
    let status = p.inference_status();
    assert_eq!(
        status.controls_error,
        Some(InferenceError::Controls {
            message: "no such style `nope`".into()
        })
    );
    let banner = status.banner().unwrap();
    assert!(
        banner.starts_with("cannot apply the controls: no such style `nope`"),
        "{banner}"
    );
}

/// Delivers `left` frames, then fails as an unplugged camera would.
struct Flaky {
    left: u32,
    seq: u64,
}

impl FrameSource for Flaky {
    fn describe(&self) -> String {
        "flaky camera".into()
    }

    fn next_frame(&mut self) -> Result<Frame, CaptureError> {
        if self.left == 0 {
            return Err(CaptureError::Source {
                what: "flaky camera".into(),
                message: "unplugged".into(),
            });
        }
        self.left -= 1;
        std::thread::sleep(Duration::from_millis(5));
        self.seq += 1;
        Ok(Frame {
            image: RgbImage::from_pixel(8, 8, Rgb([1, 2, 3])),
            seq: self.seq - 1,
            captured_at: Instant::now(),
        })
    }
}

#[test]
fn a_lost_source_is_reported_and_reopened() {
    let opens = Arc::new(AtomicU64::new(0));
    let (release_tx, release) = cb::bounded::<()>(1);
    let counter = opens.clone();
    let opener = Opener::new("flaky", move || {
        match counter.fetch_add(1, Ordering::SeqCst) {
            0 => Ok(Box::new(Flaky { left: 5, seq: 0 }) as Box<dyn FrameSource>),
            1 => {
                // The first retry waits until the test has seen the Lost status, then fails.
                release.recv_timeout(GUARD).ok();
                Err(CaptureError::Source {
                    what: "flaky camera".into(),
                    message: "still unplugged".into(),
                })
            }
            _ => Ok(Box::new(Flaky {
                left: u32::MAX,
                seq: 0,
            })),
        }
    });
    let config = PipelineConfig {
        retry_interval: Duration::from_millis(20),
        ..pattern_config(8, 8, 30)
    };
    let p = Pipeline::start_with_opener(config, opener, Invert::default()).unwrap();
    let before = next_output(&p).seq;
    wait_for("the Lost status", || {
        matches!(p.status().state, CaptureState::Lost { .. })
    });
    let status = p.status();
    assert_eq!(
        status.state,
        CaptureState::Lost {
            message: "flaky camera: unplugged".into(),
            attempts: 0
        }
    );
    assert_eq!(status.source, None);
    assert_eq!(status.losses, 1);
    assert_eq!(
        status.banner().as_deref(),
        Some("flaky camera: unplugged; retrying…")
    );
    release_tx.send(()).unwrap();
    wait_for("the recovery", || p.status().recoveries == 1);
    let status = p.status();
    assert_eq!(status.state, CaptureState::Running);
    assert_eq!(status.source.as_deref(), Some("flaky camera"));
    assert_eq!(opens.load(Ordering::SeqCst), 3);
    // Frames flow again, numbered on from before the loss.
    while p.try_latest().is_some() {}
    let after = next_output(&p).seq;
    assert!(after > before, "{before} then {after}");
}

#[test]
fn switching_the_source_opens_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let photo = dir.path().join("photo.png");
    let img = RgbImage::from_pixel(20, 10, Rgb([10, 200, 30]));
    img.save(&photo).unwrap();
    let p = Pipeline::start(pattern_config(16, 16, 30), Invert::default()).unwrap();
    next_output(&p);
    p.switch_source(SourceSpec::Path(photo.clone()));
    wait_for("the image source", || {
        p.status()
            .source
            .is_some_and(|s| s.starts_with("image ") && s.contains("photo.png"))
    });
    assert_eq!(p.status().requested, photo.display().to_string());
    wait_for(
        "a frame of the image",
        || matches!(p.try_latest(), Some(Ok(out)) if out.original == img),
    );
}

#[test]
fn after_a_fallback_the_requested_source_is_retried_in_the_background() {
    // Fails at start and at the first retry; the second retry blocks until the test lets it
    // open. Meanwhile the test pattern keeps running.
    let opens = Arc::new(AtomicU64::new(0));
    let (release_tx, release) = cb::bounded::<()>(1);
    let counter = opens.clone();
    let opener = Opener::new("shy camera", move || {
        if counter.fetch_add(1, Ordering::SeqCst) < 2 {
            return Err(CaptureError::Source {
                what: "shy camera".into(),
                message: "busy".into(),
            });
        }
        release.recv_timeout(GUARD).ok();
        Ok(Box::new(Flaky {
            left: u32::MAX,
            seq: 0,
        }) as Box<dyn FrameSource>)
    });
    let config = PipelineConfig {
        fallback_to_pattern: true,
        retry_interval: Duration::from_millis(30),
        ..pattern_config(16, 16, 60)
    };
    let p = Pipeline::start_with_opener(config, opener, Invert::default()).unwrap();
    wait_for("the fallback", || {
        matches!(p.status().state, CaptureState::Fallback { .. })
    });
    assert_eq!(
        p.status().banner().as_deref(),
        Some(
            "shy camera: busy; starting the test pattern instead (shy camera is retried in the \
             background)"
        )
    );
    // The second retry is under way (and blocked): the pattern still delivers new frames.
    wait_for("the second retry", || opens.load(Ordering::SeqCst) == 3);
    while p.try_latest().is_some() {}
    let during = next_output(&p);
    assert_eq!(during.original.dimensions(), (16, 16));
    assert!(matches!(p.status().state, CaptureState::Fallback { .. }));
    release_tx.send(()).unwrap();
    wait_for("the retried source", || p.status().recoveries == 1);
    let status = p.status();
    assert_eq!(status.state, CaptureState::Running);
    assert_eq!(status.source.as_deref(), Some("flaky camera"));
    assert_eq!(status.banner(), None);
    // Its frames arrive, numbered on from the pattern's.
    while p.try_latest().is_some() {}
    let after = next_output(&p);
    assert_eq!(after.original.dimensions(), (8, 8));
    assert!(after.seq > during.seq);
}

fn write_png(path: &std::path::Path, colour: [u8; 3]) {
    RgbImage::from_pixel(6, 4, Rgb(colour)).save(path).unwrap();
}

#[test]
fn folder_slideshow_goes_by_name_and_skips_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("a.png"), [255, 0, 0]);
    std::fs::write(dir.path().join("b.png"), b"not an image").unwrap();
    write_png(&dir.path().join("c.png"), [0, 255, 0]);
    write_png(&dir.path().join("d.png"), [0, 0, 255]);
    write_png(&dir.path().join(".hidden.png"), [9, 9, 9]);
    let config = SourceConfig {
        fps: Some(240),
        slide_duration: Duration::from_millis(30),
        ..SourceConfig::default()
    };
    let mut show = capture::open(&SourceSpec::Path(dir.path().into()), &config).unwrap();
    assert!(
        show.describe().starts_with("slideshow"),
        "{}",
        show.describe()
    );
    let mut seen: Vec<[u8; 3]> = Vec::new();
    let start = Instant::now();
    while seen.len() < 4 {
        assert!(start.elapsed() < GUARD, "slides so far: {seen:?}");
        let frame = show.next_frame().unwrap();
        let colour = frame.image.get_pixel(0, 0).0;
        if seen.last() != Some(&colour) {
            seen.push(colour);
        }
    }
    assert_eq!(seen, [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 0, 0]]);
    assert!(show.describe().contains("(3 images"), "{}", show.describe());
}

#[test]
fn folders_without_images_are_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let spec = SourceSpec::Path(dir.path().into());
    let err = capture::open(&spec, &SourceConfig::default())
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(matches!(err, CaptureError::EmptyFolder { .. }), "{text}");
    assert!(
        text.contains(&dir.path().display().to_string()) && text.contains("has no files"),
        "{text}"
    );

    std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
    let err = capture::open(&spec, &SourceConfig::default())
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(
        matches!(err, CaptureError::NoReadableImages { count: 1, .. }),
        "{text}"
    );
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
}

#[test]
fn an_image_file_repeats_at_the_set_rate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("still.png");
    write_png(&path, [7, 8, 9]);
    let config = SourceConfig {
        fps: Some(120),
        ..SourceConfig::default()
    };
    let mut src = capture::open(&SourceSpec::Path(path), &config).unwrap();
    assert!(
        src.describe().contains("still.png (6x4) at 120 fps"),
        "{}",
        src.describe()
    );
    let a = src.next_frame().unwrap();
    let b = src.next_frame().unwrap();
    assert_eq!((a.seq, b.seq), (0, 1));
    assert_eq!(a.image, b.image);
    assert!(b.captured_at > a.captured_at);
}

/// True (and says so) when this machine has a camera, which makes the no-camera tests moot.
fn camera_present(test: &str) -> bool {
    match list_cameras() {
        Ok(list) if !list.is_empty() => {
            eprintln!("SKIPPED {test}: this machine has cameras: {list:?}");
            true
        }
        _ => false,
    }
}

#[test]
fn opening_a_camera_without_one_gives_a_clear_error() {
    if camera_present("opening_a_camera_without_one_gives_a_clear_error") {
        return;
    }
    let spec: SourceSpec = "camera".parse().unwrap();
    let err = capture::open(&spec, &SourceConfig::default())
        .err()
        .expect("no camera on this machine")
        .to_string();
    eprintln!("{err}");
    assert!(err.starts_with("no camera found (camera 0): "), "{err}");
    assert!(
        err.contains("check that a webcam is connected")
            && err.contains("the `video` group")
            && err.contains("Privacy › Camera"),
        "{err}"
    );
}

#[test]
fn without_a_camera_the_pipeline_falls_back_to_the_test_pattern() {
    if camera_present("without_a_camera_the_pipeline_falls_back_to_the_test_pattern") {
        return;
    }
    let config = PipelineConfig {
        source: SourceSpec::Camera(0),
        ..PipelineConfig::default()
    };
    let p = Pipeline::start(config, Invert::default()).unwrap();
    wait_for("the fallback", || {
        matches!(p.status().state, CaptureState::Fallback { .. })
    });
    let status = p.status();
    let banner = status.banner().unwrap();
    assert!(
        banner.starts_with("no camera found (camera 0)")
            && banner.ends_with(
                "; starting the test pattern instead (camera:0 is retried in the background)"
            ),
        "{banner}"
    );
    assert_eq!(status.requested, "camera:0");
    assert_eq!(
        status.source.as_deref(),
        Some("test pattern 640x480 at 30 fps")
    );
    assert_eq!(next_output(&p).original.dimensions(), (640, 480));
}
