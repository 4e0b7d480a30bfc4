//! The egui glue, after pixels' `minimal-egui`: input from winit, output drawn with wgpu on top
//! of the frame. The video itself is pixels' own texture, registered with egui so that it can be
//! drawn at any scale with linear filtering (pixels' scaling renderer only does whole
//! multiples).

use egui::{ClippedPrimitive, TextureId, TexturesDelta};
use egui_wgpu::{Renderer, RendererOptions, ScreenDescriptor};
use pixels::{wgpu, Pixels, PixelsContext};
use winit::event::WindowEvent;
use winit::window::Window;

pub struct Framework {
    ctx: egui::Context,
    state: egui_winit::State,
    screen: ScreenDescriptor,
    renderer: Renderer,
    paint_jobs: Vec<ClippedPrimitive>,
    textures: TexturesDelta,
    /// pixels' texture as egui sees it, with the size it had when registered.
    video: Option<(TextureId, wgpu::Extent3d)>,
}

impl Framework {
    pub fn new(window: &Window, pixels: &Pixels) -> Self {
        let size = window.inner_size();
        let scale = window.scale_factor() as f32;
        let ctx = egui::Context::default();
        let max_texture_side = pixels.device().limits().max_texture_dimension_2d as usize;
        let state = egui_winit::State::new(
            ctx.clone(),
            egui::ViewportId::ROOT,
            window,
            Some(scale),
            window.theme(),
            Some(max_texture_side),
        );
        let renderer = Renderer::new(
            pixels.device(),
            pixels.render_texture_format(),
            RendererOptions::default(),
        );
        Self {
            ctx,
            state,
            screen: ScreenDescriptor {
                size_in_pixels: [size.width, size.height],
                pixels_per_point: scale,
            },
            renderer,
            paint_jobs: Vec::new(),
            textures: TexturesDelta::default(),
            video: None,
        }
    }

    pub fn ctx(&self) -> &egui::Context {
        &self.ctx
    }

    /// Gives egui the event; says whether egui used it.
    pub fn handle_event(&mut self, window: &Window, event: &WindowEvent) -> bool {
        self.state.on_window_event(window, event).consumed
    }

    pub fn resize(&mut self, width: u32, height: u32) {
        if width > 0 && height > 0 {
            self.screen.size_in_pixels = [width, height];
        }
    }

    pub fn scale_factor(&mut self, scale: f64) {
        self.screen.pixels_per_point = scale as f32;
    }

    /// The egui texture that shows pixels' frame buffer; re-registered when the buffer changes
    /// size (pixels then makes a new texture).
    pub fn video_texture(&mut self, pixels: &Pixels) -> TextureId {
        let ctx = pixels.context();
        let view = ctx
            .texture
            .create_view(&wgpu::TextureViewDescriptor::default());
        match self.video {
            Some((id, extent)) if extent == ctx.texture_extent => id,
            Some((id, _)) => {
                self.renderer.update_egui_texture_from_wgpu_texture(
                    &ctx.device,
                    &view,
                    wgpu::FilterMode::Linear,
                    id,
                );
                self.video = Some((id, ctx.texture_extent));
                id
            }
            None => {
                let id = self.renderer.register_native_texture(
                    &ctx.device,
                    &view,
                    wgpu::FilterMode::Linear,
                );
                self.video = Some((id, ctx.texture_extent));
                id
            }
        }
    }

    /// Runs the UI for one frame.
    pub fn prepare(&mut self, window: &Window, ui: impl FnMut(&mut egui::Ui)) {
        let input = self.state.take_egui_input(window);
        let output = self.ctx.run_ui(input, ui);
        self.textures.append(output.textures_delta);
        self.state
            .handle_platform_output(window, output.platform_output);
        self.paint_jobs = self
            .ctx
            .tessellate(output.shapes, self.screen.pixels_per_point);
    }

    /// Draws the prepared UI into `target`, clearing it to black first (the video is part of
    /// the UI).
    pub fn render(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        target: &wgpu::TextureView,
        ctx: &PixelsContext,
    ) {
        for (id, delta) in &self.textures.set {
            self.renderer
                .update_texture(&ctx.device, &ctx.queue, *id, delta);
        }
        self.renderer.update_buffers(
            &ctx.device,
            &ctx.queue,
            encoder,
            &self.paint_jobs,
            &self.screen,
        );
        {
            let mut pass = encoder
                .begin_render_pass(&wgpu::RenderPassDescriptor {
                    label: Some("egui"),
                    color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                        view: target,
                        resolve_target: None,
                        depth_slice: None,
                        ops: wgpu::Operations {
                            load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                            store: wgpu::StoreOp::Store,
                        },
                    })],
                    depth_stencil_attachment: None,
                    timestamp_writes: None,
                    occlusion_query_set: None,
                    multiview_mask: None,
                })
                .forget_lifetime();
            self.renderer
                .render(&mut pass, &self.paint_jobs, &self.screen);
        }
        let freed = std::mem::take(&mut self.textures.free);
        for id in &freed {
            self.renderer.free_texture(id);
        }
    }
}
