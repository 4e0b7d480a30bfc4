#!/usr/bin/env python3
"""Time MSG-Net in PyTorch (float32 eager, inference mode, NCHW) and optionally stylecam next to it.

    python3 tools/bench_torch.py --size 320x240 --size 640x480 --runs 10 --threads 4
    python3 tools/bench_torch.py --model weights.safetensors --stylecam target/release/stylecam
    python3 tools/bench_torch.py --device cuda --autocast fp16 --size 1280x720
    python3 tools/bench_torch.py --bf16 --stylecam target/release/stylecam   # f32 and bf16 autocast

With --bf16 every size is timed twice in PyTorch, float32 and then under bf16 autocast (the same
weights, input and runs), and the table gains a torch-bf16 column (and stylecam / torch-bf16).

Sizes are WIDTHxHEIGHT.  Each size: 2 warm-up runs, then --runs timed runs; median and min are
reported.  The style target (from a random --style-size image) is set before timing and is not
part of the timed forward.  Without --model a random ngf=128, 6-block model (the layout of the
pretrained 21styles.model) is generated and saved as safetensors so stylecam can load the very
same weights; its path is printed.

With --stylecam BIN, for each size (interleaved: torch then stylecam) it runs
    BIN bench --model FILE --size WxH --runs N --json [--stylecam-args ...]
with RAYON_NUM_THREADS=T, reads the JSON object lines it prints (keys: size, device, median_ms,
min_ms, runs, gmac) and prints a table with ratio = stylecam / torch (< 1: stylecam is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from msgnet import Inspiration, Net, output_size, unique_param_keys  # noqa: E402


def parse_size(text: str):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, got {text!r}")
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError(f"size {text!r} too small")
    return w, h


def _load_safetensors(path):
    try:
        from safetensors.torch import load_file
    except ImportError:  # e.g. a GPU box with torch only: read the (simple) format ourselves
        with open(path, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
            data = fh.read()
        dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}
        out = {}
        for k, v in header.items():
            if k == "__metadata__":
                continue
            s, e = v["data_offsets"]
            out[k] = torch.frombuffer(bytearray(data[s:e]), dtype=dtypes[v["dtype"]]).reshape(v["shape"])
        return out
    return load_file(path)


def _save_safetensors(tensors, path):
    tensors = {k: v.detach().cpu().float().contiguous() for k, v in tensors.items()}
    try:
        from safetensors.torch import save_file
    except ImportError:
        header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
        for k in sorted(tensors):
            b = tensors[k].numpy().tobytes()
            header[k] = {"dtype": "F32", "shape": list(tensors[k].shape), "data_offsets": [off, off + len(b)]}
            blobs.append(b)
            off += len(b)
        h = json.dumps(header, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        with open(path, "wb") as fh:
            fh.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
        return
    save_file(tensors, path, metadata={"format": "pt"})


def load_or_make_model(path, save_to):
    if path:
        net = Net.from_state_dict(_load_safetensors(path))
        return net, path
    torch.manual_seed(0)
    net = Net(128, 6)
    sd = net.state_dict()
    if save_to is None:
        fd, save_to = tempfile.mkstemp(prefix="msgnet_random_ngf128_", suffix=".safetensors")
        os.close(fd)
    _save_safetensors({k: sd[k] for k in unique_param_keys(sd)}, save_to)
    print(f"# random ngf=128 6-block model saved to {save_to}", file=sys.stderr)
    return net, save_to


def count_gmac(net: Net, x: torch.Tensor) -> float:
    """Multiply-adds of one forward: convolutions + the Inspiration product P^T X.  P = W G
    depends only on the target (C^3 = 0.13 G for C = 512) and is left out, as in MSGNET.md."""
    total = [0]
    hooks = []

    def conv_hook(m, inp, out):
        kh, kw = m.kernel_size
        total[0] += out.numel() * (m.in_channels // m.groups) * kh * kw

    def ins_hook(m, inp, out):
        b, c, h, w = out.shape
        total[0] += b * c * c * h * w

    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, Inspiration):
            hooks.append(m.register_forward_hook(ins_hook))
    try:
        with torch.inference_mode():
            net(x)
    finally:
        for h in hooks:
            h.remove()
    return total[0] / 1e9


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_torch(net: Net, w: int, h: int, runs: int, device: torch.device, autocast):
    g = torch.Generator().manual_seed(w * 100003 + h)
    x = (torch.rand(1, 3, h, w, generator=g) * 255).to(device)
    ctx = (torch.autocast(device_type=device.type, dtype=autocast) if autocast is not None
           else torch.autocast(device_type=device.type, enabled=False))
    times = []
    with torch.inference_mode(), ctx:
        for i in range(2 + runs):
            sync(device)
            t0 = time.perf_counter()
            y = net(x)
            sync(device)
            t1 = time.perf_counter()
            if i >= 2:
                times.append((t1 - t0) * 1e3)
    assert tuple(y.shape[2:]) == output_size(h, w), y.shape
    return statistics.median(times), min(times)


class StylecamError(RuntimeError):
    pass


def run_stylecam(binary: str, model: str, w: int, h: int, runs: int, threads: int, extra, timeout):
    cmd = [binary, "bench", "--model", model, "--size", f"{w}x{h}", "--runs", str(runs), "--json"]
    cmd += extra
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    pretty = " ".join(shlex.quote(c) for c in cmd)
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise StylecamError(f"stylecam binary not found: {binary}")
    except PermissionError:
        raise StylecamError(f"stylecam binary not executable: {binary}")
    except subprocess.TimeoutExpired:
        raise StylecamError(f"timed out after {timeout}s: {pretty}")
    tail = "\n".join((proc.stderr or "").strip().splitlines()[-15:])
    if proc.returncode != 0:
        raise StylecamError(f"exit status {proc.returncode}: {pretty}\n--- stderr (tail) ---\n{tail}")
    objs = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            objs.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise StylecamError(f"bad JSON line from {pretty}: {line[:200]!r} ({e})")
    if not objs:
        raise StylecamError(f"no JSON object lines on stdout of {pretty}\n--- stdout ---\n"
                            f"{proc.stdout[-2000:]}\n--- stderr (tail) ---\n{tail}")
    want = f"{w}x{h}"
    match = [o for o in objs if str(o.get("size", "")).lower().replace(" ", "") == want]
    obj = match[-1] if match else objs[-1]
    missing = [k for k in ("median_ms", "min_ms") if not isinstance(obj.get(k), (int, float))]
    if missing:
        raise StylecamError(f"JSON from {pretty} lacks numeric {missing}: {obj}")
    if not match:
        print(f"# warning: stylecam reported size {obj.get('size')!r}, expected {want}", file=sys.stderr)
    return obj


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=parse_size, action="append", metavar="WxH",
                    help="input size WIDTHxHEIGHT (repeatable; default 320x240 and 640x480)")
    ap.add_argument("--runs", type=int, default=10, help="timed runs per size after 2 warm-ups")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch.set_num_threads and RAYON_NUM_THREADS (default: torch's default)")
    ap.add_argument("--model", help="weights in our safetensors layout (default: random ngf=128, 6 blocks)")
    ap.add_argument("--save-model", help="where to save the random model (default: a temp file)")
    ap.add_argument("--style-size", type=int, default=256, help="side of the random style image")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ap.add_argument("--autocast", choices=["fp16", "bf16"], help="run under torch.autocast")
    ap.add_argument("--bf16", action="store_true",
                    help="also time each size under bf16 autocast, next to float32")
    ap.add_argument("--no-tf32", action="store_true",
                    help="CUDA: disable TF32 (PyTorch lets cuDNN convolutions use TF32 by default)")
    ap.add_argument("--stylecam", metavar="BIN", help="stylecam binary to compare against")
    ap.add_argument("--stylecam-args", default="", help="extra arguments for `stylecam bench` (one string)")
    ap.add_argument("--stylecam-timeout", type=float, default=600.0, help="seconds per stylecam run")
    ap.add_argument("--json", action="store_true", help="also print one JSON object per size")
    args = ap.parse_args()

    sizes = args.size or [(320, 240), (640, 480)]
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda but torch.cuda.is_available() is False")
    autocast = {"fp16": torch.float16, "bf16": torch.bfloat16, None: None}[args.autocast]
    if args.bf16 and autocast is not None:
        ap.error("--bf16 times float32 and bf16 autocast side by side; leave out --autocast")
    if args.no_tf32:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    if args.stylecam and not os.path.exists(args.stylecam):
        ap.error(f"--stylecam {args.stylecam}: no such file")

    net, model_path = load_or_make_model(args.model, args.save_model)
    net = net.to(device).eval()
    g = torch.Generator().manual_seed(1)
    style = (torch.rand(1, 3, args.style_size, args.style_size, generator=g) * 255).to(device)
    with torch.inference_mode():
        net.set_target(style)

    if device.type == "cuda":
        dev_name = (f"{torch.cuda.get_device_name(device)}, cuDNN TF32 "
                    f"{'on' if torch.backends.cudnn.allow_tf32 else 'off'}, matmul TF32 "
                    f"{'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}")
    else:
        dev_name = f"cpu ({threads} threads)"
    print(f"# torch {torch.__version__}, {dev_name}, float32{' autocast ' + args.autocast if autocast else ''}"
          f"{' and bf16 autocast' if args.bf16 else ''}, "
          f"model {model_path}, runs {args.runs}", file=sys.stderr)
    extra = shlex.split(args.stylecam_args)
    rows, failures = [], 0
    for w, h in sizes:
        gmac = count_gmac(net, torch.zeros(1, 3, h, w, device=device))
        t_med, t_min = time_torch(net, w, h, args.runs, device, autocast)
        row = {"size": f"{w}x{h}", "torch_median_ms": t_med, "torch_min_ms": t_min, "gmac": gmac}
        if args.bf16:
            b_med, b_min = time_torch(net, w, h, args.runs, device, torch.bfloat16)
            row.update(torch_bf16_median_ms=b_med, torch_bf16_min_ms=b_min)
        if args.stylecam:
            try:
                obj = run_stylecam(args.stylecam, model_path, w, h, args.runs, threads, extra,
                                   args.stylecam_timeout)
                row.update(stylecam_median_ms=float(obj["median_ms"]), stylecam_min_ms=float(obj["min_ms"]),
                           stylecam_device=obj.get("device"), stylecam_gmac=obj.get("gmac"),
                           ratio=float(obj["median_ms"]) / t_med)
                if args.bf16:
                    row["ratio_bf16"] = float(obj["median_ms"]) / row["torch_bf16_median_ms"]
            except StylecamError as e:
                failures += 1
                row["stylecam_error"] = str(e).splitlines()[0]
                print(f"error: stylecam failed for {w}x{h}: {e}", file=sys.stderr)
        rows.append(row)
        if args.json:
            print(json.dumps(row), flush=True)

    head = f"{'size':>10} {'GMAC':>7} {'torch med ms':>13} {'torch min ms':>13}"
    if args.bf16:
        head += f" {'bf16 med ms':>12} {'bf16 min ms':>12}"
    if args.stylecam:
        head += f" {'stylecam med ms':>16} {'stylecam min ms':>16} {'ratio':>7}"
        if args.bf16:
            head += f" {'vs bf16':>8}"
    print(head)
    for r in rows:
        line = f"{r['size']:>10} {r['gmac']:7.2f} {r['torch_median_ms']:13.2f} {r['torch_min_ms']:13.2f}"
        if args.bf16:
            line += f" {r['torch_bf16_median_ms']:12.2f} {r['torch_bf16_min_ms']:12.2f}"
        if args.stylecam:
            if "ratio" in r:
                line += f" {r['stylecam_median_ms']:16.2f} {r['stylecam_min_ms']:16.2f} {r['ratio']:7.2f}"
                if args.bf16:
                    line += f" {r['ratio_bf16']:8.2f}"
            else:
                line += f" {'FAILED':>16} {'':>16} {'':>7}"
        print(line)
    if args.stylecam:
        print("ratio = stylecam median / torch median (< 1: stylecam is faster)"
              + ("; vs bf16 = stylecam median / torch bf16-autocast median" if args.bf16 else ""))
    return 2 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
