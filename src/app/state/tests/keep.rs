//! Snapshots, the countdown and GIF clips.

use std::path::Path;

use super::*;

#[test]
fn the_countdown_ends_in_a_snapshot_of_what_the_window_shows() {
    let (mut st, t) = setup(|o| {
        o.settings.countdown = true;
        o.settings.mirror = true;
    });
    st.on_output(Ok(output(1, t)), t);
    let fx = st.on_action(Action::Snapshot, t);
    assert!(!has(&fx, |e| matches!(e, Effect::Work(_))));
    assert_eq!(st.countdown(t + secs(0.2)), Some(3));
    assert!(!has(&st.tick(t + secs(1.5)), |e| matches!(
        e,
        Effect::Work(_)
    )));
    assert_eq!(st.countdown(t + secs(1.5)), Some(2));
    let fx = st.tick(t + secs(3.0));
    let shot = fx.iter().find_map(|e| match e {
        Effect::Work(worker::Command::Snapshot { dir, shot, tag, .. }) => {
            Some((dir.clone(), shot.clone(), tag.clone()))
        }
        _ => None,
    });
    let (dir, shot, tag) = shot.expect("a snapshot after 3 s");
    assert_eq!(dir, Path::new("/snapshots"));
    assert_eq!(tag, "a");
    assert!(shot.mirror && !shot.side_by_side);
    assert_eq!(shot.stylized, output(1, t).stylized);
    assert_eq!(st.countdown(t + secs(3.0)), None);
    assert!(!has(&st.tick(t + secs(4.0)), |e| matches!(
        e,
        Effect::Work(_)
    )));
}

#[test]
fn a_snapshot_before_the_first_frame_says_so_instead() {
    let (mut st, t) = setup(|_| {});
    let fx = st.on_action(Action::Snapshot, t);
    assert!(!has(&fx, |e| matches!(e, Effect::Work(_))));
    assert_eq!(texts(&st), ["no frame to save yet"]);
}

/// The clip the worker is asked to save, if any.
fn clip_of(fx: &[Effect]) -> Option<usize> {
    fx.iter().find_map(|e| match e {
        Effect::Work(worker::Command::Clip { clip, .. }) => Some(clip.len()),
        _ => None,
    })
}

#[test]
fn a_clip_records_until_stopped_and_is_saved_by_the_worker() {
    let (mut st, t) = setup(|o| o.settings.clip_secs = 5);
    assert_eq!(st.clip_state(), ClipState::Idle);
    st.on_panel(PanelAction::Clip, t);
    assert_eq!(st.clip_state(), ClipState::Recording);
    // One second of frames at 30 fps: about ten are kept.
    for i in 0..30 {
        let at = t + secs(i as f64 / 30.0);
        st.on_output(Ok(output(i, at)), at);
        assert_eq!(clip_of(&st.tick(at)), None);
    }
    let frames = clip_of(&st.on_panel(PanelAction::Clip, t + secs(1.0))).expect("saved on stop");
    assert!((9..=11).contains(&frames), "{frames} frames");
    assert_eq!(st.clip_state(), ClipState::Saving);
    // The button does nothing while saving.
    assert_eq!(
        clip_of(&st.on_panel(PanelAction::Clip, t + secs(1.1))),
        None
    );
    assert_eq!(st.clip_state(), ClipState::Saving);
    st.on_reply(
        Reply::Saved {
            what: Kind::Clip,
            path: "/snapshots/x.gif".into(),
        },
        t + secs(2.0),
    );
    assert_eq!(st.clip_state(), ClipState::Idle);
    assert_eq!(texts(&st), ["saved /snapshots/x.gif"]);
}

#[test]
fn a_clip_ends_by_itself_at_its_length_even_without_frames_and_the_length_is_clamped() {
    let (mut st, t) = setup(|o| o.settings.clip_secs = 2);
    st.on_panel(PanelAction::Clip, t);
    st.on_output(Ok(output(1, t)), t);
    // Paused: no more frames. The clip still ends at 2 s.
    assert_eq!(clip_of(&st.tick(t + secs(1.9))), None);
    assert_eq!(clip_of(&st.tick(t + secs(2.0))), Some(1));

    let too_long = crate::snapshot::MAX_CLIP_SECS + 20;
    let (mut st, t) = setup(|o| o.settings.clip_secs = too_long);
    st.on_panel(PanelAction::Clip, t);
    let max = f64::from(crate::snapshot::MAX_CLIP_SECS);
    assert_eq!(clip_of(&st.tick(t + secs(max - 0.1))), None);
    assert!(clip_of(&st.tick(t + secs(max))).is_some());
}

#[test]
fn file_tags_are_the_style_stem() {
    assert_eq!(
        super::super::keep::file_tag("/x/y/Robert_Delaunay,_1906,_Portrait.jpg"),
        "Robert_Delaunay,_1906,_Portrait"
    );
    assert_eq!(super::super::keep::file_tag("candy"), "candy");
}

#[test]
fn a_clip_recording_when_the_window_closes_is_saved() {
    let (mut st, t) = setup(|o| o.settings.clip_secs = 10);
    assert_eq!(clip_of(&st.on_exit(t)), None, "nothing to save");
    st.on_panel(PanelAction::Clip, t);
    st.on_output(Ok(output(1, t)), t);
    assert_eq!(clip_of(&st.on_exit(t + secs(0.5))), Some(1));
    assert_eq!(st.clip_state(), ClipState::Saving);
}

/// The recording commands among the effects, in order: "start <stem>", "frame <seq> <w>x<h>",
/// "stop".
fn record_cmds(fx: &[Effect]) -> Vec<String> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Work(worker::Command::RecordStart { dir, stem }) => {
                Some(format!("start {} {stem}", dir.display()))
            }
            Effect::Work(worker::Command::RecordFrame { shot, .. }) => {
                let (w, h) = shot.compose().dimensions();
                Some(format!(
                    "frame {} {w}x{h}",
                    shot.stylized.get_pixel(0, 0)[2]
                ))
            }
            Effect::Work(worker::Command::RecordStop { .. }) => Some("stop".into()),
            _ => None,
        })
        .collect()
}

#[test]
fn the_record_key_starts_and_stops_an_mp4_of_what_the_window_shows() {
    let (mut st, t) = setup(|_| {});
    assert_eq!(st.record_state(t), RecordState::Idle);
    st.on_output(Ok(output(1, t)), t);
    let start = record_cmds(&st.on_action(Action::ToggleRecord, t));
    assert_eq!(start.len(), 1);
    assert!(
        start[0].starts_with("start /snapshots stylecam-") && start[0].ends_with("-a"),
        "named like a snapshot: {start:?}"
    );
    // Every frame shown goes to the worker, side by side once that is on.
    assert_eq!(
        record_cmds(&st.on_output(Ok(output(2, t + secs(0.1))), t + secs(0.1))),
        ["frame 2 40x30"]
    );
    st.on_action(Action::ToggleSideBySide, t + secs(0.2));
    assert_eq!(
        record_cmds(&st.on_output(Ok(output(3, t + secs(0.3))), t + secs(0.3))),
        ["frame 3 80x30"]
    );
    assert_eq!(
        st.record_state(t + secs(2.5)),
        RecordState::Recording(secs(2.5))
    );
    // The overlay's clock and the panel agree.
    assert_eq!(st.recording(t + secs(2.5)), Some(secs(2.5)));
    // The button stops it; the file is saved by the worker.
    assert_eq!(
        record_cmds(&st.on_panel(PanelAction::Record, t + secs(3.0))),
        ["stop"]
    );
    assert_eq!(st.record_state(t + secs(3.0)), RecordState::Saving);
    assert!(record_cmds(&st.on_output(Ok(output(4, t + secs(3.1))), t + secs(3.1))).is_empty());
    // Pressing again while saving does nothing.
    assert!(record_cmds(&st.on_action(Action::ToggleRecord, t + secs(3.2))).is_empty());
    st.on_reply(
        Reply::Saved {
            what: Kind::Recording,
            path: "/snapshots/x.mp4".into(),
        },
        t + secs(4.0),
    );
    assert_eq!(st.record_state(t + secs(4.0)), RecordState::Idle);
    assert!(texts(&st).contains(&"saved /snapshots/x.mp4".to_owned()));
}

#[test]
fn a_recording_that_fails_midway_ends_with_a_banner_and_closing_the_window_saves_one() {
    let (mut st, t) = setup(|_| {});
    st.on_action(Action::ToggleRecord, t);
    st.on_reply(
        Reply::Failed {
            what: Kind::Recording,
            error: "recording stopped, nothing was saved: No space left on device".into(),
        },
        t + secs(1.0),
    );
    assert_eq!(st.record_state(t + secs(1.0)), RecordState::Idle);
    assert!(texts(&st).iter().any(|b| b.contains("No space left")));
    assert!(record_cmds(&st.on_output(Ok(output(1, t + secs(1.1))), t + secs(1.1))).is_empty());

    assert!(
        record_cmds(&st.on_exit(t + secs(2.0))).is_empty(),
        "nothing to stop"
    );
    st.on_action(Action::ToggleRecord, t + secs(2.0));
    assert_eq!(record_cmds(&st.on_exit(t + secs(3.0))), ["stop"]);
}
