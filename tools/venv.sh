#!/usr/bin/env bash
# Creates (once) the Python venv used by the scripts in tools/ and prints its python path.
# Usage: PY=$(tools/venv.sh)  — building, running and testing the Swift code never needs this.
# tools/requirements.txt is installed again whenever it changed since the last install.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="${LPC_VENV:-$root/.venv-tools}"
requirements="$root/tools/requirements.txt"
wanted=$(sha256sum "$requirements" | cut -c1-16)
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  python3 -m venv "$venv" >&2
  torch_wheel=$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -n 1 || true)
  if [ -n "$torch_wheel" ]; then
    "$venv/bin/pip" install -q "$torch_wheel" >&2
  else
    echo "error: the torch 2.13.0+cpu wheel is not in /opt/wheels (DESIGN.md §9); plain 'torch' from PyPI is a 5 GB CUDA build" >&2
    exit 1
  fi
fi
if [ "$(cat "$venv/.complete" 2>/dev/null)" != "$wanted" ]; then
  "$venv/bin/pip" install -q -r "$requirements" >&2
  echo "$wanted" > "$venv/.complete"
fi
echo "$venv/bin/python"
