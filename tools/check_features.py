#!/usr/bin/env python3
"""Checks an `lpc features` cache entry against PyTorch (transformers) on the same pairs.

Usage:  PY=$(tools/venv.sh); $PY tools/check_features.py CACHE_DIR [--hf models/SmolLM2-135M-Instruct-hf]
            [--pairs 6]

For the first --pairs pairs of the data file named in CACHE_DIR/index.json:
  1. renders and tokenizes them the way lpc documents it (string prompt -> one user message with
     the generation prompt; response = rendering of prompt + assistant message minus the prompt's
     rendering; no special tokens added) with the HF tokenizer, and compares the response ids;
  2. runs the HF model on prompt + response and compares the final hidden states (after the final
     norm: HF's last `hidden_states` entry) at positions P-1 .. P+n-1 and the reference log-probs of
     the response tokens with the cached ones.
Prints the worst absolute differences; exits 1 when ids differ or differences exceed
--atol (default 2e-3 on hidden states and log-probs: fp32 CPU kernels in different orders).
Truncation (--max-length/--max-prompt-length) is not re-applied: check untruncated data.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
ROOT = Path(__file__).resolve().parent.parent


def messages(side, role):
    return [{"role": role, "content": side}] if isinstance(side, str) else side


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cache")
    ap.add_argument("--hf", default=str(ROOT / "models/SmolLM2-135M-Instruct-hf"))
    ap.add_argument("--pairs", type=int, default=6)
    ap.add_argument("--atol", type=float, default=2e-3)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    torch.set_num_threads(1)

    cache = Path(args.cache)
    index = json.loads((cache / "index.json").read_text())
    d = index["hidden_size"]
    dtype = np.float32 if index["storage"] == "float32" else np.float16
    hidden = np.fromfile(cache / ("hidden.f32" if dtype == np.float32 else "hidden.f16"), dtype=dtype).reshape(-1, d)
    tokens = np.fromfile(cache / "tokens.i32", dtype=np.int32)
    logps = np.fromfile(cache / "logps.f32", dtype=np.float32)
    data_file = Path(index["data"])
    if not data_file.is_absolute():
        data_file = ROOT / data_file
    by_line = {}
    number = 0
    for raw in data_file.read_text().split("\n"):
        number += 1
        if raw.strip():
            by_line[number] = json.loads(raw)

    tok = AutoTokenizer.from_pretrained(args.hf)
    model = AutoModelForCausalLM.from_pretrained(args.hf, dtype=torch.float32).eval()

    worst_h = worst_lp = 0.0
    failures = 0
    for entry in index["pairs"][:args.pairs]:
        pair = by_line[entry["line"]]
        prompt_msgs = messages(pair["prompt"], "user")
        prompt_text = tok.apply_chat_template(prompt_msgs, tokenize=False, add_generation_prompt=True)
        prompt_ids = tok(prompt_text, add_special_tokens=False)["input_ids"]
        if len(prompt_ids) != entry["prompt_length"]:
            print(f"line {entry['line']}: prompt has {len(prompt_ids)} tokens here, {entry['prompt_length']} in the cache")
            failures += 1
            continue
        for side in ("chosen", "rejected"):
            seq = entry[side]
            full = tok.apply_chat_template(prompt_msgs + messages(pair[side], "assistant"), tokenize=False)
            assert full.startswith(prompt_text)
            ids = tok(full[len(prompt_text):], add_special_tokens=False)["input_ids"]
            cached_ids = tokens[seq["token"]:seq["token"] + seq["count"]].tolist()
            if ids != cached_ids:
                print(f"line {entry['line']} {side}: response ids differ\n  hf:  {ids}\n  lpc: {cached_ids}")
                failures += 1
                continue
            with torch.no_grad():
                out = model(torch.tensor([prompt_ids + ids]), output_hidden_states=True)
            h = out.hidden_states[-1][0].numpy()
            logits = out.logits[0].double()
            lp = torch.log_softmax(logits, dim=-1)
            P, n = len(prompt_ids), len(ids)
            ref = np.array([lp[P - 1 + i, ids[i]].item() for i in range(n)])
            rows = hidden[seq["row"]:seq["row"] + n + 1].astype(np.float32)
            dh = float(np.abs(rows - h[P - 1:P + n]).max())
            dl = float(np.abs(logps[seq["token"]:seq["token"] + n] - ref).max())
            worst_h, worst_lp = max(worst_h, dh), max(worst_lp, dl)
            print(f"line {entry['line']:4d} {side:8s}: {n:3d} tokens, max |dh| {dh:.2e}, max |dlogp| {dl:.2e}, "
                  f"sum logp lpc {logps[seq['token']:seq['token'] + n].sum():.4f} torch {ref.sum():.4f}")
    ok = failures == 0 and worst_h <= args.atol and worst_lp <= args.atol
    print(f"{'OK' if ok else 'FAIL'}: worst |dh| {worst_h:.2e}, worst |dlogp| {worst_lp:.2e} (atol {args.atol}), "
          f"{failures} id mismatch(es)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
