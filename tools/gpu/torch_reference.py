#!/usr/bin/env python3
"""Recompute a parity case's references with PyTorch on a GPU (float32, TF32 off by default).

    python3 tools/gpu/torch_reference.py --model M.safetensors --case CASE.safetensors --out OUT.safetensors

Reads `content` and `style` from CASE, runs our PyTorch MSG-Net (tools/msgnet.py) on --device
(default cuda) and writes `content`, `style`, `features`, `gram` and `output` to OUT, so that
`stylecam parity --model M --case OUT --device cuda` compares the two engines on the same card.
"""

import argparse
import os
import sys

import torch
from safetensors.torch import load_file, save_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from msgnet import Net  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--case", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 (PyTorch's cuDNN default)")
    a = ap.parse_args()
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    dev = torch.device(a.device)
    net = Net.from_state_dict(load_file(a.model)).to(dev).eval()
    case = load_file(a.case)
    content, style = case["content"].to(dev), case["style"].to(dev)
    with torch.inference_mode():
        gram = net.target_of(style)
        net.ins.set_target(gram)
        features = net.model1(content)
        output = net(content)
    save_file({"content": case["content"], "style": case["style"],
               "features": features.float().cpu().contiguous(), "gram": gram.float().cpu().contiguous(),
               "output": output.float().cpu().contiguous()}, a.out)
    ref = case.get("output")
    if ref is not None:
        d = (output.cpu() - ref).abs().max().item()
        print(f"# torch {a.device} f32 (tf32={a.tf32}) vs case reference: max |d| = {d:.5f}")


if __name__ == "__main__":
    main()
