#!/usr/bin/env python3
"""Training throughput of `lpc train` against the same math in PyTorch, on the same cached features.

Usage:  PY=$(tools/venv.sh); $PY tools/bench_training.py [--model DIR] [--data FILE] [--pairs 64]
            [--batch-size 8] [--epochs 2] [--runs 5] [--threads 2] [--objective dpo] [--no-lpc]
            [--lpc .build/release/lpc] [--precisions f32,bf16]

1. Takes the first --pairs pairs of --data (default data/smollm2_prefs/train.jsonl; without it, a
   synthetic set of short prompts and answers) and lets `lpc train` extract and cache their
   features once (final hidden states + reference log-probs, `--cache`).
2. lpc: runs `lpc train` --runs times, --epochs epochs each over those pairs, batch --batch-size,
   and reads the rate it reports ("done: … pairs/s": time inside optimizer steps only — forward,
   backward, clipping, AdamW — features already in memory).
3. PyTorch: tools/lpc_torch.py's `lpc_loss` (the same model, loss and metrics; autograd backward),
   torch.optim.AdamW, clip_grad_norm_, float32, on the SAME cached features read from the cache
   folder (index.json + hidden.f32 + tokens.i32 + logps.f32) and the same LM head (the model's tied
   embedding from the HF folder, or the ONNX initializer), same batch size, same epochs; timed the
   same way (steps only, batches prebuilt), --runs times.
4. Precisions (--precisions): f32 is lpc's float32 path (`--lm-head-precision f32`, OpenBLAS sgemm)
   against PyTorch float32. bf16 is lpc's `--lm-head-precision bf16` (bf16 H and W, float32
   accumulation, AMX, fused with the log-softmax) against PyTorch with the same bf16 math: W cast
   to bf16 once, htil cast to bf16, the LM head matmul and its backward in bf16 with float32
   accumulation (oneDNN, AMX where present), the log-softmax in float32 (tools/lpc_torch.py).
Both use --threads threads (torch.set_num_threads; OPENBLAS_NUM_THREADS for lpc's sgemm; lpc's
softmax and bf16 threads are min(8, cores)). Runs are interleaved (every variant once per run).
Prints every run, the medians and every pairing's ratio; like-for-like pairings (same precision)
are marked, the others are for reference only.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def synthetic_pairs(n: int) -> list[dict]:
    rng = random.Random(0)
    words = "the a cat dog runs quickly slowly because river mountain answer question simple long short".split()
    out = []
    for i in range(n):
        def text(k):
            return " ".join(rng.choice(words) for _ in range(k)).capitalize() + "."
        out.append({"prompt": f"Question {i}: {text(8)}", "chosen": text(rng.randint(20, 60)),
                    "rejected": text(rng.randint(20, 60)), "source": "synthetic"})
    return out


def lm_head_weight(model_dir: Path):
    import torch
    hf = Path(str(model_dir) + "-hf") / "model.safetensors"
    if hf.exists():
        from safetensors.torch import load_file
        state = load_file(str(hf))
        w = state.get("lm_head.weight", state.get("model.embed_tokens.weight"))
        return w.float().contiguous(), str(hf)
    import onnx
    from onnx import numpy_helper
    m = onnx.load(str(model_dir / "model.onnx"))
    for init in m.graph.initializer:
        if "embed_tokens" in init.name:
            return torch.from_numpy(numpy_helper.to_array(init).copy()).float(), f"{model_dir}/model.onnx:{init.name}"
    raise SystemExit("cannot find the LM head weight (embed_tokens) in the model folder")


def load_cache(cache_root: Path, data_file: str):
    """The newest cache entry made from data_file: per pair, the tensors lpc_torch's batch needs."""
    import numpy as np
    import torch
    entries = []
    for index in glob.glob(str(cache_root / "*" / "index.json")):
        meta = json.loads(Path(index).read_text())
        if os.path.abspath(meta["data"]) == os.path.abspath(data_file):
            entries.append((meta["created"], Path(index).parent, meta))
    if not entries:
        raise SystemExit(f"no feature cache entry for {data_file} under {cache_root}")
    _, folder, meta = sorted(entries)[-1]
    if meta["storage"] != "float32":
        raise SystemExit("the benchmark reads float32 feature caches only")
    d = meta["hidden_size"]
    hidden = torch.from_numpy(np.fromfile(folder / "hidden.f32", dtype=np.float32).reshape(meta["rows"], d))
    tokens = torch.from_numpy(np.fromfile(folder / "tokens.i32", dtype=np.int32).astype(np.int64))
    logps = torch.from_numpy(np.fromfile(folder / "logps.f32", dtype=np.float32))
    pairs = []
    for p in meta["pairs"]:
        seqs = []
        for s in (p["chosen"], p["rejected"]):
            rows = hidden[s["row"]:s["row"] + s["count"] + 1]
            seqs.append(dict(rows=rows[:-1], last=rows[-1], first=rows[0],
                             ids=tokens[s["token"]:s["token"] + s["count"]],
                             ref=float(logps[s["token"]:s["token"] + s["count"]].double().sum())))
        pairs.append(seqs)
    return pairs, d, folder


def make_batch(pairs: list, idx: list[int]):
    import torch
    H, ids, seq, lengths, ref = [], [], [], [], []
    hx, hw, hl = [], [], []
    for b, i in enumerate(idx):
        cw, cl = pairs[i]
        hx.append(cw["first"]); hw.append(cw["last"]); hl.append(cl["last"])
        for j, s in enumerate((cw, cl)):
            H.append(s["rows"]); ids.append(s["ids"])
            seq.append(torch.full((len(s["ids"]),), 2 * b + j, dtype=torch.long))
            lengths.append(len(s["ids"])); ref.append(s["ref"])
    return dict(H=torch.cat(H), ids=torch.cat(ids), seq=torch.cat(seq), hx=torch.stack(hx), hw=torch.stack(hw),
                hl=torch.stack(hl), lengths=torch.tensor(lengths), ref=torch.tensor(ref, dtype=torch.float32))


def torch_run(pairs, W, d, args, seed: int) -> float:
    """W float32 [vocab, d], or bfloat16 for the bf16 LM head variant."""
    import torch
    sys.path.insert(0, str(ROOT / "tools"))
    import lpc_torch
    torch.manual_seed(seed)
    cfg = lpc_torch.default_config(d=d, vocab=W.shape[0], objective=args.objective, use_lpc=not args.no_lpc)
    model = lpc_torch.LPCModule(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.0)
    order = list(range(len(pairs)))
    steps_per_epoch = (len(pairs) + args.batch_size - 1) // args.batch_size
    total = args.epochs * steps_per_epoch
    rng = random.Random(seed)
    batches = []
    for _ in range(args.epochs):
        rng.shuffle(order)
        for j in range(steps_per_epoch):
            batches.append(make_batch(pairs, order[j * args.batch_size:(j + 1) * args.batch_size]))
    K = cfg["K"]
    seconds, n = 0.0, 0
    for step, batch in enumerate(batches):
        B = batch["hx"].shape[0]
        t0 = time.perf_counter()
        u1, u2 = torch.rand(B, K).clamp_min(1e-20), torch.rand(B, K).clamp_min(1e-20)
        noise_post, noise_prior = -torch.log(-torch.log(u1)), -torch.log(-torch.log(u2))
        opt.zero_grad(set_to_none=True)
        loss, _ = lpc_torch.lpc_loss(model, W, batch, noise_post, noise_prior,
                                     g=lpc_torch.ramp(step, total, 0.0, 1.0), tau=1.0)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        seconds += time.perf_counter() - t0
        n += B
    return n / seconds


def lpc_train(args, data: str, cache: Path, out: Path, seed: int, precision: str = "f32") -> tuple[float, str]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    cmd = [args.lpc, "train", "--model", args.model, "--data", data, "--objective", args.objective,
           "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--seed", str(seed),
           "--cache", str(cache), "--out", str(out), "--reference", "cached", "--lm-head-precision", precision]
    if args.no_lpc:
        cmd.append("--no-lpc")
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"lpc train failed ({r.returncode}):\n{r.stderr}")
    if f"lm_head={precision}" not in r.stderr:   # e.g. bf16 asked for on a CPU without AMX
        raise SystemExit(f"lpc train did not run with lm_head={precision}:\n{r.stderr}")
    m = re.search(r"done: \d+ steps, ([0-9.]+) pairs/s", r.stderr)
    if not m:
        raise SystemExit(f"no rate in lpc's output:\n{r.stderr}")
    return float(m.group(1)), r.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models/SmolLM2-135M-Instruct"))
    ap.add_argument("--data", default=str(ROOT / "data/smollm2_prefs/train.jsonl"))
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--objective", default="dpo", choices=["dpo", "simpo", "ipo"])
    ap.add_argument("--no-lpc", action="store_true")
    ap.add_argument("--lpc", default=str(ROOT / ".build/release/lpc"))
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--precisions", default="f32,bf16", help="LM head precisions to run, comma-separated (f32, bf16)")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    work = Path(args.work or tempfile.mkdtemp(prefix="lpc-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if Path(args.data).exists():
        lines = Path(args.data).read_text().splitlines()[:args.pairs]
        source = args.data
    else:
        lines = [json.dumps(p) for p in synthetic_pairs(args.pairs)]
        source = "synthetic pairs"
    data = work / "bench_pairs.jsonl"
    data.write_text("\n".join(lines) + "\n")
    cache = work / "cache"

    print(f"data: {len(lines)} pairs from {source}; batch {args.batch_size}, {args.epochs} epochs per run, "
          f"{args.runs} runs, {args.threads} threads, objective {args.objective}, lpc={not args.no_lpc}")
    t0 = time.time()
    _, log = lpc_train(args, str(data), cache, work / "warm", 0)   # extracts and caches the features
    print(f"features cached in {time.time() - t0:.1f} s ({[l for l in log.splitlines() if 'data' in l][:1]})")

    pairs, d, folder = load_cache(cache, str(data))
    W, origin = lm_head_weight(Path(args.model))
    tokens = sum(len(s["ids"]) for p in pairs for s in p)
    print(f"features: {len(pairs)} pairs, {tokens} response tokens (mean {tokens / (2 * len(pairs)):.1f}), d {d}, "
          f"LM head {tuple(W.shape)} from {origin}")

    precisions = [p for p in args.precisions.split(",") if p]
    for p in precisions:
        if p not in ("f32", "bf16"):
            raise SystemExit(f"--precisions: unknown precision {p!r} (f32, bf16)")
    weights = {"f32": W, "bf16": W.to(torch.bfloat16)}   # PyTorch's bf16 W is cast once, as lpc packs once
    rates = {(engine, p): [] for p in precisions for engine in ("lpc", "pytorch")}
    for run in range(args.runs):   # interleaved, so drifting machine load hits every variant alike
        line = []
        for p in precisions:
            rate, _ = lpc_train(args, str(data), cache, work / f"run{run}-{p}", run + 1, p)
            rates[("lpc", p)].append(rate)
            rates[("pytorch", p)].append(torch_run(pairs, weights[p], d, args, run + 1))
            line.append(f"lpc {p} {rates[('lpc', p)][-1]:.2f}   pytorch {p} {rates[('pytorch', p)][-1]:.2f}")
        print(f"run {run + 1} (pairs/s): " + "   ".join(line), flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"\nmedians of {args.runs} runs (pairs/s), torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f}:")
    for (engine, p), m in med.items():
        print(f"  {engine:8s} {p:5s} {m:8.2f}")
    print("ratios lpc / pytorch:")
    for lp in precisions:
        for tp in precisions:
            tag = "like-for-like" if lp == tp else "different precisions, reference only"
            print(f"  lpc {lp:4s} / pytorch {tp:4s} = {med[('lpc', lp)] / med[('pytorch', tp)]:.2f}x   ({tag})")
    if len(precisions) > 1:
        print(f"  lpc bf16 / lpc f32 = {med[('lpc', 'bf16')] / med[('lpc', 'f32')]:.2f}x;  "
              f"pytorch bf16 / pytorch f32 = {med[('pytorch', 'bf16')] / med[('pytorch', 'f32')]:.2f}x")


if __name__ == "__main__":
    main()
