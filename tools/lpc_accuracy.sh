#!/usr/bin/env bash
# Issue 5's held-out accuracy table in one command: data, features, validation tuning, DPO/SimPO/IPO x
# {no LPC, LPC} x seeds 1-3 on the held-out eval split, docs/accuracy.md. Runs tools/lpc_accuracy.py
# with the tools venv's python. Usage: tools/lpc_accuracy.sh [--stages ...] (tools/lpc_accuracy.py --help).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$("$root/tools/venv.sh")}
exec "$PY" "$root/tools/lpc_accuracy.py" "$@"
