//! Keeping what the window shows: snapshots (after the countdown, if on), GIF clips and MP4
//! recordings. The pictures are handed to the worker, which composes, encodes and saves them.

use std::path::{Path, PathBuf};
use std::time::Duration;
use std::time::Instant;

use super::*;

impl LiveState {
    /// A result from the worker thread.
    pub fn on_reply(&mut self, reply: Reply, now: Instant) -> Vec<Effect> {
        match reply {
            Reply::Saved { what, path } => {
                self.saving_clip &= what != Kind::Clip;
                self.saving_recording &= what != Kind::Recording;
                self.show(format!("saved {}", path.display()), false, now);
            }
            Reply::Failed { what, error } => {
                self.saving_clip &= what != Kind::Clip;
                if what == Kind::Recording {
                    // A recording that failed midway (a full disk) is over.
                    self.saving_recording = false;
                    self.recording = None;
                }
                self.show(error, true, now);
            }
            Reply::Cameras(Ok(list)) => {
                if list.is_empty() && self.cameras_asked {
                    self.show("no camera found".into(), true, now);
                }
                self.cameras = list;
                self.cameras_asked = false;
            }
            Reply::Cameras(Err(e)) => {
                if self.cameras_asked {
                    self.show(e, true, now);
                } else {
                    tracing::warn!("{e}");
                }
                self.cameras_asked = false;
            }
        }
        vec![Effect::Redraw]
    }

    pub(super) fn snapshot_dir(&self) -> Option<PathBuf> {
        self.snapshot_dir
            .clone()
            .or_else(|| self.settings.snapshot_dir.clone())
            .or_else(crate::paths::default_snapshot_dir)
    }

    pub(super) fn start_snapshot(&mut self, now: Instant) -> Vec<Effect> {
        if self.settings.countdown {
            self.countdown = Some(Countdown::new(now, 3));
            Vec::new()
        } else {
            self.take_snapshot(now)
        }
    }

    /// Hands what the window shows to the worker, which composes and saves it.
    pub(super) fn take_snapshot(&mut self, now: Instant) -> Vec<Effect> {
        let Some(out) = &self.last else {
            self.show("no frame to save yet".into(), true, now);
            return Vec::new();
        };
        let shot = Shot {
            original: out.original.clone(),
            stylized: out.stylized.clone(),
            mirror: self.settings.mirror,
            side_by_side: self.settings.side_by_side,
        };
        let Some(dir) = self.snapshot_dir() else {
            self.show(NO_FOLDER.into(), true, now);
            return Vec::new();
        };
        let tag = file_tag(&self.settings.controls.style);
        vec![Effect::Work(worker::Command::Snapshot {
            dir,
            shot,
            tag,
            at: chrono::Local::now(),
        })]
    }

    pub(super) fn toggle_clip(&mut self, now: Instant) -> Vec<Effect> {
        if let Some(clip) = &mut self.clip {
            clip.recorder.stop(now);
            return self.finish_clip(now);
        }
        if self.saving_clip {
            return Vec::new();
        }
        let secs = self
            .settings
            .clip_secs
            .clamp(*CLIP_SECS_RANGE.start(), *CLIP_SECS_RANGE.end());
        let duration = Duration::from_secs(secs.into());
        self.clip = Some(Clip {
            recorder: ClipRecorder::new(duration, CLIP_SIDE),
            until: now + duration,
        });
        self.show(format!("recording a {secs} s GIF clip…"), false, now);
        Vec::new()
    }

    /// The window closes: a clip or a recording being made is saved with what it has.
    pub fn on_exit(&mut self, now: Instant) -> Vec<Effect> {
        let mut fx = self.stop_recording(now);
        if let Some(clip) = &mut self.clip {
            clip.recorder.stop(now);
            fx.extend(self.finish_clip(now));
        }
        fx
    }

    /// Starts an MP4 recording of what the window shows, or stops the one running.
    pub(super) fn toggle_recording(&mut self, now: Instant) -> Vec<Effect> {
        if self.recording.is_some() {
            return self.stop_recording(now);
        }
        if self.saving_recording {
            return Vec::new();
        }
        let Some(dir) = self.snapshot_dir() else {
            self.show(NO_FOLDER.into(), true, now);
            return Vec::new();
        };
        let tag = file_tag(&self.settings.controls.style);
        let stem = crate::snapshot::stem(chrono::Local::now(), &tag);
        self.recording = Some(now);
        self.show(
            "recording MP4… (R or the button stops it)".into(),
            false,
            now,
        );
        vec![Effect::Work(worker::Command::RecordStart { dir, stem })]
    }

    /// Ends the recording running, if any: the worker finishes and saves the file.
    pub(super) fn stop_recording(&mut self, now: Instant) -> Vec<Effect> {
        let Some(started) = self.recording.take() else {
            return Vec::new();
        };
        self.saving_recording = true;
        let secs = now.saturating_duration_since(started).as_secs_f32();
        self.show(format!("saving the recording ({secs:.0} s)…"), false, now);
        vec![Effect::Work(worker::Command::RecordStop { at: now })]
    }

    /// The clip has ended: the worker encodes and saves it.
    pub(super) fn finish_clip(&mut self, now: Instant) -> Vec<Effect> {
        let Some(clip) = self.clip.take() else {
            return Vec::new();
        };
        let Some(dir) = self.snapshot_dir() else {
            self.show(NO_FOLDER.into(), true, now);
            return Vec::new();
        };
        self.saving_clip = true;
        self.show(
            format!("saving the GIF clip ({} frames)…", clip.recorder.len()),
            false,
            now,
        );
        vec![Effect::Work(worker::Command::Clip {
            dir,
            clip: Box::new(clip.recorder),
            at: chrono::Local::now(),
        })]
    }
}

const NO_FOLDER: &str = "no pictures folder on this system: pass --snapshot-dir DIR";

/// The tag a snapshot of `style` (a name or a path) carries; the snapshot module makes it safe
/// for a file name.
pub fn file_tag(style: &str) -> String {
    Path::new(style)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| style.to_owned())
}
