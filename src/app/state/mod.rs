//! What the window decides, without a display: the controls and the style list, banners, the
//! snapshot countdown, the GIF clip, the MP4 recording, auto-cycle and the exit timer. Events go in (`on_action`,
//! `on_panel`, `on_output`, `on_reply`, ...) and `tick(now)` runs the clocks; each returns the
//! [`Effect`]s the shell carries out (pipeline commands, background work, window changes). Time
//! is always passed in, so tests drive it with a fake clock (`tests.rs`).

mod banners;
mod keep;
mod read;
mod styles;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use image::RgbImage;

use super::keys::{self, Action};
use super::worker::{self, Kind, Reply, Shot};
use super::Swatch;
use crate::capture::{CameraInfo, SourceSpec};
use crate::controls::Controls;
use crate::pipeline::{CaptureStatus, Command, InferenceError, InferenceStatus, Output};
use crate::settings::{Settings, CLIP_SECS_RANGE};
use crate::snapshot::{ClipRecorder, Countdown};
pub use banners::{Banner, ERROR_SECS, NOTE_SECS};
pub use read::{ClipState, PanelView, RecordState};

/// The longest side of a GIF clip's frames.
pub const CLIP_SIDE: u32 = 480;
/// The startup warning (a damaged settings file, ...) stays this long.
const STARTUP_WARNING: Duration = Duration::from_secs(10);
/// A window still waiting for its first frame gets this much longer before `--exit-after`.
const FIRST_FRAME_GRACE: Duration = Duration::from_secs(10);
/// The overlay's numbers change even when the picture does not: redraw at least this often.
const REDRAW_EVERY: Duration = Duration::from_millis(500);
/// How often to redraw while the "preparing" spinner shows.
const SPINNER_EVERY: Duration = Duration::from_millis(50);

/// What the shell must do.
#[derive(Debug)]
pub enum Effect {
    /// A command for the inference thread (controls, pause).
    Pipeline(Command),
    /// Open another source (the camera picker).
    SwitchSource(SourceSpec),
    /// Blocking work for the worker thread (files, camera listing).
    Work(worker::Command),
    /// Make a swatch for the style at `index`.
    Swatch {
        index: usize,
        source: Swatch,
    },
    Fullscreen(bool),
    /// The picture to show changed ([`LiveState::shown`]): copy it into the frame buffer.
    Upload,
    Redraw,
    Exit,
}

/// What the panel asks for (its sliders and check boxes edit the settings in place).
#[derive(Debug, Clone, PartialEq)]
pub enum PanelAction {
    SelectStyle(usize),
    Snapshot,
    /// Start a GIF clip, or stop the one recording (it is then saved).
    Clip,
    /// Start an MP4 recording, or stop the one running (it is then saved).
    Record,
    /// `None`: the test pattern; `Some(i)`: the i-th listed camera.
    SelectCamera(Option<usize>),
    RefreshCameras,
    Fullscreen(bool),
    Pause(bool),
    Quit,
}

/// A style as the panel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StyleEntry {
    /// The name or path the engine resolves.
    pub id: String,
    pub label: String,
    pub status: EntryStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryStatus {
    Ready,
    /// A dropped image being read; selected once it proves readable.
    Loading,
    /// A dropped image that could not be read: not listed.
    Failed,
}

/// What the window is started with (besides the styles).
#[derive(Debug, Clone, Default)]
pub struct StateOptions {
    pub settings: Settings,
    pub startup_warning: Option<String>,
    pub kiosk: bool,
    pub fullscreen: bool,
    pub exit_after: Option<Duration>,
    /// `--snapshot-dir`; else the settings' folder, else the pictures folder.
    pub snapshot_dir: Option<PathBuf>,
    pub device: String,
}

struct Clip {
    recorder: ClipRecorder,
    until: Instant,
}

/// Facts from the pipeline, refreshed every tick.
#[derive(Debug, Default)]
struct PipelineView {
    source: Option<String>,
    overlay: Option<String>,
    preparing: Option<String>,
}

pub struct LiveState {
    /// Edited in place by the panel; what is saved on exit.
    pub settings: Settings,
    /// The controls the pipeline has been sent.
    sent: Controls,
    styles: Vec<StyleEntry>,
    kiosk: bool,
    exit_after: Option<Duration>,
    snapshot_dir: Option<PathBuf>,
    device: String,
    paused: bool,
    fullscreen: bool,
    countdown: Option<Countdown>,
    clip: Option<Clip>,
    saving_clip: bool,
    /// When the MP4 recording running began.
    recording: Option<Instant>,
    /// A finished recording is being written.
    saving_recording: bool,
    cameras: Vec<CameraInfo>,
    /// The user asked for the camera list (an empty one is then worth a banner).
    cameras_asked: bool,
    banners: banners::Banners,
    opened: Instant,
    first_shown: Option<Instant>,
    last_cycle: Instant,
    last_redraw: Instant,
    last: Option<Output>,
    /// Whether the frame buffer holds original | stylised.
    shown_side_by_side: bool,
    view: PipelineView,
}

impl LiveState {
    /// `styles`: (id, label) of the styles offered, in panel order.
    pub fn new(opts: StateOptions, styles: Vec<(String, String)>, now: Instant) -> Self {
        let mut banners = banners::Banners::default();
        if let Some(text) = opts.startup_warning {
            banners.show(text, true, now + STARTUP_WARNING);
        }
        Self {
            sent: opts.settings.controls.clone(),
            shown_side_by_side: opts.settings.side_by_side,
            settings: opts.settings,
            styles: styles
                .into_iter()
                .map(|(id, label)| StyleEntry {
                    id,
                    label,
                    status: EntryStatus::Ready,
                })
                .collect(),
            kiosk: opts.kiosk,
            exit_after: opts.exit_after,
            snapshot_dir: opts.snapshot_dir,
            device: opts.device,
            paused: false,
            fullscreen: opts.fullscreen || opts.kiosk,
            countdown: None,
            clip: None,
            saving_clip: false,
            recording: None,
            saving_recording: false,
            cameras: Vec::new(),
            cameras_asked: false,
            banners,
            opened: now,
            first_shown: None,
            last_cycle: now,
            last_redraw: now,
            last: None,
            view: PipelineView::default(),
        }
    }

    /// The window is open: start the clocks and list the cameras in the background.
    pub fn on_opened(&mut self, now: Instant) -> Vec<Effect> {
        self.opened = now;
        self.last_cycle = now;
        vec![Effect::Work(worker::Command::ListCameras), Effect::Redraw]
    }

    pub fn on_action(&mut self, action: Action, now: Instant) -> Vec<Effect> {
        let mut fx = vec![Effect::Redraw];
        match action {
            Action::PreviousStyle => self.step_style(false, now),
            Action::NextStyle => self.step_style(true, now),
            Action::Style(i) => {
                let j = self.ready_styles().nth(i);
                if let Some(j) = j {
                    self.select_style(j, now);
                }
            }
            Action::BrushSmaller | Action::BrushLarger => {
                let c = &mut self.settings.controls;
                c.brush = keys::brush_step(c.brush, action == Action::BrushLarger);
            }
            Action::ToggleColor => {
                let c = &mut self.settings.controls;
                c.preserve_color = !c.preserve_color;
            }
            Action::ToggleMirror => self.settings.mirror = !self.settings.mirror,
            Action::ToggleSideBySide => self.settings.side_by_side = !self.settings.side_by_side,
            Action::ToggleFullscreen => fx.push(self.set_fullscreen(!self.fullscreen)),
            Action::TogglePanel => self.settings.show_panel = !self.settings.show_panel,
            Action::TogglePause => fx.push(self.set_paused(!self.paused)),
            Action::Snapshot => fx.extend(self.start_snapshot(now)),
            Action::ToggleRecord => fx.extend(self.toggle_recording(now)),
            Action::Escape => fx.push(if self.fullscreen && !self.kiosk {
                self.set_fullscreen(false)
            } else {
                Effect::Exit
            }),
        }
        self.sync(&mut fx);
        fx
    }

    pub fn on_panel(&mut self, action: PanelAction, now: Instant) -> Vec<Effect> {
        let mut fx = vec![Effect::Redraw];
        match action {
            PanelAction::SelectStyle(i) => self.select_style(i, now),
            PanelAction::Snapshot => fx.extend(self.start_snapshot(now)),
            PanelAction::Clip => fx.extend(self.toggle_clip(now)),
            PanelAction::Record => fx.extend(self.toggle_recording(now)),
            PanelAction::SelectCamera(choice) => {
                let spec = match choice.and_then(|i| self.cameras.get(i)) {
                    Some(cam) => SourceSpec::Camera(cam.index),
                    None => SourceSpec::TestPattern,
                };
                self.settings.camera = Some(spec.to_string());
                fx.push(Effect::SwitchSource(spec));
            }
            PanelAction::RefreshCameras => {
                self.cameras_asked = true;
                fx.push(Effect::Work(worker::Command::ListCameras));
            }
            PanelAction::Fullscreen(on) => fx.push(self.set_fullscreen(on)),
            PanelAction::Pause(p) => fx.push(self.set_paused(p)),
            PanelAction::Quit => {
                tracing::info!("quit from the panel");
                fx.push(Effect::Exit);
            }
        }
        self.sync(&mut fx);
        fx
    }

    /// The newest output (or error) from the pipeline.
    pub fn on_output(
        &mut self,
        result: Result<Output, InferenceError>,
        now: Instant,
    ) -> Vec<Effect> {
        match result {
            Ok(out) => {
                if let Some(clip) = &mut self.clip {
                    clip.recorder.push(&out.stylized, now);
                }
                self.shown_side_by_side = self.settings.side_by_side;
                let mut fx = vec![Effect::Upload, Effect::Redraw];
                if self.recording.is_some() {
                    fx.push(Effect::Work(worker::Command::RecordFrame {
                        shot: Shot {
                            original: out.original.clone(),
                            stylized: out.stylized.clone(),
                            mirror: self.settings.mirror,
                            side_by_side: self.shown_side_by_side,
                        },
                        at: now,
                    }));
                }
                self.last = Some(out);
                fx
            }
            Err(e) => {
                self.show(e.to_string(), true, now);
                vec![Effect::Redraw]
            }
        }
    }

    /// The pipeline's status: capture and controls banners, the source, the overlay line and
    /// what is being prepared. The frame error in `inference` is not shown: the same error came
    /// down the output channel ([`LiveState::on_output`]).
    pub fn on_status(
        &mut self,
        capture: &CaptureStatus,
        inference: &InferenceStatus,
        overlay: String,
    ) -> Vec<Effect> {
        let controls = inference.controls_error.as_ref().map(|e| e.to_string());
        let mut changed = self.banners.set_status(capture.banner(), controls);
        changed |= self.view.preparing != inference.preparing;
        self.view = PipelineView {
            source: capture.source.clone(),
            overlay: Some(overlay),
            preparing: inference.preparing.clone(),
        };
        if changed {
            vec![Effect::Redraw]
        } else {
            Vec::new()
        }
    }

    /// A frame was drawn; `video`: it showed a picture.
    pub fn on_drawn(&mut self, now: Instant, video: bool) {
        self.last_redraw = now;
        if video && self.first_shown.is_none() {
            self.first_shown = Some(now);
            tracing::info!("first frame shown");
        }
    }

    /// Runs the clocks: the exit timer, auto-cycle, the countdown, the clip, banner expiry.
    pub fn tick(&mut self, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        if let Some(limit) = self.exit_after {
            // Counted from the first frame on screen, so a slow start does not eat the time.
            let from = self.first_shown.unwrap_or(self.opened + FIRST_FRAME_GRACE);
            if now.saturating_duration_since(from) >= limit {
                tracing::info!("--exit-after reached, closing");
                return vec![Effect::Exit];
            }
        }
        if let Some(secs) = self.settings.auto_cycle_secs {
            let every = Duration::from_secs(secs.max(1).into());
            if !self.paused && now.saturating_duration_since(self.last_cycle) >= every {
                self.step_style(true, now);
            }
        }
        if let Some(c) = &self.countdown {
            if c.due(now) {
                self.countdown = None;
                fx.extend(self.take_snapshot(now));
            }
            fx.push(Effect::Redraw);
        }
        if let Some(clip) = &mut self.clip {
            if now >= clip.until {
                clip.recorder.stop(now);
            }
            if clip.recorder.is_done() {
                fx.extend(self.finish_clip(now));
            }
        }
        if self.banners.expire(now) {
            fx.push(Effect::Redraw);
        }
        if self.settings.side_by_side != self.shown_side_by_side && self.last.is_some() {
            self.shown_side_by_side = self.settings.side_by_side;
            fx.push(Effect::Upload);
        }
        // The spinner turns while a style is prepared.
        let every = if self.view.preparing.is_some() {
            SPINNER_EVERY
        } else {
            REDRAW_EVERY
        };
        if now.saturating_duration_since(self.last_redraw) > every {
            fx.push(Effect::Redraw);
        }
        self.sync(&mut fx);
        fx
    }

    fn show(&mut self, text: String, error: bool, now: Instant) {
        if error {
            tracing::warn!("{text}");
        } else {
            tracing::info!("{text}");
        }
        let stay = if error { ERROR_SECS } else { NOTE_SECS };
        self.banners.show(text, error, now + stay);
    }

    fn set_paused(&mut self, paused: bool) -> Effect {
        self.paused = paused;
        Effect::Pipeline(Command::Pause(paused))
    }

    fn set_fullscreen(&mut self, on: bool) -> Effect {
        self.fullscreen = on;
        Effect::Fullscreen(on)
    }
}
