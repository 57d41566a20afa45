#!/usr/bin/env bash
# The README's main command: set up everything on a fresh machine and generate with the default
# model (SmolLM2-135M-Instruct), conditioned on the latent code the shipped LPC head's prior picks
# for the prompt. Each step is skipped when its result already exists.
#   tools/quickstart.sh ["your prompt"]
set -euo pipefail
cd "$(dirname "$0")/.."
model=models/SmolLM2-135M-Instruct
prompt=${1:-"What is the capital of France? Answer in one sentence."}

echo "== 1/4 system packages" >&2
tools/install-system-deps.sh >&2

echo "== 2/4 default model ($model; first time: a Python venv and a conversion, a few minutes)" >&2
PY=$(tools/venv.sh)
"$PY" tools/make_smollm2.py --out "$model" >&2

echo "== 3/4 release build" >&2
swift build -c release --product lpc 2>&1 | tail -n 1 >&2

head=models/lpc-head-smollm2-dpo
echo "== 4/4 lpc generate --prompt \"$prompt\" --head $head --code auto" >&2
.build/release/lpc generate --model "$model" --prompt "$prompt" --head "$head" --code auto --max-tokens 64
