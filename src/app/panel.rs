//! The side panel: styles, sliders, toggles, camera and snapshots. It edits the settings in
//! place and returns what the window must do; it never blocks.

use egui::{Color32, RichText, TextureHandle};

use super::keys;
use crate::controls::{Resolution, BRUSH_RANGE};
use crate::settings::Settings;
use crate::style::Split;

/// A style as the panel shows it.
pub struct StyleItem {
    /// The name or path the engine resolves.
    pub id: String,
    pub label: String,
    pub swatch: Option<TextureHandle>,
}

/// What the panel asks the window to do.
#[derive(Debug, Clone, PartialEq)]
pub enum PanelAction {
    Snapshot,
    Clip,
    SelectCamera(Option<usize>),
    RefreshCameras,
    Fullscreen(bool),
    Pause(bool),
    Quit,
}

/// Read-only facts the panel shows.
pub struct PanelInfo<'a> {
    pub device: &'a str,
    pub source: &'a str,
    pub cameras: &'a [String],
    pub paused: bool,
    pub fullscreen: bool,
    pub recording_clip: bool,
}

#[derive(Default)]
pub struct Panel {
    show_help: bool,
}

impl Panel {
    pub fn ui(
        &mut self,
        ui: &mut egui::Ui,
        settings: &mut Settings,
        styles: &[StyleItem],
        info: &PanelInfo,
    ) -> Vec<PanelAction> {
        let mut actions = Vec::new();
        egui::ScrollArea::vertical().show(ui, |ui| {
            ui.heading("stylecam");
            self.styles_ui(ui, settings, styles);
            ui.separator();
            controls_ui(ui, settings, styles);
            ui.separator();
            view_ui(ui, settings, info, &mut actions);
            ui.separator();
            capture_ui(ui, settings, info, &mut actions);
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
        });
        actions
    }

    fn styles_ui(&mut self, ui: &mut egui::Ui, settings: &mut Settings, styles: &[StyleItem]) {
        let current = settings.controls.style.clone();
        let name = styles
            .iter()
            .find(|s| s.id == current)
            .map(|s| s.label.as_str())
            .unwrap_or(current.as_str());
        ui.horizontal(|ui| {
            ui.label("Style:");
            ui.strong(name);
        });
        let size = egui::vec2(56.0, 56.0);
        ui.horizontal_wrapped(|ui| {
            ui.spacing_mut().item_spacing = egui::vec2(4.0, 4.0);
            for (i, s) in styles.iter().enumerate() {
                let selected = s.id == current;
                let response = match &s.swatch {
                    Some(tex) => ui.add(
                        egui::Button::image(egui::Image::new(tex).fit_to_exact_size(size))
                            .selected(selected),
                    ),
                    None => {
                        ui.add_sized(size, egui::Button::new(short(&s.label)).selected(selected))
                    }
                };
                let hover = if i < 9 {
                    format!("{} (key {})", s.label, i + 1)
                } else {
                    s.label.clone()
                };
                if response.on_hover_text(hover).clicked() {
                    settings.controls.style = s.id.clone();
                }
            }
        });
    }
}

fn short(label: &str) -> String {
    label.chars().take(8).collect()
}

fn controls_ui(ui: &mut egui::Ui, settings: &mut Settings, styles: &[StyleItem]) {
    let c = &mut settings.controls;
    ui.add(
        egui::Slider::new(&mut c.brush, BRUSH_RANGE)
            .logarithmic(true)
            .text("Brush"),
    )
    .on_hover_text("Smaller: larger strokes and motifs. Larger: finer detail. Keys [ and ].");
    ui.checkbox(&mut c.preserve_color, "Keep colours (C)");
    ui.add(egui::Slider::new(&mut c.strength, 0.0..=1.0).text("Strength"))
        .on_hover_text("0 = the photo's own look, 1 = the full style");
    let label = |id: &Option<String>| match id {
        None => "none".to_owned(),
        Some(id) => styles
            .iter()
            .find(|s| &s.id == id)
            .map(|s| s.label.clone())
            .unwrap_or_else(|| id.clone()),
    };
    egui::ComboBox::from_label("Second style")
        .selected_text(label(&c.second_style))
        .show_ui(ui, |ui| {
            ui.selectable_value(&mut c.second_style, None, "none");
            for s in styles {
                ui.selectable_value(&mut c.second_style, Some(s.id.clone()), &s.label);
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
    info: &PanelInfo,
    actions: &mut Vec<PanelAction>,
) {
    ui.horizontal(|ui| {
        ui.checkbox(&mut settings.mirror, "Mirror (M)");
        ui.checkbox(&mut settings.side_by_side, "Side by side (O)");
    });
    ui.horizontal(|ui| {
        let mut fs = info.fullscreen;
        if ui.checkbox(&mut fs, "Fullscreen (F)").changed() {
            actions.push(PanelAction::Fullscreen(fs));
        }
        let mut paused = info.paused;
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
    info: &PanelInfo,
    actions: &mut Vec<PanelAction>,
) {
    ui.horizontal(|ui| {
        if ui.button("📷 Snapshot (S)").clicked() {
            actions.push(PanelAction::Snapshot);
        }
        let clip = if info.recording_clip {
            "recording…"
        } else {
            "GIF clip"
        };
        if ui
            .add_enabled(!info.recording_clip, egui::Button::new(clip))
            .clicked()
        {
            actions.push(PanelAction::Clip);
        }
    });
    ui.checkbox(&mut settings.countdown, "3-2-1 countdown")
        .on_hover_text("Snapshots hold what the window shows: side by side when that is on.");
    ui.separator();
    ui.label(RichText::new(format!("Source: {}", info.source)).small());
    egui::ComboBox::from_label("Camera")
        .selected_text(info.source)
        .show_ui(ui, |ui| {
            if ui.selectable_label(false, "test pattern").clicked() {
                actions.push(PanelAction::SelectCamera(None));
            }
            for (i, name) in info.cameras.iter().enumerate() {
                if ui.selectable_label(false, name).clicked() {
                    actions.push(PanelAction::SelectCamera(Some(i)));
                }
            }
        });
    if ui.small_button("Look for cameras").clicked() {
        actions.push(PanelAction::RefreshCameras);
    }
    ui.label(
        RichText::new(format!("Device: {}", info.device))
            .small()
            .color(Color32::GRAY),
    );
    if ui.small_button("Quit").clicked() {
        actions.push(PanelAction::Quit);
    }
}
