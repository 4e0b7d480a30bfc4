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

import torch
from safetensors.torch import save_file


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("ckpt", help="train.py checkpoint (.pt)")
    p.add_argument("out", help="safetensors file to write")
    args = p.parse_args()
    c = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    state = {k: v.detach().float().clone().contiguous() for k, v in c["model"].items() if v.is_floating_point()}
    meta = {"format": "stylecam-msgnet-v1", "ngf": str(c["ngf"]), "blocks": str(c["blocks"]), "dtype": "f32",
            "train_step": str(c["step"]), "train_seconds": str(round(c.get("train_seconds", 0.0)))}
    save_file(state, args.out, metadata=meta)
    print(f"{len(state)} tensors, {sum(v.numel() for v in state.values()):,} values, step {c['step']} -> {args.out}")


if __name__ == "__main__":
    main()
