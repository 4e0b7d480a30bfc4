//! The side panel: styles, sliders, toggles, camera and snapshots, in one scroll area so every
//! control is reachable in any window; the style grid folds away and scrolls on its own. It
//! edits the settings in place and returns what the state must do; it never blocks.

use egui::{Color32, RichText, TextureHandle};

use super::keys;
use super::state::{ClipState, PanelAction, PanelView, RecordState};
use crate::controls::{Resolution, BRUSH_RANGE};
use crate::settings::Settings;
use crate::style::Split;

/// The Quit button's fill: a control that ends the session stands out (the window test finds
/// it by this colour).
pub const QUIT_FILL: Color32 = Color32::from_rgb(150, 40, 40);
/// The Record button's fill while recording.
const RECORD_FILL: Color32 = Color32::from_rgb(190, 20, 20);
/// A swatch button's side in points.
const SWATCH_SIDE: f32 = 56.0;

#[derive(Default)]
pub struct Panel {
    show_help: bool,
}

impl Panel {
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        settings: &mut Settings,
        view: &PanelView,
        swatches: &[Option<TextureHandle>],
    ) -> Vec<PanelAction> {
        let mut actions = Vec::new();
        // The style grid may take about a third of the panel; the rest scrolls as a whole.
        let grid_height = (ui.available_height() * 0.35).clamp(2.0 * SWATCH_SIDE, 420.0);
        egui::ScrollArea::vertical()
            .id_salt("panel")
            .auto_shrink([false, false])
            .show(ui, |ui| {
                ui.heading("stylecam");
                styles_ui(ui, view, swatches, grid_height, &mut actions);
                ui.separator();
                controls_ui(ui, settings, view);
                ui.separator();
                view_ui(ui, settings, view, &mut actions);
                ui.separator();
                capture_ui(ui, settings, view, &mut actions);
                ui.separator();
                ui.checkbox(&mut self.show_help, "Keys");
                if self.show_help {
                    egui::Grid::new("keys").striped(true).show(ui, |ui| {
                        for (k, what) in keys::HELP {
                            ui.label(RichText::new(k).monospace());
                            ui.label(what);
                            ui.end_row();
                        }
                    });
                }
                ui.add_space(6.0);
                let quit =
                    egui::Button::new(RichText::new("Quit").color(Color32::WHITE)).fill(QUIT_FILL);
                if ui.add(quit).on_hover_text("Esc").clicked() {
                    actions.push(PanelAction::Quit);
                }
                ui.add_space(6.0);
            });
        actions
    }
}

fn styles_ui(
    ui: &mut egui::Ui,
    view: &PanelView,
    swatches: &[Option<TextureHandle>],
    grid_height: f32,
    actions: &mut Vec<PanelAction>,
) {
    let name = view
        .current
        .and_then(|i| view.styles.get(i))
        .map_or("–", |s| s.label.as_str());
    egui::CollapsingHeader::new(RichText::new(format!("Style: {name}")).strong())
        .id_salt("styles")
        .default_open(true)
        .show(ui, |ui| {
            if let Some(what) = view.preparing {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("preparing {what}…"));
                });
            }
            egui::ScrollArea::vertical()
                .id_salt("style grid")
                .max_height(grid_height)
                .show(ui, |ui| swatch_grid(ui, view, swatches, actions));
        });
}

fn swatch_grid(
    ui: &mut egui::Ui,
    view: &PanelView,
    swatches: &[Option<TextureHandle>],
    actions: &mut Vec<PanelAction>,
) {
    let size = egui::vec2(SWATCH_SIDE, SWATCH_SIDE);
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing = egui::vec2(4.0, 4.0);
        let mut key = 0;
        for (i, s) in view.styles.iter().enumerate() {
            if s.status != super::state::EntryStatus::Ready {
                continue;
            }
            key += 1;
            let selected = view.current == Some(i);
            let response = match swatches.get(i).and_then(Option::as_ref) {
                Some(tex) => ui.add(
                    egui::Button::image(egui::Image::new(tex).fit_to_exact_size(size))
                        .selected(selected),
                ),
                None => ui.add_sized(size, egui::Button::new(short(&s.label)).selected(selected)),
            };
            let hover = if key <= 9 {
                format!("{} (key {key})", s.label)
            } else {
                s.label.clone()
            };
            if response.on_hover_text(hover).clicked() {
                actions.push(PanelAction::SelectStyle(i));
            }
        }
    });
}

fn short(label: &str) -> String {
    label.chars().take(8).collect()
}

fn controls_ui(ui: &mut egui::Ui, settings: &mut Settings, view: &PanelView) {
    let c = &mut settings.controls;
    ui.add(
        egui::Slider::new(&mut c.brush, BRUSH_RANGE)
            .logarithmic(true)
            .text("Brush"),
    )
    .on_hover_text("Larger: larger strokes and motifs. Smaller: finer detail. Keys [ and ].");
    ui.checkbox(&mut c.preserve_color, "Keep colours (C)");
    ui.add(egui::Slider::new(&mut c.strength, 0.0..=1.0).text("Strength"))
        .on_hover_text("0 = the photo's own look, 1 = the full style");
    let label = |id: &Option<String>| match id {
        None => "none".to_owned(),
        Some(id) => view
            .styles
            .iter()
            .find(|s| &s.id == id)
            .map_or_else(|| id.clone(), |s| s.label.clone()),
    };
    egui::ComboBox::from_label("Second style")
        .selected_text(label(&c.second_style))
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut c.second_style, None, "none");
            for s in view.styles {
                if s.status == super::state::EntryStatus::Ready {
                    ui.selectable_value(&mut c.second_style, Some(s.id.clone()), &s.label);
                }
            }
        });
    if c.second_style.is_some() {
        egui::ComboBox::from_label("Split")
            .selected_text(c.split.map_or("mix", Split::label))
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut c.split, None, "mix");
                for s in Split::ALL {
                    ui.selectable_value(&mut c.split, Some(s), s.label());
                }
            });
        if c.split.is_none() {
            ui.add(egui::Slider::new(&mut c.mix, 0.0..=1.0).text("Mix"))
                .on_hover_text("0 = first style only, 1 = second style only");
        }
    }
    ui.add(egui::Slider::new(&mut c.anti_flicker, 0.0..=1.0).text("Anti-flicker"))
        .on_hover_text(
            "0 = off. Higher: small changes in the camera image are ignored and the output is \
             smoothed over time (a steadier picture, a little trail).",
        );
    egui::ComboBox::from_label("Processing")
        .selected_text(c.resolution.label())
        .show_ui(ui, |ui| {
            for r in Resolution::ALL {
                ui.selectable_value(&mut c.resolution, r, r.label());
            }
        });
}

fn view_ui(
    ui: &mut egui::Ui,
    settings: &mut Settings,
    view: &PanelView,
    actions: &mut Vec<PanelAction>,
) {
    ui.horizontal_wrapped(|ui| {
        ui.checkbox(&mut settings.mirror, "Mirror (M)");
        ui.checkbox(&mut settings.side_by_side, "Side by side (O)");
        let mut fs = view.fullscreen;
        if ui.checkbox(&mut fs, "Fullscreen (F)").changed() {
            actions.push(PanelAction::Fullscreen(fs));
        }
        let mut paused = view.paused;
        if ui.checkbox(&mut paused, "Pause (Space)").changed() {
            actions.push(PanelAction::Pause(paused));
        }
    });
    let mut cycle = settings.auto_cycle_secs.is_some();
    ui.horizontal(|ui| {
        if ui.checkbox(&mut cycle, "Auto-cycle styles").changed() {
            settings.auto_cycle_secs = cycle.then_some(20);
        }
        if let Some(secs) = settings.auto_cycle_secs.as_mut() {
            ui.add(egui::DragValue::new(secs).range(2..=600).suffix(" s"));
        }
    });
}

fn capture_ui(
    ui: &mut egui::Ui,
    settings: &mut Settings,
    view: &PanelView,
    actions: &mut Vec<PanelAction>,
) {
    ui.horizontal_wrapped(|ui| {
        if ui.button("📷 Snapshot (S)").clicked() {
            actions.push(PanelAction::Snapshot);
        }
        let (text, enabled) = match view.clip {
            ClipState::Idle => ("GIF clip", true),
            ClipState::Recording => ("⏹ Stop clip", true),
            ClipState::Saving => ("saving clip…", false),
        };
        if ui.add_enabled(enabled, egui::Button::new(text)).clicked() {
            actions.push(PanelAction::Clip);
        }
        let (text, enabled) = match view.recording {
            RecordState::Idle => ("⏺ Record MP4 (R)".to_owned(), true),
            RecordState::Recording(d) => (format!("⏹ Stop {}", super::view::clock(d)), true),
            RecordState::Saving => ("saving video…".to_owned(), false),
        };
        let mut button = egui::Button::new(text);
        if matches!(view.recording, RecordState::Recording(_)) {
            button = button.fill(RECORD_FILL);
        }
        if ui.add_enabled(enabled, button).clicked() {
            actions.push(PanelAction::Record);
        }
    });
    ui.checkbox(&mut settings.countdown, "3-2-1 countdown")
        .on_hover_text("Snapshots hold what the window shows: side by side when that is on.");
    ui.separator();
    ui.label("Camera or source:");
    egui::ComboBox::from_id_salt("camera")
        .selected_text(view.source)
        .width(ui.available_width().min(240.0))
        .show_ui(ui, |ui| {
            if ui.selectable_label(false, "test pattern").clicked() {
                actions.push(PanelAction::SelectCamera(None));
            }
            for (i, cam) in view.cameras.iter().enumerate() {
                let name = format!("{} (camera:{})", cam.name, cam.index);
                if ui.selectable_label(false, name).clicked() {
                    actions.push(PanelAction::SelectCamera(Some(i)));
                }
            }
        });
    if ui.small_button("Look for cameras").clicked() {
        actions.push(PanelAction::RefreshCameras);
    }
    ui.label(
        RichText::new(format!("Device: {}", view.device))
            .small()
            .color(Color32::GRAY),
    );
}
