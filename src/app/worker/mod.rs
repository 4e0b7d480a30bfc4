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
mod tests;
