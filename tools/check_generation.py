#!/usr/bin/env python3
"""Greedy generation of `lpc generate` against onnxruntime on a chat model (default SmolLM2-135M-Instruct).

Usage:  PY=$(tools/venv.sh); $PY tools/check_generation.py [--model DIR] [--lpc .build/release/lpc] [--tokens 32]

For each of the chat prompts below:
1. transformers renders the chat template (add_generation_prompt=True) and HF `tokenizers` encodes it;
2. onnxruntime runs greedy decoding with its KV cache for --tokens tokens (EOS ignored);
3. `lpc generate --prompt TEXT --greedy --ignore-eos --format jsonl` does the same from the text
   (its own template and tokenizer), and `lpc generate --prompt-ids-file` from HF's ids.
Both lpc runs must produce exactly onnxruntime's token ids. Exit 0 when all match, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain in two sentences why the sky is blue.",
    "List three fruits that are red.",
    "Translate 'good morning' into Spanish and German.",
    "What is 12 times 7? Answer with the number only.",
]


def ort_greedy(session, ids: list[int], steps: int, layers: int, kv_heads: int, head_dim: int) -> list[int]:
    past = {f"past_key_values.{i}.{k}": np.zeros((1, kv_heads, 0, head_dim), np.float32)
            for i in range(layers) for k in ("key", "value")}
    tokens = list(ids)
    new = list(ids)
    out = []
    for _ in range(steps):
        start = len(tokens) - len(new)
        feeds = {"input_ids": np.array([new], np.int64),
                 "attention_mask": np.ones((1, len(tokens)), np.int64),
                 "position_ids": np.arange(start, len(tokens), dtype=np.int64)[None, :], **past}
        names = [o.name for o in session.get_outputs()]
        result = dict(zip(names, session.run(names, feeds)))
        nxt = int(np.argmax(result["logits"][0, -1]))
        out.append(nxt)
        tokens.append(nxt)
        new = [nxt]
        past = {f"past_key_values.{i}.{k}": result[f"present.{i}.{k}"] for i in range(layers) for k in ("key", "value")}
    return out


def lpc_ids(lpc: str, model: str, args: list[str]) -> list[int]:
    run = subprocess.run([lpc, "generate", "--model", model, "--greedy", "--ignore-eos", *args, "--format", "jsonl"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"lpc failed ({run.returncode}): {run.stderr}")
    return [json.loads(line)["id"] for line in run.stdout.splitlines() if json.loads(line).get("type") == "token"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/SmolLM2-135M-Instruct")
    parser.add_argument("--lpc", default=".build/release/lpc")
    parser.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()

    import onnxruntime as ort
    from transformers import AutoTokenizer

    config = json.loads((Path(args.model) / "config.json").read_text())
    layers, kv_heads = config["num_hidden_layers"], config["num_key_value_heads"]
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(Path(args.model) / "model.onnx"), options, providers=["CPUExecutionProvider"])

    failures = 0
    for prompt in PROMPTS:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True)
        expected = ort_greedy(session, ids, args.tokens, layers, kv_heads, head_dim)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(ids, handle)
        from_ids = lpc_ids(args.lpc, args.model, ["--prompt-ids-file", handle.name, "--max-tokens", str(args.tokens)])
        from_text = lpc_ids(args.lpc, args.model, ["--prompt", prompt, "--max-tokens", str(args.tokens)])
        ok = from_ids == expected and from_text == expected
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {prompt!r}: {len(ids)} prompt tokens, ort {tokenizer.decode(expected)!r}")
        if not ok:
            print(f"     ort      {expected}\n     lpc ids  {from_ids}\n     lpc text {from_text}")
    print(f"{len(PROMPTS) - failures}/{len(PROMPTS)} prompts: identical greedy ids for {args.tokens} tokens")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
