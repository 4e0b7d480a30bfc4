//! The live window: winit 0.30's `ApplicationHandler`, a pixels surface holding the stylised
//! frame, and an egui panel. The window only draws and sends commands; the camera and the
//! network run on the pipeline's threads.

mod framework;
pub mod keys;
mod panel;
mod view;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pixels::{Pixels, SurfaceTexture};
use winit::application::ApplicationHandler;
use winit::dpi::LogicalSize;
use winit::event::{ElementState, WindowEvent};
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop};
use winit::window::{Fullscreen, Window, WindowId};

use crate::capture::{CameraInfo, SourceSpec};
use crate::controls::Controls;
use crate::pipeline::{Command, Output, Pipeline};
use crate::settings::{self, Settings};
use crate::snapshot::{self, ClipRecorder, Countdown};
use framework::Framework;
use keys::Action;
use panel::{Panel, PanelAction, PanelInfo, StyleItem};

/// Where a style's swatch comes from.
pub enum Swatch {
    /// A thumbnail of the style image, made on a background thread.
    File(PathBuf),
    /// A ready picture (the built-in styles' own renderings).
    Image(image::RgbImage),
    None,
}

/// What the window needs besides the pipeline.
pub struct WindowOptions {
    pub settings: Settings,
    /// Where settings are saved on exit; `None` keeps them in memory.
    pub settings_path: Option<PathBuf>,
    /// A message to show at start (a corrupt settings file, a camera fallback, ...).
    pub startup_warning: Option<String>,
    /// The styles the panel offers: (id the engine resolves, label, swatch).
    pub styles: Vec<(String, String, Swatch)>,
    pub kiosk: bool,
    pub fullscreen: bool,
    pub exit_after: Option<Duration>,
    pub snapshot_dir: Option<PathBuf>,
    pub device: String,
}

struct Gfx {
    window: Arc<Window>,
    pixels: Pixels<'static>,
    framework: Framework,
}

/// A message over the picture, for a while.
struct Banner {
    text: String,
    error: bool,
    until: Option<Instant>,
}

pub struct App {
    opts: WindowOptions,
    settings: Settings,
    sent: Controls,
    pipeline: Option<Pipeline>,
    gfx: Option<Gfx>,
    panel: Panel,
    styles: Vec<StyleItem>,
    swatches: Option<crossbeam_channel::Receiver<(usize, image::RgbImage)>>,
    last: Option<Output>,
    /// The size of what pixels' buffer holds, and whether that is original | stylised.
    shown_dims: (u32, u32),
    shown_side_by_side: bool,
    banner: Option<Banner>,
    paused: bool,
    fullscreen: bool,
    countdown: Option<Countdown>,
    clip: Option<ClipRecorder>,
    cameras: Vec<CameraInfo>,
    started: Instant,
    last_cycle: Instant,
    last_redraw: Instant,
    dirty: bool,
    first_shown: bool,
    error: Option<anyhow::Error>,
}

/// Opens the window and runs until it closes; shuts the pipeline down and saves the settings.
pub fn run(pipeline: Pipeline, opts: WindowOptions) -> Result<()> {
    let event_loop = EventLoop::new().context(
        "cannot open a window: no display was found. On Linux, run it in a desktop session, or \
         under Xvfb for a headless machine (see the README's troubleshooting)",
    )?;
    let mut app = App::new(pipeline, opts);
    event_loop
        .run_app(&mut app)
        .context("the window's event loop failed")?;
    app.finish()
}

impl App {
    fn new(pipeline: Pipeline, mut opts: WindowOptions) -> Self {
        let settings = opts.settings.clone();
        let banner = opts.startup_warning.clone().map(|text| Banner {
            text,
            error: true,
            until: Some(Instant::now() + Duration::from_secs(10)),
        });
        let styles = opts
            .styles
            .iter()
            .map(|(id, label, _)| StyleItem {
                id: id.clone(),
                label: label.clone(),
                swatch: None,
            })
            .collect();
        let swatches = view::load_swatches(
            opts.styles
                .iter_mut()
                .map(|(_, _, s)| std::mem::replace(s, Swatch::None))
                .collect(),
        );
        let fullscreen = opts.fullscreen || opts.kiosk;
        Self {
            sent: settings.controls.clone(),
            settings,
            pipeline: Some(pipeline),
            gfx: None,
            panel: Panel::default(),
            styles,
            swatches,
            last: None,
            shown_dims: (0, 0),
            shown_side_by_side: false,
            banner,
            paused: false,
            fullscreen,
            countdown: None,
            clip: None,
            cameras: crate::capture::list_cameras().unwrap_or_default(),
            started: Instant::now(),
            last_cycle: Instant::now(),
            last_redraw: Instant::now(),
            dirty: true,
            first_shown: false,
            error: None,
            opts,
        }
    }

    fn finish(mut self) -> Result<()> {
        if let Some(p) = self.pipeline.take() {
            tracing::info!("at exit: {}", view::stats_line(&p.stats()));
            let report = p.shutdown();
            if !(report.capture_joined && report.inference_joined) {
                tracing::warn!("a pipeline thread was still busy at exit: {report:?}");
            }
        }
        if let Some(path) = &self.opts.settings_path {
            if let Err(e) = settings::save(path, &self.settings) {
                eprintln!("warning: {e}");
            }
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn pipeline(&self) -> Option<&Pipeline> {
        self.pipeline.as_ref()
    }

    fn show(&mut self, text: impl Into<String>, error: bool) {
        let text = text.into();
        if error {
            tracing::warn!("{text}");
        } else {
            tracing::info!("{text}");
        }
        self.banner = Some(Banner {
            text,
            error,
            until: Some(Instant::now() + Duration::from_secs(if error { 8 } else { 3 })),
        });
    }

    fn style_index(&self) -> Option<usize> {
        self.styles
            .iter()
            .position(|s| s.id == self.settings.controls.style)
    }

    fn select_style(&mut self, i: usize) {
        if let Some(s) = self.styles.get(i) {
            self.settings.controls.style = s.id.clone();
            self.last_cycle = Instant::now();
        }
    }

    fn step_style(&mut self, forward: bool) {
        let n = self.styles.len();
        if n == 0 {
            return;
        }
        let i = self.style_index().unwrap_or(0);
        self.select_style(if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        });
    }

    /// Sends the controls if the panel or a key changed them.
    fn sync_controls(&mut self) {
        if self.settings.controls != self.sent {
            let c = self.settings.controls.clone();
            if c.style != self.sent.style {
                let label = self
                    .styles
                    .iter()
                    .find(|s| s.id == c.style)
                    .map_or(c.style.clone(), |s| s.label.clone());
                tracing::info!("style: {label}");
            }
            if let Some(p) = self.pipeline() {
                p.send(Command::Controls(c.clone()));
            }
            self.sent = c;
        }
    }

    fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
        if let Some(p) = self.pipeline() {
            p.send(Command::Pause(paused));
        }
    }

    fn set_fullscreen(&mut self, on: bool) {
        self.fullscreen = on;
        if let Some(g) = &self.gfx {
            g.window
                .set_fullscreen(on.then_some(Fullscreen::Borderless(None)));
        }
    }

    fn act(&mut self, action: Action, event_loop: &ActiveEventLoop) {
        match action {
            Action::PreviousStyle => self.step_style(false),
            Action::NextStyle => self.step_style(true),
            Action::Style(i) => self.select_style(i),
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
            Action::ToggleFullscreen => self.set_fullscreen(!self.fullscreen),
            Action::TogglePanel => self.settings.show_panel = !self.settings.show_panel,
            Action::TogglePause => self.set_paused(!self.paused),
            Action::Snapshot => self.start_snapshot(),
            Action::Escape => {
                if self.fullscreen && !self.opts.kiosk {
                    self.set_fullscreen(false);
                } else {
                    event_loop.exit();
                }
            }
        }
        self.sync_controls();
        self.dirty = true;
    }

    fn panel_action(&mut self, action: PanelAction, event_loop: &ActiveEventLoop) {
        match action {
            PanelAction::Snapshot => self.start_snapshot(),
            PanelAction::Clip => {
                let secs = self.settings.clip_secs.clamp(1, 30);
                self.clip = Some(ClipRecorder::new(Duration::from_secs(secs as u64), 480));
                self.show(format!("recording a {secs} s GIF clip…"), false);
            }
            PanelAction::SelectCamera(choice) => {
                let spec = match choice.and_then(|i| self.cameras.get(i)) {
                    Some(cam) => SourceSpec::Camera(cam.index),
                    None => SourceSpec::TestPattern,
                };
                self.settings.camera = Some(spec.to_string());
                if let Some(p) = self.pipeline() {
                    p.switch_source(spec);
                }
            }
            PanelAction::RefreshCameras => match crate::capture::list_cameras() {
                Ok(c) if c.is_empty() => self.show("no camera found", true),
                Ok(c) => self.cameras = c,
                Err(e) => self.show(e.to_string(), true),
            },
            PanelAction::Fullscreen(on) => self.set_fullscreen(on),
            PanelAction::Pause(p) => self.set_paused(p),
            PanelAction::Quit => event_loop.exit(),
        }
    }

    fn snapshot_dir(&self) -> Option<PathBuf> {
        self.opts
            .snapshot_dir
            .clone()
            .or_else(|| self.settings.snapshot_dir.clone())
            .or_else(crate::paths::default_snapshot_dir)
    }

    fn start_snapshot(&mut self) {
        if self.settings.countdown {
            self.countdown = Some(Countdown::new(Instant::now(), 3));
        } else {
            self.take_snapshot();
        }
    }

    /// The picture as shown: stylised (or original | stylised), mirrored if the view is.
    fn shown_image(&self) -> Option<image::RgbImage> {
        let out = self.last.as_ref()?;
        let mut img = if self.settings.side_by_side {
            let (o, s) = if self.settings.mirror {
                (
                    image::imageops::flip_horizontal(&out.original),
                    image::imageops::flip_horizontal(&out.stylized),
                )
            } else {
                (out.original.clone(), out.stylized.clone())
            };
            return Some(snapshot::side_by_side(&o, &s));
        } else {
            out.stylized.clone()
        };
        if self.settings.mirror {
            image::imageops::flip_horizontal_in_place(&mut img);
        }
        Some(img)
    }

    fn take_snapshot(&mut self) {
        let Some(img) = self.shown_image() else {
            self.show("no frame to save yet", true);
            return;
        };
        let Some(dir) = self.snapshot_dir() else {
            self.show(
                "no pictures folder on this system: pass --snapshot-dir DIR",
                true,
            );
            return;
        };
        let tag = view::file_tag(&self.settings.controls.style);
        match snapshot::save_snapshot(&dir, &img, &tag, chrono::Local::now()) {
            Ok(path) => self.show(format!("saved {}", path.display()), false),
            Err(e) => self.show(e.to_string(), true),
        }
    }

    /// Takes the newest output, if any, into the pixels buffer.
    fn take_output(&mut self) {
        let Some(p) = self.pipeline() else { return };
        let Some(result) = p.try_latest() else { return };
        match result {
            Ok(out) => {
                if let Some(stats) = self.pipeline().map(Pipeline::stats_handle) {
                    stats.record_display(out.captured_at);
                }
                self.last = Some(out);
                self.upload();
            }
            Err(e) => self.show(e.to_string(), true),
        }
    }

    /// Copies the shown picture into pixels' buffer, resizing it if needed.
    fn upload(&mut self) {
        let Some(out) = &self.last else { return };
        let Some(g) = self.gfx.as_mut() else { return };
        let (w, h) = out.stylized.dimensions();
        let dims = if self.settings.side_by_side {
            (w * 2, h)
        } else {
            (w, h)
        };
        if dims != self.shown_dims {
            if let Err(e) = g.pixels.resize_buffer(dims.0, dims.1) {
                self.error = Some(anyhow::anyhow!("cannot resize the frame buffer: {e}"));
                return;
            }
            self.shown_dims = dims;
        }
        self.shown_side_by_side = self.settings.side_by_side;
        let frame = g.pixels.frame_mut();
        if self.settings.side_by_side {
            view::blit(frame, dims.0, &out.original, 0);
            view::blit(frame, dims.0, &out.stylized, w);
        } else {
            view::blit(frame, dims.0, &out.stylized, 0);
        }
        self.dirty = true;
    }

    fn tick(&mut self, event_loop: &ActiveEventLoop) {
        let now = Instant::now();
        if let Some(limit) = self.opts.exit_after {
            // Counted from the first frame on screen (a window still waiting for one gets 10 s
            // more), so a slow start does not eat the time.
            let from = if self.first_shown {
                self.started
            } else {
                self.started + Duration::from_secs(10)
            };
            if now.duration_since(from) >= limit {
                tracing::info!("--exit-after reached, closing");
                event_loop.exit();
                return;
            }
        }
        if let Some(rx) = &self.swatches {
            let g = self.gfx.as_ref().map(|g| g.framework.ctx().clone());
            if let Some(ctx) = g {
                while let Ok((i, img)) = rx.try_recv() {
                    if let Some(s) = self.styles.get_mut(i) {
                        s.swatch = Some(view::texture(&ctx, &format!("swatch-{i}"), &img));
                        self.dirty = true;
                    }
                }
            }
        }
        if let Some(secs) = self.settings.auto_cycle_secs {
            if !self.paused
                && now.duration_since(self.last_cycle) >= Duration::from_secs(secs.max(1) as u64)
            {
                self.step_style(true);
            }
        }
        self.sync_controls();
        if let Some(c) = &self.countdown {
            if c.due(now) {
                self.countdown = None;
                self.take_snapshot();
            }
            self.dirty = true;
        }
        if let Some(b) = &self.banner {
            if b.until.is_some_and(|t| now >= t) {
                self.banner = None;
                self.dirty = true;
            }
        }
        // The view changed (key or panel): redo the buffer from the last output at once.
        if self.settings.side_by_side != self.shown_side_by_side {
            self.upload();
        }
        let had = self.last.as_ref().map(|o| o.seq);
        self.take_output();
        if self.last.as_ref().map(|o| o.seq) != had {
            if let (Some(clip), Some(img)) = (self.clip.as_mut(), self.last.as_ref()) {
                clip.push(&img.stylized, now);
            }
        }
        if self.clip.as_ref().is_some_and(ClipRecorder::is_done) {
            if let (Some(clip), Some(dir)) = (self.clip.take(), self.snapshot_dir()) {
                match clip.finish(&dir, chrono::Local::now()) {
                    Ok(p) => self.show(format!("saved {}", p.display()), false),
                    Err(e) => self.show(e.to_string(), true),
                }
            }
        }
        // The overlay's numbers change even when the picture does not.
        if now.duration_since(self.last_redraw) > Duration::from_millis(500) {
            self.dirty = true;
        }
        if self.dirty {
            if let Some(g) = &self.gfx {
                g.window.request_redraw();
            }
        }
    }

    fn redraw(&mut self, event_loop: &ActiveEventLoop) {
        self.dirty = false;
        self.last_redraw = Instant::now();
        // (banner, what runs, stats)
        let status = self.pipeline().map(|p| {
            let capture = p.status();
            let banner = capture.banner().or(p.inference_status().banner());
            (banner, capture.source, p.stats())
        });
        let Some(g) = self.gfx.as_mut() else { return };
        let dims = [self.shown_dims.0, self.shown_dims.1];
        let video = (dims[0] > 0).then(|| (g.framework.video_texture(&g.pixels), dims));
        let mut actions = Vec::new();
        let source = status
            .as_ref()
            .and_then(|(_, s, _)| s.clone())
            .unwrap_or_else(|| "starting…".into());
        let camera_names: Vec<String> = self
            .cameras
            .iter()
            .map(|c| format!("{} (camera:{})", c.name, c.index))
            .collect();
        let info = PanelInfo {
            device: &self.opts.device,
            source: &source,
            cameras: &camera_names,
            paused: self.paused,
            fullscreen: self.fullscreen,
            recording_clip: self.clip.is_some(),
        };
        let capture_banner = status.as_ref().and_then(|(b, _, _)| b.clone());
        let overlay = status.as_ref().map(|(_, _, st)| view::stats_line(st));
        let countdown = self
            .countdown
            .as_ref()
            .and_then(|c| c.remaining(Instant::now()));
        let show_panel = self.settings.show_panel && !self.opts.kiosk;
        let side_by_side = self.shown_side_by_side;
        let settings = &mut self.settings;
        let styles = &self.styles;
        let panel = &mut self.panel;
        let banner = &self.banner;
        let kiosk = self.opts.kiosk;
        let window = g.window.clone();
        g.framework.prepare(&window, |ui| {
            let banners = [
                capture_banner.as_ref().map(|t| (t.as_str(), true)),
                banner.as_ref().map(|b| (b.text.as_str(), b.error)),
            ];
            view::banners_ui(ui, &banners);
            if show_panel {
                egui::Panel::left("panel")
                    .resizable(true)
                    .default_size(260.0)
                    .show(ui, |ui| {
                        actions = panel.ui(ui, settings, styles, &info);
                    });
            }
            egui::CentralPanel::default()
                .frame(egui::Frame::NONE.fill(egui::Color32::BLACK))
                .show(ui, |ui| {
                    view::video_ui(
                        ui,
                        video,
                        settings.mirror,
                        side_by_side,
                        if kiosk { None } else { overlay.as_deref() },
                        countdown,
                    );
                });
        });
        if let Err(e) = g.pixels.render_with(|encoder, target, ctx| {
            g.framework.render(encoder, target, ctx);
            Ok(())
        }) {
            self.error = Some(anyhow::anyhow!("cannot draw the window: {e}"));
            event_loop.exit();
            return;
        }
        if let Some(p) = self.pipeline() {
            p.stats_handle().tick_display();
        }
        if video.is_some() && !self.first_shown {
            self.first_shown = true;
            self.started = Instant::now();
            tracing::info!("first frame shown");
        }
        for a in actions {
            self.panel_action(a, event_loop);
        }
        self.sync_controls();
    }
}

impl ApplicationHandler for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.gfx.is_some() {
            return;
        }
        match create_gfx(event_loop, self.fullscreen, self.opts.kiosk) {
            Ok(g) => {
                self.gfx = Some(g);
                self.started = Instant::now();
                self.upload();
            }
            Err(e) => {
                self.error = Some(e);
                event_loop.exit();
            }
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _id: WindowId, event: WindowEvent) {
        let Some(g) = self.gfx.as_mut() else { return };
        let consumed = g.framework.handle_event(&g.window, &event);
        self.dirty = true;
        match event {
            WindowEvent::CloseRequested => event_loop.exit(),
            // Zero sizes (a minimised window) are skipped.
            WindowEvent::Resized(size) if size.width > 0 && size.height > 0 => {
                if let Err(e) = g.pixels.resize_surface(size.width, size.height) {
                    self.error = Some(anyhow::anyhow!("cannot resize the window surface: {e}"));
                    event_loop.exit();
                    return;
                }
                g.framework.resize(size.width, size.height);
            }
            WindowEvent::ScaleFactorChanged { scale_factor, .. } => {
                g.framework.scale_factor(scale_factor);
            }
            WindowEvent::RedrawRequested => self.redraw(event_loop),
            WindowEvent::DroppedFile(path) => match crate::image_io::load_rgb(&path) {
                Ok(img) => {
                    let (id, item, swatch) = view::dropped_style(&path, &img);
                    let ctx = g.framework.ctx().clone();
                    self.styles.push(StyleItem {
                        id: id.clone(),
                        label: item,
                        swatch: Some(view::texture(&ctx, &id, &swatch)),
                    });
                    self.select_style(self.styles.len() - 1);
                    self.sync_controls();
                }
                Err(e) => self.show(format!("cannot use the dropped file as a style: {e}"), true),
            },
            WindowEvent::KeyboardInput { event, .. }
                if !consumed && event.state == ElementState::Pressed && !event.repeat =>
            {
                if let Some(a) = keys::action(&event.logical_key) {
                    self.act(a, event_loop);
                }
            }
            _ => {}
        }
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        self.tick(event_loop);
        event_loop.set_control_flow(ControlFlow::WaitUntil(
            Instant::now() + Duration::from_millis(8),
        ));
    }
}

fn create_gfx(event_loop: &ActiveEventLoop, fullscreen: bool, kiosk: bool) -> Result<Gfx> {
    let attrs = Window::default_attributes()
        .with_title("stylecam")
        .with_inner_size(LogicalSize::new(1100.0, 640.0))
        .with_min_inner_size(LogicalSize::new(320.0, 240.0))
        .with_fullscreen(fullscreen.then_some(Fullscreen::Borderless(None)));
    let window = Arc::new(
        event_loop
            .create_window(attrs)
            .context("cannot create the window")?,
    );
    if kiosk {
        window.set_cursor_visible(false);
    }
    let size = window.inner_size();
    let surface = SurfaceTexture::new(size.width.max(1), size.height.max(1), window.clone());
    let pixels = Pixels::new(64, 48, surface).map_err(|e| {
        anyhow::anyhow!(
            "cannot start the graphics: {e}. stylecam draws with Vulkan, Metal or DirectX 12; on \
             Linux install a Vulkan driver (for example `mesa-vulkan-drivers`, which includes \
             the lavapipe software driver) and `libvulkan1` (see the README's troubleshooting)"
        )
    })?;
    let framework = Framework::new(&window, &pixels);
    Ok(Gfx {
        window,
        pixels,
        framework,
    })
}
