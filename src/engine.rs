//! The live stylizer: MSG-Net with the creative controls applied frame by frame.
//!
//! Style targets are computed on their own thread ("stylecam-targets"), so changing the style or
//! dragging the brush never stalls the video: frames keep using the last ready target until the
//! new one arrives. Everything else (strength, mix, split, colour) costs nothing to change.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use candle_core::{DType, Tensor};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use image::RgbImage;

use crate::capture::Frame;
use crate::controls::Controls;
use crate::model::{MsgNet, Targets};
use crate::pipeline::{join_until, Stylized, Stylizer};
use crate::style::{self, Aspect, Split, Style, StyleBank, TargetCache};
use crate::{color, image_io};

/// What a target is computed from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TargetKey {
    style: String,
    size: u32,
}

type TargetReply = (TargetKey, Result<Tensor, String>);
/// A target to compute: its key (the style as the controls name it) and the style it names.
type Wanted = (TargetKey, Style);

/// Commands for the style-target thread.
enum TargetCommand {
    /// Compute these (of several pending, only the newest list counts: a dragged brush sends
    /// many).
    Compute(Vec<Wanted>),
    Stop,
}

/// How long dropping the engine waits for a target being computed.
const TARGET_JOIN: Duration = Duration::from_secs(1);

/// The thread that owns the target cache ("stylecam-targets").
struct TargetWorker {
    commands: Sender<TargetCommand>,
    replies: Receiver<TargetReply>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl TargetWorker {
    fn start(net: Arc<MsgNet>, mut cache: TargetCache, aspect: Aspect) -> Result<Self> {
        let (commands, command_rx) = crossbeam_channel::unbounded::<TargetCommand>();
        let (reply_tx, replies) = crossbeam_channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::Builder::new()
            .name("stylecam-targets".into())
            .spawn(move || {
                while let Ok(command) = command_rx.recv() {
                    let mut wanted = match command {
                        TargetCommand::Compute(w) => w,
                        TargetCommand::Stop => return,
                    };
                    for newer in command_rx.try_iter() {
                        match newer {
                            TargetCommand::Compute(w) => wanted = w,
                            TargetCommand::Stop => return,
                        }
                    }
                    for (key, style) in wanted {
                        if stopped.load(Ordering::Acquire) {
                            return;
                        }
                        let t = cache
                            .target(&net, &style, key.size, aspect)
                            .map_err(|e| e.to_string());
                        if reply_tx.send((key, t)).is_err() {
                            return;
                        }
                    }
                }
            })
            .context("cannot start the style-target thread")?;
        Ok(Self {
            commands,
            replies,
            stop,
            handle: Some(handle),
        })
    }

    fn compute(&self, wanted: Vec<Wanted>) -> Result<()> {
        self.commands
            .send(TargetCommand::Compute(wanted))
            .map_err(|_| anyhow!("the style-target thread has stopped"))
    }
}

impl Drop for TargetWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.commands.send(TargetCommand::Stop).ok();
        join_until(
            &mut self.handle,
            Instant::now() + TARGET_JOIN,
            "stylecam-targets",
        );
    }
}

/// Where a frame's time goes inside [`Engine::stylize`], summed over frames (for
/// `stylecam bench --live`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTotals {
    pub frames: u64,
    /// Scaling the frame to the processing resolution.
    pub resize: Duration,
    /// The anti-flicker deadband on the input and moving average on the output.
    pub anti_flicker: Duration,
    /// RGB u8 to the BGR float tensor and back.
    pub convert: Duration,
    /// MSG-Net itself (targets mixed, masks, forward).
    pub network: Duration,
    /// Keep-colour.
    pub colour: Duration,
}

impl StageTotals {
    /// The stages with their mean ms per frame, in order.
    pub fn mean_ms(&self) -> Vec<(&'static str, f64)> {
        let n = self.frames.max(1) as f64;
        let ms = |d: Duration| d.as_secs_f64() * 1e3 / n;
        vec![
            ("resize", ms(self.resize)),
            ("anti-flicker", ms(self.anti_flicker)),
            ("convert", ms(self.convert)),
            ("network", ms(self.network)),
            ("colour", ms(self.colour)),
        ]
    }
}

/// The engine's stage clock, shared with whoever reads it.
#[derive(Debug, Default)]
pub struct StageTimes(Mutex<StageTotals>);

impl StageTimes {
    pub fn totals(&self) -> StageTotals {
        self.0.lock().map(|t| t.clone()).unwrap_or_default()
    }

    fn add(&self, f: impl FnOnce(&mut StageTotals)) {
        if let Ok(mut t) = self.0.lock() {
            f(&mut t);
        }
    }
}

/// MSG-Net plus the style bank plus the controls.
pub struct Engine {
    net: Arc<MsgNet>,
    bank: StyleBank,
    controls: Controls,
    worker: TargetWorker,
    ready: HashMap<TargetKey, Tensor>,
    /// The targets in use: the wanted ones once they are ready, the previous ones until then.
    active: Vec<(TargetKey, Tensor)>,
    last_error: Option<String>,
    /// Targets whose computation failed (not shown as being prepared).
    failed: HashSet<TargetKey>,
    masks: HashMap<(Split, usize, usize), Tensor>,
    flicker: AntiFlicker,
    device_name: String,
    stages: Arc<StageTimes>,
    /// The per-frame downscale (SIMD, reusing its buffers).
    resizer: fast_image_resize::Resizer,
}

impl Engine {
    /// Starts the engine with `controls`; the first style's target is computed before this
    /// returns, so the first frame is already styled.
    pub fn new(
        net: MsgNet,
        bank: StyleBank,
        cache: TargetCache,
        aspect: Aspect,
        controls: Controls,
    ) -> Result<Self> {
        let device_name = crate::device::describe(&net);
        let net = Arc::new(net);
        let worker = TargetWorker::start(net.clone(), cache, aspect)?;
        let mut engine = Self {
            net,
            bank,
            controls: Controls::default(),
            worker,
            ready: HashMap::new(),
            active: Vec::new(),
            last_error: None,
            failed: HashSet::new(),
            masks: HashMap::new(),
            flicker: AntiFlicker::default(),
            device_name,
            stages: Arc::default(),
            resizer: fast_image_resize::Resizer::new(),
        };
        engine.apply(&controls)?;
        engine.wait_for_targets()?;
        Ok(engine)
    }

    /// Where and in what precision the network runs: `cpu · f32`.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// The per-stage time totals, updated by every [`Engine::stylize`].
    pub fn stage_times(&self) -> Arc<StageTimes> {
        self.stages.clone()
    }

    /// Adds a style to the bank (a picture uploaded to `stylecam serve`), replacing one of the
    /// same name.
    pub fn add_style(&mut self, style: Style) {
        self.ready.retain(|k, _| k.style != style.name);
        self.bank.add(style);
    }

    fn wanted(&self) -> Result<Vec<Wanted>> {
        let size = self.controls.style_size();
        let mut names = vec![self.controls.style.as_str()];
        if let Some(second) = &self.controls.second_style {
            names.push(second);
        }
        names
            .into_iter()
            .map(|n| {
                let key = TargetKey {
                    style: n.to_owned(),
                    size,
                };
                Ok((key, self.bank.resolve(n)?))
            })
            .collect()
    }

    /// Takes new controls; any new targets are requested, not waited for.
    pub fn apply(&mut self, controls: &Controls) -> Result<()> {
        let controls = controls.clone().clamped();
        let old = std::mem::replace(&mut self.controls, controls);
        let wanted = match self.wanted() {
            Ok(w) => w,
            Err(e) => {
                self.controls = old;
                return Err(e);
            }
        };
        let missing: Vec<_> = wanted
            .into_iter()
            .filter(|(key, _)| !self.ready.contains_key(key))
            .collect();
        if !missing.is_empty() {
            for (key, _) in &missing {
                self.failed.remove(key);
            }
            self.worker.compute(missing)?;
        }
        Ok(())
    }

    /// The controls in use (clamped).
    pub fn controls(&self) -> &Controls {
        &self.controls
    }

    /// Takes new controls and waits (at most `timeout`) until their targets are in use, so that
    /// the next [`Engine::stylize`] follows them exactly. For callers that stylise one picture
    /// per request (`stylecam serve`); the window never waits.
    pub fn apply_and_wait(&mut self, controls: &Controls, timeout: Duration) -> Result<()> {
        // Replies that arrive from here on are all read below, so none of the requested
        // targets can be dropped from `ready` before they are made active.
        self.collect_targets();
        self.apply(controls)?;
        let keys = self.wanted_keys();
        let mut missing: Vec<&TargetKey> = keys
            .iter()
            .filter(|k| !self.ready.contains_key(k))
            .collect();
        let deadline = Instant::now() + timeout;
        while !missing.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            let (key, t) = self
                .worker
                .replies
                .recv_timeout(left)
                .map_err(|e| match e {
                    RecvTimeoutError::Timeout => anyhow!(
                        "the style target was not ready after {} s",
                        timeout.as_secs()
                    ),
                    RecvTimeoutError::Disconnected => {
                        anyhow!("the style-target thread has stopped")
                    }
                })?;
            let wanted = missing.contains(&&key);
            match t {
                Ok(t) => {
                    missing.retain(|k| **k != key);
                    self.ready.insert(key, t);
                }
                Err(e) => {
                    self.failed.insert(key);
                    if wanted {
                        return Err(anyhow!(e));
                    }
                    // Otherwise a target asked for earlier and no longer wanted.
                }
            }
        }
        self.active = keys
            .iter()
            .filter_map(|k| self.ready.get(k).map(|t| (k.clone(), t.clone())))
            .collect();
        Ok(())
    }

    /// Takes finished targets, and makes the wanted ones active once all are ready.
    fn collect_targets(&mut self) {
        while let Ok((key, t)) = self.worker.replies.try_recv() {
            match t {
                Ok(t) => {
                    // Keep a bounded set: brush drags make many sizes. The wanted targets stay.
                    if self.ready.len() > 64 {
                        let keep = self.wanted_keys();
                        self.ready.retain(|k, _| keep.contains(k));
                    }
                    self.ready.insert(key, t);
                }
                Err(e) => {
                    self.failed.insert(key);
                    self.last_error = Some(e);
                }
            }
        }
        let keys = self.wanted_keys();
        if let Some(now) = keys
            .iter()
            .map(|k| self.ready.get(k).map(|t| (k.clone(), t.clone())))
            .collect::<Option<Vec<_>>>()
        {
            self.active = now;
        }
    }

    fn wait_for_targets(&mut self) -> Result<()> {
        while self.active.is_empty() {
            let (key, t) = self
                .worker
                .replies
                .recv()
                .map_err(|_| anyhow!("the style-target thread has stopped"))?;
            let t = t.map_err(|e| anyhow!(e))?;
            self.ready.insert(key, t);
            self.collect_targets();
        }
        Ok(())
    }

    /// The keys of the targets the controls want.
    fn wanted_keys(&self) -> Vec<TargetKey> {
        let size = self.controls.style_size();
        let mut names = vec![self.controls.style.clone()];
        names.extend(self.controls.second_style.clone());
        names
            .into_iter()
            .map(|style| TargetKey { style, size })
            .collect()
    }

    /// The styles whose targets are still being computed (frames use the previous ones
    /// meanwhile), e.g. `"candy"` or `"candy + mosaic"`; `None` when all are ready or failed.
    pub fn preparing(&self) -> Option<String> {
        let pending: Vec<String> = self
            .wanted_keys()
            .into_iter()
            .filter(|k| !self.ready.contains_key(k) && !self.failed.contains(k))
            .map(|k| {
                std::path::Path::new(&k.style)
                    .file_stem()
                    .map_or(k.style.clone(), |s| s.to_string_lossy().into_owned())
            })
            .collect();
        (!pending.is_empty()).then(|| pending.join(" + "))
    }

    /// A target error reported since the last call (shown as a banner).
    fn take_error(&mut self) -> Option<String> {
        self.last_error.take()
    }

    /// Stylises one frame with the current controls.
    pub fn stylize(&mut self, frame: &RgbImage) -> Result<Stylized> {
        self.collect_targets();
        let c = &self.controls;
        let t0 = Instant::now();
        let (w, h) = c.resolution.fit(frame.width(), frame.height());
        // Every frame pays for this resize, so it uses a bilinear filter rather than the
        // Lanczos that style images get, with fast_image_resize's SIMD code (the image crate's
        // took about 4% of a 240p frame).
        let resized = if frame.dimensions() == (w, h) {
            frame.clone()
        } else {
            use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions};
            let mut dst = RgbImage::new(w, h);
            let options =
                ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
            self.resizer
                .resize(frame, &mut dst, &options)
                .map_err(|e| anyhow!("cannot resize the frame to {w}x{h}: {e}"))?;
            dst
        };
        let t1 = Instant::now();
        let input = self.flicker.deadband(&resized, c.anti_flicker);
        let t2 = Instant::now();
        let dev = self.net.device();
        let x = image_io::to_tensor(&input, dev, self.net.dtype())?;
        let t3 = Instant::now();
        let (hu, wu) = (h as usize, w as usize);
        let mask = match (c.split, self.active.len()) {
            (Some(split), 2) => Some(match self.masks.get(&(split, hu, wu)) {
                Some(m) => m.clone(),
                None => {
                    let m = style::split_mask(split, hu, wu, dev)?;
                    if self.masks.len() > 8 {
                        self.masks.clear();
                    }
                    self.masks.insert((split, hu, wu), m.clone());
                    m
                }
            }),
            _ => None,
        };
        let mixed;
        let targets = match (self.active.as_slice(), &mask) {
            ([(_, first), (_, second)], Some(mask)) => Targets::Masked {
                first,
                second,
                mask,
            },
            ([(_, first), (_, second)], None) => {
                mixed = style::mix_targets(first, second, c.mix as f64)?;
                Targets::One(&mixed)
            }
            ([(_, only), ..], _) => Targets::One(only),
            ([], _) => return Err(anyhow!("no style target is ready yet")),
        };
        let out = self.net.forward_with(&x, targets, c.strength as f64)?;
        let t4 = Instant::now();
        let out = if c.preserve_color {
            color::preserve_color(&out, &x)?
        } else {
            out
        };
        let t5 = Instant::now();
        let image = image_io::to_image(&out.to_dtype(DType::F32)?)?;
        let t6 = Instant::now();
        let stylized = self.flicker.smooth(image, c.anti_flicker);
        let t7 = Instant::now();
        self.stages.add(|s| {
            s.frames += 1;
            s.resize += t1 - t0;
            s.anti_flicker += (t2 - t1) + (t7 - t6);
            s.convert += (t3 - t2) + (t6 - t5);
            s.network += t4 - t3;
            s.colour += t5 - t4;
        });
        Ok(Stylized {
            original: resized,
            stylized,
        })
    }
}

impl Stylizer for Engine {
    fn apply(&mut self, controls: &Controls) -> Result<()> {
        Engine::apply(self, controls)?;
        match self.take_error() {
            Some(e) => Err(anyhow!(e)),
            None => Ok(()),
        }
    }

    fn stylize(&mut self, frame: &Frame) -> Result<Stylized> {
        let out = Engine::stylize(self, &frame.image)?;
        // A style whose target failed (an unreadable dropped image, say) costs this one frame,
        // so that the window shows why; the previous style stays in use.
        match self.take_error() {
            Some(e) => Err(anyhow!(e)),
            None => Ok(out),
        }
    }

    fn describe_device(&self) -> String {
        self.device_name.clone()
    }

    fn preparing(&self) -> Option<String> {
        Engine::preparing(self)
    }
}

/// The anti-flicker dial, 0..1. MSG-Net redraws every frame from scratch, so sensor noise in a
/// still scene becomes shimmering brush strokes. Two remedies, both scaled by the dial:
/// - an input deadband: a pixel whose change since the last frame is below `24 * dial` (of 255)
///   keeps its previous value, so noise never reaches the network;
/// - an output moving average: each output pixel is `a * new + (1 - a) * previous` with
///   `a = 1 - 0.75 * dial`, which smooths what flicker remains at the cost of a short trail.
///
/// `stylecam stylize` applies the same to video files.
#[derive(Default)]
pub struct AntiFlicker {
    input: Option<RgbImage>,
    output: Option<Vec<f32>>,
}

impl AntiFlicker {
    pub fn deadband(&mut self, frame: &RgbImage, dial: f32) -> RgbImage {
        if dial <= 0.0 {
            self.input = None;
            return frame.clone();
        }
        let threshold = (24.0 * dial) as i16;
        let out = match &self.input {
            Some(prev) if prev.dimensions() == frame.dimensions() => {
                let mut out = frame.clone();
                for (o, p) in out.pixels_mut().zip(prev.pixels()) {
                    let moved = (0..3).any(|c| (o[c] as i16 - p[c] as i16).abs() > threshold);
                    if !moved {
                        *o = *p;
                    }
                }
                out
            }
            _ => frame.clone(),
        };
        self.input = Some(out.clone());
        out
    }

    pub fn smooth(&mut self, frame: RgbImage, dial: f32) -> RgbImage {
        if dial <= 0.0 {
            self.output = None;
            return frame;
        }
        let a = 1.0 - 0.75 * dial;
        let raw = frame.as_raw();
        let acc = match self.output.take() {
            Some(mut acc) if acc.len() == raw.len() => {
                for (s, &v) in acc.iter_mut().zip(raw) {
                    *s = a * v as f32 + (1.0 - a) * *s;
                }
                acc
            }
            _ => raw.iter().map(|&v| v as f32).collect(),
        };
        let px: Vec<u8> = acc
            .iter()
            .map(|v| v.round().clamp(0.0, 255.0) as u8)
            .collect();
        self.output = Some(acc);
        RgbImage::from_raw(frame.width(), frame.height(), px).unwrap_or(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadband_holds_small_changes_and_passes_large_ones() {
        let mut f = AntiFlicker::default();
        let a = RgbImage::from_pixel(2, 1, image::Rgb([100, 100, 100]));
        let mut b = a.clone();
        b.put_pixel(0, 0, image::Rgb([105, 100, 100]));
        b.put_pixel(1, 0, image::Rgb([200, 100, 100]));
        f.deadband(&a, 0.5);
        let out = f.deadband(&b, 0.5);
        assert_eq!(out.get_pixel(0, 0).0, [100, 100, 100]);
        assert_eq!(out.get_pixel(1, 0).0, [200, 100, 100]);
        // Off: untouched.
        assert_eq!(AntiFlicker::default().deadband(&b, 0.0), b);
    }

    #[test]
    fn smoothing_moves_part_way_and_off_is_exact() {
        let mut f = AntiFlicker::default();
        let black = RgbImage::new(1, 1);
        let white = RgbImage::from_pixel(1, 1, image::Rgb([255, 255, 255]));
        f.smooth(black.clone(), 1.0);
        let v = f.smooth(white.clone(), 1.0).get_pixel(0, 0)[0];
        assert_eq!(v, 64, "a = 0.25 of the way");
        assert_eq!(f.smooth(white.clone(), 0.0), white);
    }
}
