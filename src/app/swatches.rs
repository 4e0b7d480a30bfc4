//! The swatch thread ("stylecam-swatches"): reads style images and makes the panel's small
//! square swatches, so the window opens at once and a dropped image never stalls it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel as cb;
use image::RgbImage;

use super::Swatch;
use crate::pipeline::join_until;

/// Swatch size in pixels.
pub const SWATCH: u32 = 64;
/// How long dropping the thread waits for the image it is reading.
const DROP_JOIN: Duration = Duration::from_millis(500);

enum Command {
    Load { index: usize, source: Swatch },
    Stop,
}

/// A swatch for the style at `index`, or why there is none.
pub type SwatchReply = (usize, Result<RgbImage, String>);

pub struct SwatchWorker {
    commands: cb::Sender<Command>,
    replies: cb::Receiver<SwatchReply>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl SwatchWorker {
    pub fn spawn() -> std::io::Result<Self> {
        let (commands, command_rx) = cb::unbounded::<Command>();
        let (reply_tx, replies) = cb::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let handle = std::thread::Builder::new()
            .name("stylecam-swatches".into())
            .spawn(move || {
                for command in command_rx {
                    let (index, source) = match command {
                        Command::Load { index, source } => (index, source),
                        Command::Stop => return,
                    };
                    if stopped.load(Ordering::Acquire) {
                        return;
                    }
                    let img = match source {
                        Swatch::File(p) => crate::image_io::load_rgb(&p).map_err(|e| e.to_string()),
                        Swatch::Image(img) => Ok(img),
                        Swatch::None => continue,
                    };
                    if reply_tx.send((index, img.map(|i| swatch(&i)))).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Self {
            commands,
            replies,
            stop,
            handle: Some(handle),
        })
    }

    /// Asks for the swatch of the style at `index`. Never blocks.
    pub fn load(&self, index: usize, source: Swatch) {
        self.commands.send(Command::Load { index, source }).ok();
    }

    pub fn try_reply(&self) -> Option<SwatchReply> {
        self.replies.try_recv().ok()
    }
}

impl Drop for SwatchWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.commands.send(Command::Stop).ok();
        join_until(
            &mut self.handle,
            Instant::now() + DROP_JOIN,
            "stylecam-swatches",
        );
    }
}

/// A centred square crop, scaled to the swatch size: the style image itself, small.
pub fn swatch(img: &RgbImage) -> RgbImage {
    let (w, h) = img.dimensions();
    let side = w.min(h).max(1);
    let crop = image::imageops::crop_imm(img, (w - side) / 2, (h - side) / 2, side, side);
    image::imageops::thumbnail(&crop.to_image(), SWATCH, SWATCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swatches_come_back_by_index_and_unreadable_files_say_why() {
        let tmp = tempfile::tempdir().unwrap();
        let good = tmp.path().join("good.png");
        RgbImage::from_pixel(200, 100, image::Rgb([200, 10, 10]))
            .save(&good)
            .unwrap();
        let bad = tmp.path().join("bad.png");
        std::fs::write(&bad, b"not a png").unwrap();
        let w = SwatchWorker::spawn().unwrap();
        w.load(0, Swatch::None);
        w.load(1, Swatch::File(good));
        w.load(2, Swatch::File(bad.clone()));
        let mut got = Vec::new();
        let end = Instant::now() + Duration::from_secs(20);
        while got.len() < 2 {
            assert!(Instant::now() < end, "{got:?}");
            if let Some((i, r)) = w.try_reply() {
                got.push((i, r.map(|img| (img.dimensions(), img.get_pixel(5, 5).0))));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(got[0], (1, Ok(((SWATCH, SWATCH), [200, 10, 10]))));
        assert_eq!(got[1].0, 2);
        let err = got[1].1.clone().unwrap_err();
        assert!(err.contains(&bad.display().to_string()), "{err}");
    }
}
