#!/usr/bin/env python3
"""Export a training checkpoint for the app.

    python3 tools/train/export.py /work/train-run/final.pt --out-dir models

writes
  <out-dir>/stylecam21.safetensors         MSG-Net weights, every key Net.state_dict() has (aliases
                                           model.0.* / model.1.weight and InstanceNorm running
                                           buffers included), float16 (or --f32).
  <out-dir>/stylecam21-styles.safetensors  per style (name = file stem): `gram.<stem>.<S>` =
                                           net.target_of(style squashed to S x S, BGR 0..255),
                                           [1, C, C] float16, for every S in --sizes; and
                                           `swatch.<stem>` = [96, 96, 3] u8 RGB, the network's
                                           output on swatch_scene(), a scene made in code (no photo).
It prints the f16-vs-f32 output difference, the log-size interpolation error of the Grams at
in-between sizes, and the file sizes (limit: 25 MB together).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DEFAULT_STYLES, load_net_from_ckpt, load_rgb, resize_rgb, save_weights,  # noqa: E402
                    stem, style_paths, style_tensor, swatch_scene, synthetic_picture, to_bgr_tensor,
                    to_rgb_u8)

LIMIT = 25_000_000


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ckpt", help="train.py checkpoint (.pt) or any weights file tools/msgnet.py reads")
    p.add_argument("--out-dir", default="models")
    p.add_argument("--styles", default=DEFAULT_STYLES)
    p.add_argument("--sizes", default="128,256,512,1024,2048", help="style sizes S of the stored Grams")
    p.add_argument("--check-sizes", default="362,724",
                   help="in-between sizes where the log-size interpolation error is measured ('' to skip)")
    p.add_argument("--swatch-style-size", type=int, default=512,
                   help="style size for the swatches (the swatch scene is 256x256): brush 1")
    p.add_argument("--f32", action="store_true", help="store the weights as float32")
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def interp_log(gs: dict, s: int) -> torch.Tensor:
    """Linear interpolation in log(size) between the stored sizes around s (clamped)."""
    sizes = sorted(gs)
    if s <= sizes[0]:
        return gs[sizes[0]]
    if s >= sizes[-1]:
        return gs[sizes[-1]]
    for a, b in zip(sizes, sizes[1:]):
        if a <= s <= b:
            t = (math.log(s) - math.log(a)) / (math.log(b) - math.log(a))
            return (1 - t) * gs[a] + t * gs[b]
    raise AssertionError


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    from safetensors.torch import save_file
    t0 = time.time()
    net = load_net_from_ckpt(args.ckpt)
    ngf, blocks = net.ngf, net.n_blocks
    sizes = [int(s) for s in args.sizes.split(",") if s]
    checks = [int(s) for s in args.check_sizes.split(",") if s]
    os.makedirs(args.out_dir, exist_ok=True)
    print(f"{args.ckpt}: ngf={ngf} blocks={blocks} widths={net.widths}")

    # ---- weights -----------------------------------------------------------------------------
    dtype = torch.float32 if args.f32 else torch.float16
    wpath = os.path.join(args.out_dir, "stylecam21.safetensors")
    keys = save_weights(net, wpath, dtype)
    print(f"weights: {keys} keys, {str(dtype)} -> {wpath}")

    # f16 vs f32: same picture and style through both weight sets (computed in f32)
    paths = style_paths(args.styles)
    styles = {stem(p): load_rgb(p) for p in paths}
    names = sorted(styles)
    pic = to_bgr_tensor(synthetic_picture(256, 256))
    with torch.no_grad():
        probe = "starry_night" if "starry_night" in styles else names[0]
        net.set_target(style_tensor(styles[probe], 512))
        y32 = net(pic)
        if dtype == torch.float16:
            from safetensors.torch import load_file
            from common import Net
            n16 = Net(ngf=ngf, n_blocks=blocks, widths=net.widths)
            n16.load_weights({k: v.float() for k, v in load_file(wpath).items()})
            n16.eval()
            n16.set_target(style_tensor(styles[probe], 512))
            y16 = n16(pic)
            d = (y16 - y32).abs()
            u8 = (to_rgb_u8(y16).astype(int) - to_rgb_u8(y32).astype(int))
            print(f"f16 vs f32 weights (style {probe} @512, synthetic 256x256, output 0..255): "
                  f"max|d| {float(d.max()):.4f}, mean|d| {float(d.mean()):.5f}, "
                  f"u8 pixels differing {(u8 != 0).mean() * 100:.2f}% (max {np.abs(u8).max()})")

    # ---- styles: Grams at several sizes + swatches -------------------------------------------
    out = {}
    scene = to_bgr_tensor(swatch_scene(256, 256))
    errs = {s: [] for s in checks}
    f16err = []
    with torch.inference_mode():
        for name in names:
            rgb = styles[name]
            gs = {}
            for s in sizes:
                g = net.target_of(style_tensor(rgb, s))
                gs[s] = g
                out[f"gram.{name}.{s}"] = g.to(torch.float16).contiguous()
                f16err.append(rel(g.to(torch.float16).float(), g))
            for s in checks:
                if sizes[0] < s < sizes[-1]:
                    errs[s].append(rel(interp_log(gs, s), net.target_of(style_tensor(rgb, s))))
            net.set_target(style_tensor(rgb, args.swatch_style_size))
            y = to_rgb_u8(net(scene))
            out[f"swatch.{name}"] = torch.from_numpy(resize_rgb(y, 96, 96).copy()).contiguous()
            print(f"  {name}: grams {sizes}, swatch", flush=True)
    spath = os.path.join(args.out_dir, "stylecam21-styles.safetensors")
    c = int(out[f"gram.{names[0]}.{sizes[0]}"].shape[-1])
    save_file(out, spath, metadata={"styles": json.dumps(names), "sizes": json.dumps(sizes),
                                    "ngf": str(ngf), "blocks": str(blocks), "channels": str(c),
                                    "format": "stylecam-styles-v1"})
    print(f"styles: {len(names)} styles x {len(sizes)} sizes, Gram [1,{c},{c}] f16 -> {spath}")
    print(f"Gram f16 rounding: max rel (Frobenius) error {max(f16err):.2e}")
    for s in checks:
        if errs[s]:
            e = np.array(errs[s])
            print(f"log-size interpolation error at S={s}: rel Frobenius mean {e.mean():.4f}, max {e.max():.4f} "
                  f"({names[int(e.argmax())]})")
    total = 0
    for p in (wpath, spath):
        n = os.path.getsize(p)
        total += n
        print(f"{p}: {n:,} bytes ({n / 1e6:.2f} MB)")
    print(f"total {total:,} bytes ({total / 1e6:.2f} MB) {'OK' if total <= LIMIT else 'OVER the 25 MB limit'}"
          f"; {time.time() - t0:.0f}s")
    if total > LIMIT:
        sys.exit(1)


if __name__ == "__main__":
    main()
