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
