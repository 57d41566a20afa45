#!/usr/bin/env python3
"""How far f16/bf16 weight storage moves a model's outputs from float32.

Usage:  PY=$(tools/venv.sh)
        .build/release/lpc optimize models/SmolLM2-135M-Instruct -o /tmp/smol-f16 --weights f16
        $PY tools/check_weight_precision.py models/SmolLM2-135M-Instruct /tmp/smol-f16 [/tmp/smol-bf16 ...]

Runs `lpc run` on the float32 model and on each converted folder with the same random prefill
(--prefill ids, empty past; prefill runs sgemm on widened weights) and then one decode step
(one token on the float32 prefill's cache; the decode gemv kernels), and prints, per folder and
step: max and mean |Δlogit|, the float32 logits' range, how often the argmax agrees, and max |Δ|
over the present KV outputs. Exit 0 when every max |Δlogit| ≤ --atol (default 2e-2), else 1; 2
on setup errors.
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from check_optimized import input_flags, prefill_inputs  # noqa: E402


def run(lpc, folder, flags, out):
    done = subprocess.run([lpc, "run", str(folder)] + flags + ["--output-dir", str(out)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"lpc run {folder} failed: {done.stderr.strip()}")
    return {p.stem: np.load(p) for p in Path(out).glob("*.npy")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("original")
    ap.add_argument("converted", nargs="+")
    ap.add_argument("--lpc", default=str(ROOT / ".build" / "release" / "lpc"))
    ap.add_argument("--prefill", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--atol", type=float, default=2e-2)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    ok = True
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        inputs, past, flags = prefill_inputs(args.original, args.prefill, rng, work)
        try:
            reference = run(args.lpc, args.original, flags, work / "original")
            # The decode step: one token on the float32 prefill's cache, for every model alike.
            step = {"input_ids": rng.integers(0, 49152, size=(1, 1), dtype=np.int64)}
            if "attention_mask" in inputs:
                step["attention_mask"] = np.ones((1, args.prefill + 1), dtype=np.int64)
            if "position_ids" in inputs:
                step["position_ids"] = np.array([[args.prefill]], dtype=np.int64)
            for name in past:
                step[name] = reference[name.replace("past_key_values", "present")]
            step_flags = input_flags(step, work, prefix="step.")
            reference_step = run(args.lpc, args.original, step_flags, work / "original-step")
            for index, folder in enumerate(args.converted):
                for label, ref, fl in ((f"{args.prefill}-token prefill", reference, flags), ("decode step", reference_step, step_flags)):
                    outs = run(args.lpc, folder, fl, work / f"converted{index}-{label[:6]}")
                    expected, actual = ref["logits"], outs["logits"]
                    delta = np.abs(actual - expected)
                    agree = float((actual.argmax(-1) == expected.argmax(-1)).mean())
                    kv = max(float(np.abs(outs[n] - ref[n]).max()) for n in ref if n != "logits")
                    print(f"{folder}: {label}: max |Δlogit| {delta.max():.4g}, mean {delta.mean():.3g} "
                          f"(float32 logits in [{expected.min():.1f}, {expected.max():.1f}]); argmax agrees at {agree:.1%} "
                          f"of positions; max |Δ| present KV {kv:.3g}")
                    ok = ok and float(delta.max()) <= args.atol
        except RuntimeError as error:
            print(error)
            return 2
    print("PASS" if ok else f"FAIL (atol {args.atol})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
