//! The live window: winit 0.30's `ApplicationHandler`, a pixels surface holding the stylised
//! frame, and an egui panel. The window only draws and sends commands; the camera and the
//! network run on the pipeline's threads, files and device lists on the window's worker.
//!
//! ```text
//! shell.rs    ApplicationHandler: window, Pixels, Framework; turns Effects into calls
//!   ├─ state/     LiveState: what the window decides (no display; unit-tested with a fake clock)
//!   ├─ gui.rs     draws banners, panel.rs and view.rs from &mut LiveState
//!   ├─ worker/    "stylecam-window-work": snapshots, GIF clips, MP4 recording, camera listing
//!   └─ swatches.rs "stylecam-swatches": style images -> swatches
//! framework.rs egui glue (pixels' minimal-egui); keys.rs the key table
//! ```

mod framework;
mod gui;
pub mod keys;
mod panel;
mod shell;
mod state;
mod swatches;
mod view;
mod worker;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::pipeline::Pipeline;
use crate::settings::Settings;

/// Where a style's swatch comes from.
#[derive(Debug)]
pub enum Swatch {
    /// The style image itself, read and made small on the swatch thread.
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

/// Opens the window and runs until it closes; shuts the pipeline down and saves the settings.
pub fn run(pipeline: Pipeline, opts: WindowOptions) -> Result<()> {
    shell::run(pipeline, opts)
}
