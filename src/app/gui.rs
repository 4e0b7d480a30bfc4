//! What the window draws, from the state: the banners, the panel and the video. It owns only
//! what egui needs (the swatch textures, the panel's own toggles) and returns the panel's
//! actions for the state to decide on.

use std::time::Instant;

use egui::{TextureHandle, TextureId};
use image::RgbImage;

use super::panel::Panel;
use super::state::{LiveState, PanelAction};
use super::view::{self, VideoView};

/// The panel's first width in points.
const PANEL_WIDTH: f32 = 260.0;

#[derive(Default)]
pub struct Gui {
    panel: Panel,
    /// By style index, as the swatches arrive.
    swatches: Vec<Option<TextureHandle>>,
}

impl Gui {
    /// Keeps the swatch of the style at `index` as a texture.
    pub fn set_swatch(&mut self, ctx: &egui::Context, index: usize, img: &RgbImage) {
        if self.swatches.len() <= index {
            self.swatches.resize(index + 1, None);
        }
        self.swatches[index] = Some(view::texture(ctx, &format!("swatch-{index}"), img));
    }

    /// Draws one frame. `video`: pixels' texture and the size of what it holds.
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        state: &mut LiveState,
        video: Option<(TextureId, [u32; 2])>,
        now: Instant,
    ) -> Vec<PanelAction> {
        let Self { panel, swatches } = self;
        view::banners_ui(ui, &state.banners());
        let mut actions = Vec::new();
        if state.show_panel() {
            egui::Panel::left("panel")
                .resizable(true)
                .default_size(PANEL_WIDTH)
                .min_size(180.0)
                .show(ui, |ui| {
                    let (settings, panel_view) = state.panel_view(now);
                    actions = panel.ui(ui, settings, &panel_view, swatches);
                });
        }
        let video_view = VideoView {
            video,
            mirror: state.settings.mirror,
            side_by_side: state.shown().is_some_and(|(_, _, sbs)| sbs),
            overlay: state.overlay(),
            countdown: state.countdown(now),
            preparing: state.preparing(),
            recording: state.recording(now),
        };
        egui::CentralPanel::default()
            .frame(egui::Frame::NONE.fill(egui::Color32::BLACK))
            .show(ui, |ui| view::video_ui(ui, &video_view));
        actions
    }
}
