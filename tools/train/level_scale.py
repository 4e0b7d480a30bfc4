#!/usr/bin/env python3
"""Does a brush level of the teacher cache really change the stroke scale?  Per style, the mean
stroke scale (judge.py's centroid of the whitened luminance spectrum, cycles/px; lower = larger
strokes) of the teacher's targets at three levels, over the first N training photos:

    python3 tools/train/level_scale.py --levels b0.5,b1,b2     # the zoomed painting views
    python3 tools/train/level_scale.py --levels s0.5,b1,s2     # the content-scale levels

A level pair "works" for a style when the last level is coarser (lower) than the first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import load_rgb  # noqa: E402
from judge import stroke_scale  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", default="/work/teacher-cache")
    p.add_argument("--levels", default="b0.5,b1,b2", help="three levels, finest first")
    p.add_argument("--photos", type=int, default=12)
    args = p.parse_args(argv)
    levels = args.levels.split(",")

    files, photos = {}, set()
    with open(os.path.join(args.cache, "manifest.jsonl")) as f:
        for line in f:
            try:
                e = json.loads(line)
            except json.JSONDecodeError:
                continue
            if e.get("kind") != "train" or e["level"] not in levels:
                continue
            photo = e["photo"].split("@")[0]  # "<name>@s0.5" is a region of <name>
            files[(e["style"], e["level"], photo)] = e["file"]
            photos.add(photo)
    styles = sorted({s for s, _, _ in files})
    chosen = [ph for ph in sorted(photos) if all((s, lv, ph) in files for s in styles for lv in levels)]
    chosen = chosen[:args.photos]
    if not chosen:
        raise SystemExit(f"{args.cache}: no photo has every level of {levels} for every style")

    works = 0
    print(f"{len(chosen)} photos; stroke scale (cycles/px) at {', '.join(levels)}")
    for s in styles:
        v = [float(np.mean([stroke_scale(load_rgb(os.path.join(args.cache, files[(s, lv, ph)])))
                            for ph in chosen])) for lv in levels]
        ok = v[-1] < v[0]
        works += ok
        print(f"{s[:30]:30s} " + " ".join(f"{x:.3f}" for x in v) +
              f"  {'coarser' if ok else 'NOT coarser'}, ratio {v[0] / v[-1]:.2f}")
    print(f"coarser at {levels[-1]} than at {levels[0]}: {works} / {len(styles)} styles")


if __name__ == "__main__":
    main()
