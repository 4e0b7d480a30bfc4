#!/usr/bin/env python3
"""Judge stylised outputs on held-out photos (never trained on).

Two sets of held-out photos (`--set`):
  select (default): ../shared/content's 5 + the first 25 held-out training-folder photos.  These
      have been used to compare training arms and pick the weights to ship (model selection).
  test: the other 35 held-out photos.  Never used to pick weights (only the descriptors below
      were calibrated on Magenta's outputs for them): the unbiased figure for the shipped weights.

    python3 tools/train/judge.py --model models/stylecam21.safetensors --model /work/run/final.pt \\
        --magenta --photo --json /tmp/judge.json

Subjects: each --model (a train.py checkpoint or any weights file tools/msgnet.py reads; the
style target is net.target_of(style squashed to S x S), S = 512 x brush, as the app computes it),
--magenta (the teacher's brush-1 outputs from the cache, `teacher.py --heldout`, plus live runs
for the flicker test) and --photo (the unstyled photo: chance level).

Measures (all on the same held-out photo crops the teacher saw, 288 x 384):
1. Recognisable styles: for every output, which of the 21 paintings is nearest under two
   hand-made descriptors that no training loss uses:
     D1 colour + orientation: CIELab mean, std and channel correlations, and magnitude-weighted
        gradient-orientation histograms of L at two scales;
     D2 random-CNN Gram: the Gram matrices of a fixed random 3-layer CNN (texture statistics
        with filters no training loss uses).
   Each descriptor dimension is z-scored over the 21 paintings; nearest = smallest Euclidean
   distance.  Reported: the share of outputs whose nearest painting is their own (chance 1/21).
   Also reported: the mean squared z-distance of the outputs to their own painting under D1,
   split into its colour moments and its fine and coarse orientation histograms (where a subject
   misses).
2. Brush: the stroke scale of the outputs at brush 0.5 and 2, as the centroid frequency of the
   whitened (f^2-weighted) radially averaged power spectrum of the luminance (cycles/px; lower =
   larger strokes), per style, averaged over photos.
3. Flicker: a photo and the same photo shifted by (2, 1) px with Gaussian camera noise (sigma 3,
   0..255); mean |d| of the two outputs after undoing the shift, 8 px border left out, 0..255.
4. Content: edge agreement at brush 1, the correlation of the blurred Sobel magnitudes of photo
   and output (1 = the same edges).
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
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (DEFAULT_STYLES, HELDOUT_COUNT, load_net_from_ckpt, load_rgb,  # noqa: E402
                    split_photos, stem, style_paths, style_tensor, to_bgr_tensor, to_rgb_u8)
from teacher import photo_crop  # noqa: E402

BASE_STYLE_SIZE = 512
# Held-out training-folder photos in the 'select' set; the rest of them form the 'test' set.
SELECT_FOLDER_PHOTOS = 25


# ---------------------------------------------------------------------------------- descriptors
def _srgb_to_lab(rgb):
    """(H, W, 3) float 0..1 sRGB -> CIELab (D65)."""
    c = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, int(3 * sigma))
    k = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma * sigma))
    k = (k / k.sum()).view(1, 1, 1, -1)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1))


def _grad(x: torch.Tensor):
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3) / 8
    xp = F.pad(x, (1, 1, 1, 1), mode="reflect")
    return F.conv2d(xp, kx), F.conv2d(xp, kx.transpose(2, 3))


def _orientation_hist(lum: np.ndarray, sigma: float, bins: int = 8) -> np.ndarray:
    x = torch.from_numpy(lum).float()[None, None]
    if sigma > 0:
        x = _blur(x, sigma)
    gx, gy = _grad(x)
    mag = torch.sqrt(gx ** 2 + gy ** 2)[0, 0].numpy()
    ang = (torch.atan2(gy, gx)[0, 0].numpy() % math.pi)
    h, _ = np.histogram(ang, bins=bins, range=(0, math.pi), weights=mag)
    total = mag.mean()
    return np.concatenate([h / max(h.sum(), 1e-9), [math.log(total + 1e-6)]])


def descriptor_d1(rgb: np.ndarray) -> np.ndarray:
    """Colour moments (CIELab mean, std and channel correlations) and magnitude-weighted
    gradient-orientation histograms of L at two scales."""
    lab = _srgb_to_lab(rgb.astype(np.float64) / 255.0)
    flat = lab.reshape(-1, 3)
    corr = np.nan_to_num(np.corrcoef(flat.T))[np.triu_indices(3, 1)]
    lum = lab[..., 0] / 100.0
    return np.concatenate([flat.mean(0), flat.std(0), corr,
                           _orientation_hist(lum, 0.0), _orientation_hist(lum, 2.0)])


class RandomCnnGram:
    """Texture statistics from a fixed random shallow CNN (Ustyuzhaninov et al. 2017, "What does
    it take to generate natural textures?"): three 5x5 conv + ReLU layers with Gaussian weights
    from a fixed seed (strides 1, 2, 2), and the Gram matrix of each layer's output.  No training
    loss sees these filters."""

    def __init__(self, width=24, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.weights = []
        cin = 3
        for _ in range(3):
            self.weights.append(torch.randn(width, cin, 5, 5, generator=g) / math.sqrt(cin * 25))
            cin = width
        self.iu = np.triu_indices(width)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(rgb.astype(np.float32) / 255.0 - 0.5).permute(2, 0, 1)[None]
        out = []
        with torch.no_grad():
            for i, w in enumerate(self.weights):
                x = torch.relu(F.conv2d(x, w, padding=2, stride=1 if i == 0 else 2))
                f = x[0].reshape(x.shape[1], -1)
                out.append(np.sqrt((f @ f.T / f.shape[1]).numpy()[self.iu]))
        return np.concatenate(out)


DESCRIPTORS = {"D1 colour+orientation": descriptor_d1, "D2 random-CNN Gram": RandomCnnGram()}
# descriptor_d1's parts: 9 colour moments, then two orientation histograms of 8 bins + log energy.
D1_PARTS = {"colour": slice(0, 9), "orientation fine": slice(9, 18), "orientation coarse": slice(18, 27)}


class Nearest:
    """Nearest painting under one descriptor, z-scored over the paintings."""

    def __init__(self, fn, paintings):
        self.fn = fn
        self.names = list(paintings)
        d = np.stack([fn(paintings[n]) for n in self.names])
        self.mu, self.sd = d.mean(0), d.std(0) + 1e-6
        self.ref = (d - self.mu) / self.sd

    def z(self, rgb) -> np.ndarray:
        """The z-scored descriptor of an image."""
        return (self.fn(rgb) - self.mu) / self.sd

    def nearest(self, v: np.ndarray) -> str:
        return self.names[int(np.argmin(((self.ref - v) ** 2).sum(1)))]

    def parts(self, v: np.ndarray, own: str, parts: dict) -> dict:
        """Squared z-distance of `v` to the painting `own`, split by descriptor part: where an
        output misses its painting."""
        d = (v - self.ref[self.names.index(own)]) ** 2
        return {k: float(d[sl].sum()) for k, sl in parts.items()}


# ---------------------------------------------------------------------------------- other measures
def stroke_scale(rgb: np.ndarray) -> float:
    """Centroid frequency (cycles/px) of the f^2-weighted radially averaged power spectrum of the
    luminance: where the gradient energy sits.  Lower = larger strokes."""
    lum = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float64) / 255.0
    h, w = lum.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    p = np.abs(np.fft.fft2((lum - lum.mean()) * win)) ** 2
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    f = np.sqrt(fy ** 2 + fx ** 2)
    m = (f > 1.0 / 64) & (f <= 0.5)
    wgt = p[m] * f[m] ** 2
    return float((f[m] * wgt).sum() / wgt.sum())


def edge_agreement(a: np.ndarray, b: np.ndarray) -> float:
    def mag(rgb):
        g = torch.from_numpy(np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.float32) / 255.0)[None, None]
        gx, gy = _grad(g)
        return _blur(torch.sqrt(gx ** 2 + gy ** 2), 1.5).flatten().numpy()
    x, y = mag(a), mag(b)
    return float(np.corrcoef(x, y)[0, 1])


def shifted_noisy(rgb: np.ndarray, dx=2, dy=1, sigma=3.0, seed=0) -> np.ndarray:
    """The photo moved right by dx and down by dy (edge rows/columns repeated), plus noise."""
    s = np.roll(rgb, (dy, dx), axis=(0, 1)).astype(np.float64)
    s[:dy], s[:, :dx] = s[dy:dy + 1], s[:, dx:dx + 1]
    s += np.random.default_rng(seed).normal(0, sigma, s.shape)
    return np.clip(s + 0.5, 0, 255).astype(np.uint8)


def flicker(out0: np.ndarray, out1: np.ndarray, dx=2, dy=1, margin=8) -> float:
    a = out0.astype(np.float64)[margin:-margin - dy, margin:-margin - dx]
    b = out1.astype(np.float64)[margin + dy:-margin, margin + dx:-margin]
    return float(np.abs(a - b).mean())


# ---------------------------------------------------------------------------------- subjects
class Student:
    def __init__(self, path, threads):
        torch.set_num_threads(threads)
        import hashlib
        self.net = load_net_from_ckpt(path)
        self.name = path
        with open(path, "rb") as f:
            self.key = hashlib.sha256(f.read()).hexdigest()[:16]
        self.targets = {}

    def __call__(self, rgb, style_name, style_rgb, brush=1.0):
        s = max(16, int(round(BASE_STYLE_SIZE * brush)))
        key = (style_name, s)
        with torch.no_grad():
            if key not in self.targets:
                self.targets[key] = self.net.target_of(style_tensor(style_rgb, s))
            self.net.ins.set_target(self.targets[key])
            y = self.net(to_bgr_tensor(rgb))
        h, w = rgb.shape[:2]
        return to_rgb_u8(y[:, :, :h, :w])


class MagentaSubject:
    def __init__(self, cache, threads):
        from teacher import Magenta, style_view
        self.m, self.view, self.cache, self.name, self.key = Magenta(threads), style_view, cache, "magenta", "magenta"
        self.vec = {}

    def __call__(self, rgb, style_name, style_rgb, brush=1.0, photo=None):
        if photo is not None and brush == 1.0:
            p = os.path.join(self.cache, "targets", style_name, "b1", photo + ".png")
            if os.path.exists(p):
                return load_rgb(p)
        if style_name not in self.vec:
            self.vec[style_name] = self.m.style_vector(self.view(Image.fromarray(style_rgb), 1.0))
        return self.m.stylize(rgb, self.vec[style_name])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", default=[], help="weights or checkpoint (repeatable)")
    p.add_argument("--magenta", action="store_true")
    p.add_argument("--photo", action="store_true", help="also judge the unstyled photo (chance)")
    p.add_argument("--cache", default="/work/teacher-cache", help="teacher.py cache (held-out targets)")
    p.add_argument("--styles", default=DEFAULT_STYLES)
    p.add_argument("--set", choices=["select", "test"], default="select",
                   help="held-out photo set: 'select' (used to pick weights) or 'test' (never used)")
    p.add_argument("--photos", type=int, default=None,
                   help="at most this many photos of the set for recognition/content (default: all; "
                        "select has 30, test 35)")
    p.add_argument("--brush-photos", type=int, default=8, help="held-out photos for brush and flicker")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None, help="write all numbers here")
    p.add_argument("--outputs", default="/work/judge-outputs",
                   help="keep every output here (outside the repo: derived from photos), keyed by the "
                        "weights' SHA-256, so a second run only recomputes descriptors ('' to keep none)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    _, heldout = split_photos()
    # ../shared/content's photos come after the training folder's in the held-out list.
    folder, content = heldout[:HELDOUT_COUNT], heldout[HELDOUT_COUNT:]
    if args.set == "select":
        photos = (content + folder[:SELECT_FOLDER_PHOTOS])[:args.photos]
    else:
        photos = folder[SELECT_FOLDER_PHOTOS:][:args.photos]
    crops = {stem(ph): photo_crop(ph) for ph in photos}
    spaths = style_paths(args.styles)
    styles = {stem(sp): load_rgb(sp) for sp in spaths}

    def painting_view(rgb):
        im = Image.fromarray(rgb)
        s = 384 / max(im.size)
        return np.asarray(im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS))
    judges = {k: Nearest(fn, {n: painting_view(r) for n, r in styles.items()}) for k, fn in DESCRIPTORS.items()}

    subjects = [Student(m, args.threads) for m in args.model]
    if args.magenta:
        subjects.append(MagentaSubject(args.cache, args.threads))
    results = {}
    for subj in subjects + (["photo"] if args.photo else []):
        name = subj if subj == "photo" else subj.name
        t0 = time.time()

        store = None
        if subj != "photo" and args.outputs:
            store = os.path.join(args.outputs, subj.key)
            os.makedirs(store, exist_ok=True)

        def run(rgb, sname, brush, photo, variant="plain"):
            """The subject's output for this photo (variant "moved<i>": shifted + noise), kept in
            --outputs so that a second judge run only recomputes the descriptors."""
            if subj == "photo":
                return rgb
            path = store and os.path.join(store, f"{photo}.{variant}.{sname}.b{brush:g}.png")
            if path and os.path.exists(path):
                return load_rgb(path)
            if isinstance(subj, MagentaSubject):
                out = subj(rgb, sname, styles[sname], brush, photo if variant == "plain" else None)
            else:
                out = subj(rgb, sname, styles[sname], brush)
            if path:
                Image.fromarray(out).save(path + ".part.png")
                os.replace(path + ".part.png", path)
            return out

        hits = {k: {s: 0 for s in styles} for k in judges}
        edges, d1_parts = [], []
        for pn, rgb in crops.items():
            for sname in styles:
                out = run(rgb, sname, 1.0, pn)
                for k, judge in judges.items():
                    v = judge.z(out)
                    hits[k][sname] += judge.nearest(v) == sname
                    if k == "D1 colour+orientation":
                        d1_parts.append(judge.parts(v, sname, D1_PARTS))
                edges.append(edge_agreement(rgb, out))
        n = len(crops)
        r = {"recognised": {k: sum(v.values()) / (n * len(styles)) for k, v in hits.items()},
             "recognised_per_style": {k: {s: c / n for s, c in v.items()} for k, v in hits.items()},
             "edge_agreement": float(np.mean(edges)),
             "d1_distance_parts": {k: float(np.mean([d[k] for d in d1_parts])) for k in D1_PARTS}}
        if subj != "photo":
            few = list(crops.items())[:args.brush_photos]
            scale, flick = {}, []
            for sname in styles:
                if not isinstance(subj, MagentaSubject):
                    s05 = np.mean([stroke_scale(run(rgb, sname, 0.5, pn)) for pn, rgb in few])
                    s2 = np.mean([stroke_scale(run(rgb, sname, 2.0, pn)) for pn, rgb in few])
                    scale[sname] = {"brush0.5": s05, "brush2": s2}
                for i, (pn, rgb) in enumerate(few):
                    flick.append(flicker(run(rgb, sname, 1.0, pn),
                                         run(shifted_noisy(rgb, seed=i), sname, 1.0, pn, f"moved{i}")))
            r["flicker"] = float(np.mean(flick))
            if scale:
                r["stroke_scale"] = scale
                r["brush_coarser_at_2"] = sum(v["brush2"] < v["brush0.5"] for v in scale.values())
        r["seconds"] = round(time.time() - t0, 1)
        results[name] = r
        rec = ", ".join(f"{k} {v:.0%}" for k, v in r["recognised"].items())
        extra = ""
        if "flicker" in r:
            extra += f", flicker {r['flicker']:.2f}"
        if "brush_coarser_at_2" in r:
            extra += f", brush 2 coarser than 0.5 for {r['brush_coarser_at_2']}/{len(styles)} styles"
        parts = ", ".join(f"{k} {v:.1f}" for k, v in r["d1_distance_parts"].items())
        print(f"{name}: recognised {rec}; edges {r['edge_agreement']:.3f}{extra}; D1 distance to own "
              f"painting by part: {parts} ({r['seconds']} s)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"set": args.set, "photos": list(crops), "results": results}, f, indent=1,
                      default=lambda o: o.item() if hasattr(o, "item") else str(o))  # numpy scalars


if __name__ == "__main__":
    main()
