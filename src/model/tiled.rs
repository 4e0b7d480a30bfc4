//! Tiles for pictures too large to stylise whole (docs/MEMORY.md): the grid, each tile's input
//! region with its halo of context, and the blending of overlapping outputs into one picture,
//! one band of tile rows at a time.
//!
//! Independent of how a tile is stylised: the executor runs each tile's input with the instance
//! norm statistics of a thumbnail pass (thumbnail instance normalisation, Chen et al. 2022).

use image::RgbImage;

/// The network's stride-2 stages sample every 4th pixel of the input; a tile whose input starts
/// at a multiple of this sees the same grid as the whole picture.
pub const ALIGN: u32 = 4;

/// A rectangle `[x0, x1) x [y0, y1)` in picture pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl Rect {
    pub fn width(&self) -> u32 {
        self.x1 - self.x0
    }

    pub fn height(&self) -> u32 {
        self.y1 - self.y0
    }
}

/// One tile: the cell of the grid it stands for, the output region it contributes to (the cell
/// widened by the overlap on inner sides) and the input region it is computed from (the output
/// widened by the halo, its start aligned to [`ALIGN`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub cell: Rect,
    pub output: Rect,
    pub input: Rect,
}

/// The grid over a `width` x `height` picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePlan {
    pub width: u32,
    pub height: u32,
    /// Cell side (a multiple of [`ALIGN`]); edge cells are smaller.
    pub cell: u32,
    /// Context on each side of a tile's output, cropped after the pass.
    pub halo: u32,
    /// How far a tile's output reaches into each neighbouring cell; the two are blended over
    /// twice this width.
    pub overlap: u32,
}

impl TilePlan {
    /// A plan; `cell` is rounded up to a multiple of [`ALIGN`], and `overlap` kept below half
    /// a cell.
    pub fn new(width: u32, height: u32, cell: u32, halo: u32, overlap: u32) -> Self {
        let cell = cell.max(ALIGN).div_ceil(ALIGN) * ALIGN;
        Self {
            width,
            height,
            cell,
            halo,
            overlap: overlap.min(cell / 2 - 1),
        }
    }

    /// Columns and rows of cells.
    pub fn grid(&self) -> (u32, u32) {
        (
            self.width.div_ceil(self.cell),
            self.height.div_ceil(self.cell),
        )
    }

    /// The tiles of row `r` of the grid, left to right.
    pub fn row(&self, r: u32) -> Vec<Tile> {
        let (cols, _) = self.grid();
        (0..cols).map(|c| self.tile(c, r)).collect()
    }

    pub fn tile(&self, c: u32, r: u32) -> Tile {
        let cell = Rect {
            x0: c * self.cell,
            y0: r * self.cell,
            x1: ((c + 1) * self.cell).min(self.width),
            y1: ((r + 1) * self.cell).min(self.height),
        };
        let ov = self.overlap;
        let output = Rect {
            x0: cell.x0.saturating_sub(ov),
            y0: cell.y0.saturating_sub(ov),
            x1: (cell.x1 + ov).min(self.width),
            y1: (cell.y1 + ov).min(self.height),
        };
        let input = Rect {
            x0: output.x0.saturating_sub(self.halo) / ALIGN * ALIGN,
            y0: output.y0.saturating_sub(self.halo) / ALIGN * ALIGN,
            x1: (output.x1 + self.halo).min(self.width),
            y1: (output.y1 + self.halo).min(self.height),
        };
        Tile {
            cell,
            output,
            input,
        }
    }

    /// How many tiles in all.
    pub fn count(&self) -> u32 {
        let (c, r) = self.grid();
        c * r
    }

    /// The blending weight of `tile` at picture coordinate `x` (columns) or `y` (rows): 1 inside
    /// the cell away from its inner edges, ramping linearly to 0 across each inner edge's
    /// `2 * overlap` band; the weights of neighbouring tiles add up to exactly 1.
    fn ramp(&self, v: u32, start: u32, end: u32, total: u32) -> f32 {
        let ov = self.overlap as f32;
        if ov == 0.0 {
            return 1.0;
        }
        let v = v as f32 + 0.5;
        let mut w = 1.0f32;
        if start > 0 {
            w = w.min(((v - (start as f32 - ov)) / (2.0 * ov)).clamp(0.0, 1.0));
        }
        if end < total {
            w = w.min((((end as f32 + ov) - v) / (2.0 * ov)).clamp(0.0, 1.0));
        }
        w
    }
}

/// A tile's input: BGR planes in 0..255 (the network's layout) cut from the RGB picture.
pub fn tile_input(img: &RgbImage, r: Rect) -> Vec<f32> {
    let (w, h) = (r.width() as usize, r.height() as usize);
    let mut planes = vec![0f32; 3 * w * h];
    for y in 0..h {
        for x in 0..w {
            let p = img.get_pixel(r.x0 + x as u32, r.y0 + y as u32);
            let i = y * w + x;
            planes[i] = f32::from(p[2]);
            planes[w * h + i] = f32::from(p[1]);
            planes[2 * w * h + i] = f32::from(p[0]);
        }
    }
    planes
}

/// Blends tile outputs into the picture one band of tile rows at a time: only the rows that a
/// later tile row may still add to are kept in f32.
pub struct Blender {
    plan: TilePlan,
    out: RgbImage,
    /// Weighted sums (RGB) for rows `band_y0..`, `3 * width` per row.
    band: Vec<f32>,
    band_y0: u32,
}

impl Blender {
    pub fn new(plan: TilePlan) -> Self {
        Self {
            plan,
            out: RgbImage::new(plan.width, plan.height),
            band: Vec::new(),
            band_y0: 0,
        }
    }

    /// Adds a tile's output: (3, ih, iw) BGR planes over `tile.input`, of which the part over
    /// `tile.output` is blended in.
    pub fn add(&mut self, tile: &Tile, bgr: &[f32]) {
        let (iw, ih) = (tile.input.width() as usize, tile.input.height() as usize);
        debug_assert_eq!(bgr.len(), 3 * iw * ih);
        let width = self.plan.width as usize;
        let need_rows = (tile.output.y1 - self.band_y0) as usize;
        if self.band.len() < need_rows * 3 * width {
            self.band.resize(need_rows * 3 * width, 0.0);
        }
        let o = tile.output;
        for y in o.y0..o.y1 {
            let wy = self
                .plan
                .ramp(y, tile.cell.y0, tile.cell.y1, self.plan.height);
            let row = &mut self.band[(y - self.band_y0) as usize * 3 * width..][..3 * width];
            let sy = (y - tile.input.y0) as usize;
            for x in o.x0..o.x1 {
                let wgt = wy
                    * self
                        .plan
                        .ramp(x, tile.cell.x0, tile.cell.x1, self.plan.width);
                let i = sy * iw + (x - tile.input.x0) as usize;
                let (b, g, r) = (bgr[i], bgr[iw * ih + i], bgr[2 * iw * ih + i]);
                let px = &mut row[3 * x as usize..][..3];
                px[0] += wgt * r;
                px[1] += wgt * g;
                px[2] += wgt * b;
            }
        }
    }

    /// Rows above `y` are complete: round them into the picture and drop them from the band.
    pub fn flush_until(&mut self, y: u32) {
        let width = self.plan.width as usize;
        let y = y.min(self.plan.height);
        if y <= self.band_y0 {
            return;
        }
        let rows = (y - self.band_y0) as usize;
        let px = |v: f32| v.clamp(0.0, 255.0).round_ties_even() as u8;
        for r in 0..rows {
            let src = self.band.get(r * 3 * width..(r + 1) * 3 * width);
            let oy = self.band_y0 + r as u32;
            for x in 0..width {
                let v = src.map_or([0.0; 3], |s| [s[3 * x], s[3 * x + 1], s[3 * x + 2]]);
                self.out
                    .put_pixel(x as u32, oy, image::Rgb([px(v[0]), px(v[1]), px(v[2])]));
            }
        }
        let drop = (rows * 3 * width).min(self.band.len());
        self.band.drain(..drop);
        self.band_y0 = y;
    }

    /// After tile row `r`: the rows no later tile reaches are final.
    pub fn row_done(&mut self, r: u32) {
        let (_, rows) = self.plan.grid();
        let y = if r + 1 >= rows {
            self.plan.height
        } else {
            self.plan.tile(0, r + 1).output.y0
        };
        self.flush_until(y);
    }

    /// The finished picture (call after the last row).
    pub fn finish(mut self) -> RgbImage {
        self.flush_until(self.plan.height);
        self.out
    }

    /// f32 values held for blending now.
    pub fn band_len(&self) -> usize {
        self.band.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 7 % 256) as u8,
                (y * 13 % 256) as u8,
                ((x ^ y) % 256) as u8,
            ])
        })
    }

    #[test]
    fn tiles_cover_the_picture_with_aligned_inputs() {
        let plan = TilePlan::new(1003, 517, 250, 64, 16);
        assert_eq!(plan.cell, 252);
        assert_eq!(plan.grid(), (4, 3));
        let mut covered = vec![0u8; 1003 * 517];
        for r in 0..3 {
            for t in plan.row(r) {
                assert_eq!(t.input.x0 % ALIGN, 0);
                assert_eq!(t.input.y0 % ALIGN, 0);
                assert!(t.input.x0 <= t.output.x0 && t.output.x1 <= t.input.x1);
                assert!(t.output.x0 <= t.cell.x0 && t.cell.x1 <= t.output.x1);
                for y in t.cell.y0..t.cell.y1 {
                    for x in t.cell.x0..t.cell.x1 {
                        covered[(y * 1003 + x) as usize] += 1;
                    }
                }
            }
        }
        assert!(covered.iter().all(|&c| c == 1));
    }

    #[test]
    fn weights_of_neighbours_add_up_to_one() {
        let plan = TilePlan::new(600, 400, 200, 32, 20);
        for x in 0..600 {
            let s: f32 = (0..3)
                .map(|c| {
                    let t = plan.tile(c, 0);
                    if (t.output.x0..t.output.x1).contains(&x) {
                        plan.ramp(x, t.cell.x0, t.cell.x1, 600)
                    } else {
                        0.0
                    }
                })
                .sum();
            assert!((s - 1.0).abs() < 1e-6, "x {x}: {s}");
        }
    }

    /// With tiles that return their input unchanged, blending gives back the picture exactly,
    /// and the band holds at most two rows of tiles.
    #[test]
    fn identity_tiles_blend_back_to_the_picture() {
        let img = picture(333, 211);
        let plan = TilePlan::new(333, 211, 64, 20, 8);
        let mut blend = Blender::new(plan);
        let (_, rows) = plan.grid();
        let mut most = 0;
        for r in 0..rows {
            for t in plan.row(r) {
                blend.add(&t, &tile_input(&img, t.input));
                most = most.max(blend.band_len());
            }
            blend.row_done(r);
        }
        assert!(most <= 3 * 333 * (64 + 2 * 8 + 8), "band of {most} values");
        assert_eq!(blend.finish(), img);
    }
}
