# Source this on the GPU machine (bash):   . tools/cuda/gpu_env.sh
#
# Sets LD_LIBRARY_PATH so a stylecam CUDA build (built here with tools/cuda/build.sh) finds
#   - the driver library libcuda.so.1, and
#   - the CUDA 13 libraries (libcublas.so.13, libcublasLt.so.13, libcurand.so.10,
#     libnvrtc.so.13) that ship with the machine's PyTorch wheels (nvidia/cu13/lib),
# for both builds: cudarc's dlopen (dynamic loading) and a dynamically linked binary.
# Defines `stylecam_unpack [ARCHIVE] [DEST]` to unpack .carry/stylecam-cuda.xz.
# Prints what it found on stderr; sets STYLECAM_CUDA_ENV_OK=1 when everything was found.
# See docs/CUDA.md. Does not exit the calling shell on failure.

_sc_log() { printf '[gpu_env] %s\n' "$*" >&2; }
_sc_add() { # prepend a directory to LD_LIBRARY_PATH once
  case ":${LD_LIBRARY_PATH:-}:" in *":$1:"*) ;; *) LD_LIBRARY_PATH="$1${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;; esac
}

STYLECAM_CUDA_ENV_OK=1
LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"   # safe under `set -u`
_sc_repo="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/../.." 2>/dev/null && pwd || echo .)"
_sc_py="${PYTHON:-}"
if [ -z "$_sc_py" ]; then
  for _c in python3 python "${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python3}"; do
    [ -n "$_c" ] && command -v "$_c" >/dev/null 2>&1 && { _sc_py="$_c"; break; }
  done
fi

# ---- CUDA 13 libraries from the Python env (PyTorch's nvidia-* wheels)
# `nvidia` is a namespace package: nvidia.__file__ is None, so use nvidia.__path__.
_sc_libdirs=""
if [ -n "$_sc_py" ]; then
  _sc_libdirs="$("$_sc_py" - <<'PY' 2>/dev/null
import os, glob
roots = []
try:
    import nvidia
    roots += list(getattr(nvidia, "__path__", []))
except Exception:
    pass
try:
    import sysconfig, site
    for sp in [sysconfig.get_paths().get("purelib"), sysconfig.get_paths().get("platlib")] + list(getattr(site, "getsitepackages", lambda: [])()):
        if sp and os.path.isdir(os.path.join(sp, "nvidia")):
            roots.append(os.path.join(sp, "nvidia"))
except Exception:
    pass
seen, out = set(), []
for r in roots:
    r = os.path.realpath(r)
    # CUDA 13 wheels: nvidia/cu13/lib; older per-package layout: nvidia/<pkg>/lib
    for d in [os.path.join(r, "cu13", "lib")] + sorted(glob.glob(os.path.join(r, "*", "lib"))):
        if os.path.isdir(d) and d not in seen and glob.glob(os.path.join(d, "lib*.so*")):
            seen.add(d); out.append(d)
print("\n".join(out))
PY
)"
else
  _sc_log "no python found: set LD_LIBRARY_PATH to the CUDA 13 libs by hand"
fi
# Add in reverse so that nvidia/cu13/lib ends up first.
for _d in $(printf '%s\n' $_sc_libdirs | tac); do _sc_add "$_d"; done
# A system toolkit, if any, only as a fallback after the Python env's libraries.
for _d in /usr/local/cuda-13/lib64 /usr/local/cuda/lib64; do
  if [ -e "$_d/libcublas.so.13" ]; then
    case ":$LD_LIBRARY_PATH:" in *":$_d:"*) ;; *) LD_LIBRARY_PATH="$LD_LIBRARY_PATH${LD_LIBRARY_PATH:+:}$_d" ;; esac
  fi
done

# ---- driver: libcuda.so.1
_sc_drv=""
_sc_drv_cache="$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 .*x86-64/ { print $NF; exit }')"
if [ -n "$_sc_drv_cache" ]; then
  _sc_drv="$_sc_drv_cache"   # already in the loader cache: nothing to add
else
  for _d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 \
            /usr/lib /run/nvidia/driver/usr/lib/x86_64-linux-gnu /usr/lib/wsl/lib; do
    if [ -e "$_d/libcuda.so.1" ]; then _sc_drv="$_d/libcuda.so.1"; _sc_add "$_d"; break; fi
  done
fi
if [ -z "$_sc_drv" ]; then
  # last resort: look around (bounded)
  _sc_drv="$(find /usr /opt /run -maxdepth 6 -name 'libcuda.so.1' -not -path '*/stubs/*' 2>/dev/null | head -1)"
  [ -n "$_sc_drv" ] && _sc_add "$(dirname "$_sc_drv")"
fi
export LD_LIBRARY_PATH

# ---- cuRAND: candle creates a generator when it opens the device. If the Python env has no
# libcurand.so.10, use the stand-in carried by tools/cuda/build.sh (generators can be created,
# GPU random numbers fail with an error; inference does not need them).
_sc_have() { local d; for d in $(printf '%s' "$LD_LIBRARY_PATH" | tr ':' ' '); do [ -e "$d/$1" ] && { echo "$d/$1"; return 0; }; done; ldconfig -p 2>/dev/null | awk -v l="$1" '$1 == l { print $NF; f=1; exit } END { exit !f }'; }
if ! _sc_have libcurand.so.10 >/dev/null && [ -e "$_sc_repo/.carry/cuda-stubs/libcurand.so.10" ]; then
  LD_LIBRARY_PATH="$LD_LIBRARY_PATH${LD_LIBRARY_PATH:+:}$_sc_repo/.carry/cuda-stubs"
  _sc_log "no libcurand.so.10 in the Python env: using the stand-in in .carry/cuda-stubs (no GPU random numbers)"
fi
export LD_LIBRARY_PATH

# ---- report
if [ -n "$_sc_drv" ]; then _sc_log "driver: $_sc_drv"; else _sc_log "driver libcuda.so.1: NOT FOUND"; STYLECAM_CUDA_ENV_OK=0; fi
for _l in libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13; do
  _f="$(_sc_have "$_l" || true)"
  if [ -n "$_f" ]; then _sc_log "$_l: $_f"; else _sc_log "$_l: NOT FOUND"; STYLECAM_CUDA_ENV_OK=0; fi
done
command -v nvidia-smi >/dev/null 2>&1 &&
  _sc_log "gpu: $(nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader 2>/dev/null | head -1)"
_sc_log "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
export STYLECAM_CUDA_ENV_OK

# Unpack the compressed binary made by tools/cuda/build.sh (xz, or Python's lzma if no xz).
stylecam_unpack() {
  local src="${1:-.carry/stylecam-cuda.xz}" dst="${2:-/tmp/stylecam-cuda}"
  if command -v xz >/dev/null 2>&1; then xz -dc "$src" > "$dst"
  else "${_sc_py:-python3}" -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"))' "$src" "$dst"
  fi && chmod +x "$dst" && _sc_log "unpacked $src -> $dst"
}
unset _c _d _l _f _sc_libdirs _sc_drv_cache _sc_repo
