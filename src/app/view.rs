//! Drawing helpers: the letterboxed video, the overlay, banners, textures.

use egui::{Align2, Color32, FontId, Pos2, Rect, TextureHandle, TextureId};
use image::RgbImage;

use super::state::Banner;
use crate::pipeline::StatsSnapshot;

/// An egui texture from an RGB image.
pub fn texture(ctx: &egui::Context, name: &str, img: &RgbImage) -> TextureHandle {
    let color = egui::ColorImage::from_rgb([img.width() as usize, img.height() as usize], img);
    ctx.load_texture(name, color, egui::TextureOptions::LINEAR)
}

/// Copies an RGB image into an RGBA buffer `stride` pixels wide, at column `x0`.
pub fn blit(frame: &mut [u8], stride: u32, img: &RgbImage, x0: u32) {
    let (w, _) = img.dimensions();
    for (y, row) in img.rows().enumerate() {
        let start = (y * stride as usize + x0 as usize) * 4;
        let Some(dst) = frame.get_mut(start..start + w as usize * 4) else {
            return;
        };
        for (d, p) in dst.chunks_exact_mut(4).zip(row) {
            d[..3].copy_from_slice(&p.0);
            d[3] = 255;
        }
    }
}

/// The overlay line: rates, latency and drops.
pub fn stats_line(s: &StatsSnapshot) -> String {
    let ms = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.0} ms"));
    format!(
        "camera {:.1} fps · inference {:.1} fps ({}{}) · display {:.0} fps · latency {} · dropped {} / {}",
        s.camera_fps,
        s.inference_fps,
        ms(s.inference_ms),
        s.engine_note(),
        s.display_fps,
        ms(s.display_latency_ms.or(s.latency_ms)),
        s.dropped_before_inference,
        s.dropped_before_display
    )
}

/// Banners across the top.
pub fn banners_ui(ui: &mut egui::Ui, banners: &[Banner]) {
    for (i, b) in banners.iter().enumerate() {
        let fill = if b.error {
            Color32::from_rgb(150, 30, 30)
        } else {
            Color32::from_rgb(30, 90, 50)
        };
        egui::Panel::top(egui::Id::new(("banner", i)))
            .frame(egui::Frame::NONE.fill(fill).inner_margin(6.0))
            .show(ui, |ui| {
                ui.colored_label(Color32::WHITE, &b.text);
            });
    }
}

/// The largest rect of aspect `w/h` centred in `area`.
pub fn letterbox(area: Rect, w: f32, h: f32) -> Rect {
    let scale = (area.width() / w).min(area.height() / h);
    Rect::from_center_size(area.center(), egui::vec2(w * scale, h * scale))
}

/// What the central area shows.
pub struct VideoView<'a> {
    /// pixels' texture and the size of what it holds.
    pub video: Option<(TextureId, [u32; 2])>,
    pub mirror: bool,
    pub side_by_side: bool,
    pub overlay: Option<&'a str>,
    pub countdown: Option<u32>,
    /// A style being prepared (shown with a spinner under the overlay).
    pub preparing: Option<&'a str>,
    /// An MP4 recording running this long: a red dot and the time, top right.
    pub recording: Option<std::time::Duration>,
}

/// The recording sign's red.
pub const RECORD_RED: Color32 = Color32::from_rgb(230, 30, 30);

/// `m:ss` (or `h:mm:ss`).
pub fn clock(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The video, letterboxed at any scale, with the overlay, the countdown and a "preparing"
/// sign.
pub fn video_ui(ui: &mut egui::Ui, v: &VideoView) {
    let VideoView {
        video,
        mirror,
        side_by_side,
        overlay,
        countdown,
        preparing,
        recording,
    } = *v;
    let area = ui.max_rect();
    let painter = ui.painter().clone();
    match video {
        Some((id, [w, h])) => {
            let rect = letterbox(area, w as f32, h as f32);
            let halves: &[(f32, f32)] = if side_by_side {
                &[(0.0, 0.5), (0.5, 1.0)]
            } else {
                &[(0.0, 1.0)]
            };
            for &(u0, u1) in halves {
                let x0 = rect.left() + rect.width() * u0;
                let x1 = rect.left() + rect.width() * u1;
                let part =
                    Rect::from_min_max(Pos2::new(x0, rect.top()), Pos2::new(x1, rect.bottom()));
                let uv = if mirror {
                    Rect::from_min_max(Pos2::new(u1, 0.0), Pos2::new(u0, 1.0))
                } else {
                    Rect::from_min_max(Pos2::new(u0, 0.0), Pos2::new(u1, 1.0))
                };
                painter.image(id, part, uv, Color32::WHITE);
            }
        }
        None => {
            painter.text(
                area.center(),
                Align2::CENTER_CENTER,
                "waiting for the first frame…",
                FontId::proportional(20.0),
                Color32::GRAY,
            );
        }
    }
    // Where the next sign goes: under the overlay, if there is one.
    let mut next_y = 8.0;
    if let Some(text) = overlay {
        let pos = area.left_top() + egui::vec2(8.0, 8.0);
        let galley = painter.layout(
            text.to_owned(),
            FontId::monospace(12.0),
            Color32::WHITE,
            (area.width() - 16.0).max(40.0),
        );
        let bg = Rect::from_min_size(pos, galley.size()).expand(4.0);
        painter.rect_filled(bg, 4.0, Color32::from_black_alpha(160));
        next_y += galley.size().y + 12.0;
        painter.galley(pos, galley, Color32::WHITE);
    }
    if let Some(what) = preparing {
        let at = Rect::from_min_size(
            area.left_top() + egui::vec2(8.0, next_y),
            egui::vec2(400.0, 24.0),
        );
        ui.scope_builder(egui::UiBuilder::new().max_rect(at), |ui| {
            egui::Frame::NONE
                .fill(Color32::from_black_alpha(160))
                .corner_radius(4.0)
                .inner_margin(4.0)
                .show(ui, |ui| {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.colored_label(Color32::WHITE, format!("preparing {what}…"));
                    });
                });
        });
    }
    if let Some(d) = recording {
        let galley = painter.layout_no_wrap(
            format!("REC {}", clock(d)),
            FontId::monospace(16.0),
            Color32::WHITE,
        );
        let (dot, pad) = (7.0, 6.0);
        let size = egui::vec2(
            galley.size().x + 2.0 * dot + 3.0 * pad,
            galley.size().y + 2.0 * pad,
        );
        let bg = Rect::from_min_size(
            Pos2::new(area.right() - size.x - 8.0, area.top() + 8.0),
            size,
        );
        painter.rect_filled(bg, 4.0, Color32::from_black_alpha(180));
        painter.circle_filled(
            Pos2::new(bg.left() + pad + dot, bg.center().y),
            dot,
            RECORD_RED,
        );
        painter.galley(
            Pos2::new(bg.left() + 2.0 * pad + 2.0 * dot, bg.top() + pad),
            galley,
            Color32::WHITE,
        );
    }
    if let Some(n) = countdown {
        painter.text(
            area.center(),
            Align2::CENTER_CENTER,
            n.to_string(),
            FontId::proportional(area.height() * 0.4),
            Color32::from_white_alpha(220),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_keeps_aspect_at_any_scale() {
        let area = Rect::from_min_size(Pos2::ZERO, egui::vec2(1000.0, 500.0));
        let r = letterbox(area, 640.0, 480.0);
        assert!((r.width() / r.height() - 4.0 / 3.0).abs() < 1e-4);
        assert_eq!(r.height(), 500.0);
        assert_eq!(r.center(), area.center());
        // Not only whole multiples: 500 / 480 is fractional.
        assert!((r.width() - 666.666).abs() < 0.01);
    }

    #[test]
    fn blit_places_rgb_as_opaque_rgba() {
        let img = RgbImage::from_pixel(2, 1, image::Rgb([1, 2, 3]));
        let mut frame = vec![0u8; 4 * 4];
        blit(&mut frame, 4, &img, 2);
        assert_eq!(&frame[8..16], &[1, 2, 3, 255, 1, 2, 3, 255]);
        assert_eq!(&frame[..8], &[0; 8]);
    }
}
