"""Shared pieces of the stylecam training tools: image I/O, the Tiny Darknet loss network,
style loading and checkpoint reading.  The MSG-Net itself lives in tools/msgnet.py (imported,
not copied)."""

from __future__ import annotations

import glob
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(HERE)
if TOOLS not in sys.path:
    sys.path.insert(0, TOOLS)

from msgnet import Net, infer_config, infer_widths  # noqa: E402  (tools/msgnet.py)

SHARED = "/work/shared"
DEFAULT_LOSSNET = os.path.join(SHARED, "train/lossnet/tiny_darknet.safetensors")
DEFAULT_CONTENT = os.path.join(SHARED, "train/content")
DEFAULT_STYLES = os.path.join(SHARED, "styles/21styles")

# Tiny Darknet layer list: (name, in, out, kernel) or "pool".  See lossnet/README.md.
_DARKNET = [
    ("conv0", 3, 16, 3), "pool",
    ("conv1", 16, 32, 3), "pool",
    ("conv2", 32, 16, 1), ("conv3", 16, 128, 3), ("conv4", 128, 16, 1), ("conv5", 16, 128, 3), "pool",
    ("conv6", 128, 32, 1), ("conv7", 32, 256, 3), ("conv8", 256, 32, 1), ("conv9", 32, 256, 3), "pool",
    ("conv10", 256, 64, 1), ("conv11", 64, 512, 3), ("conv12", 512, 64, 1), ("conv13", 64, 512, 3),
]


class TinyDarknet(nn.Module):
    """Feature extractor part of Tiny Darknet (conv0..conv13).  Input RGB 0..1, NCHW.
    `forward(x, taps)` returns {tap: features after LeakyReLU} and stops after the deepest tap."""

    def __init__(self, path: str = DEFAULT_LOSSNET):
        super().__init__()
        self.order = []
        for item in _DARKNET:
            if item == "pool":
                self.order.append(("pool", None))
                continue
            name, cin, cout, k = item
            setattr(self, name, nn.Conv2d(cin, cout, k, 1, k // 2, bias=False))
            setattr(self, "bn" + name[4:], nn.BatchNorm2d(cout, eps=1e-3))
            self.order.append(("conv", name))
        from safetensors.torch import load_file
        state = load_file(path)
        state = {k: v for k, v in state.items() if not k.startswith(("conv14", "bn14", "conv15"))}
        self.load_state_dict(state, strict=True)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True):  # always eval: BatchNorm uses the stored statistics
        return super().train(False)

    def forward(self, x: torch.Tensor, taps) -> dict:
        out = {}
        last = max(int(t[4:]) for t in taps)
        for kind, name in self.order:
            if kind == "pool":
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
                continue
            x = getattr(self, name)(x)
            x = getattr(self, "bn" + name[4:])(x)
            x = F.leaky_relu(x, 0.1)
            if name in taps:
                out[name] = x
            if int(name[4:]) >= last:
                break
        return out


def gram(f: torch.Tensor) -> torch.Tensor:
    """Gram matrix normalised by C*H*W, computed in float32."""
    f = f.float()
    b, c, h, w = f.shape
    f = f.reshape(b, c, h * w)
    return f.bmm(f.transpose(1, 2)) / (c * h * w)


def bgr255_to_rgb01(x: torch.Tensor) -> torch.Tensor:
    return x.flip(1) / 255.0


def load_rgb(path: str) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def resize_rgb(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    from PIL import Image
    return np.asarray(Image.fromarray(rgb).resize((w, h), Image.BICUBIC))


def to_bgr_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (1, 3, H, W) float BGR 0..255."""
    t = torch.from_numpy(np.ascontiguousarray(rgb[:, :, ::-1])).permute(2, 0, 1).float()
    return t.unsqueeze(0)


def to_rgb_u8(bgr: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) BGR 0..255 float -> (H, W, 3) uint8 RGB (clamped, rounded)."""
    x = bgr[0].detach().float().clamp(0, 255).round().byte().flip(0).permute(1, 2, 0)
    return x.cpu().numpy()


HELDOUT_COUNT = 60
SPLIT_SEED = 20261202


def split_photos(folder: str = DEFAULT_CONTENT, heldout_count: int = HELDOUT_COUNT):
    """(train, heldout) photo paths.  A fixed shuffle of the training folder: its first
    `heldout_count` photos are never trained on, and are judged together with ../shared/content
    (which is never trained on either); judge.py splits them into a set used to pick weights and
    a test set that is not."""
    paths = sorted(glob.glob(os.path.join(folder, "*.jpg")))
    if not paths:
        raise SystemExit(f"no *.jpg in {folder}")
    order = np.random.default_rng(SPLIT_SEED).permutation(len(paths))
    shuffled = [paths[i] for i in order]
    extra = sorted(glob.glob(os.path.join(SHARED, "content", "*.jpg")))
    return shuffled[heldout_count:], shuffled[:heldout_count] + extra


def style_paths(folder: str = DEFAULT_STYLES):
    paths = sorted(glob.glob(os.path.join(folder, "*.jpg")))
    if not paths:
        raise SystemExit(f"no *.jpg styles in {folder}")
    return paths


def stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def style_tensor(rgb: np.ndarray, size: int) -> torch.Tensor:
    """Style image squashed to size x size, (1, 3, S, S) BGR 0..255 (as the reference does)."""
    return to_bgr_tensor(resize_rgb(rgb, size, size))


def load_net_from_ckpt(path: str) -> Net:
    """An MSG-Net in eval mode from a training checkpoint (train.py) or any weights file
    msgnet.load_state_dict_any reads."""
    if path.endswith(".ckpt") or path.endswith(".pt"):
        ck = torch.load(path, map_location="cpu", weights_only=False)
        state = ck["model"] if "model" in ck else ck
    else:
        from msgnet import load_state_dict_any
        state = load_state_dict_any(path)
    ngf, blocks = infer_config(state)
    net = Net(ngf=ngf, n_blocks=blocks, widths=infer_widths(state, blocks))
    net.load_weights(state)
    net.eval()
    return net


def save_weights(net: Net, path: str, dtype: torch.dtype = torch.float16, extra: dict | None = None) -> int:
    """Write every key of `net.state_dict()` (aliases and running buffers included) as safetensors
    in `dtype`, with the metadata the app and `--init` read; returns the number of tensors."""
    import json

    from safetensors.torch import save_file
    tensors = {k: v.detach().to(dtype).contiguous().clone() for k, v in net.state_dict().items()}
    meta = {"format": "stylecam-msgnet-v1", "ngf": str(net.ngf), "blocks": str(net.n_blocks),
            "widths": json.dumps(net.widths), "dtype": str(dtype).replace("torch.", "")}
    meta.update(extra or {})
    save_file(tensors, path, metadata=meta)
    return len(tensors)


def synthetic_picture(h: int = 256, w: int = 256, seed: int = 0) -> np.ndarray:
    """A procedural test picture (H, W, 3) uint8 RGB: colour gradients, filled circles, stripes and a
    checkerboard.  Made in code, so anything computed from it (swatches) carries no photo."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = xx / max(w - 1, 1), yy / max(h - 1, 1)
    img = np.stack([0.15 + 0.7 * u, 0.25 + 0.6 * v, 0.9 - 0.6 * (u + v) / 2], -1)  # gradient sky
    ground = v > 0.62
    img[ground] = np.stack([0.30 + 0.2 * u, 0.55 - 0.2 * v, 0.20 + 0.0 * u], -1)[ground]
    for _ in range(6):  # circles
        cy, cx = rng.uniform(0.1, 0.9) * h, rng.uniform(0.1, 0.9) * w
        r = rng.uniform(0.06, 0.18) * min(h, w)
        col = rng.uniform(0.05, 0.95, 3)
        d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
        m = d < r
        shade = (1.0 - 0.5 * (d / r))[..., None]
        img[m] = (col * shade)[m]
    band = (v > 0.70) & (v < 0.84)  # stripes
    stripes = (np.sin(xx * 2 * np.pi / 12.0) > 0)
    img[band & stripes] = [0.95, 0.92, 0.85]
    img[band & ~stripes] = [0.10, 0.10, 0.18]
    check = (v > 0.88) & ((((xx // 16) + (yy // 16)) % 2) == 0)  # checkerboard strip
    img[check] = [0.85, 0.2, 0.2]
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _pink_noise(h: int, w: int, rng: np.random.Generator, beta: float) -> np.ndarray:
    """Zero-mean, unit-variance noise with a 1 / f^beta power spectrum (clouds, foliage)."""
    f = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w)[None] ** 2)
    f[0, 0] = 1.0
    spec = (rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))) / f ** (beta / 2)
    x = np.real(np.fft.ifft2(spec))
    return (x - x.mean()) / (x.std() + 1e-9)


def swatch_scene(h: int = 256, w: int = 256, seed: int = 0) -> np.ndarray:
    """The picture the panel's swatches show each style on, (H, W, 3) uint8 RGB, made in code: a
    sky with clouds and a sun, a wooded hill, a house and a tree.  Its cloud and foliage
    textures give a style's strokes something to work on, so the swatches differ in texture as
    well as palette (on the flat synthetic_picture they differed mostly in colour)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = xx / (w - 1), yy / (h - 1)
    img = np.stack([0.35 + 0.4 * u, 0.55 + 0.25 * v, 0.95 - 0.25 * v], -1)  # sky
    img += 0.18 * np.clip(_pink_noise(h, w, rng, 2.6), 0, None)[..., None]  # clouds
    img[np.hypot(xx - 0.75 * w, yy - 0.22 * h) < 0.09 * w] = [1.0, 0.85, 0.35]  # sun
    foliage = _pink_noise(h, w, rng, 1.6)
    ridge = 0.55 + 0.08 * np.sin(u * 2 * np.pi * 1.3 + 0.5) + 0.03 * _pink_noise(1, w, rng, 2.0)[0][None]
    hill = v > ridge
    img[hill] = (np.stack([0.25 + 0.1 * u, 0.5 - 0.15 * v, 0.2 + 0 * u], -1) + 0.08 * foliage[..., None])[hill]
    x0, x1, y0, y1 = int(0.18 * w), int(0.42 * w), int(0.52 * h), int(0.78 * h)
    img[y0:y1, x0:x1] = [0.85, 0.75, 0.6]  # house
    rh, cx, half = int(0.14 * h), (x0 + x1) / 2, (x1 - x0) / 2 + 6
    for r in range(rh):  # roof
        k = half * (r + 1) / rh
        img[y0 - rh + r, int(cx - k):int(cx + k)] = [0.65, 0.15, 0.12]
    img[int(0.62 * h):y1, int(0.27 * w):int(0.33 * w)] = [0.3, 0.2, 0.12]  # door
    img[int(0.57 * h):int(0.64 * h), int(0.35 * w):int(0.40 * w)] = [0.2, 0.35, 0.6]  # window
    crown = np.hypot(xx - 0.72 * w, (yy - 0.5 * h) * 1.2) < 0.11 * w
    img[crown] = (np.array([0.15, 0.42, 0.15]) + 0.1 * foliage[..., None])[crown]
    img[int(0.58 * h):int(0.75 * h), int(0.705 * w):int(0.735 * w)] = [0.35, 0.22, 0.1]  # trunk
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
