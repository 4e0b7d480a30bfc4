//! The window's thread for blocking work ("stylecam-window-work"): saving snapshots (composing
//! and PNG-encoding them), encoding GIF clips, encoding MP4 recordings and listing cameras, so
//! the UI thread never waits on a file, an encoder or a driver. Commands go in, [`Reply`]s come
//! back with the result or the error; jobs run in order. New kinds of work are new [`Command`]
//! variants.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use crossbeam_channel as cb;
use image::RgbImage;

use crate::capture::CameraInfo;
use crate::pipeline::join_until;
use crate::snapshot::{self, ClipRecorder};
use crate::video::Recorder;

/// How long dropping the worker waits for it (saves still queued are then left to finish).
const DROP_JOIN: Duration = Duration::from_secs(1);
/// Recording frames waiting for the encoder beyond this many are dropped (the frame before
/// then shows a little longer), so a slow disk or encoder never piles frames up in memory.
pub const MAX_QUEUED_FRAMES: usize = 8;

/// The picture a snapshot keeps: what the window shows.
#[derive(Debug, Clone)]
pub struct Shot {
    pub original: RgbImage,
    pub stylized: RgbImage,
    pub mirror: bool,
    /// original | stylised
    pub side_by_side: bool,
}

impl Shot {
    /// The picture as the window shows it: stylised (or original | stylised), mirrored if the
    /// view is.
    pub fn compose(&self) -> RgbImage {
        let flip = |img: &RgbImage| {
            if self.mirror {
                image::imageops::flip_horizontal(img)
            } else {
                img.clone()
            }
        };
        if self.side_by_side {
            snapshot::side_by_side(&flip(&self.original), &flip(&self.stylized))
        } else {
            flip(&self.stylized)
        }
    }
}

#[derive(Debug)]
pub enum Command {
    /// Save `shot` as a PNG in `dir`, named for `at` and `tag`.
    Snapshot {
        dir: PathBuf,
        shot: Shot,
        tag: String,
        at: DateTime<Local>,
    },
    /// Encode a finished clip as a GIF in `dir`.
    Clip {
        dir: PathBuf,
        clip: Box<ClipRecorder>,
        at: DateTime<Local>,
    },
    ListCameras,
    /// Start an MP4 recording, saved in `dir` as `stem.mp4` (`stem-2.mp4`, ... if taken).
    RecordStart {
        dir: PathBuf,
        stem: String,
    },
    /// A frame for the recording, shown at `at`.
    RecordFrame {
        shot: Shot,
        at: Instant,
    },
    /// Finish the recording, stopped at `at` (the last frame lasts until then), and save it.
    RecordStop {
        at: Instant,
    },
    /// Ends the thread after the commands before it (a recording still open is saved).
    Stop,
}

/// What was saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Snapshot,
    Clip,
    Recording,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Saved {
        what: Kind,
        path: PathBuf,
    },
    /// `error` is the message for the user.
    Failed {
        what: Kind,
        error: String,
    },
    Cameras(Result<Vec<CameraInfo>, String>),
}

pub struct Worker {
    commands: cb::Sender<Command>,
    replies: cb::Receiver<Reply>,
    stop: Arc<AtomicBool>,
    /// Recording frames sent and not yet encoded.
    queued: Arc<AtomicUsize>,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn spawn() -> std::io::Result<Self> {
        let (commands, command_rx) = cb::unbounded();
        let (reply_tx, replies) = cb::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let queued = Arc::new(AtomicUsize::new(0));
        let in_queue = queued.clone();
        let handle = std::thread::Builder::new()
            .name("stylecam-window-work".into())
            .spawn(move || run(&command_rx, &reply_tx, &stopped, &in_queue))?;
        Ok(Self {
            commands,
            replies,
            stop,
            queued,
            handle: Some(handle),
        })
    }

    /// Queues a command. Never blocks. A recording frame is dropped instead when
    /// [`MAX_QUEUED_FRAMES`] are already waiting.
    pub fn send(&self, command: Command) {
        if matches!(command, Command::RecordFrame { .. }) && !admit(&self.queued) {
            tracing::debug!("recording: a frame was dropped (the encoder is behind)");
            return;
        }
        self.commands.send(command).ok();
    }

    /// A reply, if one is waiting. Never blocks.
    pub fn try_reply(&self) -> Option<Reply> {
        self.replies.try_recv().ok()
    }

    /// Lets the queued work finish (a clip being saved, say), waiting at most `within`;
    /// `false` if it had to be left running.
    pub fn finish(&mut self, within: Duration) -> bool {
        self.commands.send(Command::Stop).ok();
        join_until(
            &mut self.handle,
            Instant::now() + within,
            "stylecam-window-work",
        )
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.commands.send(Command::Stop).ok();
        join_until(
            &mut self.handle,
            Instant::now() + DROP_JOIN,
            "stylecam-window-work",
        );
    }
}

fn run(
    commands: &cb::Receiver<Command>,
    replies: &cb::Sender<Reply>,
    stop: &AtomicBool,
    queued: &AtomicUsize,
) {
    let mut recording: Option<Recorder> = None;
    for command in commands {
        let reply = match command {
            Command::Stop => {
                if let Some(r) = recording.take() {
                    replies.send(finish_recording(r, Instant::now())).ok();
                }
                return;
            }
            Command::RecordStart { dir, stem } => {
                // A recording still open is saved first (the state never starts two).
                let earlier = recording.replace(Recorder::new(&dir, &stem));
                match earlier {
                    Some(r) => finish_recording(r, Instant::now()),
                    None => continue,
                }
            }
            Command::RecordFrame { shot, at } => {
                queued.fetch_sub(1, Ordering::AcqRel);
                let Some(r) = recording.as_mut() else {
                    continue;
                };
                match r.push(&shot.compose(), at) {
                    Ok(()) => continue,
                    Err(e) => {
                        // The recorder and its temporary file go; nothing half-written stays.
                        recording = None;
                        Reply::Failed {
                            what: Kind::Recording,
                            error: format!("recording stopped, nothing was saved: {e}"),
                        }
                    }
                }
            }
            Command::RecordStop { at } => match recording.take() {
                Some(r) => finish_recording(r, at),
                None => continue,
            },
            Command::Snapshot { dir, shot, tag, at } => saved(
                Kind::Snapshot,
                snapshot::save_snapshot(&dir, &shot.compose(), &tag, at),
            ),
            Command::Clip { dir, clip, at } => saved(Kind::Clip, clip.finish(&dir, at)),
            // Only worth doing while the window is open.
            Command::ListCameras if stop.load(Ordering::Acquire) => continue,
            Command::ListCameras => {
                Reply::Cameras(crate::capture::list_cameras().map_err(|e| e.to_string()))
            }
        };
        if replies.send(reply).is_err() {
            return;
        }
    }
}

/// Counts a recording frame in, unless [`MAX_QUEUED_FRAMES`] are already waiting.
fn admit(queued: &AtomicUsize) -> bool {
    queued
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < MAX_QUEUED_FRAMES).then_some(n + 1)
        })
        .is_ok()
}

fn finish_recording(r: Recorder, stopped: Instant) -> Reply {
    let frames = r.frames();
    match r.finish(stopped) {
        Ok(path) => {
            tracing::info!("recording saved: {} ({frames} frames)", path.display());
            Reply::Saved {
                what: Kind::Recording,
                path,
            }
        }
        Err(e) => Reply::Failed {
            what: Kind::Recording,
            error: format!("the recording was not saved: {e}"),
        },
    }
}

fn saved(what: Kind, result: Result<PathBuf, snapshot::SnapshotError>) -> Reply {
    match result {
        Ok(path) => Reply::Saved { what, path },
        Err(e) => Reply::Failed {
            what,
            error: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
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
}
