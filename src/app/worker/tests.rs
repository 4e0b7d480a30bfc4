use super::*;

fn wait_reply(w: &Worker) -> Reply {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) = w.try_reply() {
            return r;
        }
        assert!(Instant::now() < end, "no reply");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn shots_compose_what_the_window_shows() {
    let mut original = RgbImage::new(2, 1);
    original.put_pixel(0, 0, image::Rgb([10, 0, 0]));
    let mut stylized = RgbImage::new(2, 1);
    stylized.put_pixel(0, 0, image::Rgb([20, 0, 0]));
    let shot = |mirror, side_by_side| Shot {
        original: original.clone(),
        stylized: stylized.clone(),
        mirror,
        side_by_side,
    };
    let row = |img: RgbImage| img.pixels().map(|p| p[0]).collect::<Vec<_>>();
    assert_eq!(row(shot(false, false).compose()), [20, 0]);
    assert_eq!(row(shot(true, false).compose()), [0, 20]);
    assert_eq!(row(shot(false, true).compose()), [10, 0, 20, 0]);
    assert_eq!(row(shot(true, true).compose()), [0, 10, 0, 20]);
}

#[test]
fn snapshots_and_clips_are_saved_off_the_calling_thread_with_errors_as_replies() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = Worker::spawn().unwrap();
    let img = RgbImage::from_pixel(8, 6, image::Rgb([1, 2, 3]));
    let shot = Shot {
        original: img.clone(),
        stylized: img.clone(),
        mirror: false,
        side_by_side: false,
    };
    w.send(Command::Snapshot {
        dir: tmp.path().into(),
        shot,
        tag: "t".into(),
        at: Local::now(),
    });
    let Reply::Saved { what, path } = wait_reply(&w) else {
        panic!("not saved")
    };
    assert_eq!(what, Kind::Snapshot);
    assert_eq!(image::open(&path).unwrap().to_rgb8(), img);

    // An empty clip is an error, as a reply.
    w.send(Command::Clip {
        dir: tmp.path().into(),
        clip: Box::new(ClipRecorder::new(Duration::from_secs(1), 64)),
        at: Local::now(),
    });
    match wait_reply(&w) {
        Reply::Failed { what, error } => {
            assert_eq!(what, Kind::Clip);
            assert!(error.contains("no frames"), "{error}");
        }
        r => panic!("{r:?}"),
    }
    // A clip with frames becomes a GIF.
    let mut clip = ClipRecorder::new(Duration::from_secs(1), 64);
    let t0 = Instant::now();
    clip.push(&img, t0);
    clip.push(&img, t0 + Duration::from_millis(200));
    clip.stop(t0 + Duration::from_millis(300));
    w.send(Command::Clip {
        dir: tmp.path().into(),
        clip: Box::new(clip),
        at: Local::now(),
    });
    let Reply::Saved { what, path } = wait_reply(&w) else {
        panic!("clip not saved")
    };
    assert_eq!(what, Kind::Clip);
    assert_eq!(path.extension().unwrap(), "gif");
    assert!(w.finish(Duration::from_secs(5)));
}

#[cfg(feature = "video")]
#[test]
fn recordings_are_encoded_on_the_worker_never_overwrite_and_leave_no_temporary_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut w = Worker::spawn().unwrap();
    let shot = |v: u8| Shot {
        original: RgbImage::from_pixel(64, 48, image::Rgb([v, 0, 0])),
        stylized: RgbImage::from_pixel(64, 48, image::Rgb([0, v, 255 - v])),
        mirror: false,
        side_by_side: true,
    };
    let mut paths = Vec::new();
    for _ in 0..2 {
        w.send(Command::RecordStart {
            dir: tmp.path().into(),
            stem: "rec".into(),
        });
        let t0 = Instant::now();
        for i in 0..12u8 {
            // Never more than the queue's bound in flight, so none is dropped.
            while w.queued.load(Ordering::Acquire) >= MAX_QUEUED_FRAMES {
                std::thread::sleep(Duration::from_millis(5));
            }
            w.send(Command::RecordFrame {
                shot: shot(i * 20),
                at: t0 + Duration::from_millis(u64::from(i) * 100),
            });
        }
        // Stopped 0.4 s after the last frame: it shows until then.
        w.send(Command::RecordStop {
            at: t0 + Duration::from_millis(1500),
        });
        let Reply::Saved { what, path } = wait_reply(&w) else {
            panic!("not saved")
        };
        assert_eq!(what, Kind::Recording);
        paths.push(path);
    }
    assert_eq!(paths[0], tmp.path().join("rec.mp4"));
    assert_eq!(paths[1], tmp.path().join("rec-2.mp4"));
    let frames: Vec<_> = crate::video::Reader::open(&paths[1])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(frames.len(), 12);
    let length = crate::video::probe(&paths[1]).unwrap().duration.unwrap();
    assert!((length - 1.5).abs() < 0.01, "{length} s long");
    for (i, f) in frames.iter().enumerate() {
        // Side by side, at the times the frames were shown.
        assert_eq!(f.image.dimensions(), (128, 48));
        assert!((f.time - i as f64 * 0.1).abs() < 0.002, "{}", f.time);
    }
    // Frame 5: left red 100, right green 100 / blue 155 (up to H.264's loss).
    let p = frames[5].image.get_pixel(100, 24).0;
    assert!(
        p[0] < 20 && p[1].abs_diff(100) < 12 && p[2].abs_diff(155) < 12,
        "{p:?}"
    );
    let p = frames[5].image.get_pixel(20, 24).0;
    assert!(p[0].abs_diff(100) < 12 && p[1] < 20, "{p:?}");

    // Stopped before any frame: no file, and the reply says why.
    w.send(Command::RecordStart {
        dir: tmp.path().into(),
        stem: "empty".into(),
    });
    w.send(Command::RecordStop { at: Instant::now() });
    match wait_reply(&w) {
        Reply::Failed { what, error } => {
            assert_eq!(what, Kind::Recording);
            assert!(error.contains("before the first frame"), "{error}");
        }
        r => panic!("{r:?}"),
    }
    // A recording still open when the worker stops is saved.
    w.send(Command::RecordStart {
        dir: tmp.path().into(),
        stem: "at-exit".into(),
    });
    w.send(Command::RecordFrame {
        shot: shot(7),
        at: Instant::now(),
    });
    assert!(w.finish(Duration::from_secs(20)));
    assert!(matches!(w.try_reply(), Some(Reply::Saved { .. })));
    let mut names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["at-exit.mp4", "rec-2.mp4", "rec.mp4"]);
}

#[test]
fn recording_frames_beyond_the_bound_are_dropped_not_queued() {
    let queued = AtomicUsize::new(0);
    for _ in 0..MAX_QUEUED_FRAMES {
        assert!(admit(&queued));
    }
    assert!(!admit(&queued), "one more than the bound");
    assert_eq!(queued.load(Ordering::Acquire), MAX_QUEUED_FRAMES);
    // The worker took one: room for one more.
    queued.fetch_sub(1, Ordering::AcqRel);
    assert!(admit(&queued));
    assert!(!admit(&queued));
}
