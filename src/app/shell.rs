//! The thin `ApplicationHandler` shell, after pixels' `minimal-egui`: it owns the window,
//! `Pixels` and the egui [`Framework`], feeds events, pipeline outputs and worker replies to the
//! [`LiveState`], and carries out the [`Effect`]s it returns. Nothing here waits: blocking work
//! goes to the [`Worker`] and the [`SwatchWorker`].

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

use super::framework::Framework;
use super::gui::Gui;
use super::keys;
use super::state::{Effect, LiveState, StateOptions};
use super::swatches::SwatchWorker;
use super::view;
use super::worker::Worker;
use super::WindowOptions;
use crate::pipeline::Pipeline;
use crate::settings;

/// The window's size when the monitor has room for it (logical pixels).
pub const DEFAULT_SIZE: (f64, f64) = (1100.0, 640.0);
/// At most this share of the monitor, so the first window always fits.
const MONITOR_SHARE: f64 = 0.9;
/// How long a snapshot or clip still being saved at exit is waited for.
const SAVE_AT_EXIT: Duration = Duration::from_secs(10);
/// The longest the event loop sleeps between ticks.
const TICK: Duration = Duration::from_millis(8);

struct Gfx {
    window: Arc<Window>,
    pixels: Pixels<'static>,
    framework: Framework,
}

pub(super) struct Shell {
    state: LiveState,
    gui: Gui,
    pipeline: Option<Pipeline>,
    worker: Worker,
    swatches: SwatchWorker,
    gfx: Option<Gfx>,
    /// The size of what pixels' buffer holds.
    shown_dims: (u32, u32),
    dirty: bool,
    settings_path: Option<PathBuf>,
    error: Option<anyhow::Error>,
}

/// Opens the window and runs until it closes; shuts the pipeline down and saves the settings.
pub fn run(pipeline: Pipeline, opts: WindowOptions) -> Result<()> {
    let event_loop = EventLoop::new().context(
        "cannot open a window: no display was found. On Linux, run it in a desktop session, or \
         under Xvfb for a headless machine (see the README's troubleshooting)",
    )?;
    let mut shell = Shell::new(pipeline, opts)?;
    event_loop
        .run_app(&mut shell)
        .context("the window's event loop failed")?;
    shell.finish()
}

impl Shell {
    fn new(pipeline: Pipeline, opts: WindowOptions) -> Result<Self> {
        let swatches = SwatchWorker::spawn().context("cannot start the swatch thread")?;
        let worker = Worker::spawn().context("cannot start the window's worker thread")?;
        let mut styles = Vec::with_capacity(opts.styles.len());
        for (i, (id, label, swatch)) in opts.styles.into_iter().enumerate() {
            swatches.load(i, swatch);
            styles.push((id, label));
        }
        let state = LiveState::new(
            StateOptions {
                settings: opts.settings,
                startup_warning: opts.startup_warning,
                kiosk: opts.kiosk,
                fullscreen: opts.fullscreen,
                exit_after: opts.exit_after,
                snapshot_dir: opts.snapshot_dir,
                device: opts.device,
            },
            styles,
            Instant::now(),
        );
        Ok(Self {
            state,
            gui: Gui::default(),
            pipeline: Some(pipeline),
            worker,
            swatches,
            gfx: None,
            shown_dims: (0, 0),
            dirty: true,
            settings_path: opts.settings_path,
            error: None,
        })
    }

    fn finish(mut self) -> Result<()> {
        // Close the window first: what follows may wait a moment (bounded).
        self.gfx = None;
        if let Some(p) = self.pipeline.take() {
            tracing::info!("at exit: {}", view::stats_line(&p.stats()));
            let report = p.shutdown();
            if !(report.capture_joined && report.inference_joined) {
                tracing::warn!("a pipeline thread was still busy at exit: {report:?}");
            }
        }
        for effect in self.state.on_exit(Instant::now()) {
            if let Effect::Work(c) = effect {
                self.worker.send(c);
            }
        }
        if !self.worker.finish(SAVE_AT_EXIT) {
            tracing::warn!("a snapshot or clip was still being saved at exit");
        }
        while let Some(reply) = self.worker.try_reply() {
            self.state.on_reply(reply, Instant::now());
        }
        if let Some(path) = &self.settings_path {
            if let Err(e) = settings::save(path, &self.state.settings) {
                eprintln!("warning: {e}");
            }
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn apply(&mut self, effects: Vec<Effect>, event_loop: &ActiveEventLoop) {
        for effect in effects {
            match effect {
                Effect::Pipeline(c) => {
                    if let Some(p) = &self.pipeline {
                        p.send(c);
                    }
                }
                Effect::SwitchSource(spec) => {
                    if let Some(p) = &self.pipeline {
                        p.switch_source(spec);
                    }
                }
                Effect::Work(c) => self.worker.send(c),
                Effect::Swatch { index, source } => self.swatches.load(index, source),
                Effect::Fullscreen(on) => {
                    if let Some(g) = &self.gfx {
                        g.window
                            .set_fullscreen(on.then_some(Fullscreen::Borderless(None)));
                    }
                }
                Effect::Upload => self.upload(),
                Effect::Redraw => self.dirty = true,
                Effect::Exit => event_loop.exit(),
            }
        }
    }

    /// Hands the pipeline's status and newest output, and the workers' replies, to the state.
    fn poll(&mut self, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        if let Some(p) = &self.pipeline {
            let overlay = view::stats_line(&p.stats());
            fx.extend(
                self.state
                    .on_status(&p.status(), &p.inference_status(), overlay),
            );
            if let Some(result) = p.try_latest() {
                if let Ok(out) = &result {
                    p.stats_handle().record_display(out.captured_at);
                }
                fx.extend(self.state.on_output(result, now));
            }
        }
        while let Some(reply) = self.worker.try_reply() {
            fx.extend(self.state.on_reply(reply, now));
        }
        // Swatches become textures, which need the window's egui context.
        if let Some(g) = &self.gfx {
            while let Some((index, result)) = self.swatches.try_reply() {
                if let Ok(img) = &result {
                    self.gui.set_swatch(g.framework.ctx(), index, img);
                }
                fx.extend(self.state.on_swatch(index, result.map(|_| ()), now));
            }
        }
        fx
    }

    /// Copies the shown picture into pixels' buffer, resizing it if needed.
    fn upload(&mut self) {
        let Some((original, stylized, side_by_side)) = self.state.shown() else {
            return;
        };
        let Some(g) = self.gfx.as_mut() else { return };
        let (w, h) = stylized.dimensions();
        let dims = if side_by_side { (w * 2, h) } else { (w, h) };
        if dims != self.shown_dims {
            if let Err(e) = g.pixels.resize_buffer(dims.0, dims.1) {
                self.error = Some(anyhow::anyhow!("cannot resize the frame buffer: {e}"));
                return;
            }
            self.shown_dims = dims;
        }
        let frame = g.pixels.frame_mut();
        if side_by_side {
            view::blit(frame, dims.0, original, 0);
            view::blit(frame, dims.0, stylized, w);
        } else {
            view::blit(frame, dims.0, stylized, 0);
        }
        self.dirty = true;
    }

    fn redraw(&mut self, event_loop: &ActiveEventLoop) {
        self.dirty = false;
        let now = Instant::now();
        let Some(g) = self.gfx.as_mut() else { return };
        let dims = [self.shown_dims.0, self.shown_dims.1];
        let video = (dims[0] > 0).then(|| (g.framework.video_texture(&g.pixels), dims));
        let mut actions = Vec::new();
        let (gui, state) = (&mut self.gui, &mut self.state);
        let window = g.window.clone();
        g.framework.prepare(&window, |ui| {
            actions = gui.ui(ui, state, video, now);
        });
        if let Err(e) = g.pixels.render_with(|encoder, target, ctx| {
            g.framework.render(encoder, target, ctx);
            Ok(())
        }) {
            self.error = Some(anyhow::anyhow!("cannot draw the window: {e}"));
            event_loop.exit();
            return;
        }
        if let Some(p) = &self.pipeline {
            p.stats_handle().tick_display();
        }
        self.state.on_drawn(now, video.is_some());
        let mut fx = Vec::new();
        for a in actions {
            fx.extend(self.state.on_panel(a, now));
        }
        self.apply(fx, event_loop);
    }
}

impl ApplicationHandler for Shell {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.gfx.is_some() {
            return;
        }
        match create_gfx(event_loop, self.state.fullscreen(), self.state.kiosk()) {
            Ok(g) => {
                self.gfx = Some(g);
                let fx = self.state.on_opened(Instant::now());
                self.apply(fx, event_loop);
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
        let now = Instant::now();
        let fx = match event {
            WindowEvent::CloseRequested => vec![Effect::Exit],
            // Zero sizes (a minimised window) are skipped.
            WindowEvent::Resized(size) if size.width > 0 && size.height > 0 => {
                if let Err(e) = g.pixels.resize_surface(size.width, size.height) {
                    self.error = Some(anyhow::anyhow!("cannot resize the window surface: {e}"));
                    event_loop.exit();
                    return;
                }
                g.framework.resize(size.width, size.height);
                Vec::new()
            }
            WindowEvent::ScaleFactorChanged { scale_factor, .. } => {
                g.framework.scale_factor(scale_factor);
                Vec::new()
            }
            WindowEvent::RedrawRequested => {
                self.redraw(event_loop);
                Vec::new()
            }
            WindowEvent::DroppedFile(path) => self.state.on_dropped_file(&path, now),
            WindowEvent::KeyboardInput { event, .. }
                if !consumed && event.state == ElementState::Pressed && !event.repeat =>
            {
                match keys::action(&event.logical_key) {
                    Some(a) => self.state.on_action(a, now),
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        };
        self.apply(fx, event_loop);
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        let now = Instant::now();
        let mut fx = self.poll(now);
        fx.extend(self.state.tick(now));
        self.apply(fx, event_loop);
        if self.dirty {
            if let Some(g) = &self.gfx {
                g.window.request_redraw();
            }
        }
        event_loop.set_control_flow(ControlFlow::WaitUntil(Instant::now() + TICK));
    }
}

/// The first window size: [`DEFAULT_SIZE`], shrunk to fit a monitor of `monitor` logical
/// pixels (when known).
pub fn initial_size(monitor: Option<(f64, f64)>) -> (f64, f64) {
    let (w, h) = DEFAULT_SIZE;
    match monitor {
        Some((mw, mh)) if mw > 0.0 && mh > 0.0 => {
            ((mw * MONITOR_SHARE).min(w), (mh * MONITOR_SHARE).min(h))
        }
        _ => (w, h),
    }
}

fn create_gfx(event_loop: &ActiveEventLoop, fullscreen: bool, kiosk: bool) -> Result<Gfx> {
    let monitor = event_loop
        .primary_monitor()
        .or_else(|| event_loop.available_monitors().next())
        .map(|m| {
            let size = m.size().to_logical::<f64>(m.scale_factor());
            (size.width, size.height)
        });
    let (w, h) = initial_size(monitor);
    let attrs = Window::default_attributes()
        .with_title("stylecam")
        .with_inner_size(LogicalSize::new(w, h))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_window_fits_the_monitor() {
        assert_eq!(initial_size(None), DEFAULT_SIZE);
        assert_eq!(initial_size(Some((1920.0, 1080.0))), DEFAULT_SIZE);
        assert_eq!(initial_size(Some((800.0, 600.0))), (720.0, 540.0));
        assert_eq!(initial_size(Some((1024.0, 600.0))), (921.6, 540.0));
        assert_eq!(initial_size(Some((0.0, 0.0))), DEFAULT_SIZE);
    }
}
