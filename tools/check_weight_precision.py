#!/usr/bin/env python3
"""How far f16/bf16/i16 weight storage moves a model's outputs from float32.

Usage:  PY=$(tools/venv.sh)
        .build/release/lpc optimize models/SmolLM2-135M-Instruct -o /tmp/smol-f16 --weights f16
        $PY tools/check_weight_precision.py models/SmolLM2-135M-Instruct /tmp/smol-f16 [/tmp/smol-i16 ...] \\
            [--seeds 0,1,2,3] [--chat "Why is the sky blue?"] [--prompt-ids 1,2,3,...]

For each prompt (a random --prefill-token prompt per seed; each --chat message through the
model's chat template; each --prompt-ids list), runs `lpc run` on the float32 model and on each
converted folder with the same prefill (empty past; prefill runs sgemm on widened weights) and
then one decode step (one token on the float32 prefill's cache; the decode gemv kernels: a random
token for random prompts, else the prompt's last token, which the prefill then leaves out), and
prints per folder, prompt and step: max and mean |Δlogit|, the float32 logits' range, how often
the argmax agrees, max |Δ| over the present KV outputs, and for the prefill the positions with
the largest max |Δlogit| and the median over positions. Exit 0 when every max |Δlogit| ≤ --atol
(default 2e-2), else 1; 2 on setup errors.
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from check_optimized import input_flags  # noqa: E402


def run(lpc, folder, flags, out):
    done = subprocess.run([lpc, "run", str(folder)] + flags + ["--output-dir", str(out)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"lpc run {folder} failed: {done.stderr.strip()}")
    return {p.stem: np.load(p) for p in Path(out).glob("*.npy")}


def graph_inputs(original):
    """The export's input names, its past_key_values names and their (kv_heads, head_dim)."""
    source = onnx.load(str(Path(original) / "model.onnx"), load_external_data=False)
    inputs = {i.name: i for i in source.graph.input}
    past = [n for n in inputs if n.startswith("past_key_values.")]
    dims = inputs[past[0]].type.tensor_type.shape.dim
    return inputs, past, (dims[1].dim_value, dims[3].dim_value)


def prefill_feeds(ids, inputs, past, kv):
    """Feeds for prefilling `ids` [1, T] on an empty cache."""
    feeds = {"input_ids": ids}
    if "attention_mask" in inputs:
        feeds["attention_mask"] = np.ones_like(ids)
    if "position_ids" in inputs:
        feeds["position_ids"] = np.arange(ids.shape[1], dtype=np.int64)[None, :]
    for name in past:
        feeds[name] = np.zeros((1, kv[0], 0, kv[1]), dtype=np.float32)
    return feeds


def chat_ids(original, message):
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(str(original))
    return tokenizer.apply_chat_template([{"role": "user", "content": message}], add_generation_prompt=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("original")
    ap.add_argument("converted", nargs="+")
    ap.add_argument("--lpc", default=str(ROOT / ".build" / "release" / "lpc"))
    ap.add_argument("--prefill", type=int, default=64, help="tokens of each random prompt")
    ap.add_argument("--seed", type=int, default=None, help="one random prompt (same as --seeds N)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds, one random prompt each ('' for none)")
    ap.add_argument("--chat", action="append", default=[], help="a user message, tokenized with the chat template")
    ap.add_argument("--prompt-ids", action="append", default=[], help="comma-separated token ids (last one: the decode step)")
    ap.add_argument("--atol", type=float, default=2e-2)
    args = ap.parse_args()

    inputs, past, kv = graph_inputs(args.original)
    prompts = []  # (label, prefill ids [1, T], decode-step id [1, 1])
    seeds = [args.seed] if args.seed is not None else [int(s) for s in args.seeds.split(",") if s.strip()]
    for seed in seeds:
        rng = np.random.default_rng(seed)  # the same draws as before --seeds existed: prompt, then step token
        ids = rng.integers(0, 49152, size=(1, args.prefill), dtype=np.int64)
        prompts.append((f"random seed {seed}", ids, rng.integers(0, 49152, size=(1, 1), dtype=np.int64)))
    lists = [(f"chat {m[:24]!r}", chat_ids(args.original, m)) for m in args.chat]
    lists += [(f"ids {text[:24]}", [int(t) for t in text.replace(" ", ",").split(",") if t]) for text in args.prompt_ids]
    for label, ids in lists:
        if len(ids) < 2:
            print(f"{label}: needs at least two tokens")
            return 2
        prompts.append((f"{label} ({len(ids) - 1} tokens)", np.array([ids[:-1]], dtype=np.int64), np.array([[ids[-1]]], dtype=np.int64)))

    ok = True
    worst = {}  # folder → (prefill max, decode max)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        try:
            for p, (label, ids, token) in enumerate(prompts):
                feeds = prefill_feeds(ids, inputs, past, kv)
                flags = input_flags(feeds, work, prefix=f"p{p}.")
                reference = run(args.lpc, args.original, flags, work / f"original{p}")
                step = {"input_ids": token}
                if "attention_mask" in inputs:
                    step["attention_mask"] = np.ones((1, ids.shape[1] + 1), dtype=np.int64)
                if "position_ids" in inputs:
                    step["position_ids"] = np.array([[ids.shape[1]]], dtype=np.int64)
                for name in past:
                    step[name] = reference[name.replace("past_key_values", "present")]
                step_flags = input_flags(step, work, prefix=f"p{p}.step.")
                reference_step = run(args.lpc, args.original, step_flags, work / f"original{p}-step")
                for index, folder in enumerate(args.converted):
                    for kind, ref, fl in (("prefill", reference, flags), ("decode step", reference_step, step_flags)):
                        outs = run(args.lpc, folder, fl, work / f"converted{index}-{p}-{kind[:6]}")
                        expected, actual = ref["logits"], outs["logits"]
                        delta = np.abs(actual - expected)
                        agree = float((actual.argmax(-1) == expected.argmax(-1)).mean())
                        kvd = max(float(np.abs(outs[n] - ref[n]).max()) for n in ref if n != "logits")
                        line = (f"{folder}: {label}: {kind}: max |Δlogit| {delta.max():.4g}, mean {delta.mean():.3g} "
                                f"(float32 logits in [{expected.min():.1f}, {expected.max():.1f}]); argmax agrees at {agree:.1%} "
                                f"of positions; max |Δ| present KV {kvd:.3g}")
                        if kind == "prefill":
                            per_position = delta[0].max(-1)  # [T]
                            top = np.argsort(per_position)[::-1][:5]
                            line += ("\n    per position: median max |Δlogit| " + f"{np.median(per_position):.4g}; largest at "
                                     + ", ".join(f"{t} ({per_position[t]:.4g})" for t in top))
                        print(line, flush=True)
                        w = worst.setdefault(folder, [0.0, 0.0])
                        w[kind != "prefill"] = max(w[kind != "prefill"], float(delta.max()))
                        ok = ok and float(delta.max()) <= args.atol
        except RuntimeError as error:
            print(error)
            return 2
    for folder, (pre, dec) in worst.items():
        print(f"{folder}: over {len(prompts)} prompts: max |Δlogit| prefill {pre:.4g}, decode step {dec:.4g}")
    print("PASS" if ok else f"FAIL (atol {args.atol})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
