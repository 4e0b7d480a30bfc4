//! The one [`Engine`] of a server, shared by the photo queue and the live stream.
//!
//! The engine keeps its controls and targets between calls, so each user sets the controls it
//! needs and waits for their targets before stylising ([`Engine::apply_and_wait`]); targets
//! already computed for either user stay ready in the engine. Holding the lock for a whole
//! picture is what the hardware does anyway: two inferences at once would share the same cores.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Result;
use image::RgbImage;

use crate::controls::Controls;
use crate::engine::Engine;
use crate::pipeline::Stylized;
use crate::style::Style;

#[derive(Clone)]
pub struct SharedEngine {
    inner: Arc<Mutex<Engine>>,
    device: String,
    target_timeout: Duration,
}

impl SharedEngine {
    /// `target_timeout`: how long a picture may wait for a style target to be computed.
    pub fn new(engine: Engine, target_timeout: Duration) -> Self {
        Self {
            device: engine.device_name().to_owned(),
            inner: Arc::new(Mutex::new(engine)),
            target_timeout,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Engine> {
        // A panic while stylising is caught by the caller; the engine itself stays usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stylises `img` with exactly `controls` (waiting for the engine while the other user has
    /// it); returns the result and the time the network took.
    pub fn stylize(&self, img: &RgbImage, controls: &Controls) -> Result<(Stylized, Duration)> {
        let mut engine = self.lock();
        engine.apply_and_wait(controls, self.target_timeout)?;
        let started = Instant::now();
        let out = engine.stylize(img)?;
        Ok((out, started.elapsed()))
    }

    /// Adds a style to the engine's bank (an uploaded picture).
    pub fn add_style(&self, style: Style) {
        self.lock().add_style(style);
    }

    /// Where the network runs, for `/healthz`.
    pub fn device(&self) -> &str {
        &self.device
    }
}
