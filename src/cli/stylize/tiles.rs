//! A photo over the memory budget, stylised in tiles (docs/MEMORY.md): a thumbnail pass over
//! the whole picture records every instance norm's statistics (and the content Gram for
//! `--strength` below 1); then each tile, cut with a halo of context from the u8 picture, runs
//! with those statistics, is cropped and blended into the result one band of tile rows at a
//! time.

use std::sync::atomic::Ordering;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use image::RgbImage;
use indicatif::{ProgressBar, ProgressStyle};

use super::budget::Tiling;
use super::Job;
use crate::model::cpu::Workspace;
use crate::model::tiled::{tile_input, Blender};
use crate::{color, image_io};

impl Job<'_> {
    /// Stylises `img` (at its working size) in the tiles of `tiling`, with a progress bar (the
    /// thumbnail pass, then the tiles).
    pub(super) fn tiled(&self, img: &RgbImage, tiling: &Tiling) -> Result<RgbImage> {
        let bar = self
            .progress
            .add(ProgressBar::new(u64::from(tiling.plan.count())));
        bar.set_style(
            ProgressStyle::with_template("{spinner} thumbnail pass {elapsed_precise}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(250));
        let out = self.tiles(img, tiling, &bar);
        bar.finish_and_clear();
        out
    }

    fn tiles(&self, img: &RgbImage, tiling: &Tiling, bar: &ProgressBar) -> Result<RgbImage> {
        let a = self.args;
        let net = self.net;
        let plan = tiling.plan;
        let (w, h) = img.dimensions();
        net.release_workspace();

        // One workspace for the thumbnail and the tiles.
        let mut ws = Workspace::default();
        // The thumbnail pass.
        let (tw, th) = tiling.thumbnail;
        let whole = {
            // An area average, straight from u8 to u8: no full-size float copy of the picture.
            let thumb = ((tw, th) != (w, h)).then(|| image::imageops::thumbnail(img, tw, th));
            let thumb = thumb.as_ref().unwrap_or(img);
            let content = image_io::to_tensor(thumb, &Device::Cpu, candle_core::DType::F32)?;
            let mask = self.mask(tw, th)?;
            let mut mixed = None;
            let targets = self.choose(&mut mixed, mask.as_ref())?;
            net.whole_stats(&mut ws, &content, targets, a.strength)
                .context("the thumbnail pass")?
        };
        if self.cancel.load(Ordering::Acquire) {
            bail!("interrupted (Ctrl-C or a stop signal)");
        }

        // The tiles, in raster order.
        let full_mask = self.mask(w, h)?;
        bar.disable_steady_tick();
        bar.set_style(
            ProgressStyle::with_template("tiles {bar:30} {pos}/{len} {elapsed_precise} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.reset_eta();
        let _cooperate = crate::interrupt::Cooperate::new();
        let mut blend = Blender::new(plan);
        let (_, rows) = plan.grid();
        let mut mixed = None;
        for r in 0..rows {
            for t in plan.row(r) {
                if self.cancel.load(Ordering::Acquire) {
                    bail!("interrupted (Ctrl-C or a stop signal)");
                }
                let i = t.input;
                let (iw, ih) = (i.width() as usize, i.height() as usize);
                let xs = Tensor::from_vec(tile_input(img, i), (1, 3, ih, iw), &Device::Cpu)?;
                let mask = match &full_mask {
                    Some(m) => Some(
                        m.narrow(2, i.y0 as usize, ih)?
                            .narrow(3, i.x0 as usize, iw)?
                            .contiguous()?,
                    ),
                    None => None,
                };
                let targets = self.choose(&mut mixed, mask.as_ref())?;
                let out = net
                    .forward_tile(&mut ws, &xs, targets, a.strength, &whole)
                    .with_context(|| format!("the tile at {},{}", t.cell.x0, t.cell.y0))?;
                let out = if a.preserve_color {
                    color::preserve_color(&out, &xs)?
                } else {
                    out
                };
                blend.add(&t, &out.flatten_all()?.to_vec1::<f32>()?);
                bar.inc(1);
            }
            blend.row_done(r);
        }
        Ok(blend.finish())
    }
}
