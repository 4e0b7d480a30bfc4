//! `LiveState` without a display: events and a fake clock in, effects out.

use std::path::Path;
use std::time::{Duration, Instant};

use image::{Rgb, RgbImage};

use super::*;
use crate::pipeline::CaptureState;

mod keep;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A state with styles "a", "b", "c" (labels "A", "B", "C"), style "a" selected, snapshots
/// into /snapshots; the window opened at the returned instant.
fn setup(tweak: impl FnOnce(&mut StateOptions)) -> (LiveState, Instant) {
    let mut opts = StateOptions {
        settings: Settings::default(),
        snapshot_dir: Some("/snapshots".into()),
        device: "test device".into(),
        ..StateOptions::default()
    };
    opts.settings.controls.style = "a".into();
    tweak(&mut opts);
    let t0 = Instant::now();
    let styles = ["a", "b", "c"]
        .iter()
        .map(|s| (s.to_string(), s.to_uppercase()))
        .collect();
    let mut st = LiveState::new(opts, styles, t0);
    let fx = st.on_opened(t0);
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Work(worker::Command::ListCameras))));
    (st, t0)
}

fn output(seq: u64, at: Instant) -> Output {
    Output {
        seq,
        captured_at: at,
        finished_at: at,
        inference_time: Duration::ZERO,
        original: RgbImage::from_pixel(40, 30, Rgb([10, 20, 30])),
        stylized: RgbImage::from_pixel(40, 30, Rgb([200, 100, seq as u8])),
    }
}

/// The controls sent to the pipeline, if any.
fn sent(fx: &[Effect]) -> Option<Controls> {
    fx.iter().find_map(|e| match e {
        Effect::Pipeline(Command::Controls(c)) => Some(c.clone()),
        _ => None,
    })
}

fn style_sent(fx: &[Effect]) -> Option<String> {
    sent(fx).map(|c| c.style)
}

fn has(fx: &[Effect], f: impl Fn(&Effect) -> bool) -> bool {
    fx.iter().any(f)
}

fn texts(st: &LiveState) -> Vec<String> {
    st.banners().into_iter().map(|b| b.text).collect()
}

#[test]
fn arrows_cycle_styles_both_ways_and_number_keys_pick_one() {
    let (mut st, t) = setup(|_| {});
    assert_eq!(
        style_sent(&st.on_action(Action::NextStyle, t)).as_deref(),
        Some("b")
    );
    st.on_action(Action::NextStyle, t);
    assert_eq!(
        style_sent(&st.on_action(Action::NextStyle, t)).as_deref(),
        Some("a"),
        "wraps forward"
    );
    assert_eq!(
        style_sent(&st.on_action(Action::PreviousStyle, t)).as_deref(),
        Some("c"),
        "wraps backward"
    );
    assert_eq!(
        style_sent(&st.on_action(Action::Style(1), t)).as_deref(),
        Some("b")
    );
    // Key 9 with three styles does nothing; nor does picking the current style again.
    assert_eq!(sent(&st.on_action(Action::Style(8), t)), None);
    assert_eq!(sent(&st.on_action(Action::Style(1), t)), None);
    assert_eq!(st.current_style(), Some(1));
}

#[test]
fn brush_keys_step_a_quarter_octave_within_the_range() {
    let (mut st, t) = setup(|o| o.settings.controls.brush = 1.0);
    let c = sent(&st.on_action(Action::BrushLarger, t)).unwrap();
    assert!((c.brush - 2f32.powf(0.25)).abs() < 1e-6, "{}", c.brush);
    let c = sent(&st.on_action(Action::BrushSmaller, t)).unwrap();
    assert!((c.brush - 1.0).abs() < 1e-6, "{}", c.brush);
    // At the top of the range another step changes nothing, so nothing is sent.
    st.settings.controls.brush = *crate::controls::BRUSH_RANGE.end();
    st.tick(t);
    assert_eq!(sent(&st.on_action(Action::BrushLarger, t)), None);
}

#[test]
fn toggles_pause_and_escape() {
    let (mut st, t) = setup(|_| {});
    let fx = st.on_action(Action::TogglePause, t);
    assert!(has(&fx, |e| matches!(
        e,
        Effect::Pipeline(Command::Pause(true))
    )));
    let c = sent(&st.on_action(Action::ToggleColor, t)).unwrap();
    assert!(c.preserve_color);
    // Side by side: the buffer is redone once, at the next tick, if there is a picture.
    st.on_output(Ok(output(1, t)), t);
    st.on_action(Action::ToggleSideBySide, t);
    assert!(has(&st.tick(t), |e| matches!(e, Effect::Upload)));
    assert!(!has(&st.tick(t), |e| matches!(e, Effect::Upload)));
    assert!(st.shown().unwrap().2);
    // Esc leaves fullscreen first, then quits.
    st.on_action(Action::ToggleFullscreen, t);
    let fx = st.on_action(Action::Escape, t);
    assert!(has(&fx, |e| matches!(e, Effect::Fullscreen(false))));
    assert!(has(&st.on_action(Action::Escape, t), |e| matches!(
        e,
        Effect::Exit
    )));
    // In kiosk mode Esc quits at once, though the window is fullscreen.
    let (mut kiosk, t) = setup(|o| o.kiosk = true);
    assert!(kiosk.fullscreen() && !kiosk.show_panel());
    assert!(has(&kiosk.on_action(Action::Escape, t), |e| matches!(
        e,
        Effect::Exit
    )));
}

#[test]
fn auto_cycle_moves_on_every_n_seconds_counted_from_the_last_change() {
    let (mut st, t) = setup(|o| o.settings.auto_cycle_secs = Some(5));
    assert_eq!(style_sent(&st.tick(t + secs(4.9))), None);
    assert_eq!(style_sent(&st.tick(t + secs(5.0))).as_deref(), Some("b"));
    // A style picked by hand restarts the count.
    st.on_action(Action::Style(0), t + secs(7.0));
    assert_eq!(style_sent(&st.tick(t + secs(11.9))), None);
    assert_eq!(style_sent(&st.tick(t + secs(12.0))).as_deref(), Some("b"));
    // Paused: no cycling.
    st.on_panel(PanelAction::Pause(true), t + secs(12.0));
    assert_eq!(style_sent(&st.tick(t + secs(30.0))), None);
}

#[test]
fn the_exit_timer_counts_from_the_first_frame_shown() {
    let exit = |fx: &[Effect]| has(fx, |e| matches!(e, Effect::Exit));
    let (mut st, t) = setup(|o| o.exit_after = Some(secs(5.0)));
    // No frame yet: 10 s of grace first.
    assert!(!exit(&st.tick(t + secs(14.9))));
    assert!(exit(&st.tick(t + secs(15.0))));

    let (mut st, t) = setup(|o| o.exit_after = Some(secs(5.0)));
    st.on_drawn(t + secs(1.0), false);
    st.on_drawn(t + secs(2.0), true);
    st.on_drawn(t + secs(3.0), true);
    assert!(!exit(&st.tick(t + secs(6.9))));
    assert!(exit(&st.tick(t + secs(7.0))));
}

#[test]
fn banners_expire_notes_sooner_than_errors() {
    let (mut st, t) = setup(|_| {});
    st.on_reply(
        Reply::Saved {
            what: Kind::Snapshot,
            path: "/snapshots/s.png".into(),
        },
        t,
    );
    assert!(!st.banners()[0].error);
    st.tick(t + NOTE_SECS - secs(0.1));
    assert_eq!(texts(&st).len(), 1);
    assert!(has(&st.tick(t + NOTE_SECS), |e| matches!(
        e,
        Effect::Redraw
    )));
    assert!(texts(&st).is_empty());

    st.on_reply(
        Reply::Failed {
            what: Kind::Snapshot,
            error: "disk full".into(),
        },
        t,
    );
    st.tick(t + ERROR_SECS - secs(0.1));
    assert_eq!(texts(&st), ["disk full"]);
    st.tick(t + ERROR_SECS);
    assert!(texts(&st).is_empty());
}

#[test]
fn a_stylise_error_is_shown_once() {
    let (mut st, t) = setup(|_| {});
    let error = InferenceError::Stylize {
        seq: 3,
        message: "out of memory".into(),
    };
    // It arrives down the output channel and stays in the inference status.
    st.on_output(Err(error.clone()), t);
    let inference = InferenceStatus {
        frame_error: Some(error.clone()),
        ..InferenceStatus::default()
    };
    let capture = CaptureStatus {
        requested: "test-pattern".into(),
        source: Some("test pattern".into()),
        state: CaptureState::Running,
        losses: 0,
        recoveries: 0,
    };
    st.on_status(&capture, &inference, "stats".into());
    assert_eq!(texts(&st), [error.to_string()]);
    // A controls error stays while the status holds it, once, even if also shown as a note.
    let controls = InferenceError::Controls {
        message: "unknown style".into(),
    };
    let inference = InferenceStatus {
        controls_error: Some(controls.clone()),
        ..InferenceStatus::default()
    };
    st.on_status(&capture, &inference, "stats".into());
    st.show(controls.to_string(), true, t);
    assert_eq!(texts(&st), [controls.to_string()]);
    st.tick(t + ERROR_SECS * 2);
    assert_eq!(texts(&st), [controls.to_string()]);
    st.on_status(&capture, &InferenceStatus::default(), "stats".into());
    assert!(texts(&st).is_empty());
}

#[test]
fn the_preparing_sign_and_the_source_come_from_the_status() {
    let (mut st, t) = setup(|_| {});
    assert_eq!(st.preparing(), None);
    let capture = CaptureStatus {
        requested: "camera:0".into(),
        source: Some("test pattern 640x480 at 30 fps".into()),
        state: CaptureState::Fallback {
            message: "no camera found; starting the test pattern instead".into(),
        },
        losses: 0,
        recoveries: 0,
    };
    let inference = InferenceStatus {
        preparing: Some("b".into()),
        ..InferenceStatus::default()
    };
    let fx = st.on_status(&capture, &inference, "camera 30 fps".into());
    assert!(has(&fx, |e| matches!(e, Effect::Redraw)));
    assert_eq!(st.preparing(), Some("b"));
    assert_eq!(st.overlay(), Some("camera 30 fps"));
    assert_eq!(
        texts(&st),
        ["no camera found; starting the test pattern instead (camera:0 is retried in the background)"]
    );
    let (_, view) = st.panel_view(t);
    assert_eq!(view.source, "test pattern 640x480 at 30 fps");
    // The same status again changes nothing.
    assert!(st
        .on_status(&capture, &inference, "camera 30 fps".into())
        .is_empty());
    let _ = t;
}

#[test]
fn cameras_are_listed_by_the_worker_and_an_empty_list_matters_only_when_asked() {
    let (mut st, t) = setup(|_| {});
    st.on_reply(Reply::Cameras(Ok(Vec::new())), t);
    assert!(texts(&st).is_empty(), "at start, no camera is no news");
    let fx = st.on_panel(PanelAction::RefreshCameras, t);
    assert!(has(&fx, |e| matches!(
        e,
        Effect::Work(worker::Command::ListCameras)
    )));
    st.on_reply(Reply::Cameras(Ok(Vec::new())), t);
    assert_eq!(texts(&st), ["no camera found"]);
    let cam = CameraInfo {
        index: 2,
        name: "USB cam".into(),
    };
    st.on_reply(Reply::Cameras(Ok(vec![cam])), t);
    let fx = st.on_panel(PanelAction::SelectCamera(Some(0)), t);
    assert!(has(&fx, |e| matches!(
        e,
        Effect::SwitchSource(SourceSpec::Camera(2))
    )));
    assert_eq!(st.settings.camera.as_deref(), Some("camera:2"));
    let fx = st.on_panel(PanelAction::SelectCamera(None), t);
    assert!(has(&fx, |e| matches!(
        e,
        Effect::SwitchSource(SourceSpec::TestPattern)
    )));
}

#[test]
fn a_dropped_image_becomes_a_style_once_readable_and_a_bad_one_is_one_banner() {
    let (mut st, t) = setup(|_| {});
    let fx = st.on_dropped_file(Path::new("/photos/sunset.jpg"), t);
    assert!(has(&fx, |e| matches!(e, Effect::Swatch { index: 3, .. })));
    assert_eq!(sent(&fx), None, "not selected before it is read");
    assert_eq!(st.styles[3].label, "sunset");
    let fx = st.on_swatch(3, Ok(()), t);
    assert_eq!(style_sent(&fx).as_deref(), Some("/photos/sunset.jpg"));

    st.on_dropped_file(Path::new("/photos/broken.png"), t);
    let fx = st.on_swatch(4, Err("/photos/broken.png: not an image".into()), t);
    assert_eq!(sent(&fx), None);
    assert_eq!(
        texts(&st),
        ["cannot use the dropped file as a style: /photos/broken.png: not an image"]
    );
    // The broken one is skipped by the keys: from sunset, Right wraps to "a".
    assert_eq!(
        style_sent(&st.on_action(Action::NextStyle, t)).as_deref(),
        Some("a")
    );
    // Dropping a listed image again just selects it.
    let fx = st.on_dropped_file(Path::new("/photos/sunset.jpg"), t);
    assert_eq!(style_sent(&fx).as_deref(), Some("/photos/sunset.jpg"));
    assert_eq!(st.styles.len(), 5);
}
