//! The photo-booth countdown: 3, 2, 1, then the snapshot is due; and a big seven-segment
//! number drawn over the video so the people in front of the camera can see it.

use std::time::{Duration, Instant};

use image::{Rgb, RgbImage};

/// A countdown of `seconds` whole seconds from `started`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Countdown {
    pub started: Instant,
    pub seconds: u32,
}

impl Countdown {
    pub fn new(started: Instant, seconds: u32) -> Self {
        Self { started, seconds }
    }

    /// The number to show at `now`: `seconds` during the first second, then one less each
    /// second down to 1; `None` once the countdown is over (then [`Countdown::due`]).
    pub fn remaining(&self, now: Instant) -> Option<u32> {
        let elapsed = now.saturating_duration_since(self.started);
        let whole = u32::try_from(elapsed.as_secs()).unwrap_or(u32::MAX);
        self.seconds.checked_sub(whole).filter(|&left| left > 0)
    }

    /// Whether the snapshot should be taken at `now`.
    pub fn due(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.started) >= Duration::from_secs(self.seconds.into())
    }
}

/// Segments a..g of a seven-segment digit: top, upper right, lower right, bottom, lower left,
/// upper left, middle; bit 0 is a.
const SEGMENTS: [u8; 10] = [
    0b011_1111, // 0
    0b000_0110, // 1
    0b101_1011, // 2
    0b100_1111, // 3
    0b110_0110, // 4
    0b110_1101, // 5
    0b111_1101, // 6
    0b000_0111, // 7
    0b111_1111, // 8
    0b110_1111, // 9
];

const FILL: Rgb<u8> = Rgb([255, 255, 255]);
const OUTLINE: Rgb<u8> = Rgb([0, 0, 0]);

/// Draws `n` in big white seven-segment digits with a black outline, centred on `img`, half
/// its height (narrower for numbers that would not fit). Tiny images get what fits; nothing is
/// drawn outside the image.
pub fn draw_count(img: &mut RgbImage, n: u32) {
    let digits: Vec<usize> = n
        .to_string()
        .bytes()
        .map(|b| usize::from(b - b'0'))
        .collect();
    let count = digits.len() as u32;
    let (w, h) = img.dimensions();
    // A digit is 0.55 high wide with a 0.2 high gap; fit the row into 80% of the width.
    let by_width = (w as f32 * 0.8) / (count as f32 * 0.75 - 0.2);
    let dh = ((h as f32 * 0.5).min(by_width) as u32).max(5);
    let dw = (dh as f32 * 0.55) as u32;
    let gap = (dh as f32 * 0.2) as u32;
    let t = (dh / 8).max(1);
    let o = (t / 3).max(1);
    let row_w = count * dw + (count - 1) * gap;
    let x0 = i64::from(w / 2) - i64::from(row_w / 2);
    let y0 = i64::from(h / 2) - i64::from(dh / 2);

    let rects: Vec<Rect> = digits
        .iter()
        .enumerate()
        .flat_map(|(i, &d)| {
            let x = x0 + i64::from(i as u32 * (dw + gap));
            segment_rects(x, y0, dw, dh, t, SEGMENTS[d])
        })
        .collect();
    for r in &rects {
        fill(img, r.grow(o), OUTLINE);
    }
    for r in &rects {
        fill(img, *r, FILL);
    }
}

#[derive(Debug, Clone, Copy)]
struct Rect {
    x: i64,
    y: i64,
    w: i64,
    h: i64,
}

impl Rect {
    fn grow(self, by: u32) -> Rect {
        let by = i64::from(by);
        Rect {
            x: self.x - by,
            y: self.y - by,
            w: self.w + 2 * by,
            h: self.h + 2 * by,
        }
    }
}

/// The lit segments of one digit whose box is `w` x `h` at (`x`, `y`), strokes `t` thick.
fn segment_rects(x: i64, y: i64, w: u32, h: u32, t: u32, lit: u8) -> Vec<Rect> {
    let (w, h, t) = (i64::from(w), i64::from(h), i64::from(t));
    let mid = y + h / 2 - t / 2;
    let upper = mid - y + t;
    let lower = y + h - mid;
    let all = [
        Rect { x, y, w, h: t }, // a
        Rect {
            x: x + w - t,
            y,
            w: t,
            h: upper,
        }, // b
        Rect {
            x: x + w - t,
            y: mid,
            w: t,
            h: lower,
        }, // c
        Rect {
            x,
            y: y + h - t,
            w,
            h: t,
        }, // d
        Rect {
            x,
            y: mid,
            w: t,
            h: lower,
        }, // e
        Rect {
            x,
            y,
            w: t,
            h: upper,
        }, // f
        Rect { x, y: mid, w, h: t }, // g
    ];
    all.into_iter()
        .enumerate()
        .filter(|(i, _)| lit & (1 << i) != 0)
        .map(|(_, r)| r)
        .collect()
}

/// Fills `r`, clipped to the image.
fn fill(img: &mut RgbImage, r: Rect, colour: Rgb<u8>) {
    let (iw, ih) = (i64::from(img.width()), i64::from(img.height()));
    let (x1, y1) = (r.x.clamp(0, iw), r.y.clamp(0, ih));
    let (x2, y2) = ((r.x + r.w).clamp(0, iw), (r.y + r.h).clamp(0, ih));
    for y in y1..y2 {
        for x in x1..x2 {
            // In range: clamped to the image's size above.
            img.put_pixel(x as u32, y as u32, colour);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_down_then_is_due() {
        let t0 = Instant::now();
        let c = Countdown::new(t0, 3);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let seen: Vec<Option<u32>> = [0, 999, 1000, 1999, 2000, 2999, 3000, 9000]
            .into_iter()
            .map(|ms| c.remaining(at(ms)))
            .collect();
        assert_eq!(
            seen,
            [
                Some(3),
                Some(3),
                Some(2),
                Some(2),
                Some(1),
                Some(1),
                None,
                None
            ]
        );
        assert!(!c.due(at(2999)));
        assert!(c.due(at(3000)));
        // A clock read before the start shows the full count.
        if let Some(before) = t0.checked_sub(Duration::from_millis(5)) {
            assert_eq!(c.remaining(before), Some(3));
            assert!(!c.due(before));
        }
        // Zero seconds: due at once.
        assert!(Countdown::new(t0, 0).due(t0));
        assert_eq!(Countdown::new(t0, 0).remaining(t0), None);
    }

    #[test]
    fn every_digit_lights_the_centre_and_spares_the_corners() {
        let grey = Rgb([100, 100, 100]);
        for n in [0, 1, 2, 3, 7, 8, 10, 123_456_789] {
            let mut img = RgbImage::from_pixel(160, 120, grey);
            draw_count(&mut img, n);
            let centre_changed = (40..120)
                .flat_map(|x| (30..90).map(move |y| (x, y)))
                .filter(|&(x, y)| *img.get_pixel(x, y) != grey)
                .count();
            assert!(centre_changed > 100, "{n}: {centre_changed} pixels");
            for (x, y) in [(0, 0), (159, 0), (0, 119), (159, 119)] {
                assert_eq!(*img.get_pixel(x, y), grey, "{n}");
            }
        }
    }

    #[test]
    fn tiny_and_empty_images_do_not_panic() {
        for (w, h) in [(0, 0), (1, 1), (3, 2), (2, 50)] {
            let mut img = RgbImage::new(w, h);
            draw_count(&mut img, 3);
        }
    }
}
