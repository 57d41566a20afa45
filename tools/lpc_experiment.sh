#!/usr/bin/env bash
# Acceptance experiment of issue 5: DPO, SimPO and IPO, each with LPC and without (--no-lpc), over
# several seeds, on the SmolLM2 preference set (tools/make_preference_data.py), frozen backbone.
# Reports held-out preference accuracy (ties ½) with the prior's code, the posterior's code and no
# code, from the final evaluation record of each run's metrics.jsonl.
#
# Usage: tools/lpc_experiment.sh            (settings below; override with environment variables)
#   LPC=.build/release/lpc MODEL=models/SmolLM2-135M-Instruct DATA=data/smollm2_prefs
#   OUT=out/lpc_experiment SEEDS="1 2 3" OBJECTIVES="dpo simpo ipo" EPOCHS=2 LR=1e-3 BATCH=8
#   EXTRA="--max-length 256"                 (more lpc train options for every run)
# Features are extracted once into $OUT/cache and reused by every run. Reference log-probs: the
# backbone's own (--reference cached). IPO uses length-averaged log-ratios (lpc's default, as TRL).
# Runs already finished (head.safetensors present) are skipped, so the script can be re-run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
LPC=${LPC:-$root/.build/release/lpc}
MODEL=${MODEL:-$root/models/SmolLM2-135M-Instruct}
DATA=${DATA:-$root/data/smollm2_prefs}
OUT=${OUT:-$root/out/lpc_experiment}
SEEDS=${SEEDS:-1 2 3}
OBJECTIVES=${OBJECTIVES:-dpo simpo ipo}
EPOCHS=${EPOCHS:-2}
LR=${LR:-1e-3}
BATCH=${BATCH:-8}
EXTRA=${EXTRA:-}

[ -x "$LPC" ] || { echo "error: $LPC not found; build it: swift build -c release --product lpc" >&2; exit 1; }
for f in train eval; do
  [ -f "$DATA/$f.jsonl" ] || { echo "error: $DATA/$f.jsonl is missing; make it with tools/make_preference_data.py" >&2; exit 1; }
done
mkdir -p "$OUT"
# Seed outermost: an interrupted experiment still has complete rows for the first seeds.
for seed in $SEEDS; do
  for objective in $OBJECTIVES; do
    for variant in lpc base; do
      run="$OUT/$objective-$variant-s$seed"
      if [ -f "$run/head.safetensors" ]; then echo "skip $run (done)"; continue; fi
      flags=()
      [ "$variant" = base ] && flags+=(--no-lpc)
      echo "== $objective $variant seed $seed" >&2
      # shellcheck disable=SC2086
      "$LPC" train --model "$MODEL" --data "$DATA/train.jsonl" --eval-data "$DATA/eval.jsonl" \
        --objective "$objective" "${flags[@]}" --epochs "$EPOCHS" --lr "$LR" --batch-size "$BATCH" \
        --warmup-steps 5 --seed "$seed" --cache "$OUT/cache" --reference cached --out "$run" $EXTRA \
        2> "$run.log" || { echo "error: run $run failed; see $run.log" >&2; tail -5 "$run.log" >&2; exit 1; }
      grep -E "^eval @|^done" "$run.log" | tail -2 >&2
    done
  done
done

python3 - "$OUT" "$OBJECTIVES" "$SEEDS" <<'EOF'
import json, statistics, sys
from pathlib import Path
out, objectives, seeds = Path(sys.argv[1]), sys.argv[2].split(), sys.argv[3].split()
def final_eval(run):
    recs = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if l.strip()]
    evals = [r for r in recs if "eval/pairs" in r]
    return evals[-1] if evals else None
def cell(values):
    values = [v for v in values if v is not None]
    if not values: return "n/a"
    m = 100 * statistics.mean(values)
    sd = 100 * statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{m:5.1f} ± {sd:3.1f}"
print(f"\nHeld-out preference accuracy (%, ties ½), mean ± sd over seeds {' '.join(seeds)}:")
print(f"| objective | variant | prior code | posterior code | no code | per-seed (primary) |")
print(f"|---|---|---|---|---|---|")
for o in objectives:
    for v in ("base", "lpc"):
        evs = [final_eval(out / f"{o}-{v}-s{s}") for s in seeds]
        evs = [e for e in evs if e]
        prior = [e.get("eval/accuracy/prior") for e in evs] if v == "lpc" else []
        post = [e.get("eval/accuracy/posterior") for e in evs] if v == "lpc" else []
        none = [e.get("eval/accuracy/none") for e in evs]
        primary = prior if v == "lpc" else none
        seeds_txt = " ".join(f"{100 * x:.1f}" for x in primary if x is not None)
        print(f"| {o} | {'LPC' if v == 'lpc' else 'no LPC'} | {cell(prior) if v == 'lpc' else '-'} | "
              f"{cell(post) if v == 'lpc' else '-'} | {cell(none)} | {seeds_txt} |")
EOF
