//! The window's thread for blocking work ("stylecam-window-work"): saving snapshots (composing
//! and PNG-encoding them), encoding GIF clips and listing cameras, so the UI thread never waits
//! on a file or a driver. Commands go in, [`Reply`]s come back with the result or the error;
//! jobs run in order. New kinds of work (a video recorder, say) are new [`Command`] variants.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use crossbeam_channel as cb;
use image::RgbImage;

use crate::capture::CameraInfo;
use crate::pipeline::join_until;
use crate::snapshot::{self, ClipRecorder};

/// How long dropping the worker waits for it (saves still queued are then left to finish).
const DROP_JOIN: Duration = Duration::from_secs(1);

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
    /// Ends the thread after the commands before it.
    Stop,
}

/// What was saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Snapshot,
    Clip,
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
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn spawn() -> std::io::Result<Self> {
        let (commands, command_rx) = cb::unbounded();
        let (reply_tx, replies) = cb::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::Builder::new()
            .name("stylecam-window-work".into())
            .spawn(move || run(&command_rx, &reply_tx, &stopped))?;
        Ok(Self {
            commands,
            replies,
            stop,
            handle: Some(handle),
        })
    }

    /// Queues a command. Never blocks.
    pub fn send(&self, command: Command) {
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

fn run(commands: &cb::Receiver<Command>, replies: &cb::Sender<Reply>, stop: &AtomicBool) {
    for command in commands {
        let reply = match command {
            Command::Stop => return,
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
}
