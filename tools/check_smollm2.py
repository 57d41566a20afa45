#!/usr/bin/env python3
"""Parity check of `lpc run` against onnxruntime on a real model (default: SmolLM2-135M-Instruct).

Usage:  PY=$(tools/venv.sh); $PY tools/check_smollm2.py [--model DIR] [--lpc .build/release/lpc]
                                                        [--prefill 32] [--steps 16] [--ort-only]

1. prefill: --prefill seeded random token ids (or --prompt TEXT through the model's tokenizer),
   empty past ([1, kv_heads, 0, head_dim]); onnxruntime (CPUExecutionProvider) gives the goldens;
2. --steps greedy decode steps: each step's token is the argmax of onnxruntime's last logits and
   its past is onnxruntime's present.* of the step before — both engines get identical inputs, so
   errors cannot compound;
3. every step: inputs saved as .npy, then
      lpc run MODEL/model.onnx --input NAME=FILE.npy ... --output-dir DIR
   and every graph output (logits, present.N.key|value) compared with onnxruntime's:
      pass iff |lpc - ort| <= atol + rtol·|ort| elementwise (default atol = rtol = 1e-4).
Prints, per step, max |error| and max violation (max of |a-b| - atol - rtol|b|; > 0 fails) for
logits and for the worst present.* (--verbose: for every output). Exit 0 pass, 1 mismatch,
2 setup error or lpc exited non-zero (a missing output file counts as a mismatch). --ort-only runs the onnxruntime half alone.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def npy_name(name: str) -> str:
    return name.replace("/", "_") + ".npy"


def compare(actual: np.ndarray, expected: np.ndarray, atol: float, rtol: float) -> dict:
    if actual.shape != expected.shape:
        return {"ok": False, "why": f"shape {actual.shape} != {expected.shape}",
                "max_abs": float("inf"), "max_violation": float("inf")}
    if actual.dtype != expected.dtype:
        return {"ok": False, "why": f"dtype {actual.dtype} != {expected.dtype}",
                "max_abs": float("inf"), "max_violation": float("inf")}
    a = actual.astype(np.float64)
    b = expected.astype(np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    err = np.where(both_nan, 0.0, np.abs(a - b))
    err = np.where(np.isnan(err), np.inf, err)  # NaN on one side only
    violation = err - (atol + rtol * np.abs(np.where(np.isfinite(b), b, 0.0)))
    max_abs = float(err.max()) if err.size else 0.0
    max_violation = float(violation.max()) if violation.size else -atol
    bad = int(np.count_nonzero(violation > 0))
    return {"ok": bad == 0, "why": f"{bad} of {err.size} elements out of tolerance" if bad else "",
            "max_abs": max_abs, "max_violation": max_violation,
            "worst_index": np.unravel_index(int(np.argmax(violation)), violation.shape) if err.size else ()}


class Runner:
    def __init__(self, args):
        import onnxruntime as ort
        self.args = args
        self.weights = args.weights
        self.model_dir = Path(args.model).resolve()
        self.onnx_path = self.model_dir / "model.onnx"
        if not self.onnx_path.is_file():
            print(f"error: {self.onnx_path} not found (build it with tools/make_smollm2.py)",
                  file=sys.stderr)
            sys.exit(2)
        self.lpc = None
        if not args.ort_only:
            lpc = Path(args.lpc)
            if not lpc.is_absolute():
                lpc = (Path.cwd() / lpc)
            if not lpc.is_file():
                print(f"error: lpc binary {lpc} not found (swift build -c release --product lpc, "
                      f"or pass --lpc PATH, or --ort-only)", file=sys.stderr)
                sys.exit(2)
            self.lpc = lpc
        so = ort.SessionOptions()
        if args.threads:
            so.intra_op_num_threads = args.threads
        t = time.time()
        self.sess = ort.InferenceSession(str(self.onnx_path), so, providers=["CPUExecutionProvider"])
        print(f"onnxruntime {ort.__version__}: loaded {self.onnx_path} in {time.time() - t:.1f}s")
        self.input_names = [i.name for i in self.sess.get_inputs()]
        self.output_names = [o.name for o in self.sess.get_outputs()]
        past = [i for i in self.sess.get_inputs() if i.name.startswith("past_key_values.")]
        shape = past[0].shape  # [batch, kv_heads, past, head_dim]
        self.kv_heads, self.head_dim = int(shape[1]), int(shape[3])
        self.past_names = [i.name for i in past]

    def vocab_size(self) -> int:
        logits = next(o for o in self.sess.get_outputs() if o.name == "logits")
        if isinstance(logits.shape[-1], int):
            return logits.shape[-1]
        return json.loads((self.model_dir / "config.json").read_text())["vocab_size"]

    def feeds(self, ids: np.ndarray, start: int, past: dict) -> dict:
        total = start + ids.shape[1]
        f = {"input_ids": ids.astype(np.int64),
             "attention_mask": np.ones((1, total), np.int64),
             "position_ids": np.arange(start, total, dtype=np.int64)[None, :],
             **past}
        missing = set(self.input_names) - f.keys()
        if missing:
            sys.exit(f"error: the model wants inputs this script does not make: {sorted(missing)}")
        return {k: f[k] for k in self.input_names}

    def run_ort(self, feeds: dict) -> tuple[dict, float]:
        t = time.time()
        out = self.sess.run(self.output_names, feeds)
        return dict(zip(self.output_names, out)), time.time() - t

    def run_lpc(self, feeds: dict, step_dir: Path) -> tuple[dict, float]:
        in_dir, out_dir = step_dir / "inputs", step_dir / "lpc"
        in_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(self.lpc), "run", str(self.onnx_path)]
        for name, value in feeds.items():
            path = in_dir / npy_name(name)
            np.save(path, np.ascontiguousarray(value), allow_pickle=False)
            cmd += ["--input", f"{name}={path}"]
        cmd += ["--output-dir", str(out_dir), "--weights", self.weights]
        t = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        elapsed = time.time() - t
        if proc.returncode != 0:
            print(f"lpc failed (exit {proc.returncode}): {' '.join(cmd[:3])} ...", file=sys.stderr)
            print(proc.stdout[-4000:], proc.stderr[-4000:], sep="\n", file=sys.stderr)
            sys.exit(2)
        results = {}
        for name in self.output_names:
            path = out_dir / npy_name(name)
            if path.is_file():
                results[name] = np.load(path, allow_pickle=False)
        return results, elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models" / "SmolLM2-135M-Instruct"),
                    help="folder holding model.onnx (default: models/SmolLM2-135M-Instruct)")
    ap.add_argument("--lpc", default=".build/release/lpc", help="the lpc binary")
    ap.add_argument("--prefill", type=int, default=32, help="prefill length (random ids)")
    ap.add_argument("--prompt", help="tokenize this text (chat template) instead of random ids")
    ap.add_argument("--steps", type=int, default=16, help="greedy decode steps after the prefill")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = default)")
    ap.add_argument("--ort-only", action="store_true", help="run only the onnxruntime half")
    ap.add_argument("--weights", default="f32", help="lpc run --weights (f32, f24: exact float32 values in 3 bytes, f16, bf16, i16)")
    ap.add_argument("--keep", help="keep the .npy inputs/outputs in this folder")
    ap.add_argument("--verbose", action="store_true", help="print every output of every step")
    args = ap.parse_args()

    r = Runner(args)
    if args.prompt:
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(str(r.model_dir))
        ids = tok.apply_chat_template([{"role": "user", "content": args.prompt}],
                                      add_generation_prompt=True, return_tensors="np")
        ids = np.asarray(ids, np.int64).reshape(1, -1)
    else:
        vocab = r.vocab_size()
        ids = np.random.default_rng(args.seed).integers(0, vocab, size=(1, args.prefill)).astype(np.int64)

    if args.keep:
        work = Path(args.keep).resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix="lpc-check-"))
    past = {n: np.zeros((1, r.kv_heads, 0, r.head_dim), np.float32) for n in r.past_names}
    print(f"prefill {ids.shape[1]} tokens, then {args.steps} greedy decode steps; "
          f"tolerance |a-b| <= {args.atol:g} + {args.rtol:g}|b|"
          + ("" if r.lpc else "  [--ort-only: onnxruntime half only]"))

    failures, worst = [], {}
    start, tokens = 0, []
    try:
        for step in range(args.steps + 1):
            label = "prefill" if step == 0 else f"decode {step:2d}"
            feeds = r.feeds(ids, start, past)
            ort_out, ort_t = r.run_ort(feeds)
            nxt = int(np.argmax(ort_out["logits"][0, -1]))
            if r.lpc is None:
                finite = all(np.all(np.isfinite(v)) for v in ort_out.values())
                print(f"{label}: ort {ort_t * 1e3:7.1f} ms, past {start:3d}, next token {nxt:6d}, "
                      f"logits {ort_out['logits'].shape} max|x| {np.abs(ort_out['logits']).max():.2f}"
                      f"{'' if finite else '  NON-FINITE OUTPUT'}")
                if not finite:
                    failures.append((label, "onnxruntime", "non-finite output"))
            else:
                lpc_out, lpc_t = r.run_lpc(feeds, work / f"step{step:02d}")
                results = {}
                for name in r.output_names:
                    if name not in lpc_out:
                        results[name] = {"ok": False, "why": "lpc wrote no file", "max_abs": float("inf"),
                                         "max_violation": float("inf")}
                    else:
                        results[name] = compare(lpc_out[name], ort_out[name], args.atol, args.rtol)
                    w = worst.setdefault(name, [0.0, -float("inf")])
                    w[0] = max(w[0], results[name]["max_abs"])
                    w[1] = max(w[1], results[name]["max_violation"])
                    if not results[name]["ok"]:
                        failures.append((label, name, results[name]["why"]))
                presents = [n for n in r.output_names if n != "logits"]
                wp = max(presents, key=lambda n: results[n]["max_violation"]) if presents else None
                lg = results["logits"]
                line = (f"{label}: lpc {lpc_t:6.2f} s (ort {ort_t * 1e3:6.1f} ms)  "
                        f"logits max|err| {lg['max_abs']:.2e} viol {lg['max_violation']:+.2e}"
                        f"{'' if lg['ok'] else ' FAIL'}")
                if wp:
                    p = results[wp]
                    line += (f" | worst of {len(presents)} presents: {wp} max|err| {p['max_abs']:.2e} "
                             f"viol {p['max_violation']:+.2e}")
                print(line + f"  next {nxt}")
                for name in r.output_names:
                    res = results[name]
                    if args.verbose or not res["ok"]:
                        print(f"    {name:24s} max|err| {res['max_abs']:.3e}  max violation "
                              f"{res['max_violation']:+.3e}  {res['why']}")
            # next step: the greedy token, ORT's presents as the past (for both engines)
            tokens.append(nxt)
            start += ids.shape[1]
            ids = np.array([[nxt]], np.int64)
            past = {n.replace("present.", "past_key_values."): v for n, v in ort_out.items()
                    if n.startswith("present.")}
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    text = ""
    if (r.model_dir / "tokenizer.json").is_file():
        try:
            from tokenizers import Tokenizer
            text = " = " + repr(Tokenizer.from_file(str(r.model_dir / "tokenizer.json")).decode(tokens))
        except Exception as e:  # decoding is only informative
            text = f" (could not decode: {e})"
    print(f"greedy tokens (onnxruntime): {tokens}{text}")
    if worst:
        print("per output, worst over all steps: "
              + ", ".join(f"{n} {w[0]:.2e}/{w[1]:+.2e}" for n, w in list(worst.items())[:3]) + ", ...")
        allw = max(worst.values(), key=lambda w: w[1])
        print(f"overall: max|err| {max(w[0] for w in worst.values()):.3e}, max violation {allw[1]:+.3e}")
    if failures:
        print(f"FAIL: {len(failures)} output(s) out of tolerance, first: {failures[0]}")
        sys.exit(1)
    print("PASS" if r.lpc else "onnxruntime half OK (lpc not run)")


if __name__ == "__main__":
    main()
