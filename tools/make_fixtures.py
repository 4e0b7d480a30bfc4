#!/usr/bin/env python3
"""Generate the MSG-Net parity fixtures in tests/fixtures/parity/ (deterministic, fixed seeds).

    python3 tools/make_fixtures.py                 # regenerate tests/fixtures/parity/
    python3 tools/make_fixtures.py --full /tmp/fullsize   # also a full-size (ngf=128) model + case

Everything is synthetic: random-weight models and generated images (gradients, shapes, seeded
noise).  References are computed in float64 from the float32 weights and inputs, then stored as
float32.  See tests/fixtures/README.md for what each file holds.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import os
import pickle
import pickletools
import re
import struct
import sys
import zipfile
import zlib

import numpy as np
import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import legacy_py2 as L  # noqa: E402
from msgnet import (InstanceNorm2d, Net, alias_of, infer_config, infer_widths,  # noqa: E402
                    output_size, unique_param_keys)
from pngio import read_png, write_png  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "tests", "fixtures", "parity")

STYLE_SIZE = 32
OUT_LO, OUT_HI = -50.0, 300.0   # final layer scaled so the calibration output spans this
VIEW_KEY = "model1.3.residual_layer.weight"  # stored as a strided view in the py2 file
VIEW_OFFSET = 7
VIEW_PAD_VALUE = -12345.0       # fills the storage before the view's offset

# Non-default widths (see DEFAULT_WIDTHS in tools/msgnet.py): every one differs from the
# reference's 64/32/32/16/7/7, so an engine that hard-codes any of them fails to load or to match.
NARROW = {"c0": 8, "p1": 4, "u1": 4, "u2": 2, "k_first": 5, "k_last": 3}
# name, ngf, blocks, weight seed, calibration case (H, W), widths (None: the reference's)
MODELS = [
    ("tiny_ngf8_b2", 8, 2, 8002, (48, 64), None),
    ("tiny_ngf16_b1", 16, 1, 16001, (40, 56), None),
    ("narrow_ngf8_b1", 8, 1, 8101, (36, 52), NARROW),
]
# model name, H, W, content seed, style seed
CASES = [
    ("tiny_ngf8_b2", 48, 64, 101, 201),
    ("tiny_ngf8_b2", 30, 42, 102, 202),
    ("tiny_ngf16_b1", 40, 56, 103, 203),
    ("narrow_ngf8_b1", 36, 52, 104, 204),
    ("narrow_ngf8_b1", 29, 38, 105, 205),
]
IMG_MODEL = "tiny_ngf8_b2"
IMG_W, IMG_H = 64, 48
IMG_SEEDS = (301, 302)  # content, style
FULL = ("full_ngf128", 128, 6, 128006, 256, 512, 401, 402)  # name ngf blocks seed size style seeds


# ---------------------------------------------------------------------------------------------
# synthetic images
# ---------------------------------------------------------------------------------------------

def synth_rgb(h: int, w: int, seed: int, texture: bool = False) -> np.ndarray:
    """(h, w, 3) uint8 RGB: colour gradients, a sine wave, a disc, a box, seeded noise;
    `texture` adds a checkerboard and higher frequencies (for style images)."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, h)[:, None]
    x = np.linspace(0.0, 1.0, w)[None, :]
    img = np.zeros((h, w, 3))
    img[..., 0] = 255.0 * x * (0.6 + 0.4 * y)
    img[..., 1] = 255.0 * y * (1.0 - 0.5 * x)
    freq = rng.uniform(4.0, 7.0) if texture else rng.uniform(1.5, 3.0)
    img[..., 2] = 128.0 + 110.0 * np.sin(2 * np.pi * freq * (x + 0.7 * y) + rng.uniform(0, 2 * np.pi))
    yy, xx = np.mgrid[0:h, 0:w]
    cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
    r = rng.uniform(0.15, 0.3) * min(h, w)
    img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
    y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
    img[y0:y0 + max(1, h // 4), x0:x0 + max(1, w // 3)] = rng.uniform(0, 255, 3)
    if texture:
        cell = max(2, min(h, w) // 8)
        img *= (0.55 + 0.45 * (((yy // cell) + (xx // cell)) % 2))[..., None]
    img += rng.normal(0.0, 10.0, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def rgb_to_bgr_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) RGB uint8 -> (1, 3, H, W) BGR float32 0..255."""
    return torch.from_numpy(np.ascontiguousarray(rgb[..., ::-1].transpose(2, 0, 1))).float()[None]


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------

def make_net(ngf: int, blocks: int, seed: int, widths=None) -> Net:
    """Random MSG-Net: PyTorch default init (random weights and biases), Inspiration weight
    uniform(0, 0.02) like the reference, running stats set to garbage (never to be used)."""
    torch.manual_seed(seed)
    net = Net(ngf, blocks, widths=widths)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, InstanceNorm2d):
                c = m.running_mean.numel()
                m.running_mean.copy_(1000.0 + torch.arange(c, dtype=torch.float32))
                m.running_var.fill_(1e-3)
    return net


def as_f64(net: Net) -> Net:
    return copy.deepcopy(net).double()


def run_parts(net64: Net, content: torch.Tensor, style: torch.Tensor):
    """float64 forward split so the final ConvLayer can be recalibrated without recomputing:
    returns (gram, model1 features, input of the final ConvLayer)."""
    with torch.no_grad():
        gram = net64.target_of(style.double())
        net64.ins.set_target(gram)
        feats = net64.model1(content.double())
        h = feats
        for m in list(net64.model)[1:-1]:
            h = m(h)
    return gram, feats, h


def calibrate_final_layer(net: Net, net64: Net, h: torch.Tensor) -> None:
    """Scale/shift each output channel of the final ConvLayer so that its output on `h` spans
    OUT_LO..OUT_HI (like a stylised image, partly outside 0..255).  Weights stay float32."""
    with torch.no_grad():
        y = net64.model[-1](h)
        mn, mx = y.amin(dim=(0, 2, 3)), y.amax(dim=(0, 2, 3))
        s = (OUT_HI - OUT_LO) / (mx - mn)
        c = OUT_LO - s * mn
        conv = net.model[-1].conv2d
        conv.weight.copy_((conv.weight.double() * s[:, None, None, None]).float())
        conv.bias.copy_((conv.bias.double() * s + c).float())


# ---------------------------------------------------------------------------------------------
# file writers
# ---------------------------------------------------------------------------------------------

def contiguous_stride(shape):
    stride, acc = [], 1
    for n in reversed(shape):
        stride.append(acc)
        acc *= n
    return tuple(reversed(stride))


def fake_addresses(n: int, seed: int) -> list:
    """Distinct 14-digit decimal strings that look like 64-bit heap pointers (what
    str(storage._cdata) gave), in random order, so the sorted key order differs from the order
    the storages appear in the pickle."""
    rng = np.random.default_rng(seed)
    base = 94_000_000_000_000
    picks = rng.choice(2 ** 36, size=n, replace=False)
    return [str(base + int(p) * 16) for p in picks]


def write_py2_model(net: Net, path: str, seed: int) -> dict:
    """Hand-emit a Python 2 / PyTorch 0.2 legacy file of `net`'s full state dict.

    - model.0.* entries are the SAME tensor objects as model1.* (BINGET), as 0.2 on Python 2
      pickled a state dict whose aliased entries were one Python object;
    - model.1.weight is a separate _rebuild_tensor REDUCE on the same root storage as ins.weight
      (same root key, storage written once);
    - VIEW_KEY is stored transposed at offset VIEW_OFFSET of a larger storage with swapped
      strides, a faithful non-contiguous view."""
    sd = net.state_dict()
    addrs = iter(fake_addresses(len(sd), seed))
    storages, objs, items = {}, {}, []
    info = {}
    for k, t in sd.items():
        arr = t.detach().cpu().numpy().astype("<f4")
        primary = k if (k.startswith("model1.") or k == "ins.weight" or alias_of(k) is None) else alias_of(k)
        if primary != k:
            if k == "model.1.weight":
                st = storages[primary]
                items.append((k, L.tensor_obj(st, 0, arr.shape, contiguous_stride(arr.shape))))
            else:
                items.append((k, objs[primary]))
            continue
        key = next(addrs)
        if k == VIEW_KEY:
            o, i = arr.shape[0], arr.shape[1]
            assert arr.shape[2:] == (1, 1)
            data = np.concatenate([np.full(VIEW_OFFSET, VIEW_PAD_VALUE, "<f4"),
                                   arr.reshape(o, i).T.reshape(-1)])
            st = L.Storage(key, data)
            stride = (1, o, 1, 1)
            obj = L.tensor_obj(st, VIEW_OFFSET, arr.shape, stride)
            info = {"key": k, "storage_numel": int(data.size), "offset": VIEW_OFFSET,
                    "size": list(arr.shape), "stride": list(stride),
                    "pad_value": VIEW_PAD_VALUE}
        else:
            st = L.Storage(key, arr.reshape(-1))
            obj = L.tensor_obj(st, 0, arr.shape, contiguous_stride(arr.shape))
        storages[k] = st
        objs[k] = obj
        items.append((k, obj))
    L.write_py2_file(path, items, list(storages.values()))
    return info


def pickle_ops(buf: bytes, bounds):
    """All (opcode name, arg) of the pickles at `bounds`; runs pickletools.dis on each (which
    checks the stack and memo discipline) and returns the ops."""
    ops = []
    for start, end in bounds:
        pickletools.dis(buf[start:end], out=io.StringIO())
        ops += [(op.name, arg) for op, arg, _ in pickletools.genops(buf[start:end])]
    return ops


def check_state_equal(name: str, got, want, ordered: bool = True) -> None:
    want = {k: (v.detach().cpu().numpy() if torch.is_tensor(v) else v) for k, v in want.items()}
    got = {k: (v.detach().cpu().numpy() if torch.is_tensor(v) else np.asarray(v)) for k, v in got.items()}
    if (list(got) != list(want)) if ordered else (set(got) != set(want)):
        raise AssertionError(f"{name}: keys differ: {set(got) ^ set(want)}")
    for k in want:
        if got[k].shape != want[k].shape or not np.array_equal(got[k], want[k]):
            raise AssertionError(f"{name}: {k} differs")


def fix_zip_serialization_id(path: str, name: str) -> None:
    """torch >= 2.x writes a random `.data/serialization_id` record into zip checkpoints.  Replace
    it by a fixed id (same length) and patch both CRC-32 fields so the file is reproducible."""
    with open(path, "rb") as fh:
        buf = bytearray(fh.read())
    zf = zipfile.ZipFile(io.BytesIO(bytes(buf)))
    infos = [i for i in zf.infolist() if i.filename.endswith(".data/serialization_id")]
    if not infos:
        return
    (zi,) = infos
    if zi.compress_type != zipfile.ZIP_STORED:
        raise RuntimeError("serialization_id is compressed")
    old = zf.read(zi)
    new = hashlib.sha256(name.encode()).hexdigest()
    new = "".join(str(int(c, 16) % 10) for c in new)[: len(old)].encode()
    h = zi.header_offset
    assert buf[h:h + 4] == b"PK\x03\x04"
    nlen, xlen = struct.unpack("<HH", buf[h + 26:h + 30])
    data_at = h + 30 + nlen + xlen
    assert bytes(buf[data_at:data_at + len(old)]) == old
    buf[data_at:data_at + len(new)] = new
    crc = struct.pack("<I", zlib.crc32(new))
    buf[h + 14:h + 18] = crc
    fname = zi.filename.encode()
    n = 0
    for m in re.finditer(re.escape(b"PK\x01\x02"), bytes(buf)):
        c = m.start()
        cn = struct.unpack("<H", buf[c + 28:c + 30])[0]
        if bytes(buf[c + 46:c + 46 + cn]) == fname:
            buf[c + 16:c + 20] = crc
            n += 1
    assert n == 1, n
    with open(path, "wb") as fh:
        fh.write(buf)
    zipfile.ZipFile(path).testzip()


def renumber_legacy_keys(path: str) -> None:
    """torch's legacy writer names storages by memory address (str(storage._cdata)), and writes
    the data in the sorted order of those names, so every run gives different bytes.  Rename each
    root key to a fixed number of the same length, numbered in order of first appearance in the
    state-dict pickle (BINUNICODE strings only), rewrite the key-list pickle sorted (as torch
    does: pickle protocol 2 of a sorted list of str) and reorder the data blocks to match."""
    lf = L.read_legacy(path)
    with open(path, "rb") as fh:
        buf = fh.read()
    lengths = {len(k) for k in lf.storage_keys}
    if len(lengths) != 1:
        raise RuntimeError(f"root keys of different lengths {lengths}; rerun")
    (n,) = lengths
    sd_start, sd_end = lf.pickle_bounds[3]
    pat = re.compile(re.escape(b"X" + struct.pack("<I", n)) + rb"(\d{%d})" % n)
    mapping = {}
    for m in pat.finditer(buf, sd_start, sd_end):
        if m.group(1) not in mapping:
            mapping[m.group(1)] = str(10 ** (n - 1) + 4096 * (len(mapping) + 1)).encode()
    assert {k.encode() for k in lf.storage_keys} == set(mapping), "key scan mismatch"
    head = buf[:sd_start] + pat.sub(lambda m: m.group(0)[:5] + mapping[m.group(1)],
                                    buf[sd_start:sd_end])
    new_keys = sorted(v.decode() for v in mapping.values())
    keys_pickle = pickle.dumps(new_keys, protocol=2)
    # data blocks of the old file, in the old order
    pos = lf.pickle_bounds[4][1]
    blocks = {}
    for k in lf.storage_keys:
        (numel,) = struct.unpack("<q", buf[pos:pos + 8])
        nbytes = 8 + numel * 4  # float32 storages only
        blocks[mapping[k.encode()].decode()] = buf[pos:pos + nbytes]
        pos += nbytes
    assert pos == len(buf)
    with open(path, "wb") as fh:
        fh.write(head + keys_pickle + b"".join(blocks[k] for k in new_keys))


def save_model_files(net: Net, name: str, out: str, seed: int, formats=("safetensors", "pth", "py3", "py2")) -> dict:
    sd = net.state_dict()
    uniq = unique_param_keys(sd)
    report = {}
    if "safetensors" in formats:
        p = os.path.join(out, f"{name}.safetensors")
        save_file({k: sd[k].detach().float().contiguous() for k in uniq}, p,
                  metadata={"format": "pt"})  # one entry: the header order stays fixed
        check_state_equal(p, load_file(p), {k: sd[k] for k in uniq}, ordered=False)
    if "pth" in formats:
        p = os.path.join(out, f"{name}.pth")
        torch.save(sd, p)
        fix_zip_serialization_id(p, name)
        check_state_equal(p, torch.load(p, map_location="cpu", weights_only=True), sd)
    if "py3" in formats:
        p = os.path.join(out, f"{name}_legacy_py3.model")
        torch.save(sd, p, _use_new_zipfile_serialization=False)
        renumber_legacy_keys(p)
        with open(p, "rb") as fh:
            buf = fh.read()
        assert buf.startswith(L.MAGIC_BYTES[:-1]), buf[:16].hex(" ")
        lf = L.read_legacy(p)
        ops = pickle_ops(buf, lf.pickle_bounds)
        globals_ = {a for o, a in ops if o == "GLOBAL"}
        assert "torch._utils _rebuild_tensor_v2" in globals_, globals_
        check_state_equal(p + " (own reader)", lf.state_dict, sd)
        check_state_equal(p + " (torch.load)", torch.load(p, map_location="cpu", weights_only=True), sd)
        report["py3_sys_info"] = lf.sys_info
        report["py3_strings"] = sorted(lf.strings_seen)
        report["py3_globals"] = sorted(globals_)
        report["py3_storages"] = len(lf.storage_keys)
    if "py2" in formats:
        p = os.path.join(out, f"{name}_legacy_py2.model")
        view = write_py2_model(net, p, seed)
        report["py2_view"] = view
        with open(p, "rb") as fh:
            buf = fh.read()
        assert buf.startswith(L.MAGIC_BYTES), buf[:16].hex(" ")
        lf = L.read_legacy(p)
        ops = pickle_ops(buf, lf.pickle_bounds)
        names = {o for o, _ in ops}
        globals_ = {a for o, a in ops if o == "GLOBAL"}
        assert not names & {"BINUNICODE", "SHORT_BINUNICODE", "UNICODE"}, names
        assert globals_ == {"collections OrderedDict", "torch._utils _rebuild_tensor",
                            "torch.cuda FloatStorage"}, globals_
        assert lf.sys_info["type_sizes"]["long"] == 8
        check_state_equal(p + " (own reader)", lf.state_dict, sd)
        # independent check: PyTorch's own legacy loader
        try:
            loaded = torch.load(p, map_location="cpu", weights_only=True)
            report["py2_torch_load"] = "weights_only=True"
        except Exception as e:  # noqa: BLE001
            loaded = torch.load(p, map_location="cpu", weights_only=False)
            report["py2_torch_load"] = f"weights_only=False (weights_only=True said: {str(e).splitlines()[0]})"
        check_state_equal(p + " (torch.load)", loaded, sd)
        shared = lf.tensors
        assert shared["model1.0.conv2d.weight"].storage_key == shared["model.0.0.conv2d.weight"].storage_key
        assert shared["ins.weight"].storage_key == shared["model.1.weight"].storage_key
        report["py2_storages"] = len(lf.storage_keys)
        report["py2_opcodes"] = sorted(names)
        report["py2_memo_long"] = "LONG_BINPUT" in names
    return report


def model_json(net: Net, name: str, out: str, extra: dict) -> dict:
    sd = net.state_dict()
    uniq = unique_param_keys(sd)
    meta = {
        "name": name,
        "ngf": net.ngf,
        "blocks": net.n_blocks,
        "widths": net.widths,
        "params": int(sum(sd[k].numel() for k in uniq)),
        "unique_tensors": len(uniq),
        "num_keys": len(sd),
        "keys": {k: list(v.shape) for k, v in sd.items()},
    }
    meta.update(extra)
    with open(os.path.join(out, f"{name}.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
        fh.write("\n")
    return meta


# ---------------------------------------------------------------------------------------------
# cases
# ---------------------------------------------------------------------------------------------

def fixture_metadata(note: str, stats: dict) -> dict:
    """safetensors metadata with ONE entry (the writer orders a multi-entry map at random, which
    would make the files differ from run to run)."""
    return {"fixture": json.dumps({"note": note, **stats}, sort_keys=True)}


def make_case(net: Net, content: torch.Tensor, style: torch.Tensor, path: str, note: str) -> dict:
    """Reference in float64 from the float32 weights, stored as float32; also measures how far
    PyTorch's own float32 forward lands from it (a guide for tolerances)."""
    net64 = as_f64(net)
    gram, feats, h = run_parts(net64, content, style)
    with torch.no_grad():
        out = net64.model[-1](h)
        full = net64(content.double())
        assert torch.equal(full, out)
        net32 = copy.deepcopy(net)
        net32.set_target(style)
        out32 = net32(content)
    H, W = content.shape[2:]
    assert tuple(out.shape[2:]) == output_size(H, W)
    tensors = {
        "content": content.float().contiguous(),
        "style": style.float().contiguous(),
        "gram": gram.float().contiguous(),
        "features": feats.float().contiguous(),
        "output": out.float().contiguous(),
    }
    diff = float((out32.double() - out).abs().max())
    stats = {
        "output_min": float(out.min()), "output_max": float(out.max()),
        "output_absmax": float(out.abs().max()),
        "frac_outside_0_255": float(((out < 0) | (out > 255)).double().mean()),
        "torch_f32_max_abs_diff": diff,
    }
    meta = {k: v for k, v in stats.items() if k != "torch_f32_max_abs_diff"}  # machine-dependent
    save_file(tensors, path, metadata=fixture_metadata(note, meta))
    return {"file": os.path.basename(path),
            "shapes": {k: list(v.shape) for k, v in tensors.items()}, **stats}


def image_case(net: Net, out: str) -> dict:
    """CLI-level case: PNG in, PNG out, following the reference image pipeline."""
    crgb = synth_rgb(IMG_H, IMG_W, IMG_SEEDS[0])
    srgb = synth_rgb(STYLE_SIZE, STYLE_SIZE, IMG_SEEDS[1], texture=True)
    cp, sp = os.path.join(out, "img_content.png"), os.path.join(out, "img_style.png")
    write_png(cp, crgb)
    write_png(sp, srgb)
    # the pipeline, from the files: RGB -> BGR float 0..255 -> target -> forward
    content = rgb_to_bgr_tensor(read_png(cp))
    style = rgb_to_bgr_tensor(read_png(sp))
    assert np.array_equal(read_png(cp), crgb) and np.array_equal(read_png(sp), srgb)
    net64 = as_f64(net)
    with torch.no_grad():
        net64.set_target(style.double())
        y = net64(content.double())[0]          # (3, H, W) BGR float64
    rgb = y.flip(0).permute(1, 2, 0).contiguous()  # HWC RGB
    u8 = torch.round(rgb.clamp(0, 255)).to(torch.uint8).numpy()
    ep = os.path.join(out, f"img_expected_{IMG_MODEL[5:]}.png")
    write_png(ep, u8)
    frac = (rgb.clamp(0, 255) - rgb.clamp(0, 255).floor() - 0.5).abs()
    near_half = int((frac < 1e-3).sum())
    save_file({"output": rgb.float().contiguous()}, os.path.join(out, f"img_expected_{IMG_MODEL[5:]}.safetensors"),
              metadata=fixture_metadata("unclamped, unrounded output of img_content.png styled by "
                                        "img_style.png with tiny_ngf8_b2, HWC RGB, float64 computed", {}))
    return {"content": [IMG_H, IMG_W], "output_min": float(rgb.min()), "output_max": float(rgb.max()),
            "values_within_1e-3_of_half": near_half}


def build_tiny(out: str) -> dict:
    os.makedirs(out, exist_ok=True)
    summary = {"torch": torch.__version__, "models": {}, "cases": [], "image": None}
    nets = {}
    for name, ngf, blocks, seed, (ch, cw), widths in MODELS:
        net = make_net(ngf, blocks, seed, widths)
        # calibrate the final layer on this model's first case
        cname, H, W, cs, ss = next(c for c in CASES if c[0] == name and (c[1], c[2]) == (ch, cw))
        content = rgb_to_bgr_tensor(synth_rgb(H, W, cs))
        style = rgb_to_bgr_tensor(synth_rgb(STYLE_SIZE, STYLE_SIZE, ss, texture=True))
        net64 = as_f64(net)
        _, _, h = run_parts(net64, content, style)
        calibrate_final_layer(net, net64, h)
        nets[name] = net
        sd = net.state_dict()
        assert infer_config(sd) == (ngf, blocks) and infer_widths(sd) == net.widths, name
        report = save_model_files(net, name, out, seed)
        meta = model_json(net, name, out, {"seed": seed, "py2_view": report.get("py2_view")})
        summary["models"][name] = {"params": meta["params"], "unique_tensors": meta["unique_tensors"],
                                   "num_keys": meta["num_keys"], **report}
    for name, H, W, cs, ss in CASES:
        content = rgb_to_bgr_tensor(synth_rgb(H, W, cs))
        style = rgb_to_bgr_tensor(synth_rgb(STYLE_SIZE, STYLE_SIZE, ss, texture=True))
        path = os.path.join(out, f"case_{name}_{H}x{W}.safetensors")
        summary["cases"].append(make_case(nets[name], content, style, path,
                                          f"{name}, content {H}x{W} (HxW), style {STYLE_SIZE}x{STYLE_SIZE}"))
    summary["image"] = image_case(nets[IMG_MODEL], out)
    return summary


def build_full(out: str) -> dict:
    name, ngf, blocks, seed, size, ssize, cs, ss = FULL
    os.makedirs(out, exist_ok=True)
    net = make_net(ngf, blocks, seed)
    content = rgb_to_bgr_tensor(synth_rgb(size, size, cs))
    style = rgb_to_bgr_tensor(synth_rgb(ssize, ssize, ss, texture=True))
    net64 = as_f64(net)
    gram, feats, h = run_parts(net64, content, style)
    calibrate_final_layer(net, net64, h)
    report = save_model_files(net, name, out, seed, formats=("safetensors", "py2"))
    meta = model_json(net, name, out, {"seed": seed, "py2_view": report.get("py2_view")})
    net64 = as_f64(net)  # calibrated weights
    with torch.no_grad():
        out64 = net64.model[-1](h)
        net32 = copy.deepcopy(net)
        net32.set_target(style)
        out32 = net32(content)
    tensors = {"content": content, "style": style, "gram": gram.float(), "features": feats.float(),
               "output": out64.float()}
    path = os.path.join(out, f"case_{name}_{size}x{size}.safetensors")
    stats = {"output_min": float(out64.min()), "output_max": float(out64.max()),
             "torch_f32_max_abs_diff": float((out32.double() - out64).abs().max())}
    save_file({k: v.contiguous() for k, v in tensors.items()}, path,
              metadata=fixture_metadata(f"{name} content {size}x{size}, style {ssize}x{ssize}, float64 reference",
                                        {k: v for k, v in stats.items() if k != "torch_f32_max_abs_diff"}))
    return {"model": meta["params"], "report": report, "case": os.path.basename(path),
            "shapes": {k: list(v.shape) for k, v in tensors.items()}, **stats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT, help="fixture folder (default: tests/fixtures/parity)")
    ap.add_argument("--full", metavar="DIR", help="also write a full-size ngf=128 model and case into DIR")
    ap.add_argument("--skip-tiny", action="store_true", help="with --full: only the full-size files")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    if not args.skip_tiny:
        summary = build_tiny(args.out)
        with open(os.path.join(args.out, "summary.json"), "w") as fh:
            json.dump(summary, fh, indent=1)
            fh.write("\n")
        print(json.dumps(summary, indent=1))
    if args.full:
        print(json.dumps(build_full(args.full), indent=1))


if __name__ == "__main__":
    main()
