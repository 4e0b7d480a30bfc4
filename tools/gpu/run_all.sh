#!/usr/bin/env bash
# One GPU session for issue #7: parity and speed of stylecam's CUDA build against PyTorch on the
# same card. At most 6 files land in $OUT (the device tool returns 8). Run on the lent machine from the repo root, with the stripped CUDA binary carried as
# .carry/stylecam-cuda.xz (tools/cuda/build.sh makes it). Results go to $OUT (or ./gpu-out).
set -uo pipefail
OUT=${OUT:-gpu-out}
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }
exec > >(tee -a "$OUT/log.txt") 2>&1

BIN=/tmp/stylecam
# shellcheck disable=SC1091
source tools/cuda/gpu_env.sh
stylecam_unpack "${BIN_ARCHIVE:-.carry/stylecam-cuda.xz}" $BIN || { log "FAIL unpack"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
$BIN --version

log "parity: committed fixtures (float64 PyTorch references), stylecam --device cuda"
P=tests/fixtures/parity
for m in tiny_ngf8_b2:48x64 tiny_ngf8_b2:30x42 tiny_ngf16_b1:40x56; do
  name=${m%%:*}; size=${m##*:}
  for fmt in .safetensors .pth _legacy_py3.model _legacy_py2.model; do
    $BIN parity --device cuda --model $P/$name$fmt --case $P/case_${name}_$size.safetensors >> "$OUT/parity.jsonl" \
      || log "FAIL parity $name$fmt $size"
  done
  for dt in f16 bf16; do
    $BIN parity --device cuda --dtype $dt --tol 1000 --model $P/$name.safetensors --case $P/case_${name}_$size.safetensors >> "$OUT/parity.jsonl" \
      || log "FAIL parity $name $dt $size"
  done
done

log "parity: full size ngf128 256x256, float64 reference and PyTorch CUDA f32 (TF32 off)"
FULL=${FULL:-/tmp/full}
[ -f $FULL/full_ngf128.safetensors ] || timeout 240 python3 tools/make_fixtures.py --full $FULL --skip-tiny --threads 16 >> "$OUT/log.txt" 2>&1 || log "FAIL make_fixtures --full"
C=$FULL/case_full_ngf128_256x256.safetensors
python3 tools/gpu/torch_reference.py --model $FULL/full_ngf128.safetensors --case $C --out /tmp/case_torch_cuda.safetensors | tee -a "$OUT/summary.txt"
for f in full_ngf128.safetensors full_ngf128_legacy_py2.model; do
  $BIN parity --device cuda --model $FULL/$f --case $C >> "$OUT/parity.jsonl" || log "FAIL full $f"
done
$BIN parity --device cuda --model $FULL/full_ngf128.safetensors --case /tmp/case_torch_cuda.safetensors >> "$OUT/parity.jsonl" || log "FAIL full vs torch cuda"
for dt in f16 bf16; do
  $BIN parity --device cuda --dtype $dt --tol 1000 --model $FULL/full_ngf128.safetensors --case $C >> "$OUT/parity.jsonl" || true
done

SIZES=${SIZES:-"--size 320x240 --size 640x480 --size 1280x720 --size 1920x1080"}
RUNS=${RUNS:-20}
M=$FULL/full_ngf128.safetensors
log "speed: stylecam bench (cuda)"
for dt in f32 f16 bf16; do
  timeout ${BENCH_TIMEOUT:-200} $BIN bench --device cuda --dtype $dt --model $M $SIZES --runs $RUNS --json >> "$OUT/bench_stylecam.jsonl" || log "FAIL bench $dt"
done
log "speed: PyTorch (same weights, same card)"
timeout ${BENCH_TIMEOUT:-120} python3 tools/bench_torch.py --device cuda --no-tf32 --model $M $SIZES --runs $RUNS --json >> "$OUT/bench_torch.txt" 2>&1
timeout ${BENCH_TIMEOUT:-120} python3 tools/bench_torch.py --device cuda --model $M $SIZES --runs $RUNS --json >> "$OUT/bench_torch.txt" 2>&1
timeout ${BENCH_TIMEOUT:-120} python3 tools/bench_torch.py --device cuda --autocast fp16 --model $M $SIZES --runs $RUNS --json >> "$OUT/bench_torch.txt" 2>&1
timeout ${BENCH_TIMEOUT:-120} python3 tools/bench_torch.py --device cuda --autocast bf16 --model $M $SIZES --runs $RUNS --json >> "$OUT/bench_torch.txt" 2>&1
log "done"
