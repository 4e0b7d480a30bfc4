//! How much memory stylising one photo takes, and the budget it must fit: a photo that does not
//! fit whole is stylised in tiles (docs/MEMORY.md), each with the instance norm statistics of a
//! thumbnail of the whole picture; one that does not fit even so is refused before any work,
//! with the `--content-size` that would fit.

use std::path::Path;

use anyhow::{bail, Result};

use crate::image_io::MAX_PIXELS;
use crate::model::tiled::TilePlan;
use crate::model::MsgNet;

/// Share of the memory available at start that the default budget takes.
const AVAILABLE_SHARE: f64 = 0.75;

/// Peak memory of one whole forward pass, in bytes per input pixel, per channel of the widest
/// full-resolution layer (`u2`, the last upsampling block's width, times its expansion of 4),
/// measured on the CPU executor (docs/MEMORY.md: 15.2, rounded up).
const BYTES_PER_PIXEL_PER_CHANNEL: f64 = 15.5;
/// Memory that does not grow with the picture: the binary, weights, style targets, the
/// convolutions' scratch (about 140 MB measured at 0.1 megapixels).
const BASE_BYTES: f64 = 150e6;

/// Context on each side of a tile, cropped after its pass.
pub const HALO: u32 = 64;
/// How far a tile's output reaches into its neighbours' cells (blended over twice this).
pub const OVERLAP: u32 = 32;
/// The smallest tile cell tried, and the largest.
const MIN_CELL: u32 = 128;
const MAX_CELL: u32 = 4096;

/// How one photo is stylised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pass {
    /// In one pass (it fits the budget).
    Whole,
    /// In tiles, after a thumbnail pass.
    Tiled(Tiling),
}

/// A tiled pass: the tiles, the thumbnail's size and the memory it should take at its peak.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tiling {
    pub plan: TilePlan,
    pub thumbnail: (u32, u32),
    pub need: f64,
}

/// The memory budget for one photo.
pub struct Budget {
    bytes: Option<u64>,
    /// Where the number comes from, for messages.
    from: &'static str,
}

impl Budget {
    /// `--max-memory`, else [`AVAILABLE_SHARE`] of the memory available now (none where that
    /// cannot be read).
    pub fn new(max_memory: Option<u64>) -> Self {
        match max_memory {
            Some(b) => Self {
                bytes: Some(b),
                from: "--max-memory",
            },
            None => Self {
                bytes: available_memory().map(|a| (a as f64 * AVAILABLE_SHARE) as u64),
                from: "three quarters of the memory available; --max-memory sets it",
            },
        }
    }

    /// How to stylise a `w`x`h` working picture: whole if it fits the budget, else in tiles.
    /// Refuses, naming `input`, the size, the need and the limit, a picture over the pixel cap,
    /// or one that does not fit even in tiles (or cannot be tiled). `masked`: a full-size mask
    /// is kept too. `cell`: tiles of this size whatever the budget (a hook for tests and
    /// benchmarks).
    pub fn plan(
        &self,
        input: &Path,
        (w, h): (u32, u32),
        net: &MsgNet,
        resized: bool,
        masked: bool,
        cell: Option<u32>,
    ) -> Result<Pass> {
        let pixels = u64::from(w) * u64::from(h);
        let mp = pixels as f64 / 1e6;
        let how = if resized { " at --content-size" } else { "" };
        if pixels > MAX_PIXELS {
            bail!(
                "{}: the photo is {w}x{h}{how} ({mp:.1} megapixels), over the limit of {} \
                 megapixels: pass a smaller --content-size",
                input.display(),
                MAX_PIXELS / 1_000_000
            );
        }
        let need = estimate(net, pixels);
        let fits = |limit: Option<u64>| limit.is_none_or(|l| need <= l as f64);
        if cell.is_none() && fits(self.bytes) {
            return Ok(Pass::Whole);
        }
        let refuse = |why: String, more: &str| -> anyhow::Error {
            let limit = self.bytes.unwrap_or(0);
            anyhow::anyhow!(
                "{}: stylising the photo at {w}x{h}{how} ({mp:.1} megapixels) needs about {}, \
                 more than the memory budget of {} ({}), {why}: pass --content-size {} or \
                 smaller{more}",
                input.display(),
                gb(need),
                gb(limit as f64),
                self.from,
                fitting_width(net, limit, w, h)
            )
        };
        if !net.can_tile() {
            return Err(refuse(
                "and stylising in tiles needs the network in f32 on the CPU".to_string(),
                "",
            ));
        }
        match tiling(net, (w, h), masked, self.bytes, cell) {
            Some(t) => Ok(Pass::Tiled(t)),
            None => {
                let least = least_tiled(net, (w, h), masked);
                Err(refuse(
                    format!("and even in tiles it needs about {}", gb(least)),
                    ", or a larger --max-memory",
                ))
            }
        }
    }
}

/// Bytes kept for the whole of a tiled pass, per picture pixel: the picture and the result in
/// u8, and a full-size f32 mask (plus its u8 source) when there is one.
fn fixed_per_pixel(masked: bool) -> f64 {
    if masked {
        11.0
    } else {
        6.0
    }
}

/// The tiled pass of a `w`x`h` picture that fits `limit` (any, when `None`): the largest tiles
/// that fit, or `cell`'s; the largest thumbnail that fits, at most the picture. `None` where
/// nothing fits.
fn tiling(
    net: &MsgNet,
    (w, h): (u32, u32),
    masked: bool,
    limit: Option<u64>,
    cell: Option<u32>,
) -> Option<Tiling> {
    let pixels = f64::from(w) * f64::from(h);
    let per_pixel = channels(net) * BYTES_PER_PIXEL_PER_CHANNEL;
    let limit = limit.map(|l| l as f64);
    let need_for = |plan: &TilePlan| tile_need(net, (w, h), masked, plan);
    let plan_of = |c: u32| TilePlan::new(w, h, c, HALO, OVERLAP);
    let plan = match cell {
        Some(c) => plan_of(c),
        None => {
            let top = MAX_CELL.min(w.max(h).div_ceil(32) * 32).max(MIN_CELL);
            (MIN_CELL..=top)
                .rev()
                .step_by(32)
                .map(plan_of)
                .find(|p| limit.is_none_or(|l| need_for(p) <= l))?
        }
    };
    // The thumbnail runs first, in the workspace that the tiles then reuse (so no memory is
    // freed and taken again between the two): the largest that fits beside the tiles' band,
    // at most the picture.
    let beside = tile_need(net, (w, h), masked, &plan) - tile_pass(net, (w, h), &plan);
    let thumb_pixels = match limit {
        None => pixels,
        Some(l) => ((l - beside) / (per_pixel + 3.0)).min(pixels),
    };
    if thumb_pixels <= 0.0 {
        return None;
    }
    let scale = (thumb_pixels / pixels).sqrt().min(1.0);
    let side = |n: u32| ((f64::from(n) * scale) as u32).clamp(MIN_THUMB.min(n), n);
    let thumbnail = (side(w), side(h));
    let thumb = f64::from(thumbnail.0) * f64::from(thumbnail.1);
    let need = beside + (thumb * (per_pixel + 3.0)).max(tile_pass(net, (w, h), &plan));
    if limit.is_some_and(|l| need > l) {
        return None;
    }
    Some(Tiling {
        plan,
        thumbnail,
        need,
    })
}

/// What the smallest tiled pass of a `w`x`h` picture needs: the smallest tiles, and a
/// thumbnail of [`MIN_THUMB`] pixels a side.
fn least_tiled(net: &MsgNet, (w, h): (u32, u32), masked: bool) -> f64 {
    let plan = TilePlan::new(w, h, MIN_CELL, HALO, OVERLAP);
    let per_pixel = channels(net) * BYTES_PER_PIXEL_PER_CHANNEL;
    let fixed = f64::from(w) * f64::from(h) * fixed_per_pixel(masked);
    let thumb = f64::from(MIN_THUMB.min(w)) * f64::from(MIN_THUMB.min(h));
    tile_need(net, (w, h), masked, &plan).max(BASE_BYTES + fixed + thumb * (per_pixel + 3.0))
}

/// What the tiles of `plan` need at their peak: the fixed costs, a tile row's band of f32
/// sums, and one tile's pass.
fn tile_need(net: &MsgNet, (w, h): (u32, u32), masked: bool, plan: &TilePlan) -> f64 {
    let fixed = f64::from(w) * f64::from(h) * fixed_per_pixel(masked);
    let rows = f64::from(plan.cell + 2 * plan.overlap + 8);
    let band = 12.0 * f64::from(w) * rows;
    BASE_BYTES + fixed + band + tile_pass(net, (w, h), plan)
}

/// One tile's pass (its workspace and copies) over its cell, overlap and halo.
fn tile_pass(net: &MsgNet, (w, h): (u32, u32), plan: &TilePlan) -> f64 {
    let per_pixel = channels(net) * BYTES_PER_PIXEL_PER_CHANNEL;
    let side = |n: u32| f64::from((plan.cell + 2 * (plan.overlap + plan.halo)).min(n) + 4);
    side(w) * side(h) * per_pixel
}

/// The smallest side of a thumbnail worth taking statistics from.
const MIN_THUMB: u32 = 64;

/// Full-resolution channels that the estimate scales with.
fn channels(net: &MsgNet) -> f64 {
    (net.config().widths.u2 * 4) as f64
}

/// Bytes one forward pass over `pixels` takes at its peak.
pub fn estimate(net: &MsgNet, pixels: u64) -> f64 {
    BASE_BYTES + pixels as f64 * channels(net) * BYTES_PER_PIXEL_PER_CHANNEL
}

/// The widest `--content-size` (a multiple of 16) at which a `w`x`h` photo fits `limit`.
fn fitting_width(net: &MsgNet, limit: u64, w: u32, h: u32) -> u32 {
    let per_pixel = channels(net) * BYTES_PER_PIXEL_PER_CHANNEL;
    let pixels = ((limit as f64 - BASE_BYTES) / per_pixel).max(0.0);
    let aspect = f64::from(w) / f64::from(h.max(1));
    let width = (pixels * aspect).sqrt() as u32;
    (width / 16 * 16).max(16)
}

pub fn gb(bytes: f64) -> String {
    if bytes >= 1e9 {
        format!("{:.1} GB", bytes / 1e9)
    } else {
        format!("{:.0} MB", bytes / 1e6)
    }
}

/// `MemAvailable` from /proc/meminfo, in bytes (Linux; `None` elsewhere).
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The picture's size after `--content-size` (the width; the height follows the aspect ratio,
/// rounded down, at least 8, as [`crate::image_io::resize_to_width`] does), without resizing.
pub fn working_size((w, h): (u32, u32), content_size: Option<u32>) -> (u32, u32) {
    match content_size {
        None => (w, h),
        Some(cw) => {
            let nh = u64::from(cw) * u64::from(h) / u64::from(w.max(1));
            (cw, u32::try_from(nh).unwrap_or(u32::MAX).max(8))
        }
    }
}

/// A size in bytes: a number with an optional K, M, G or T (powers of 1024; `B`, `iB` and
/// lower case allowed): `1500M`, `4G`, `2GiB`.
pub fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let bad = || format!("`{s}` is not a memory size: write it as 1500M or 4G");
    let t = s.trim();
    let t = t.strip_suffix(['b', 'B']).unwrap_or(t);
    let t = t.strip_suffix('i').unwrap_or(t);
    let (num, shift) = match t.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&t[..t.len() - 1], 10),
        Some('M') => (&t[..t.len() - 1], 20),
        Some('G') => (&t[..t.len() - 1], 30),
        Some('T') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if !(v.is_finite() && v > 0.0) {
        return Err(bad());
    }
    let bytes = v * (1u64 << shift) as f64;
    if bytes < (64u64 << 20) as f64 {
        return Err(format!(
            "`{s}` is too little memory to stylise anything: give at least 64M"
        ));
    }
    Ok(bytes.min(u64::MAX as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_bytes("1500M"), Ok(1500 << 20));
        assert_eq!(parse_bytes("4G"), Ok(4 << 30));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert_eq!(parse_bytes("0.5g"), Ok(512 << 20));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("-1G").is_err());
        assert!(parse_bytes("1K").unwrap_err().contains("at least 64M"));
    }

    #[test]
    fn content_size_never_overflows() {
        assert_eq!(working_size((5, 2000), Some(8192)), (8192, 3_276_800));
        assert_eq!(working_size((640, 480), Some(320)), (320, 240));
        assert_eq!(working_size((4000, 10), Some(16)), (16, 8));
        assert_eq!(working_size((1, u32::MAX), Some(8192)), (8192, u32::MAX));
    }
}
