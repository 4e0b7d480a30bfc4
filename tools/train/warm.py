#!/usr/bin/env python3
"""Save a train.py checkpoint's weights as the lineage's warm start, committed in the repository.

    python3 tools/train/warm.py /work/run-s4/final.pt tools/train/warm/stylecam21-distil.safetensors

Why: the machine is not kept between sessions (checkpoints and the teacher cache outside the
repository are gone at the next session), so training carries over only through what is
committed. The next session starts with `train.py --init tools/train/warm/...` (weights only, a
fresh optimiser). The file holds every key of `Net.state_dict()` in float32 (the aliases and
running buffers included, as export.py writes them) plus the step and training seconds as
metadata; the app can load it too (`stylecam --model FILE --styles ../shared/styles/21styles`).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import load_net_from_ckpt, save_weights  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("ckpt", help="train.py checkpoint (.pt)")
    p.add_argument("out", help="safetensors file to write")
    args = p.parse_args()
    try:
        c = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 (any unreadable file gets the same message)
        raise SystemExit(f"{args.ckpt}: not a train.py checkpoint ({e})") from None
    if not isinstance(c, dict) or "model" not in c or "step" not in c:
        raise SystemExit(f"{args.ckpt}: not a train.py checkpoint (no 'model' and 'step'); give the "
                         f"final.pt or latest.pt of a run")
    keys = save_weights(load_net_from_ckpt(args.ckpt), args.out, torch.float32,
                        {"train_step": str(c["step"]), "train_seconds": str(round(c.get("train_seconds", 0.0)))})
    print(f"{keys} tensors, step {c['step']} -> {args.out}")


if __name__ == "__main__":
    main()
