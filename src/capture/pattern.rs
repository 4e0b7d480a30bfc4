//! A moving, colourful test pattern: colour bars, a scrolling rainbow band, a bouncing ball and a
//! frame counter. Each frame depends only on its number, so tests can recompute it.

use std::time::Instant;

use image::{Rgb, RgbImage};

use super::{CaptureError, Frame, FrameSource, Pacer};

/// 75 % colour bars, as on a broadcast test card.
const BARS: [[u8; 3]; 7] = [
    [191, 191, 191],
    [191, 191, 0],
    [0, 191, 191],
    [0, 191, 0],
    [191, 0, 191],
    [191, 0, 0],
    [0, 0, 191],
];

/// 3x5 digits, one row per `u8` (bit 2 is the left column).
const DIGITS: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b010, 0b010, 0b010],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
];

pub struct TestPattern {
    width: u32,
    height: u32,
    fps: u32,
    seq: u64,
    pacer: Pacer,
}

impl TestPattern {
    /// A `width`x`height` pattern (each side clamped to 16..=4096) produced at `fps`.
    pub fn new(width: u32, height: u32, fps: u32) -> Self {
        let fps = fps.max(1);
        Self {
            width: width.clamp(16, 4096),
            height: height.clamp(16, 4096),
            fps,
            seq: 0,
            pacer: Pacer::new(fps),
        }
    }

    /// Frame number `n`.
    pub fn render(&self, n: u64) -> RgbImage {
        let (w, h) = (self.width, self.height);
        let mut img = RgbImage::new(w, h);
        let band = h * 2 / 3;
        // One row of bars and one of the scrolling rainbow, then copied down.
        let bars: Vec<u8> = (0..w)
            .flat_map(|x| BARS[(x as usize * BARS.len()) / w as usize])
            .collect();
        let shift = (n % 240) as f32 / 240.0;
        let rainbow: Vec<u8> = (0..w)
            .flat_map(|x| hue((x as f32 / w as f32 + shift).fract()))
            .collect();
        let row_bytes = w as usize * 3;
        for (y, row) in img.chunks_exact_mut(row_bytes).enumerate() {
            row.copy_from_slice(if (y as u32) < band { &bars } else { &rainbow });
        }
        // A ball bouncing on a triangle wave in both directions, at different periods.
        let r = (h / 8).max(3) as i64;
        let tri = |n: u64, period: u64, span: i64| {
            let p = (n % (2 * period)) as i64;
            let p = if p < period as i64 {
                p
            } else {
                2 * period as i64 - p
            };
            r + p * (span - 2 * r).max(0) / period as i64
        };
        let (cx, cy) = (tri(n, 90, w as i64), tri(n, 64, h as i64));
        for y in (cy - r).max(0)..(cy + r + 1).min(h as i64) {
            for x in (cx - r).max(0)..(cx + r + 1).min(w as i64) {
                let d2 = (x - cx).pow(2) + (y - cy).pow(2);
                if d2 <= r * r {
                    let edge = d2 >= (r - (r / 6).max(1)).pow(2);
                    let c = if edge { [16, 16, 16] } else { [255, 255, 255] };
                    img.put_pixel(x as u32, y as u32, Rgb(c));
                }
            }
        }
        self.draw_counter(&mut img, n);
        img
    }

    /// The frame number in white digits on black, top left.
    fn draw_counter(&self, img: &mut RgbImage, n: u64) {
        let s = (self.height / 96).max(1);
        let text = n.to_string();
        let (bw, bh) = ((text.len() as u32 * 4 + 1) * s, 7 * s);
        for y in 0..bh.min(self.height) {
            for x in 0..bw.min(self.width) {
                img.put_pixel(x, y, Rgb([0, 0, 0]));
            }
        }
        for (i, ch) in text.bytes().enumerate() {
            let glyph = DIGITS[(ch - b'0') as usize];
            for (gy, bits) in glyph.iter().enumerate() {
                for gx in 0..3u32 {
                    if bits & (0b100 >> gx) == 0 {
                        continue;
                    }
                    let (x0, y0) = ((1 + i as u32 * 4 + gx) * s, (1 + gy as u32) * s);
                    for y in y0..(y0 + s).min(self.height) {
                        for x in x0..(x0 + s).min(self.width) {
                            img.put_pixel(x, y, Rgb([255, 255, 255]));
                        }
                    }
                }
            }
        }
    }
}

/// A fully saturated colour at hue `h` in 0..1.
fn hue(h: f32) -> [u8; 3] {
    let x = h * 6.0;
    let f = |k: f32| {
        let v = (((x + k) % 6.0) - 3.0).abs() - 1.0;
        (v.clamp(0.0, 1.0) * 255.0).round() as u8
    };
    [f(0.0), f(4.0), f(2.0)]
}

impl FrameSource for TestPattern {
    fn describe(&self) -> String {
        format!(
            "test pattern {}x{} at {} fps",
            self.width, self.height, self.fps
        )
    }

    fn next_frame(&mut self) -> Result<Frame, CaptureError> {
        let captured_at: Instant = self.pacer.wait();
        let seq = self.seq;
        self.seq += 1;
        Ok(Frame {
            image: self.render(seq),
            seq,
            captured_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_move_and_are_reproducible() {
        let mut p = TestPattern::new(64, 48, 240);
        let a = p.next_frame().unwrap();
        let b = p.next_frame().unwrap();
        assert_eq!((a.seq, b.seq), (0, 1));
        assert_eq!(a.image.dimensions(), (64, 48));
        assert_ne!(a.image, b.image);
        assert_eq!(p.render(1), b.image);
        assert_eq!(hue(0.0), [255, 0, 0]);
        assert_eq!(hue(1.0 / 3.0), [0, 255, 0]);
    }
}
