#!/usr/bin/env bash
# Short check on the lent GPU machine (about a minute): the environment that
# tools/cuda/gpu_env.sh finds, the carried binary starting, and one tiny parity case and one
# small bench on the GPU. Run from the repo root with `.carry` carried (tools/cuda/build.sh).
# Everything is written to $OUT/cuda_smoke.txt (or ./gpu-out). See docs/CUDA.md.
set -uo pipefail
OUT="${OUT:-gpu-out}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/cuda_smoke.txt") 2>&1
step() { echo; echo "== $*"; }
BIN=/tmp/stylecam-cuda
P=tests/fixtures/parity

step "machine"
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv 2>&1 | head -3
ldconfig -p | grep -E 'libcuda\.so' | head -3
python3 -c "import sys, nvidia; print(sys.executable); print('nvidia.__file__ =', nvidia.__file__, '; __path__ =', list(nvidia.__path__))" 2>&1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())" 2>&1
python3 -m pip list 2>/dev/null | grep -iE '^(nvidia|cuda|torch)' | head -30
for d in $(python3 -c "import nvidia; print(' '.join(nvidia.__path__))" 2>/dev/null); do ls "$d" "$d"/cu13/lib 2>/dev/null | tr '\n' ' '; echo; done

step "gpu_env.sh"
# shellcheck disable=SC1091
. tools/cuda/gpu_env.sh
echo "STYLECAM_CUDA_ENV_OK=$STYLECAM_CUDA_ENV_OK"

step "unpack and start"
time stylecam_unpack .carry/stylecam-cuda.xz "$BIN"
echo "sha256 carried: $(cut -d' ' -f1 .carry/stylecam-cuda.sha256)  unpacked: $(sha256sum "$BIN" | cut -d' ' -f1)"
"$BIN" --version
ldd "$BIN"

step "parity on cuda (tiny fixture, f32)"
"$BIN" parity --device cuda --model $P/tiny_ngf8_b2.safetensors --case $P/case_tiny_ngf8_b2_48x64.safetensors
echo "rc=$?"

step "parity on cuda with the cuRAND stand-in forced first on LD_LIBRARY_PATH"
LD_LIBRARY_PATH="$PWD/.carry/cuda-stubs:$LD_LIBRARY_PATH" \
  "$BIN" parity --device cuda --model $P/tiny_ngf8_b2.safetensors --case $P/case_tiny_ngf8_b2_48x64.safetensors
echo "rc=$?"

step "bench on cuda (random 21-style weights, 640x480)"
timeout 120 "$BIN" bench --device cuda --size 640x480 --runs 10
echo "rc=$?"

step "no CUDA libraries on LD_LIBRARY_PATH (driver from ldconfig only)"
LD_LIBRARY_PATH= "$BIN" parity --device cuda --model $P/tiny_ngf8_b2.safetensors --case $P/case_tiny_ngf8_b2_48x64.safetensors 2>&1 | cut -c1-400 | head -5
echo "rc=${PIPESTATUS[0]}"
step "done"
