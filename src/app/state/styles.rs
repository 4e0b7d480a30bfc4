//! The style list: selecting, cycling, dropped images, and sending changed controls.

use std::path::Path;
use std::time::Instant;

use super::*;

impl LiveState {
    /// An image dropped on the window becomes a style once its swatch proves it readable.
    pub fn on_dropped_file(&mut self, path: &Path, now: Instant) -> Vec<Effect> {
        let id = path.display().to_string();
        let index = match self.styles.iter().position(|s| s.id == id) {
            Some(i) if self.styles[i].status == EntryStatus::Ready => {
                self.select_style(i, now);
                let mut fx = vec![Effect::Redraw];
                self.sync(&mut fx);
                return fx;
            }
            Some(i) => {
                self.styles[i].status = EntryStatus::Loading;
                i
            }
            None => {
                let label = path
                    .file_stem()
                    .map_or_else(|| id.clone(), |s| s.to_string_lossy().into_owned());
                self.styles.push(StyleEntry {
                    id,
                    label,
                    status: EntryStatus::Loading,
                });
                self.styles.len() - 1
            }
        };
        vec![Effect::Swatch {
            index,
            source: Swatch::File(path.to_path_buf()),
        }]
    }

    /// A swatch was made (`Ok`) or could not be (`Err`, the reason).
    pub fn on_swatch(
        &mut self,
        index: usize,
        result: Result<(), String>,
        now: Instant,
    ) -> Vec<Effect> {
        let Some(entry) = self.styles.get_mut(index) else {
            return Vec::new();
        };
        let mut fx = vec![Effect::Redraw];
        match (entry.status, result) {
            (EntryStatus::Loading, Ok(())) => {
                entry.status = EntryStatus::Ready;
                self.select_style(index, now);
                self.sync(&mut fx);
            }
            (EntryStatus::Loading, Err(e)) => {
                entry.status = EntryStatus::Failed;
                self.show(
                    format!("cannot use the dropped file as a style: {e}"),
                    true,
                    now,
                );
            }
            (_, Err(e)) => tracing::warn!("no swatch for {}: {e}", entry.label),
            (_, Ok(())) => {}
        }
        fx
    }

    /// The index of the current style in [`LiveState::styles`].
    pub fn current_style(&self) -> Option<usize> {
        self.styles
            .iter()
            .position(|s| s.id == self.settings.controls.style)
    }

    /// The label of a style id (the id itself if it is not listed).
    pub fn label_of<'a>(&'a self, id: &'a str) -> &'a str {
        self.styles
            .iter()
            .find(|s| s.id == id)
            .map_or(id, |s| s.label.as_str())
    }

    /// Indices of the styles that can be selected.
    pub(super) fn ready_styles(&self) -> impl Iterator<Item = usize> + '_ {
        self.styles
            .iter()
            .enumerate()
            .filter(|(_, s)| s.status == EntryStatus::Ready)
            .map(|(i, _)| i)
    }

    pub(super) fn select_style(&mut self, i: usize, now: Instant) {
        if let Some(s) = self
            .styles
            .get(i)
            .filter(|s| s.status == EntryStatus::Ready)
        {
            self.settings.controls.style = s.id.clone();
            self.last_cycle = now;
        }
    }

    pub(super) fn step_style(&mut self, forward: bool, now: Instant) {
        let ready: Vec<usize> = self.ready_styles().collect();
        let n = ready.len();
        if n == 0 {
            return;
        }
        let at = self
            .current_style()
            .and_then(|c| ready.iter().position(|&i| i == c))
            .unwrap_or(0);
        let next = if forward {
            (at + 1) % n
        } else {
            (at + n - 1) % n
        };
        self.select_style(ready[next], now);
    }

    /// Sends the controls if a key or the panel changed them.
    pub(super) fn sync(&mut self, fx: &mut Vec<Effect>) {
        if self.settings.controls == self.sent {
            return;
        }
        let c = self.settings.controls.clone();
        if c.style != self.sent.style {
            tracing::info!("style: {}", self.label_of(&c.style));
        }
        self.sent = c.clone();
        fx.push(Effect::Pipeline(Command::Controls(c)));
    }
}
