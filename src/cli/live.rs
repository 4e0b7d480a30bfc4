//! `stylecam` with no command: the live window.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use super::{AssetArgs, CameraArgs, DeviceArg};
use crate::app::{self, Swatch, WindowOptions};
use crate::capture::SourceSpec;
use crate::controls::Resolution;
use crate::engine::Engine;
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::settings;
use crate::style::Aspect;

mod style_check;

#[derive(Debug, Clone, clap::Args)]
pub struct LiveArgs {
    #[command(flatten)]
    pub assets: AssetArgs,
    /// What to stylise: `camera` (the first webcam), `camera:N`, `test-pattern`, an image file,
    /// or a folder of images (a slideshow). Default: the last one used, else camera 0.
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<SourceSpec>,
    #[command(flatten)]
    pub camera: CameraArgs,
    /// The style to start with: a name from the style folder or an image's path.
    #[arg(long)]
    pub style: Option<String>,
    /// How style images are resized: square (the reference's way) or keep.
    #[arg(long, default_value = "square")]
    pub style_aspect: Aspect,
    /// Brush size, 0.25 to 4 (see `stylecam stylize --help`).
    #[arg(long)]
    pub brush: Option<f32>,
    /// Keep the camera's colours.
    #[arg(long)]
    pub preserve_color: bool,
    /// Processing resolution: 240p, 360p, 480p, 720p or native.
    #[arg(long)]
    pub resolution: Option<Resolution>,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Precision on the CPU: auto (bf16 where the CPU has Intel AMX, else f32), f32 or bf16.
    /// The panel and the overlay show the one in use.
    #[arg(long, default_value = "auto")]
    pub dtype: crate::device::DtypeSpec,
    /// Fullscreen, no panel, no cursor: for booths and kiosks. Esc still quits.
    #[arg(long)]
    pub kiosk: bool,
    /// Start fullscreen.
    #[arg(long)]
    pub fullscreen: bool,
    /// Change style every SECONDS (attract mode).
    #[arg(long, value_name = "SECONDS")]
    pub auto_cycle: Option<u32>,
    /// Where snapshots and GIF clips go. Default: your pictures folder, in `stylecam`.
    #[arg(long, value_name = "DIR")]
    pub snapshot_dir: Option<PathBuf>,
    /// Close the window SECONDS after it shows its first frame and exit 0 (demos, tests).
    #[arg(long, value_name = "SECONDS")]
    pub exit_after: Option<f64>,
    /// Neither read nor write the settings file.
    #[arg(long)]
    pub no_settings: bool,
}

pub fn run(a: LiveArgs) -> Result<()> {
    let mut first_run = false;
    let (mut settings, warning, settings_path) = if a.no_settings {
        (settings::Settings::default(), None, None)
    } else {
        match settings::default_path() {
            Ok(path) => {
                first_run = !path.exists();
                let (s, w) = settings::load(&path);
                (s, w, Some(path))
            }
            Err(e) => (settings::Settings::default(), Some(e.to_string()), None),
        }
    };
    let dev = a.device.open();
    // On the CPU the first run starts at 240p, which a laptop keeps up with; the choice is
    // then remembered.
    if first_run && dev.is_cpu() {
        settings.controls.resolution = Resolution::P240;
    }
    let assets = a.assets.load(&dev, a.style.is_none())?;
    let bank = assets.bank.clone();
    // A --style path to an image of the bank selects that style rather than adding it twice.
    let style_arg = a.style.as_ref().map(|s| {
        let canon = |p: &std::path::Path| std::fs::canonicalize(p).ok();
        let same = canon(std::path::Path::new(s));
        bank.styles()
            .iter()
            .find(|st| same.is_some() && st.image().and_then(canon) == same)
            .map_or_else(|| s.clone(), |st| st.name.clone())
    });
    let c = &mut settings.controls;
    if let Some(s) = &style_arg {
        c.style = s.clone();
    }
    if bank.resolve(&c.style).is_err() {
        c.style = match bank.styles().first() {
            Some(s) => s.name.clone(),
            None => a.style.clone().unwrap_or_default(),
        };
    }
    if let Some(second) = &c.second_style {
        if bank.resolve(second).is_err() {
            c.second_style = None;
        }
    }
    // A style picture that cannot be read (one dropped on the window and damaged since, or
    // --style BROKEN.png) must not keep the window shut: start with another, and say so.
    let mut warnings: Vec<String> = warning.into_iter().collect();
    let from_flag = style_arg.is_some();
    warnings.extend(style_check::check(
        &bank,
        c,
        from_flag,
        settings_path.as_deref(),
    )?);
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let unreadable_flag_style = from_flag && style_arg.as_deref() != Some(c.style.as_str());
    if let Some(b) = a.brush {
        c.brush = b;
    }
    if a.preserve_color {
        c.preserve_color = true;
    }
    if let Some(r) = a.resolution {
        c.resolution = r;
    }
    if a.auto_cycle.is_some() {
        settings.auto_cycle_secs = a.auto_cycle;
    }
    settings = settings.clamped();

    let cache = assets.target_cache();
    let pack = assets.pack.clone();
    let mut styles: Vec<(String, String, Swatch)> = bank
        .styles()
        .iter()
        .map(|s| {
            let swatch = match (s.image(), &pack) {
                (Some(p), _) => Swatch::File(p.to_path_buf()),
                (None, Some(pack)) => pack
                    .swatch(&s.name)
                    .map_or(Swatch::None, |i| Swatch::Image(i.clone())),
                (None, None) => Swatch::None,
            };
            (s.name.clone(), s.name.clone(), swatch)
        })
        .collect();
    if let Some(s) = style_arg.as_ref().filter(|_| !unreadable_flag_style) {
        if bank.get(s).is_none() {
            let p = PathBuf::from(s);
            let label = crate::style::Style::from_path(&p).name;
            styles.push((s.clone(), label, Swatch::File(p)));
        }
    }
    let choice = crate::device::DtypeChoice::resolve(a.dtype, &dev, crate::device::cpu_has_bf16());
    let mut net = assets.model.net;
    choice.apply(&mut net)?;
    if let Some(note) = &choice.note {
        tracing::info!("{note}");
    }
    let engine = Engine::new(net, bank, cache, a.style_aspect, settings.controls.clone())
        .context("preparing the first style")?;
    let device = engine.device_name().to_owned();

    let config = PipelineConfig {
        source: SourceSpec::chosen(a.source.as_ref(), settings.camera.as_deref()),
        source_config: a.camera.source_config(),
        controls: Some(settings.controls.clone()),
        ..PipelineConfig::default()
    };
    let pipeline = Pipeline::start(config, engine)?;
    app::run(
        pipeline,
        WindowOptions {
            settings,
            settings_path,
            startup_warning: (!warnings.is_empty()).then(|| warnings.join("\n")),
            styles,
            kiosk: a.kiosk,
            fullscreen: a.fullscreen,
            exit_after: a.exit_after.map(Duration::from_secs_f64),
            snapshot_dir: a.snapshot_dir,
            device,
        },
    )
}
