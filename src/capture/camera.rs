//! Webcams through nokhwa (V4L2 on Linux, AVFoundation on macOS, Media Foundation on Windows).
//!
//! nokhwa's `Camera` is not `Send`, its reads can block indefinitely when a device stalls, and a
//! few of its driver paths can panic, so each opened camera lives on its own thread
//! ("stylecam-camera") that opens it, reads and decodes frames (MJPEG/YUYV/NV12 -> RGB) and hands
//! them over through a newest-wins channel. [`CameraSource`] is the `Send` handle on that thread.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use image::RgbImage;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType,
};
use nokhwa::{Camera, FormatDecoder};

use super::{
    panic_message, CaptureError, Frame, FrameSource, SourceConfig, DEFAULT_FPS, DEFAULT_SIZE,
};
use crate::latest;

/// How long opening may take (on macOS the first open may wait for the permission prompt).
const OPEN_TIMEOUT: Duration = Duration::from_secs(20);
/// A camera that delivers nothing for this long is lost.
const FRAME_TIMEOUT: Duration = Duration::from_secs(3);
/// Consecutive failed reads or decodes after which the camera is lost.
const MAX_FAILURES: u32 = 5;
/// How long dropping a `CameraSource` waits for its thread.
const JOIN_TIMEOUT: Duration = Duration::from_millis(500);

/// A camera as the picker lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraInfo {
    /// What `camera:N` takes.
    pub index: u32,
    pub name: String,
}

/// The cameras the system offers. An empty list is not an error (no camera connected).
/// Does not ask for camera permission (on macOS the list may be empty until it is granted,
/// which opening a camera asks for).
pub fn list_cameras() -> Result<Vec<CameraInfo>, CaptureError> {
    let found = catch_unwind(|| nokhwa::query(ApiBackend::Auto)).map_err(|p| {
        CaptureError::ListCameras {
            reason: format!("the camera driver panicked: {}", panic_message(&*p)),
        }
    })?;
    let found = found.map_err(|e| CaptureError::ListCameras {
        reason: e.to_string(),
    })?;
    Ok(found
        .into_iter()
        .filter_map(|info| {
            let index = info.index().as_index().ok()?;
            Some(CameraInfo {
                index,
                name: info.human_name(),
            })
        })
        .collect())
}

type Shot = Result<(RgbImage, Instant), String>;

/// An open camera: the handle on its reader thread.
pub struct CameraSource {
    index: u32,
    name: String,
    description: String,
    frames: latest::Receiver<Shot>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    seq: u64,
}

impl CameraSource {
    /// Opens camera `index` at the size and rate closest to `config` (default 640x480 at 30
    /// fps) and starts streaming.
    pub fn open(index: u32, config: &SourceConfig) -> Result<Self, CaptureError> {
        ensure_permission(index)?;
        let name = match list_cameras() {
            Ok(list) if list.is_empty() => {
                return Err(CaptureError::NoCamera {
                    index,
                    reason: "the system lists no cameras".into(),
                })
            }
            Ok(list) => match list.iter().find(|c| c.index == index) {
                Some(c) => c.name.clone(),
                None => {
                    let names: Vec<String> = list
                        .iter()
                        .map(|c| format!("{} ({})", c.index, c.name))
                        .collect();
                    return Err(CaptureError::NoCamera {
                        index,
                        reason: format!("the cameras are {}", names.join(", ")),
                    });
                }
            },
            // Listing failed: try opening anyway, its error says more.
            Err(e) => {
                tracing::debug!("{e}");
                format!("camera {index}")
            }
        };
        let want = (
            config.resolution.unwrap_or(DEFAULT_SIZE),
            config.fps.unwrap_or(DEFAULT_FPS),
        );
        let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
        let (frames_tx, frames) = latest::channel(1);
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread_name = name.clone();
        let handle = std::thread::Builder::new()
            .name("stylecam-camera".into())
            .spawn(move || {
                camera_thread(index, thread_name, want, ready_tx, frames_tx, thread_stop)
            })
            .map_err(|e| CaptureError::CameraOpen {
                index,
                name: name.clone(),
                reason: format!("cannot start its thread: {e}"),
            })?;
        let mut source = Self {
            index,
            name: name.clone(),
            description: String::new(),
            frames,
            stop,
            handle: Some(handle),
            seq: 0,
        };
        match ready_rx.recv_timeout(OPEN_TIMEOUT) {
            Ok(Ok(description)) => {
                source.description = description;
                tracing::info!("opened {}", source.description);
                Ok(source)
            }
            // Dropping `source` stops and joins the thread.
            Ok(Err(e)) => Err(e),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(CaptureError::CameraOpen {
                index,
                name,
                reason: format!("it did not open within {} s", OPEN_TIMEOUT.as_secs()),
            }),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                Err(CaptureError::CameraOpen {
                    index,
                    name,
                    reason: "its thread ended while opening it".into(),
                })
            }
        }
    }
}

impl FrameSource for CameraSource {
    fn describe(&self) -> String {
        self.description.clone()
    }

    fn next_frame(&mut self) -> Result<Frame, CaptureError> {
        let lost = |reason: String| CaptureError::CameraLost {
            index: self.index,
            name: self.name.clone(),
            reason,
        };
        match self.frames.recv_timeout(FRAME_TIMEOUT) {
            Ok(Ok((image, captured_at))) => {
                let seq = self.seq;
                self.seq += 1;
                Ok(Frame {
                    image,
                    seq,
                    captured_at,
                })
            }
            Ok(Err(reason)) => Err(lost(reason)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                Err(lost(format!("no frame for {} s", FRAME_TIMEOUT.as_secs())))
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                Err(lost("its reader thread ended".into()))
            }
        }
    }
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(handle) = self.handle.take() {
            let deadline = Instant::now() + JOIN_TIMEOUT;
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if handle.is_finished() {
                handle.join().ok();
            } else {
                // Stuck in the driver: leave it; it ends when the read returns.
                tracing::warn!(
                    "camera {} ({}) did not stop within {} ms; leaving its thread behind",
                    self.index,
                    self.name,
                    JOIN_TIMEOUT.as_millis()
                );
            }
        }
    }
}

/// On macOS, asks for camera access if it has not been granted (elsewhere there is nothing to ask).
fn ensure_permission(index: u32) -> Result<(), CaptureError> {
    if nokhwa::nokhwa_check() {
        return Ok(());
    }
    let (tx, rx) = crossbeam_channel::bounded(1);
    nokhwa::nokhwa_initialize(move |granted| {
        tx.try_send(granted).ok();
    });
    match rx.recv_timeout(OPEN_TIMEOUT) {
        Ok(true) => Ok(()),
        Ok(false) => Err(CaptureError::CameraOpen {
            index,
            name: format!("camera {index}"),
            reason: "camera access was denied".into(),
        }),
        Err(_) => Err(CaptureError::CameraOpen {
            index,
            name: format!("camera {index}"),
            reason: "camera access was not granted in time".into(),
        }),
    }
}

/// The reader thread: opens the camera, reports how it went on `ready`, then reads until `stop`.
fn camera_thread(
    index: u32,
    name: String,
    want: ((u32, u32), u32),
    ready: crossbeam_channel::Sender<Result<String, CaptureError>>,
    frames: latest::Sender<Shot>,
    stop: Arc<AtomicBool>,
) {
    let open_err = |reason: String| CaptureError::CameraOpen {
        index,
        name: name.clone(),
        reason,
    };
    let mut camera = match catch_unwind(|| open_camera(index, want)) {
        Ok(Ok(camera)) => camera,
        Ok(Err(e)) => {
            ready.send(Err(classify_open_error(index, &name, e))).ok();
            return;
        }
        Err(p) => {
            ready
                .send(Err(open_err(format!(
                    "the camera driver panicked: {}",
                    panic_message(&*p)
                ))))
                .ok();
            return;
        }
    };
    let format = camera.camera_format();
    let description = format!(
        "camera {index} ({name}): {}x{} {} at {} fps",
        format.width(),
        format.height(),
        format.format(),
        format.frame_rate()
    );
    if ready.send(Ok(description)).is_err() {
        return;
    }
    let mut failures = 0;
    while !stop.load(Ordering::Acquire) {
        let shot = catch_unwind(AssertUnwindSafe(|| {
            let buffer = camera.frame().map_err(|e| e.to_string())?;
            let at = Instant::now();
            let image = buffer.decode_image::<RgbFormat>().map_err(|e| {
                format!(
                    "cannot decode a {} frame: {e}",
                    buffer.source_frame_format()
                )
            })?;
            Ok::<_, String>((image, at))
        }))
        .unwrap_or_else(|p| {
            Err(format!(
                "the camera driver panicked: {}",
                panic_message(&*p)
            ))
        });
        match shot {
            Ok(shot) => {
                failures = 0;
                tracing::trace!("camera {index}: frame");
                if frames.send(Ok(shot)).is_err() {
                    return;
                }
            }
            Err(reason) => {
                failures += 1;
                tracing::debug!("camera {index}: {reason} ({failures} in a row)");
                if failures >= MAX_FAILURES {
                    frames.send(Err(reason)).ok();
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Opens the camera in its default format, then switches to the best match for `want` when it
/// can (nokhwa's own "closest" request fails when the exact size is missing).
fn open_camera(index: u32, want: ((u32, u32), u32)) -> Result<Camera, nokhwa::NokhwaError> {
    let any = RequestedFormat::new::<RgbFormat>(RequestedFormatType::None);
    let mut camera = Camera::new(CameraIndex::Index(index), any)?;
    match camera.compatible_camera_formats() {
        Ok(formats) => {
            if let Some(best) = choose_format(&formats, want.0, want.1) {
                if best != camera.camera_format() {
                    let exact = RequestedFormat::with_formats(
                        RequestedFormatType::Exact(best),
                        RgbFormat::FORMATS,
                    );
                    if let Err(e) = camera.set_camera_requset(exact) {
                        tracing::warn!(
                            "camera {index}: cannot switch to {best}: {e}; keeping {}",
                            camera.camera_format()
                        );
                    }
                }
            }
        }
        Err(e) => tracing::debug!("camera {index}: cannot list its formats: {e}"),
    }
    camera.open_stream()?;
    Ok(camera)
}

/// Tells "there is no such device" from "the device would not open".
fn classify_open_error(index: u32, name: &str, e: nokhwa::NokhwaError) -> CaptureError {
    let reason = e.to_string();
    let lower = reason.to_lowercase();
    if lower.contains("no such file")
        || lower.contains("no such device")
        || lower.contains("not found")
    {
        CaptureError::NoCamera { index, reason }
    } else {
        CaptureError::CameraOpen {
            index,
            name: name.to_string(),
            reason,
        }
    }
}

/// The decodable format closest to `size`, then the one that reaches `fps` (or comes nearest),
/// then YUYV before MJPEG (no compression artefacts, cheaper to decode) before the rest.
pub(crate) fn choose_format(
    formats: &[CameraFormat],
    size: (u32, u32),
    fps: u32,
) -> Option<CameraFormat> {
    formats
        .iter()
        .filter(|f| RgbFormat::FORMATS.contains(&f.format()))
        .min_by_key(|f| {
            let dw = f.width() as i64 - size.0 as i64;
            let dh = f.height() as i64 - size.1 as i64;
            let too_slow = f.frame_rate() < fps;
            let fps_gap = (f.frame_rate() as i64 - fps as i64).abs();
            let codec = match f.format() {
                FrameFormat::YUYV => 0,
                FrameFormat::MJPEG => 1,
                _ => 2,
            };
            (dw * dw + dh * dh, too_slow, fps_gap, codec)
        })
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_choice_prefers_size_then_rate_then_yuyv() {
        let f = |w, h, fmt, fps| CameraFormat::new_from(w, h, fmt, fps);
        let offered = [
            f(1280, 720, FrameFormat::MJPEG, 30),
            f(1280, 720, FrameFormat::YUYV, 10),
            f(640, 480, FrameFormat::YUYV, 30),
            f(640, 480, FrameFormat::MJPEG, 30),
            f(640, 480, FrameFormat::GRAY, 60),
            f(320, 240, FrameFormat::YUYV, 60),
        ];
        assert_eq!(choose_format(&offered, (640, 480), 30), Some(offered[2]));
        // 720p: YUYV is too slow there, MJPEG reaches 30 fps.
        assert_eq!(choose_format(&offered, (1280, 720), 30), Some(offered[0]));
        // No exact size: the nearest.
        assert_eq!(choose_format(&offered, (300, 200), 30), Some(offered[5]));
        assert_eq!(choose_format(&[], (640, 480), 30), None);
    }
}
