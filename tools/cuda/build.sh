#!/usr/bin/env bash
# Build the release `cuda` binary of stylecam here (no GPU needed), strip it, and compress it
# into .carry/ for the GPU machine (which has no Rust). See docs/CUDA.md.
#
# Usage:  tools/cuda/build.sh [extra cargo args...]
#   CUDA_PREFIX=/opt/cuda13           toolkit made by tools/cuda/setup.sh (run first if missing)
#   CARGO_TARGET_DIR=/work/target-cuda  target dir, outside the repo (kernels are cached there)
#   BIN=stylecam                      which [[bin]] to build and pack
#   LINK=loading|linking              loading (default): cudarc dlopens the CUDA libraries at run
#                                     time, so the binary starts anywhere and can fall back to the
#                                     CPU; linking: candle's own choice (needs libcuda.so.1 and the
#                                     CUDA 13 libs just to start; links against the stub libcuda;
#                                     not built in the round that wrote this, see docs/CUDA.md).
#   COMPRESS=xz|zstd                  (default xz: smaller, and Python's lzma can unpack it)
#
# Output: .carry/$BIN-cuda.xz (or .zst), .carry/$BIN-cuda.sha256, .carry/cuda-stubs/libcurand.so.10
# Name `.carry` in the device tool's `carry`, then on the GPU machine:
#   . tools/cuda/gpu_env.sh && stylecam_unpack && /tmp/stylecam-cuda --help
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CUDA_PREFIX="${CUDA_PREFIX:-/opt/cuda13}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-cuda}"
BIN="${BIN:-stylecam}"
LINK="${LINK:-loading}"
COMPRESS="${COMPRESS:-xz}"
CARRY="$REPO/.carry"
log() { printf '[cuda-build] %s\n' "$*" >&2; }

[ -f "$CUDA_PREFIX/env.sh" ] || "$HERE/setup.sh" "$CUDA_PREFIX"
# shellcheck disable=SC1091
. "$CUDA_PREFIX/env.sh"

# candle-kernels' build script reruns on a change of NVCC or CUDA_COMPUTE_CAP, not of the toolkit
# behind the same path: remember which nvcc built the kernels and rebuild them when it changes.
NVCC_RELEASE="$(nvcc --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')"
if [ "$NVCC_RELEASE" != 13.0 ]; then
  log "WARNING: nvcc $NVCC_RELEASE: the GPU machines' driver 580 only runs PTX from CUDA <= 13.0"
  log "         (CUDA_ERROR_UNSUPPORTED_PTX_VERSION); tools/cuda/setup.sh installs 13.0 by default"
fi
STAMP="$CARGO_TARGET_DIR/.nvcc-release"
STALE=0
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" != "$NVCC_RELEASE" ]; then
  log "kernels were built with nvcc $(cat "$STAMP"), now $NVCC_RELEASE: rebuilding them"
  STALE=1
fi

case "$LINK" in
  loading)
    # Build a snapshot of the working tree so that the [patch] does not rewrite the repo's
    # Cargo.lock (candle-core would switch from the registry to the path source).
    CANDLE_DYN="$CUDA_PREFIX/candle-core-0.11.1-dynload"
    [ -f "$CANDLE_DYN/Cargo.toml" ] || "$HERE/setup.sh" "$CUDA_PREFIX"
    if grep -qE '^\s*"?dynamic-loading' "$REPO/Cargo.toml" || grep -q 'candle-core.*path' "$REPO/Cargo.toml"; then
      PATCH=()   # the project already selects dynamic loading itself
    else
      PATCH=(--config "patch.crates-io.candle-core.path=\"$CANDLE_DYN\"")
    fi
    SRC="$CARGO_TARGET_DIR/snapshot"
    mkdir -p "$SRC"
    # what would travel: tracked + untracked-not-ignored files; tar keeps mtimes, so cargo
    # only recompiles what changed
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
       tar --null --ignore-failed-read -T - -cf - 2>/dev/null || true) | (cd "$SRC" && find . -mindepth 1 -maxdepth 1 ! -name . -exec rm -rf {} + && tar -xf -)
    ;;
  linking)
    PATCH=()
    SRC="$REPO"
    ;;
  *) log "LINK must be loading or linking"; exit 2 ;;
esac

if [ "$STALE" = 1 ]; then
  (cd "$SRC" && cargo clean --release -p candle-kernels "${PATCH[@]}")
fi
mkdir -p "$CARGO_TARGET_DIR"
echo "$NVCC_RELEASE" > "$STAMP"
log "building $BIN (cuda, $LINK, nvcc $NVCC_RELEASE, CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-}) in $SRC -> $CARGO_TARGET_DIR"
t0=$(date +%s)
(cd "$SRC" && nice -n 10 cargo build --release --features cuda --bin "$BIN" "${PATCH[@]}" "$@")
t1=$(date +%s)
log "cargo build: $((t1 - t0)) s"

OUT="$CARGO_TARGET_DIR/release/$BIN"
STRIPPED="$CARGO_TARGET_DIR/$BIN-cuda"
strip -o "$STRIPPED" "$OUT"
mkdir -p "$CARRY/cuda-stubs"
case "$COMPRESS" in
  xz) PACKED="$CARRY/$BIN-cuda.xz"; PACK=(xz -9e -T2 -c) ;;
  zstd) PACKED="$CARRY/$BIN-cuda.zst"; PACK=(zstd -q -19 -T2 -c) ;;
  *) log "COMPRESS must be xz or zstd"; exit 2 ;;
esac
SUM="$(cd "$CARGO_TARGET_DIR" && sha256sum "$BIN-cuda")"
if [ -f "$PACKED" ] && [ "$(cat "$CARRY/$BIN-cuda.sha256" 2>/dev/null)" = "$SUM" ]; then
  log "binary unchanged: keeping $PACKED"
else
  "${PACK[@]}" "$STRIPPED" > "$PACKED.tmp"
  mv "$PACKED.tmp" "$PACKED"
  echo "$SUM" > "$CARRY/$BIN-cuda.sha256"
fi
[ -f "$CUDA_PREFIX/gpu-stubs/libcurand.so.10" ] && cp "$CUDA_PREFIX/gpu-stubs/libcurand.so.10" "$CARRY/cuda-stubs/"
t2=$(date +%s)

size() { stat -c %s "$1"; }
log "binary   $(size "$OUT") bytes ($OUT)"
log "stripped $(size "$STRIPPED") bytes ($STRIPPED)"
log "packed   $(size "$PACKED") bytes ($PACKED, $((t2 - t1)) s to strip+compress)"
log "needs at start: $(readelf -d "$STRIPPED" | awk '/NEEDED/ { gsub(/[][]/, "", $NF); printf "%s ", $NF }')"
log "carry size: $(du -sb "$CARRY" | cut -f1) bytes in .carry; repo files: $(cd "$REPO" && git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1) bytes (64 MiB = 67108864 in all)"
