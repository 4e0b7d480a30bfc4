//! The messages over the picture. Two come from the pipeline's status and stay while it holds
//! (the capture: opening, fallback, a lost camera; the controls: a style that cannot be used);
//! one is a timed message from the window itself (saved, a frame that failed, ...). The same
//! text never shows twice.

use std::time::{Duration, Instant};

/// How long a timed error stays.
pub const ERROR_SECS: Duration = Duration::from_secs(8);
/// How long a timed note ("saved ...") stays.
pub const NOTE_SECS: Duration = Duration::from_secs(3);

/// One line over the picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    pub text: String,
    pub error: bool,
}

#[derive(Debug, Default)]
pub struct Banners {
    capture: Option<String>,
    controls: Option<String>,
    message: Option<(Banner, Instant)>,
}

impl Banners {
    /// Takes the pipeline's status lines; says whether anything changed.
    pub fn set_status(&mut self, capture: Option<String>, controls: Option<String>) -> bool {
        let changed = self.capture != capture || self.controls != controls;
        self.capture = capture;
        self.controls = controls;
        changed
    }

    /// Shows `text` until `until`, replacing the previous timed message.
    pub fn show(&mut self, text: String, error: bool, until: Instant) {
        self.message = Some((Banner { text, error }, until));
    }

    /// Drops a timed message that is due; says whether one was.
    pub fn expire(&mut self, now: Instant) -> bool {
        if self
            .message
            .as_ref()
            .is_some_and(|(_, until)| now >= *until)
        {
            self.message = None;
            return true;
        }
        false
    }

    /// What to show, top to bottom; each text once.
    pub fn visible(&self) -> Vec<Banner> {
        let mut out: Vec<Banner> = Vec::new();
        let status = [&self.capture, &self.controls]
            .into_iter()
            .flatten()
            .map(|text| Banner {
                text: text.clone(),
                error: true,
            });
        let message = self.message.iter().map(|(b, _)| b.clone());
        for b in status.chain(message) {
            if !out.iter().any(|o| o.text == b.text) {
                out.push(b);
            }
        }
        out
    }
}
