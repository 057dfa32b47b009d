#!/usr/bin/env bash
# One-time, idempotent set-up for a fresh Debian/Ubuntu machine (root or sudo):
# Debian toolchain packages, a virtual environment in .venv, npas installed editable.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# g++-aarch64-linux-gnu + qemu-user: the arm64 target is cross-built and run under qemu-aarch64;
# openssh: the ssh device is tested against an sshd on 127.0.0.1.
# ocl-icd-libopencl1 + pocl-opencl-icd: the opencl target runs on PoCL (a CPU OpenCL driver)
# through the ICD loader; clinfo shows what OpenCL sees.
DEB_PACKAGES=(g++ cmake ninja-build python3-venv python3-dev
              g++-aarch64-linux-gnu qemu-user openssh-server openssh-client
              ocl-icd-libopencl1 pocl-opencl-icd clinfo)
missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "[setup] installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY="${NPAS_PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY="$(command -v "$cand")"; break; fi
  done
fi
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $PY"
  "$PY" -m venv .venv
fi
# Reinstall only when what the install depends on changed (the stamp is a hash of it).
STAMP=.venv/.npas-setup-stamp
WANT="$(cat requirements.txt setup.py pyproject.toml CMakeLists.txt runtime/CMakeLists.txt \
        runtime/src/*.cpp runtime/src/*.h runtime/include/*.h 2>/dev/null | sha256sum | cut -c1-32)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ] || ! .venv/bin/python -c "import npas._runtime" 2>/dev/null; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  .venv/bin/python -m pip install -q --no-build-isolation -e .
  echo "$WANT" > "$STAMP"
fi
echo "[setup] done: $(.venv/bin/python -c 'import npas; print("npas", npas.__version__)')"
