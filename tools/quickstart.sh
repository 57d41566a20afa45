#!/usr/bin/env bash
# The README's main command: set up everything on a fresh machine and run lpc on the default
# model (SmolLM2-135M-Instruct). Each step is skipped when its result already exists.
set -euo pipefail
cd "$(dirname "$0")/.."
model=models/SmolLM2-135M-Instruct

echo "== 1/4 system packages"
tools/install-system-deps.sh

echo "== 2/4 default model ($model)"
PY=$(tools/venv.sh)
"$PY" tools/make_smollm2.py --out "$model"

echo "== 3/4 release build"
swift build -c release --product lpc 2>&1 | tail -n 1

echo "== 4/4 inspect, then run against onnxruntime (32-token prefill + 16 decode steps)"
.build/release/lpc inspect "$model"
"$PY" tools/check_smollm2.py --model "$model" --lpc .build/release/lpc
