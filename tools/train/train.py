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
    p.add_argument("--crop", type=int, default=256, help="training crop (128 for CPU)")
    p.add_argument("--content-scale", type=float, default=None,
                   help="resize photos by this before cropping (default crop/256, so a 128 crop sees "
                        "as much of the photo as a 256 crop of the full-size photo)")
    p.add_argument("--style-min", type=int, default=256, help="smallest style size at crop 256")
    p.add_argument("--style-max", type=int, default=768, help="largest style size at crop 256")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
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
    p.add_argument("--init", default=None, help="checkpoint/weights to start from (weights only)")
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
    ngf, blocks = (resume["ngf"], resume["blocks"]) if resume else (args.ngf, args.blocks)
    net = Net(ngf=ngf, n_blocks=blocks)
    if args.init:
        from common import load_net_from_ckpt
        net.load_weights(load_net_from_ckpt(args.init).state_dict())
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

    scale = args.content_scale if args.content_scale else args.crop / 256.0
    data = ContentData(args.content, args.crop, scale, rng_content)
    k = args.crop / 256.0
    styles = Styles(args.styles, max(16, args.style_min * k), max(16, args.style_max * k), rng_style)
    print(f"net ngf={ngf} blocks={blocks} params={sum(p.numel() for p in net.parameters()):,} "
          f"crop={args.crop} batch={args.batch} styles {len(styles.names)} sizes "
          f"{styles.lo:.0f}..{styles.hi:.0f} device={dev} threads={args.threads}", flush=True)
    if deadline:
        print("stops at", dt.datetime.fromtimestamp(deadline, dt.timezone.utc).isoformat(timespec="seconds"),
              flush=True)

    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda"
                else torch.autocast("cpu", enabled=False))
    log = open(os.path.join(args.out, "log.jsonl"), "a")
    log.write(json.dumps({"event": "start", "utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                          "step": step, "args": vars(args), "ngf": ngf, "blocks": blocks}) + "\n")
    style_cache = {}  # (index, size) -> {tap: Gram}  (loss-net targets, no grad)
    latest = os.path.join(args.out, "latest.pt")
    last_ckpt = last_keep = time.time()
    t_rate, n_rate = time.time(), 0

    def checkpoint(tag=None):
        save_ckpt(latest, net, opt, step, args, (rng_content, rng_style), ema, wall0 + time.time() - t_start)
        if tag:
            import shutil
            shutil.copyfile(latest, os.path.join(args.out, f"{tag}.pt"))

    while True:
        if args.max_steps is not None and step >= args.max_steps:
            break
        if deadline is not None and time.time() >= deadline:
            break
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

        name = styles.names[si]
        lc_f, ls_f = float(lc.detach()), float(ls.detach())
        e = ema.setdefault(name, {"content": lc_f, "style": ls_f, "n": 0})
        e["content"] = 0.9 * e["content"] + 0.1 * lc_f
        e["style"] = 0.9 * e["style"] + 0.1 * ls_f
        e["n"] += 1
        if step % args.log_every == 0:
            log.write(json.dumps({"step": step, "t": round(wall0 + time.time() - t_start, 1), "style": name,
                                  "size": ssize, "content": round(lc_f, 6), "stylel": round(ls_f, 6),
                                  "tv": round(float(ltv.detach()), 6), "loss": round(float(loss.detach()), 6)}) + "\n")
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
            print(f"step {step} {rate:.2f} img/s  content {mc:.4f} style {ms:.5f} (ema over styles)", flush=True)
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
