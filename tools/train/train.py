#!/usr/bin/env python3
"""Train stylecam's MSG-Net (Zhang & Dana 2017) on the 21 styles with a Tiny Darknet loss network.

    python3 tools/train/train.py --out /work/train-run --ngf 64 --crop 128 --threads 1 --max-minutes 90
    python3 tools/train/train.py --out /work/train-run --resume /work/train-run/latest.pt --crop 256
    python3 tools/train/train.py --out runs/gpu --device cuda --batch 8      # bf16 autocast

Conventions (docs/MSGNET.md): MSG-Net sees BGR 0..255; its output is converted to RGB 0..1
for the loss network.  Style target = net.set_target(style) with the style squashed to S x S
(gradient flows into the encoder, as in the reference training), style loss target = Grams of
the loss-network features of the same S x S style image.  See README.md next to this file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DEFAULT_CONTENT, DEFAULT_LOSSNET, DEFAULT_STYLES, Net, TinyDarknet,  # noqa: E402
                    bgr255_to_rgb01, gram, load_rgb, resize_rgb, stem, style_paths, style_tensor)

CONTENT_TAP = "conv5"
# Style taps and their relative weights (README of the loss net: more weight on conv5/conv9).
STYLE_TAPS = {"conv0": 1.0, "conv1": 1.0, "conv5": 2.0, "conv9": 2.0}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="/work/train-run", help="folder for checkpoints and log (outside the repo)")
    p.add_argument("--content", default=DEFAULT_CONTENT)
    p.add_argument("--styles", default=DEFAULT_STYLES)
    p.add_argument("--lossnet", default=DEFAULT_LOSSNET)
    p.add_argument("--ngf", type=int, default=128)
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--widths", default="",
                   help="non-default widths, e.g. c0=32,p1=16,u1=16,u2=8,k_first=5,k_last=5 "
                        "(tools/msgnet.py DEFAULT_WIDTHS)")
    p.add_argument("--teacher", default=None,
                   help="distil: a teacher.py cache folder; content crops and their Magenta targets "
                        "come from it (training photos only), one (style, brush level) per step")
    p.add_argument("--l1-weight", type=float, default=1.0, help="--teacher: L1 to the teacher (0..1 scale)")
    p.add_argument("--feat-weight", type=float, default=0.0,
                   help="--teacher: relative MSE between Tiny Darknet taps of output and teacher")
    p.add_argument("--gram-weight", type=float, default=0.0,
                   help="--teacher: also the relative Gram loss to the painting (as --style-weight does "
                        "without a teacher)")
    p.add_argument("--gram-weight-style", action="append", default=[], metavar="STYLE=W",
                   help="--teacher: the painting Gram weight for one style (its file stem), instead of "
                        "--gram-weight; repeat for more styles")
    p.add_argument("--tgram-weight", type=float, default=0.0,
                   help="--teacher: relative Gram loss between the output's and the teacher output's "
                        "Tiny Darknet taps, per item (texture statistics of the target without "
                        "asking for each stroke in its place, which L1 can only blur)")
    p.add_argument("--stab-weight", type=float, default=0.0,
                   help="stability: L1 between warp(net(x)) and net(warp(x) + noise)")
    p.add_argument("--stab-shift", type=float, default=2.0, help="largest synthetic motion, pixels")
    p.add_argument("--stab-noise", type=float, default=3.0, help="camera noise sigma, 0..255")
    p.add_argument("--stab-batch", type=int, default=2, help="batch items that also get the moved copy")
    p.add_argument("--reload-every", type=int, default=500, help="--teacher: re-read the manifest (steps)")
    p.add_argument("--base-style-size", type=int, default=512,
                   help="--teacher: style size at brush (zoom) 1, as the app's BASE_STYLE_SIZE")
    p.add_argument("--gram-refresh", type=int, default=300,
                   help="--teacher: recompute a style's Gram target after this many steps")
    p.add_argument("--target-grad-crop", type=int, default=0,
                   help="--teacher: also train the encoder through the style path, with the Gram of a "
                        "random crop this large of the S x S style image (straight-through; 0 = off)")
    p.add_argument("--levels", default=None, help="--teacher: only these levels, e.g. b0.5,b1,b2 or b1,s0.5,s2 "
                   "(teacher.py --content-scales)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--bf16", action="store_true",
                   help="bf16 autocast on the CPU too (needs avx512_bf16/AMX to pay off; CUDA always uses it)")
    p.add_argument("--crop", type=int, default=256, help="training crop (128 for CPU)")
    p.add_argument("--content-scale", type=float, default=None,
                   help="resize photos by this before cropping (default crop/256, so a 128 crop sees "
                        "as much of the photo as a 256 crop of the full-size photo)")
    p.add_argument("--style-min", type=int, default=256, help="smallest style size at crop 256")
    p.add_argument("--style-max", type=int, default=768, help="largest style size at crop 256")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-final", type=float, default=None,
                   help="cosine decay of the learning rate to this over --lr-decay-steps steps of this run")
    p.add_argument("--lr-decay-steps", type=int, default=0)
    p.add_argument("--content-weight", type=float, default=1.0)
    p.add_argument("--style-weight", type=float, default=1.0)
    p.add_argument("--tv-weight", type=float, default=0.0)
    p.add_argument("--loss-norm", choices=["relative", "raw"], default="relative",
                   help="relative: content and each style tap divided by the target's squared norm "
                        "(taps on one scale); raw: plain MSE (only conv0/conv1 count)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--resume", default=None, help="checkpoint to continue from (model, optimiser, step, RNG)")
    p.add_argument("--init", default=None,
                   help="checkpoint/weights to start from (weights only); with a larger --blocks than "
                        "the file's, the extra residual blocks start as identity (see grow_blocks)")
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--deadline", default=None, help="stop at this UTC time, HH:MM or ISO (e.g. 15:35)")
    p.add_argument("--max-steps", type=int, default=None, help="stop at this global step")
    p.add_argument("--ckpt-minutes", type=float, default=10.0, help="checkpoint period")
    p.add_argument("--keep-minutes", type=float, default=30.0, help="also keep a step-numbered copy this often")
    p.add_argument("--log-every", type=int, default=1)
    p.add_argument("--summary-every", type=int, default=50, help="per-style summary line period (steps)")
    p.add_argument("--sample-every", type=int, default=0, help="write a sample PNG every N steps (0: never)")
    return p.parse_args(argv)


def parse_deadline(s):
    if s is None:
        return None
    now = dt.datetime.now(dt.timezone.utc)
    if len(s) <= 5 and ":" in s:
        h, m = (int(v) for v in s.split(":"))
        d = now.replace(hour=h, minute=m, second=0, microsecond=0)
        if d < now - dt.timedelta(hours=12):
            d += dt.timedelta(days=1)
    else:
        d = dt.datetime.fromisoformat(s)
        if d.tzinfo is None:
            d = d.replace(tzinfo=dt.timezone.utc)
    return d.timestamp()


class ContentData:
    """All content photos decoded once (scaled by `scale`); random crops with horizontal flips."""

    def __init__(self, folder, crop, scale, rng: np.random.Generator):
        paths = sorted(glob.glob(os.path.join(folder, "*.jpg")))
        if not paths:
            raise SystemExit(f"no *.jpg in {folder}")
        self.crop, self.rng, self.images = crop, rng, []
        t = time.time()
        for p in paths:
            rgb = load_rgb(p)
            h, w = rgb.shape[:2]
            s = max(scale, crop / min(h, w))
            if abs(s - 1.0) > 1e-6:
                rgb = resize_rgb(rgb, max(crop, round(w * s)), max(crop, round(h * s)))
            self.images.append(rgb)
        print(f"content: {len(paths)} photos loaded in {time.time() - t:.1f}s (scale {scale:.3f})", flush=True)

    def batch(self, n):
        out = np.empty((n, self.crop, self.crop, 3), np.uint8)
        for i in range(n):
            im = self.images[self.rng.integers(len(self.images))]
            h, w = im.shape[:2]
            y = self.rng.integers(h - self.crop + 1)
            x = self.rng.integers(w - self.crop + 1)
            c = im[y:y + self.crop, x:x + self.crop]
            if self.rng.random() < 0.5:
                c = c[:, ::-1]
            out[i] = c
        # RGB u8 NHWC -> BGR float NCHW 0..255
        return torch.from_numpy(np.ascontiguousarray(out[..., ::-1])).permute(0, 3, 1, 2).float()


class Styles:
    """The style images; each epoch of 21 steps visits every style once in a shuffled order."""

    def __init__(self, folder, lo, hi, rng: np.random.Generator):
        self.paths = style_paths(folder)
        self.names = [stem(p) for p in self.paths]
        self.rgb = [load_rgb(p) for p in self.paths]
        self.lo, self.hi, self.rng = lo, hi, rng
        self.queue = []

    def next(self):
        if not self.queue:
            self.queue = list(self.rng.permutation(len(self.paths)))
        i = int(self.queue.pop())
        # log-uniform size, multiple of 16 (keeps the loss-net pools exact)
        s = math.exp(self.rng.uniform(math.log(self.lo), math.log(self.hi)))
        s = max(16, int(round(s / 16)) * 16)
        return i, s


class TeacherData:
    """Distillation batches from a teacher.py cache: for a (style, level), `batch` returns the same
    random crop (and flip) of training photos and of the teacher's outputs for them.  Only photos
    of the training split are used (the manifest's kind == "train" and not held out).  A thread
    decodes ahead so the step never waits on PNGs."""

    def __init__(self, cache, crop, rng: np.random.Generator, levels=None, prefetch=6):
        import threading
        import queue
        from common import split_photos
        _, heldout = split_photos()
        banned = {stem(p) for p in heldout}
        self.cache, self.crop, self.rng, self.banned, self.want = cache, crop, rng, banned, levels
        self.by_key, self.seen = {}, 0
        self.reload()
        if not self.by_key:
            raise SystemExit(f"{cache}: no training targets (run tools/train/teacher.py first)")
        self.photos = {}  # photo name -> RGB u8 (small: ~300 KB each)
        self.q = queue.Queue(maxsize=prefetch)
        self.requests = queue.Queue()
        self.worker = threading.Thread(target=self._run, daemon=True)
        self.worker.start()

    def reload(self):
        """Read manifest lines added since the last call (teacher.py may still be adding)."""
        with open(os.path.join(self.cache, "manifest.jsonl")) as f:
            f.seek(self.seen)
            for line in f:
                if not line.endswith("\n"):
                    break  # being written: read it next time
                self.seen += len(line.encode())
                try:
                    e = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if e.get("kind") != "train" or e["photo"].split("@")[0] in self.banned:
                    continue
                if self.want and e["level"] not in self.want:
                    continue
                if min(e["h"], e["w"]) < self.crop:
                    continue
                self.by_key.setdefault((e["style"], e["level"]), []).append(e)
        self.levels = sorted({lv for _, lv in self.by_key})
        n = sum(len(v) for v in self.by_key.values())
        photos = len({e["photo"] for v in self.by_key.values() for e in v})
        print(f"teacher cache {self.cache}: {n} targets, {photos} photos, levels {self.levels}", flush=True)

    def zoom(self, level: str) -> float:
        return float(level[1:])

    def _photo(self, name):
        if name not in self.photos:
            self.photos[name] = load_rgb(os.path.join(self.cache, "photos", name + ".png"))
        return self.photos[name]

    def _make(self, key, n, seed):
        rng = np.random.default_rng(seed)
        entries = self.by_key[key]
        xs = np.empty((n, self.crop, self.crop, 3), np.uint8)
        ts = np.empty_like(xs)
        for i in range(n):
            e = entries[rng.integers(len(entries))]
            ph, tg = self._photo(e["photo"]), load_rgb(os.path.join(self.cache, e["file"]))
            h, w = tg.shape[:2]
            y, x = rng.integers(h - self.crop + 1), rng.integers(w - self.crop + 1)
            a, b = ph[y:y + self.crop, x:x + self.crop], tg[y:y + self.crop, x:x + self.crop]
            if rng.random() < 0.5:
                a, b = a[:, ::-1], b[:, ::-1]
            xs[i], ts[i] = a, b

        def bgr(u8):
            return torch.from_numpy(np.ascontiguousarray(u8[..., ::-1])).permute(0, 3, 1, 2).float()
        return bgr(xs), bgr(ts)

    def _run(self):
        while True:
            key, n, seed = self.requests.get()
            self.q.put((key, self._make(key, n, seed)))

    def request(self, key, n):
        """Queue a batch for later (`next` returns batches in request order)."""
        self.requests.put((key, n, int(self.rng.integers(1 << 62))))

    def next(self):
        return self.q.get()


def synthetic_motion(x, gen: torch.Generator, shift, noise):
    """A small random smooth motion of a batch (translation up to `shift` px, rotation up to 0.5
    degree, zoom up to 1%) and the sampling grid that applies it, plus Gaussian camera noise."""
    b, _, h, w = x.shape
    ang = (torch.rand(b, generator=gen) * 2 - 1) * math.radians(0.5)
    sc = 1 + (torch.rand(b, generator=gen) * 2 - 1) * 0.01
    tx = (torch.rand(b, generator=gen) * 2 - 1) * shift * 2 / w
    ty = (torch.rand(b, generator=gen) * 2 - 1) * shift * 2 / h
    cos, sin = torch.cos(ang) * sc, torch.sin(ang) * sc
    theta = torch.stack([torch.stack([cos, -sin * h / w, tx], 1), torch.stack([sin * w / h, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    warped = warped + torch.randn(warped.shape, generator=gen) * noise
    return warped.clamp(0, 255), grid


def stability_loss(y, y_moved, grid, margin=8):
    """L1 (0..1 scale) between the output warped like the input and the output of the warped input,
    away from the borders (where reflection padding differs)."""
    yw = F.grid_sample(y, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    m = margin
    return (yw[..., m:-m, m:-m] - y_moved[..., m:-m, m:-m]).abs().mean() / 255.0


def feature_loss(fy, ft, taps):
    total = 0.0
    for t, w in taps.items():
        total = total + w * F.mse_loss(fy[t], ft[t]) / ft[t].pow(2).mean().clamp_min(1e-12)
    return total


def teacher_gram_loss(fy, ft, taps):
    """Per item, the relative squared error of the Grams of the output's and the teacher's taps."""
    total = 0.0
    for t, w in taps.items():
        g, gt = gram(fy[t]), gram(ft[t])
        total = total + w * ((g - gt).pow(2).sum((1, 2)) / gt.pow(2).sum((1, 2)).clamp_min(1e-20)).mean()
    return total


def content_loss(f, fc, norm):
    """MSE of the content features; 'relative' divides by the mean square of the target features."""
    loss = F.mse_loss(f.float(), fc)
    return loss / fc.pow(2).mean().clamp_min(1e-12) if norm == "relative" else loss


def style_loss(feats, grams, norm):
    """Sum over taps of weight x MSE between Grams.  'relative' divides each tap's squared error by
    the squared norm of the style Gram, so every tap counts on the same scale (raw MSE of Grams
    normalised by C*H*W is ~1e-3 at conv0 but ~1e-8 at conv9, i.e. only colour would count)."""
    total = 0.0
    for t, w in STYLE_TAPS.items():
        g, gs = gram(feats[t]), grams[t]
        if norm == "relative":
            total = total + w * (g - gs).pow(2).sum((1, 2)).mean() / gs.pow(2).sum().clamp_min(1e-20)
        else:
            total = total + w * F.mse_loss(g, gs.expand_as(g))
    return total


def tv_loss(y):
    return (y[:, :, 1:, :] - y[:, :, :-1, :]).abs().mean() + (y[:, :, :, 1:] - y[:, :, :, :-1]).abs().mean()


FEAT_TAPS = {"conv0": 1.0, "conv1": 1.0, "conv5": 1.0, "conv9": 1.0}


def bf16_autocast(dev, args):
    """bf16 autocast: always on CUDA, on the CPU with --bf16."""
    return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda" or args.bf16)


def queue_next(data, styles, pending, batch):
    """Ask the loader for the next (style, level) batch: every style once per 21 steps, a random
    level each time."""
    si, _ = styles.next()
    name = styles.names[si]
    levels = [lv for lv in data.levels if (name, lv) in data.by_key]
    lv = levels[int(styles.rng.integers(len(levels)))]
    pending.append((si, lv))
    data.request((name, lv), batch)


def teacher_step(args, net, lossnet, data, styles, gram_cache, step, dev, motion_gen, pending, style_images):
    """One distillation step.  Returns (loss, l1, feature-or-style loss, stability, style index,
    level, input, output)."""
    if args.reload_every and step % args.reload_every == 0 and step:
        data.reload()
    queue_next(data, styles, pending, args.batch)
    si, lv = pending.pop(0)
    (_, (x, t)) = data.next()
    x, t = x.to(dev), t.to(dev)
    if args.channels_last:
        x, t = x.contiguous(memory_format=torch.channels_last), t.contiguous(memory_format=torch.channels_last)
    size = max(16, int(round(args.base_style_size * data.zoom(lv) / 16)) * 16)
    cached = gram_cache.get((si, lv))
    if cached is None or step - cached[1] >= args.gram_refresh:
        # The Inspiration target with the current encoder, refreshed now and then: computing it
        # with gradients at 256..1024 px every step would cost more than the step itself.
        with torch.no_grad():
            g = net.target_of(style_tensor(styles.rgb[si], size).to(dev))
        cached = gram_cache[(si, lv)] = (g, step)
    target = cached[0]
    if args.target_grad_crop:
        # Gradients into the encoder through the style path (as the reference's training has), at
        # a fixed cost: the Gram of a random crop of the S x S style image, used straight-through
        # (its value is replaced by the whole image's Gram, which is what the app computes).
        full = style_images.get((si, size))
        if full is None:
            full = style_images[(si, size)] = style_tensor(styles.rgb[si], size).to(dev)
        c = min(args.target_grad_crop, size)
        oy, ox = (int(styles.rng.integers(size - c + 1)) for _ in range(2))
        g = net.target_of(full[:, :, oy:oy + c, ox:ox + c])
        target = g - g.detach() + target
    net.ins.set_target(target)
    ac = bf16_autocast(dev, args)
    with ac:
        y = net(x)
    y = y.float()
    l1 = (y - t).abs().mean() / 255.0
    loss = args.l1_weight * l1
    lf, lg = torch.zeros(()), torch.zeros(())
    gram_weight = args.gram_weights.get(styles.names[si], args.gram_weight)
    if args.feat_weight > 0 or gram_weight > 0 or args.tgram_weight > 0:
        taps = set(FEAT_TAPS) | (set(STYLE_TAPS) if gram_weight > 0 else set())
        with ac:
            fy = lossnet(bgr255_to_rgb01(y), taps)
        fy = {k: v.float() for k, v in fy.items()}
        if args.feat_weight > 0 or args.tgram_weight > 0:
            with torch.no_grad(), ac:
                ft = lossnet(bgr255_to_rgb01(t), set(FEAT_TAPS))
            ft = {k: v.float() for k, v in ft.items()}
        if args.feat_weight > 0:
            lf = feature_loss(fy, ft, FEAT_TAPS)
            loss = loss + args.feat_weight * lf
        if args.tgram_weight > 0:
            lg = teacher_gram_loss(fy, ft, FEAT_TAPS)
            loss = loss + args.tgram_weight * lg
        if gram_weight > 0:
            key = ("gram", si, size)
            if key not in gram_cache:
                with torch.no_grad():
                    feats = lossnet(bgr255_to_rgb01(style_tensor(styles.rgb[si], size).to(dev)), STYLE_TAPS)
                gram_cache[key] = {k: gram(f) for k, f in feats.items()}
            loss = loss + gram_weight * style_loss(fy, gram_cache[key], "relative")
    ls = torch.zeros(())
    if args.stab_weight > 0:
        k = min(args.stab_batch, x.shape[0])
        moved, grid = synthetic_motion(x[:k].detach().cpu(), motion_gen, args.stab_shift, args.stab_noise)
        with ac:
            ym = net(moved.to(dev))
        ls = stability_loss(y[:k], ym.float(), grid.to(dev))
        loss = loss + args.stab_weight * ls
    return loss, l1, lf, ls, si, lv, x, y, lg


def save_ckpt(path, net, opt, step, args, rngs, ema, wall):
    tmp = path + ".tmp"
    torch.save({
        "model": net.state_dict(), "optimizer": opt.state_dict(), "step": step,
        "args": vars(args), "ngf": net.ngf, "blocks": net.n_blocks,
        "rng": {"torch": torch.get_rng_state(), "python": random.getstate(),
                "numpy": [g.bit_generator.state for g in rngs],
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
        "ema": ema, "train_seconds": wall,
        "saved_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }, tmp)
    os.replace(tmp, path)


def grow_blocks(net, small):
    """Load `small` (an MSG-Net with fewer residual blocks, same ngf and widths) into `net`: the
    extra blocks go after the last trained one, with the last conv of their residual branch at
    zero, so each is the identity and `net` computes what `small` does until training moves
    them.  A clear exit when the two cannot be matched."""
    extra = net.n_blocks - small.n_blocks
    if extra < 0 or net.ngf != small.ngf or net.widths != small.widths:
        raise SystemExit(f"--init: cannot grow Net(ngf={small.ngf}, blocks={small.n_blocks}, "
                         f"widths={small.widths}) into Net(ngf={net.ngf}, blocks={net.n_blocks}, "
                         f"widths={net.widths}); give the same --ngf and --widths and --blocks >= "
                         f"{small.n_blocks}")
    first_after = 2 + small.n_blocks  # model.0 = model1, model.1 = ins, then the blocks
    state = {}
    for k, v in small.state_dict().items():
        parts = k.split(".")
        if parts[0] == "model" and int(parts[1]) >= first_after:
            parts[1] = str(int(parts[1]) + extra)
        state[".".join(parts)] = v
    for i in range(small.n_blocks, net.n_blocks):
        block = net.model[2 + i]
        last = [m for m in block.conv_block.modules() if isinstance(m, torch.nn.Conv2d)][-1]
        with torch.no_grad():
            last.weight.zero_()
            if last.bias is not None:
                last.bias.zero_()
        state.update({f"model.{2 + i}.{k}": v.clone() for k, v in block.state_dict().items()})
    net.load_weights(state)


def parse_style_weights(items, names):
    """--gram-weight-style STYLE=W items as {style: weight}; a clear exit for a bad item."""
    out = {}
    for item in items:
        name, sep, w = item.rpartition("=")
        if not sep or name not in names:
            raise SystemExit(f"--gram-weight-style {item!r}: expected STYLE=W with STYLE one of {names}")
        try:
            out[name] = float(w)
        except ValueError:
            raise SystemExit(f"--gram-weight-style {item!r}: {w!r} is not a number") from None
        if not math.isfinite(out[name]) or out[name] < 0:
            raise SystemExit(f"--gram-weight-style {item!r}: the weight must be a number >= 0")
    return out


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    dev = torch.device(args.device)
    t_start = time.time()
    deadline = parse_deadline(args.deadline)
    if args.max_minutes is not None:
        d2 = t_start + 60 * args.max_minutes
        deadline = d2 if deadline is None else min(deadline, d2)

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    rng_content = np.random.default_rng(args.seed)
    rng_style = np.random.default_rng(args.seed + 1)

    resume = torch.load(args.resume, map_location="cpu", weights_only=False) if args.resume else None
    if resume:
        from msgnet import infer_widths
        ngf, blocks = resume["ngf"], resume["blocks"]
        widths = infer_widths(resume["model"], blocks)
    else:
        ngf, blocks = args.ngf, args.blocks
        widths = {k: int(v) for k, v in (kv.split("=") for kv in args.widths.split(",") if kv)}
    net = Net(ngf=ngf, n_blocks=blocks, widths=widths)
    if args.init:
        from common import load_net_from_ckpt
        init = load_net_from_ckpt(args.init)
        if init.n_blocks == blocks:
            net.load_weights(init.state_dict())
        else:
            grow_blocks(net, init)
            print(f"--init {args.init}: {init.n_blocks} residual blocks grown to {blocks}, the "
                  f"{blocks - init.n_blocks} new ones starting as identity", flush=True)
    net.to(dev).train()
    lossnet = TinyDarknet(args.lossnet).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    step, ema, wall0 = 0, {}, 0.0
    if resume:
        net.load_weights(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        for g in opt.param_groups:
            g["lr"] = args.lr
        step, ema, wall0 = resume["step"], resume.get("ema", {}), resume.get("train_seconds", 0.0)
        torch.set_rng_state(resume["rng"]["torch"])
        random.setstate(resume["rng"]["python"])
        rng_content.bit_generator.state, rng_style.bit_generator.state = resume["rng"]["numpy"]
        print(f"resumed {args.resume} at step {step}", flush=True)

    k = args.crop / 256.0
    styles = Styles(args.styles, max(16, args.style_min * k), max(16, args.style_max * k), rng_style)
    args.gram_weights = parse_style_weights(args.gram_weight_style, styles.names)
    if args.teacher:
        levels = set(args.levels.split(",")) if args.levels else None
        data = TeacherData(args.teacher, args.crop, rng_content, levels)
        missing = [n for n in styles.names if not any(st == n for st, _ in data.by_key)]
        if missing:
            raise SystemExit(f"teacher cache has no targets for styles {missing}")
    else:
        scale = args.content_scale if args.content_scale else args.crop / 256.0
        data = ContentData(args.content, args.crop, scale, rng_content)
    if args.channels_last:
        net = net.to(memory_format=torch.channels_last)
    motion_gen = torch.Generator().manual_seed(args.seed + 2)
    print(f"net ngf={ngf} blocks={blocks} widths={net.widths} params={sum(p.numel() for p in net.parameters()):,} "
          f"crop={args.crop} batch={args.batch} styles {len(styles.names)} sizes "
          f"{styles.lo:.0f}..{styles.hi:.0f} device={dev} threads={args.threads}", flush=True)
    if deadline:
        print("stops at", dt.datetime.fromtimestamp(deadline, dt.timezone.utc).isoformat(timespec="seconds"),
              flush=True)

    autocast = bf16_autocast(dev, args)
    log = open(os.path.join(args.out, "log.jsonl"), "a")
    log.write(json.dumps({"event": "start", "utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                          "step": step, "args": vars(args), "ngf": ngf, "blocks": blocks}) + "\n")
    style_cache = {}  # (index, size) -> {tap: Gram}  (loss-net targets, no grad)
    gram_cache = {}  # --teacher: (style index, level) -> (MSG-Net target Gram, step computed)
    pending = []  # --teacher: (style index, level) of the batches queued in the loader
    style_images = {}  # --teacher --target-grad-crop: (index, size) -> S x S style tensor
    if args.teacher:
        for _ in range(4):
            queue_next(data, styles, pending, args.batch)
    latest = os.path.join(args.out, "latest.pt")
    last_ckpt = last_keep = time.time()
    t_rate, n_rate = time.time(), 0

    def checkpoint(tag=None):
        save_ckpt(latest, net, opt, step, args, (rng_content, rng_style), ema, wall0 + time.time() - t_start)
        if tag:
            import shutil
            shutil.copyfile(latest, os.path.join(args.out, f"{tag}.pt"))

    step0 = step
    while True:
        if args.lr_decay_steps and args.lr_final is not None:
            f = min(1.0, (step - step0) / args.lr_decay_steps)
            for g in opt.param_groups:
                g["lr"] = args.lr_final + (args.lr - args.lr_final) * 0.5 * (1 + math.cos(math.pi * f))
        if args.max_steps is not None and step >= args.max_steps:
            break
        if deadline is not None and time.time() >= deadline:
            break
        if args.teacher:
            loss, lc, ls, ltv, si, ssize, x, y, lg = teacher_step(args, net, lossnet, data, styles, gram_cache,
                                                                  step, dev, motion_gen, pending, style_images)
        else:
            si, ssize = styles.next()
            x = data.batch(args.batch).to(dev)
            style = style_tensor(styles.rgb[si], ssize).to(dev)
            key = (si, ssize)
            if key not in style_cache:
                with torch.no_grad(), autocast:
                    feats = lossnet(bgr255_to_rgb01(style), STYLE_TAPS)
                style_cache[key] = {t: gram(f) for t, f in feats.items()}
            gs = style_cache[key]
            with autocast:
                with torch.no_grad():
                    fc = lossnet(bgr255_to_rgb01(x), [CONTENT_TAP])[CONTENT_TAP].float()
                net.set_target(style)
                y = net(x)
                fy = lossnet(bgr255_to_rgb01(y), set(STYLE_TAPS) | {CONTENT_TAP})
            lc, ls = content_loss(fy[CONTENT_TAP], fc, args.loss_norm), style_loss(fy, gs, args.loss_norm)
            loss = args.content_weight * lc + args.style_weight * ls
            ltv = torch.zeros(())
            if args.tv_weight > 0:
                ltv = tv_loss(y.float() / 255.0)
                loss = loss + args.tv_weight * ltv
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        n_rate += args.batch

        name = styles.names[si] if not args.teacher else f"{styles.names[si]}@{ssize}"
        lc_f, ls_f = float(lc.detach()), float(ls.detach())
        e = ema.setdefault(name, {"content": lc_f, "style": ls_f, "n": 0})
        e["content"] = 0.9 * e["content"] + 0.1 * lc_f
        e["style"] = 0.9 * e["style"] + 0.1 * ls_f
        e["n"] += 1
        if step % args.log_every == 0:
            names = ("l1", "feat", "stab") if args.teacher else ("content", "stylel", "tv")
            rec = {"step": step, "t": round(wall0 + time.time() - t_start, 1), "style": name,
                   "size": ssize, names[0]: round(lc_f, 6), names[1]: round(ls_f, 6),
                   names[2]: round(float(ltv.detach()), 6), "loss": round(float(loss.detach()), 6)}
            if args.teacher and args.tgram_weight > 0:
                rec["tgram"] = round(float(lg.detach()), 6)
            log.write(json.dumps(rec) + "\n")
        if step % args.summary_every == 0:
            now = time.time()
            rate = n_rate / (now - t_rate)
            t_rate, n_rate = now, 0
            log.write(json.dumps({"event": "summary", "step": step, "img_per_s": round(rate, 3),
                                  "ema": {k2: {"content": round(v["content"], 6), "style": round(v["style"], 6),
                                               "n": v["n"]} for k2, v in sorted(ema.items())}}) + "\n")
            log.flush()
            mc = sum(v["content"] for v in ema.values()) / len(ema)
            ms = sum(v["style"] for v in ema.values()) / len(ema)
            what = ("l1", "feat") if args.teacher else ("content", "style")
            print(f"step {step} {rate:.2f} img/s  {what[0]} {mc:.4f} {what[1]} {ms:.5f} (ema over styles)", flush=True)
        if args.sample_every and step % args.sample_every == 0:
            from common import to_rgb_u8
            sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
            from pngio import write_png
            write_png(os.path.join(args.out, f"sample_{step:07d}_{name}.png"),
                      np.concatenate([to_rgb_u8(x[:1]), to_rgb_u8(y[:1].detach())], axis=1))
        now = time.time()
        if now - last_ckpt >= 60 * args.ckpt_minutes:
            keep = now - last_keep >= 60 * args.keep_minutes
            checkpoint(f"step{step:07d}" if keep else None)
            last_ckpt = now
            if keep:
                last_keep = now
            log.flush()

    checkpoint("final")
    log.write(json.dumps({"event": "end", "step": step,
                          "utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}) + "\n")
    log.close()
    print(f"done at step {step}; wrote {latest} and final.pt", flush=True)


if __name__ == "__main__":
    main()
