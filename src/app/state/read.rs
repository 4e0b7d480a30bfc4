//! What the gui and the shell read from the state.

use std::time::Instant;

use super::*;

/// The GIF clip button's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipState {
    Idle,
    Recording,
    Saving,
}

/// The Record button's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    Idle,
    /// Recording for this long.
    Recording(std::time::Duration),
    Saving,
}

/// What the panel shows besides the settings it edits.
pub struct PanelView<'a> {
    pub styles: &'a [StyleEntry],
    /// The current style's index in `styles`.
    pub current: Option<usize>,
    pub preparing: Option<&'a str>,
    pub source: &'a str,
    pub cameras: &'a [CameraInfo],
    pub device: &'a str,
    pub paused: bool,
    pub fullscreen: bool,
    pub clip: ClipState,
    pub recording: RecordState,
}

impl LiveState {
    pub fn banners(&self) -> Vec<Banner> {
        self.banners.visible()
    }

    /// The countdown's number while one runs.
    pub fn countdown(&self, now: Instant) -> Option<u32> {
        self.countdown.as_ref().and_then(|c| c.remaining(now))
    }

    /// The stats line, except in kiosk mode.
    pub fn overlay(&self) -> Option<&str> {
        if self.kiosk {
            None
        } else {
            self.view.overlay.as_deref()
        }
    }

    /// The style(s) whose target is being computed.
    pub fn preparing(&self) -> Option<&str> {
        self.view.preparing.as_deref()
    }

    pub fn fullscreen(&self) -> bool {
        self.fullscreen
    }

    pub fn kiosk(&self) -> bool {
        self.kiosk
    }

    pub fn show_panel(&self) -> bool {
        self.settings.show_panel && !self.kiosk
    }

    pub fn clip_state(&self) -> ClipState {
        match (&self.clip, self.saving_clip) {
            (Some(_), _) => ClipState::Recording,
            (None, true) => ClipState::Saving,
            (None, false) => ClipState::Idle,
        }
    }

    /// How long the MP4 recording has been running, if one is.
    pub fn recording(&self, now: Instant) -> Option<std::time::Duration> {
        self.recording.map(|t| now.saturating_duration_since(t))
    }

    pub fn record_state(&self, now: Instant) -> RecordState {
        match (self.recording(now), self.saving_recording) {
            (Some(d), _) => RecordState::Recording(d),
            (None, true) => RecordState::Saving,
            (None, false) => RecordState::Idle,
        }
    }

    /// The settings to edit and what the panel shows beside them, borrowed apart.
    pub fn panel_view(&mut self, now: Instant) -> (&mut Settings, PanelView<'_>) {
        let view = PanelView {
            current: self.current_style(),
            styles: &self.styles,
            preparing: self.view.preparing.as_deref(),
            source: self.view.source.as_deref().unwrap_or("starting…"),
            cameras: &self.cameras,
            device: &self.device,
            paused: self.paused,
            fullscreen: self.fullscreen,
            clip: self.clip_state(),
            recording: self.record_state(now),
        };
        (&mut self.settings, view)
    }

    /// The last output and whether to show it as original | stylised.
    pub fn shown(&self) -> Option<(&RgbImage, &RgbImage, bool)> {
        let out = self.last.as_ref()?;
        Some((&out.original, &out.stylized, self.shown_side_by_side))
    }
}
