"""MSG-Net (Zhang & Dana 2017, "Multi-style Generative Network for Real-time Transfer") in PyTorch.

Our own implementation, written to match the state-dict key names, shapes and numerics of the
public reference (PyTorch-Multi-Style-Transfer, experiments/net.py) so that its pretrained
`21styles.model` and our own files load unchanged.  See /work/shared/docs/MSGNET.md (a copy of
the facts lives in docs/ of the repository once written).

Conventions
- Images are float tensors (B, 3, H, W) in BGR order, values 0..255, no normalisation.
- Output is BGR with no final activation; the caller clamps to 0..255.
- Output size is 4*ceil(ceil(H/2)/2) by the same for W.

Usage
    from msgnet import Net, load_state_dict_any
    net = Net(ngf=128, n_blocks=6)
    net.load_weights(load_state_dict_any("21styles.model"))
    net.set_target(style)          # style: (1, 3, S, S) BGR 0..255
    out = net(content)             # (B, 3, H', W')

InstanceNorm: affine-free, eps 1e-5, always per-image statistics (in train and eval mode).  The
modules still own `running_mean`/`running_var` buffers because PyTorch 0.2 saved them and the
pretrained file holds them; they are never read or updated.  Unlike a stock
`nn.InstanceNorm2d(track_running_stats=True)` there is no `num_batches_tracked` buffer (PyTorch 0.2
had none), so `state_dict()` has exactly the reference's keys.
"""

from __future__ import annotations

import collections
import os
from typing import Dict, Mapping, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "InstanceNorm2d",
    "ConvLayer",
    "UpsampleConvLayer",
    "Bottleneck",
    "UpBottleneck",
    "GramMatrix",
    "Inspiration",
    "Net",
    "EXPANSION",
    "output_size",
    "unique_param_keys",
    "alias_of",
    "infer_config",
    "infer_widths",
    "DEFAULT_WIDTHS",
    "load_state_dict_any",
]

EXPANSION = 4
IN_EPS = 1e-5

# The widths the reference fixes (and the pretrained file has): the full-resolution 7x7 ConvLayer's
# output c0 = 64, the first down Bottleneck's planes p1 = 32 (output 4 p1 = 128), the two
# UpBottlenecks' planes u1 = 32 and u2 = 16 (outputs 128 and 64), and the 7x7 first and last
# kernels.  Smaller values give a cheaper network with the same keys; every one of them is read
# back from the weight shapes (`infer_widths`), so a file always says what it is.
DEFAULT_WIDTHS = {"c0": 64, "p1": 32, "u1": 32, "u2": 16, "k_first": 7, "k_last": 7}


def output_size(h: int, w: int) -> Tuple[int, int]:
    """Spatial size of the network output for an (h, w) input."""

    def f(n: int) -> int:
        return 4 * (((n + 1) // 2 + 1) // 2)

    return f(h), f(w)


class InstanceNorm2d(nn.InstanceNorm2d):
    """Affine-free instance norm that always uses per-image statistics.

    Holds `running_mean`/`running_var` buffers (saved in the state dict like PyTorch 0.2 did) but
    never reads or updates them, whatever `train()`/`eval()` says.  No `num_batches_tracked`.
    """

    def __init__(self, num_features: int, eps: float = IN_EPS):
        super().__init__(num_features, eps=eps, affine=False, track_running_stats=True)
        # PyTorch 0.2 had no such buffer; a None buffer is left out of state_dict().
        self.num_batches_tracked = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, None, None, None, None, use_input_stats=True, eps=self.eps)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):
        # Files from newer PyTorch may carry num_batches_tracked; drop it.  Claim metadata
        # version 2 so the base class does not re-add it for old (version-less) files.
        state_dict.pop(prefix + "num_batches_tracked", None)
        local_metadata = dict(local_metadata)
        local_metadata["version"] = 2
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


class ConvLayer(nn.Module):
    """ReflectionPad2d(k // 2) then Conv2d(in, out, k, stride) with bias.  Key: `.conv2d`."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.reflection_pad(x))


class UpsampleConvLayer(nn.Module):
    """Nearest upsample (x `upsample`), reflection pad k // 2 (none for k = 1), Conv2d."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 upsample: Optional[int] = None):
        super().__init__()
        self.upsample = upsample
        self.reflection_padding = kernel_size // 2
        if self.reflection_padding:
            self.reflection_pad = nn.ReflectionPad2d(self.reflection_padding)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=self.upsample, mode="nearest")
        if self.reflection_padding:
            x = self.reflection_pad(x)
        return self.conv2d(x)


def _conv_block(inplanes: int, planes: int, middle: nn.Module) -> nn.Sequential:
    # Indices matter for the keys: 2, 5 and 8 hold weights; 0, 3, 6 hold running stats.
    return nn.Sequential(
        InstanceNorm2d(inplanes),                               # 0
        nn.ReLU(),                                              # 1
        nn.Conv2d(inplanes, planes, kernel_size=1, stride=1),   # 2
        InstanceNorm2d(planes),                                 # 3
        nn.ReLU(),                                              # 4
        middle,                                                 # 5
        InstanceNorm2d(planes),                                 # 6
        nn.ReLU(),                                              # 7
        nn.Conv2d(planes, planes * EXPANSION, kernel_size=1, stride=1),  # 8
    )


class Bottleneck(nn.Module):
    """Pre-activation bottleneck: residual + conv_block(x); residual is a strided 1x1 conv
    (`residual_layer`) when `downsample`, else x."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: bool = False):
        super().__init__()
        self.downsample = bool(downsample)
        if self.downsample:
            self.residual_layer = nn.Conv2d(inplanes, planes * EXPANSION, kernel_size=1,
                                            stride=stride)
        self.conv_block = _conv_block(inplanes, planes,
                                      ConvLayer(planes, planes, kernel_size=3, stride=stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.residual_layer(x) if self.downsample else x
        return residual + self.conv_block(x)


class UpBottleneck(nn.Module):
    """Up-sampling bottleneck: UpsampleConvLayer 1x1 residual + conv_block with an upsampling 3x3."""

    def __init__(self, inplanes: int, planes: int, stride: int = 2):
        super().__init__()
        self.residual_layer = UpsampleConvLayer(inplanes, planes * EXPANSION, kernel_size=1,
                                                stride=1, upsample=stride)
        self.conv_block = _conv_block(
            inplanes, planes,
            UpsampleConvLayer(planes, planes, kernel_size=3, stride=1, upsample=stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual_layer(x) + self.conv_block(x)


class GramMatrix(nn.Module):
    """G = F F^T / (C H W) per batch item, F = features viewed as (B, C, H*W)."""

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        b, c, h, w = y.shape
        f = y.reshape(b, c, h * w)
        return f.bmm(f.transpose(1, 2)) / (c * h * w)


class Inspiration(nn.Module):
    """CoMatch layer: P = W @ G, Y = P^T @ X (X viewed as (B, C, H*W)).

    `weight` (1, C, C) is learnt; the target G (B_g, C, C) is set at run time with
    `set_target` and is not part of the state dict.
    """

    def __init__(self, channels: int, batch: int = 1):
        super().__init__()
        self.C = channels
        self.weight = nn.Parameter(torch.empty(1, channels, channels))
        self.register_buffer("G", torch.zeros(batch, channels, channels), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.uniform_(0.0, 0.02)

    def set_target(self, target: torch.Tensor) -> None:
        self.G = target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        p = torch.bmm(self.weight.expand_as(self.G), self.G)
        pt = p.transpose(1, 2).expand(b, c, c)
        return torch.bmm(pt, x.reshape(b, c, h * w)).reshape(b, c, h, w)

    def extra_repr(self) -> str:
        return f"N x {self.C}"


class Net(nn.Module):
    """MSG-Net generator.  The pretrained 21styles.model is Net(ngf=128, n_blocks=6).

    `model[0] is model1` and `model[1] is ins`, so the state dict lists every `model1.*` key again
    as `model.0.*` and `ins.weight` again as `model.1.weight` (same tensors), as the reference does.
    """

    def __init__(self, ngf: int = 128, n_blocks: int = 6, *, input_nc: int = 3, output_nc: int = 3,
                 widths: Optional[Mapping[str, int]] = None):
        super().__init__()
        w = dict(DEFAULT_WIDTHS)
        if widths:
            unknown = set(widths) - set(w)
            if unknown:
                raise ValueError(f"unknown width names {sorted(unknown)}; known: {sorted(w)}")
            w.update(widths)
        self.ngf = ngf
        self.n_blocks = n_blocks
        self.widths = w
        c0, p1, u1, u2 = w["c0"], w["p1"], w["u1"], w["u2"]
        self.gram = GramMatrix()
        self.model1 = nn.Sequential(
            ConvLayer(input_nc, c0, kernel_size=w["k_first"], stride=1),
            InstanceNorm2d(c0),
            nn.ReLU(),
            Bottleneck(c0, p1, stride=2, downsample=True),
            Bottleneck(p1 * EXPANSION, ngf, stride=2, downsample=True),
        )
        self.ins = Inspiration(ngf * EXPANSION)
        layers = [self.model1, self.ins]
        layers += [Bottleneck(ngf * EXPANSION, ngf, stride=1) for _ in range(n_blocks)]
        layers += [
            UpBottleneck(ngf * EXPANSION, u1, stride=2),
            UpBottleneck(u1 * EXPANSION, u2, stride=2),
            InstanceNorm2d(u2 * EXPANSION),
            nn.ReLU(),
            ConvLayer(u2 * EXPANSION, output_nc, kernel_size=w["k_last"], stride=1),
        ]
        self.model = nn.Sequential(*layers)

    # -- style target -------------------------------------------------------------------------
    def target_of(self, style: torch.Tensor) -> torch.Tensor:
        """Gram matrix of the encoder features of `style` (B, 3, S, S)."""
        return self.gram(self.model1(style))

    def set_target(self, style: torch.Tensor) -> None:
        self.ins.set_target(self.target_of(style))

    # reference spelling
    setTarget = set_target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    # -- weights --------------------------------------------------------------------------------
    @classmethod
    def from_state_dict(cls, state: Mapping[str, torch.Tensor]) -> "Net":
        ngf, n_blocks = infer_config(state)
        net = cls(ngf=ngf, n_blocks=n_blocks, widths=infer_widths(state, n_blocks))
        net.load_weights(state)
        return net

    def load_weights(self, state: Mapping[str, torch.Tensor], strict: bool = True) -> None:
        """Copy weights from any of our layouts: full reference state dict (with or without
        aliases, running stats and num_batches_tracked) or the safetensors layout (unique
        parameters only).  Missing running stats are fine (never used).  With `strict`, every
        parameter must be present (directly or through its alias) with the right shape, and
        unknown keys are an error."""
        own = self.state_dict(keep_vars=True)
        used = set()
        problems = []
        for key, dst in own.items():
            src_key = key if key in state else alias_of(key)
            if src_key is None or src_key not in state:
                if key.endswith(("running_mean", "running_var")):
                    continue
                problems.append(f"missing {key}")
                continue
            src = state[src_key]
            used.add(src_key)
            if tuple(src.shape) != tuple(dst.shape):
                problems.append(f"{key}: shape {tuple(src.shape)} in file, {tuple(dst.shape)} in net")
                continue
            with torch.no_grad():
                dst.copy_(src.to(dst.dtype))
        for key in state:
            if key not in used and key not in own and not key.endswith("num_batches_tracked"):
                problems.append(f"unexpected {key}")
        if problems and strict:
            raise ValueError("weights do not fit Net(ngf=%d, n_blocks=%d): %s"
                             % (self.ngf, self.n_blocks, "; ".join(problems)))


def alias_of(key: str) -> Optional[str]:
    """The other name of a shared tensor (model1.X <-> model.0.X, ins.weight <-> model.1.weight)."""
    if key.startswith("model1."):
        return "model.0." + key[len("model1."):]
    if key.startswith("model.0."):
        return "model1." + key[len("model.0."):]
    if key == "ins.weight":
        return "model.1.weight"
    if key == "model.1.weight":
        return "ins.weight"
    return None


def unique_param_keys(state: Mapping[str, torch.Tensor]) -> list:
    """Parameter keys the network uses, without aliases and running stats (safetensors layout)."""
    out = []
    for k in state:
        if k.startswith("model.0.") or k == "model.1.weight":
            continue
        if k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue
        out.append(k)
    return out


def infer_config(state: Mapping[str, torch.Tensor]) -> Tuple[int, int]:
    """(ngf, n_blocks) from the shapes and keys of a state dict (any of our layouts)."""
    w = state.get("ins.weight", state.get("model.1.weight"))
    if w is None:
        raise ValueError("no ins.weight / model.1.weight: not an MSG-Net state dict")
    c = int(w.shape[-1])
    if c % EXPANSION:
        raise ValueError(f"ins.weight has {c} channels, not a multiple of {EXPANSION}")
    blocks = set()
    for k in state:
        parts = k.split(".")
        if len(parts) > 2 and parts[0] == "model" and parts[1].isdigit() and int(parts[1]) >= 2:
            blocks.add(int(parts[1]))
    # model.2 .. model.(1+n) are Bottlenecks, then 2 UpBottlenecks, then IN (running stats
    # only), ReLU, final ConvLayer.
    convs = sorted(i for i in blocks if f"model.{i}.conv2d.weight" in state)
    if not convs:
        raise ValueError("no final ConvLayer model.N.conv2d.weight")
    n_blocks = convs[-1] - 2 - 2 - 3 + 1
    if n_blocks < 0:
        raise ValueError(f"final layer model.{convs[-1]} implies {n_blocks} blocks")
    return c // EXPANSION, n_blocks


def infer_widths(state: Mapping[str, torch.Tensor], n_blocks: Optional[int] = None) -> Dict[str, int]:
    """The widths of DEFAULT_WIDTHS, read from the weight shapes (any of our layouts)."""
    if n_blocks is None:
        n_blocks = infer_config(state)[1]

    def shape(key: str):
        t = state.get(key)
        if t is None and alias_of(key) is not None:
            t = state.get(alias_of(key))
        if t is None:
            raise ValueError(f"missing key {key}: not an MSG-Net state dict")
        return tuple(t.shape)

    up1, last = 2 + n_blocks, 2 + n_blocks + 4
    first = shape("model1.0.conv2d.weight")
    final = shape(f"model.{last}.conv2d.weight")
    return {
        "c0": first[0],
        "p1": shape("model1.3.conv_block.2.weight")[0],
        "u1": shape(f"model.{up1}.conv_block.2.weight")[0],
        "u2": shape(f"model.{up1 + 1}.conv_block.2.weight")[0],
        "k_first": first[-1],
        "k_last": final[-1],
    }


def load_state_dict_any(path: str) -> "collections.OrderedDict[str, torch.Tensor]":
    """Load weights from `.safetensors`, a zip `.pth`, or a legacy (non-zip) torch file written by
    PyTorch 0.x under Python 2 or 3.  Tensors come back on the CPU as float32.

    Legacy and zip files go through `torch.load(weights_only=False)`, which runs the pickle:
    use it only on files you trust (the Rust reader is the safe one)."""
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(state, Mapping):
            raise ValueError(f"{path}: expected a state dict, found {type(state).__name__}")
    out = collections.OrderedDict()
    for k, v in state.items():
        if isinstance(v, nn.Parameter):
            v = v.data
        out[k] = v.float() if v.is_floating_point() else v
    return out
