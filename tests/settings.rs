//! The settings file: round trips, damage recovery and clamping, on real files.

mod common;

use common::file_names as names;

use stylecam::controls::Resolution;
use stylecam::settings::{self, Settings};

#[test]
fn settings_round_trip_through_a_new_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config").join("settings.json");
    let mut s = Settings {
        camera: Some("HD Webcam C920".into()),
        mirror: false,
        side_by_side: true,
        show_panel: false,
        auto_cycle_secs: Some(20),
        countdown: true,
        snapshot_dir: Some(dir.path().join("shots")),
        clip_secs: 5,
        ..Settings::default()
    };
    s.controls.style = "candy".into();
    s.controls.brush = 1.5;
    s.controls.second_style = Some("udnie".into());
    s.controls.resolution = Resolution::P360;

    settings::save(&path, &s).unwrap();
    assert_eq!(settings::load(&path), (s.clone(), None));
    // Saving again replaces the file in one step and leaves no temporary file.
    s.mirror = true;
    settings::save(&path, &s).unwrap();
    assert_eq!(settings::load(&path), (s, None));
    assert_eq!(names(path.parent().unwrap()), ["settings.json"]);
}

#[test]
fn a_missing_file_gives_defaults_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    assert_eq!(settings::load(&path), (Settings::default(), None));
    assert!(names(dir.path()).is_empty());
}

#[test]
fn a_damaged_file_gives_defaults_a_warning_and_is_kept_aside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    std::fs::write(&path, b"{\"mirror\": fals").unwrap();

    let (s, warning) = settings::load(&path);
    assert_eq!(s, Settings::default());
    let warning = warning.expect("a warning");
    assert!(warning.contains(&path.display().to_string()), "{warning}");
    assert!(warning.contains("settings.json.bad"), "{warning}");
    assert!(warning.contains("replace"), "{warning}");
    let bad = dir.path().join("settings.json.bad");
    assert_eq!(std::fs::read(&bad).unwrap(), b"{\"mirror\": fals");
    assert_eq!(names(dir.path()), ["settings.json.bad"]);

    // Damaged again: the first copy is not overwritten.
    std::fs::write(&path, b"\xff\xfe not even utf-8").unwrap();
    let (s, warning) = settings::load(&path);
    assert_eq!(s, Settings::default());
    assert!(warning.unwrap().contains("settings.json.bad-2"));
    assert_eq!(std::fs::read(&bad).unwrap(), b"{\"mirror\": fals");
    assert_eq!(
        std::fs::read(dir.path().join("settings.json.bad-2")).unwrap(),
        b"\xff\xfe not even utf-8"
    );
    assert_eq!(
        names(dir.path()),
        ["settings.json.bad", "settings.json.bad-2"]
    );

    // The next save writes a fresh file beside the kept ones.
    settings::save(&path, &Settings::default()).unwrap();
    assert_eq!(settings::load(&path), (Settings::default(), None));
}

#[test]
fn an_unreadable_path_warns_and_saving_there_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    // A folder where the file should be: it can be neither read nor replaced.
    let path = dir.path().join("settings.json");
    std::fs::create_dir(&path).unwrap();
    let (s, warning) = settings::load(&path);
    assert_eq!(s, Settings::default());
    let warning = warning.expect("a warning");
    assert!(warning.contains(&path.display().to_string()), "{warning}");
    assert!(path.is_dir(), "nothing is removed");

    let err = settings::save(&path, &s).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("STYLECAM_CONFIG_DIR"), "{err}");
    assert_eq!(
        names(dir.path()),
        ["settings.json"],
        "no temporary file left"
    );
}

#[test]
fn older_partial_files_load_and_unknown_fields_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    std::fs::write(
        &path,
        br#"{"mirror": false, "controls": {"style": "mosaic"}, "from_the_future": [1, 2]}"#,
    )
    .unwrap();
    let (s, warning) = settings::load(&path);
    assert_eq!(warning, None);
    assert!(!s.mirror);
    assert_eq!(s.controls.style, "mosaic");
    assert_eq!(s.controls.brush, 1.0);
    assert!(s.show_panel);
    assert_eq!(s.clip_secs, Settings::default().clip_secs);
}

#[test]
fn out_of_range_values_are_clamped_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("settings.json");
    std::fs::write(
        &path,
        br#"{"controls": {"brush": 99, "strength": -3, "mix": 7, "anti_flicker": 2},
            "auto_cycle_secs": 999999, "clip_secs": 1000}"#,
    )
    .unwrap();
    let (s, warning) = settings::load(&path);
    assert_eq!(warning, None);
    let c = &s.controls;
    assert_eq!(
        (c.brush, c.strength, c.mix, c.anti_flicker),
        (4.0, 0.0, 1.0, 1.0)
    );
    assert_eq!(s.auto_cycle_secs, Some(3600));
    assert_eq!(s.clip_secs, stylecam::snapshot::MAX_CLIP_SECS);

    std::fs::write(&path, br#"{"auto_cycle_secs": 0, "clip_secs": 0}"#).unwrap();
    let (s, _) = settings::load(&path);
    assert_eq!((s.auto_cycle_secs, s.clip_secs), (None, 1));
}

#[test]
fn the_default_path_follows_the_config_dir_variable() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var(stylecam::paths::CONFIG_DIR_ENV, dir.path());
    assert_eq!(
        settings::default_path().unwrap(),
        dir.path().join("settings.json")
    );
}
