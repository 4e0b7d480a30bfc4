#!/usr/bin/env bash
# Install a CUDA 13 toolkit (13.0 by default, or 13.4) from PyPI wheels, with no GPU and no
# driver, so that `cargo build --features cuda` can run nvcc for candle's kernels and link.
#
# Usage:  tools/cuda/setup.sh [PREFIX]          (default PREFIX: $CUDA_PREFIX or /opt/cuda13)
#   STUB=auto|yes|no   build a stub libcuda.so.1 for *linking* (default auto: only when no
#                      libcuda.so is found in the toolkit or on the system). Only needed while
#                      candle-core forces cudarc's `dynamic-linking`; see docs/CUDA.md.
#   CUDA_VERSION=13.0  toolkit version, 13.0 (default: runs on driver 580) or 13.4 (see below).
#   FORCE=1            reinstall the wheels even if that nvcc is already there.
#   PYTHON=python3     interpreter whose pip is used.
#
# Also makes, under PREFIX: cudart-static/ (static cudart for candle-kernels' link),
# gpu-stubs/libcurand.so.10 (a stand-in carried to the GPU machine in case its PyTorch has no
# cuRAND), and candle-core-0.11.1-dynload/ (candle-core asking cudarc for dynamic loading,
# used by tools/cuda/build.sh through a [patch] on the command line).
# At the end it prints the environment to export (also written to PREFIX/env.sh).
# See docs/CUDA.md.
set -euo pipefail

PREFIX="${1:-${CUDA_PREFIX:-/opt/cuda13}}"
PYTHON="${PYTHON:-python3}"
STUB="${STUB:-auto}"
FORCE="${FORCE:-0}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

# Which toolkit. The PTX that candle's kernels are compiled to carries the PTX ISA version of the
# nvcc that made it, and the driver can only JIT PTX up to its own CUDA version: the GPU machines
# have driver 580 = CUDA 13.0, which rejects 13.4's PTX (ISA 9.4) with
# CUDA_ERROR_UNSUPPORTED_PTX_VERSION. So the default is 13.0, pinned to the same library versions
# as the GPU machine's PyTorch 2.11+cu130. 13.4 (shared/docs/GPU.md's choice, the newest that
# cudarc 0.19.10 knows; 13.5 is rejected by its build script) is kept as an option for newer drivers.
CUDA_VERSION="${CUDA_VERSION:-13.0}"
case "$CUDA_VERSION" in
  13.0) PKGS=(
      nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88
      nvidia-cuda-runtime==13.0.96 nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-cccl==13.0.85
      nvidia-curand==10.4.0.35 nvidia-cublas==13.1.0.3) ;;
  13.4) PKGS=(
      nvidia-cuda-nvcc==13.4.92 nvidia-nvvm==13.4.92 nvidia-cuda-crt==13.4.92
      nvidia-cuda-runtime==13.4.92 nvidia-cuda-nvrtc==13.4.92
      # unpinned in GPU.md; pinned to what PyPI resolved for them in November 2026
      nvidia-cuda-cccl==13.3.5.0.6 nvidia-curand==10.4.5.25 nvidia-cublas==13.10.0.20) ;;
  *) echo "CUDA_VERSION must be 13.0 or 13.4" >&2; exit 2 ;;
esac

CU="$PREFIX/nvidia/cu13"
log() { printf '[cuda-setup] %s\n' "$*" >&2; }

# ---------------------------------------------------------------- 1. wheels
nvcc_release() { [ -x "$CU/bin/nvcc" ] && "$CU/bin/nvcc" --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\),.*/\1/p'; }
have="$(nvcc_release || true)"
if [ "$FORCE" != 1 ] && [ "$have" = "$CUDA_VERSION" ]; then
  log "nvcc $have already in $CU (FORCE=1 to reinstall)"
else
  if [ -n "$have" ] && [ "$have" != "$CUDA_VERSION" ] && [ "$FORCE" != 1 ]; then
    log "$PREFIX holds nvcc $have, not $CUDA_VERSION: use another PREFIX, or FORCE=1 to replace it"
    exit 1
  fi
  if [ -d "$PREFIX/nvidia" ]; then
    log "removing the old wheels in $PREFIX"
    rm -rf "$PREFIX/nvidia" "$PREFIX"/nvidia_*.dist-info
  fi
  mkdir -p "$PREFIX"
  log "installing ${#PKGS[@]} wheels (CUDA $CUDA_VERSION) into $PREFIX (about 1.2 GB download)"
  "$PYTHON" -m pip install --disable-pip-version-check --no-input --no-deps \
    --upgrade --target "$PREFIX" "${PKGS[@]}"
  have="$(nvcc_release || true)"
  [ "$have" = "$CUDA_VERSION" ] || { log "nvcc $CUDA_VERSION not found in $CU/bin after install"; exit 1; }
fi

# ---------------------------------------------------------------- 2. unversioned .so links
# The wheels ship only libfoo.so.N (the soname); the linker's -lfoo needs libfoo.so.
cd "$CU/lib"
for f in lib*.so.*; do
  [ -e "$f" ] || continue
  base="${f%%.so.*}.so"
  if [ ! -e "$base" ]; then
    # prefer the shortest versioned name (the soname, e.g. libcublas.so.13)
    best="$(ls -1 "$base".* 2>/dev/null | awk '{ print length, $0 }' | sort -n | head -1 | cut -d' ' -f2-)"
    ln -sfn "$best" "$base"
    log "link $CU/lib/$base -> $best"
  fi
done
cd - >/dev/null
# nvcc looks for lib64 in some setups; the wheels use lib.
[ -e "$CU/lib64" ] || ln -sfn lib "$CU/lib64"

# candle-kernels links its MoE/MMQ kernels with `-lcudart` (cudart is never called by the app,
# only by those quantized kernels). A folder holding only libcudart.a (the toolkit's
# libcudart_static.a) put first on LIBRARY_PATH makes that link static, so the binary does not
# need libcudart.so.13 to start (static cudart dlopens libcuda itself, lazily).
# Note: for each LIBRARY_PATH entry DIR, gcc also passes `-L DIR/../lib` (when it exists) ahead
# of all the LIBRARY_PATH entries; for DIR=$CU/lib that is $CU/lib itself, so $CU/lib must NOT
# be on LIBRARY_PATH, or libcudart.so wins again.
mkdir -p "$PREFIX/cudart-static"
ln -sfn ../nvidia/cu13/lib/libcudart_static.a "$PREFIX/cudart-static/libcudart.a"

# ---------------------------------------------------------------- 3. stub libcuda (link time only)
STUB_DIR="$PREFIX/stubs"
find_real_libcuda() {
  # a libcuda.so that the linker (-lcuda) would find, outside our own stub dir
  local d
  for d in "$CU/lib/stubs" "$CU/lib" /usr/local/cuda/lib64/stubs /usr/local/cuda/lib64 \
           /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib; do
    [ -e "$d/libcuda.so" ] && { echo "$d/libcuda.so"; return 0; }
  done
  return 1
}
want_stub=0
case "$STUB" in
  yes) want_stub=1 ;;
  no) want_stub=0 ;;
  auto) if real="$(find_real_libcuda)"; then log "libcuda.so found at $real: no stub needed"; else want_stub=1; fi ;;
  *) log "STUB must be auto, yes or no"; exit 2 ;;
esac

cudarc_src() {
  local d
  d="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* 2>/dev/null | sort -V | tail -1 || true)"
  if [ -z "$d" ]; then
    log "cudarc source not in the cargo registry yet: running cargo fetch in $REPO"
    (cd "$REPO" && cargo fetch --quiet)
    d="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.* | sort -V | tail -1)"
  fi
  echo "$d"
}
# gen_stub SYS_RS PREFIX DEFAULT_RET > file.c : one `int NAME(void) { return DEFAULT_RET; }` for
# each extern fn NAME (starting with PREFIX) in cudarc's bindings. Only the x86-64 SysV calling
# convention matters here: the arguments are ignored, the int return value is read.
gen_stub() {
  local sys="$1" prefix="$2" ret="$3"
  grep -oE "\bfn ${prefix}[A-Za-z0-9_]+\(" "$sys" | sed -E 's/^fn (.*)\($/\1/' | sort -u |
    while read -r name; do echo "int $name(void) { return $ret; }"; done
}
CUDARC_SRC=""

if [ "$want_stub" = 1 ]; then
  CUDARC_SRC="${CUDARC_SRC:-$(cudarc_src)}"
  SYS="$CUDARC_SRC/src/driver/sys/mod.rs"
  [ -f "$SYS" ] || { log "missing $SYS"; exit 1; }
  mkdir -p "$STUB_DIR"
  C="$STUB_DIR/libcuda_stub.c"
  {
    echo "/* Generated by tools/cuda/setup.sh from $SYS."
    echo " * Link-time stand-in for the NVIDIA driver library (soname libcuda.so.1)."
    echo " * Never put this on LD_LIBRARY_PATH on a machine with a GPU: every call"
    echo " * returns CUDA_ERROR_STUB_LIBRARY (34). */"
    gen_stub "$SYS" cu 34
  } > "$C"
  n="$(grep -c '^int ' "$C")"
  cc -shared -fPIC -O0 -Wl,-soname,libcuda.so.1 -o "$STUB_DIR/libcuda.so.1" "$C"
  ln -sfn libcuda.so.1 "$STUB_DIR/libcuda.so"
  log "stub $STUB_DIR/libcuda.so.1 with $n driver symbols (from $(basename "$CUDARC_SRC"))"
fi

# ---------------------------------------------------------------- 3b. curand stand-in for the GPU machine
# candle 0.11 creates a cuRAND generator in Device::new_cuda, so libcurand.so.10 must load even
# though inference never draws random numbers on the GPU. PyTorch's CUDA 13 wheels do not always
# bring nvidia-curand (105 MB, too big to carry). This tiny library lets the generator be created
# (create/seed/stream/offset/destroy succeed) and makes every generate call fail with
# CURAND_STATUS_NOT_INITIALIZED (201), so GPU random tensors error out instead of being garbage.
# tools/cuda/build.sh carries it; tools/cuda/gpu_env.sh uses it only when no real one is found.
GPU_STUB_DIR="$PREFIX/gpu-stubs"
CUDARC_SRC="${CUDARC_SRC:-$(cudarc_src)}"
mkdir -p "$GPU_STUB_DIR"
C="$GPU_STUB_DIR/libcurand_stub.c"
{
  echo "/* Generated by tools/cuda/setup.sh from $CUDARC_SRC/src/curand/sys/mod.rs."
  echo " * Stand-in libcurand.so.10: generators can be made, generating fails (201). */"
  echo "#include <stdlib.h>"
  echo "static int dummy_gen;"
  echo "int curandCreateGenerator(void **gen, int kind) { (void)kind; if (gen) *gen = &dummy_gen; return 0; }"
  echo "int curandCreateGeneratorHost(void **gen, int kind) { (void)kind; if (gen) *gen = &dummy_gen; return 0; }"
  echo "int curandDestroyGenerator(void *gen) { (void)gen; return 0; }"
  echo "int curandSetStream(void *gen, void *stream) { (void)gen; (void)stream; return 0; }"
  echo "int curandSetPseudoRandomGeneratorSeed(void *gen, unsigned long long seed) { (void)gen; (void)seed; return 0; }"
  echo "int curandSetGeneratorOffset(void *gen, unsigned long long off) { (void)gen; (void)off; return 0; }"
  echo "int curandGetVersion(int *v) { if (v) *v = 10405; return 0; }"
  gen_stub "$CUDARC_SRC/src/curand/sys/mod.rs" curand 201 |
    grep -vE ' (curandCreateGenerator|curandCreateGeneratorHost|curandDestroyGenerator|curandSetStream|curandSetPseudoRandomGeneratorSeed|curandSetGeneratorOffset|curandGetVersion)\(void\)'
} > "$C"
cc -shared -fPIC -O2 -Wl,-soname,libcurand.so.10 -o "$GPU_STUB_DIR/libcurand.so.10" "$C"
log "curand stand-in $GPU_STUB_DIR/libcurand.so.10 ($(grep -c '^int ' "$C") symbols)"

# ---------------------------------------------------------------- 3c. candle-core with dynamic loading
# candle-core 0.11.1 asks cudarc for `dynamic-linking` (binary needs libcuda.so.1 + CUDA libs just
# to start). A copy whose manifest asks for `dynamic-loading` instead is made here; build.sh
# swaps it in with `--config patch.crates-io.candle-core.path=...` (no change to Cargo.toml).
CANDLE_SRC="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/candle-core-0.11.1 2>/dev/null | head -1 || true)"
if [ -z "$CANDLE_SRC" ]; then
  (cd "$REPO" && cargo fetch --quiet)
  CANDLE_SRC="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/candle-core-0.11.1 | head -1)"
fi
CANDLE_DYN="$PREFIX/candle-core-0.11.1-dynload"
if [ ! -f "$CANDLE_DYN/Cargo.toml" ] || ! grep -q '"dynamic-loading",' "$CANDLE_DYN/Cargo.toml"; then
  rm -rf "$CANDLE_DYN"
  cp -r "$CANDLE_SRC" "$CANDLE_DYN"
  sed -i 's/^    "dynamic-linking",$/    "dynamic-loading",/' "$CANDLE_DYN/Cargo.toml"
  grep -q '^    "dynamic-loading",$' "$CANDLE_DYN/Cargo.toml" || { log "could not switch candle-core to dynamic-loading"; exit 1; }
  log "candle-core copy with cudarc dynamic-loading: $CANDLE_DYN"
else
  log "candle-core copy with cudarc dynamic-loading already in $CANDLE_DYN"
fi

# ---------------------------------------------------------------- 4. environment
# cudarc's own build script adds `-L $CUDA_HOME/lib` when it links (LINK=linking builds), so
# only the static cudart and the driver stub go on LIBRARY_PATH.
LIBPATH="$PREFIX/cudart-static"
[ "$want_stub" = 1 ] && LIBPATH="$LIBPATH:$STUB_DIR"
cat > "$PREFIX/env.sh" <<EOF
# Source this before \`cargo build --features cuda\` (written by tools/cuda/setup.sh)
export CUDA_HOME="$CU"
export CUDA_ROOT="$CU"
export PATH="$CU/bin:\$PATH"
export CUDA_COMPUTE_CAP=90
# cudarc's bindings for exactly this toolkit (it otherwise asks nvcc only when its build script
# reruns, which a toolkit swapped under the same path does not trigger)
export CUDARC_CUDA_VERSION=$(echo "$CUDA_VERSION" | sed 's/\([0-9]*\)\.\([0-9]*\)/\10\20/')
export LIBRARY_PATH="$LIBPATH\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$CU/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
EOF
# Note: the stub dir is on LIBRARY_PATH (link time) only, never on LD_LIBRARY_PATH.
log "nvcc: $("$CU/bin/nvcc" --version | grep release)"
log "environment written to $PREFIX/env.sh; export it with:  . $PREFIX/env.sh"
echo
cat "$PREFIX/env.sh"
