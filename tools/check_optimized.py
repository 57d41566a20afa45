#!/usr/bin/env python3
"""Checks a folder written by `lpc optimize` against the model it came from.

Usage:  PY=$(tools/venv.sh)
        .build/release/lpc optimize models/SmolLM2-135M-Instruct -o /tmp/smol-lpc
        $PY tools/check_optimized.py models/SmolLM2-135M-Instruct /tmp/smol-lpc [--lpc .build/release/lpc]

1. onnx.checker.check_model(OPTIMIZED/model.onnx, full_check=True) must accept the file (fused
   ops live in the custom domain 'lpc', imported in opset_import), and its metadata_props must
   carry lpc.optimized;
2. every external tensor's offset must be 64-byte aligned (page aligned from 64 KiB);
3. `lpc run` on both folders with the same random prefill (--prefill ids, empty past) must give
   the same outputs: max |original - optimized| <= --atol (default 0: the same graph runs).
Exit 0 pass, 1 mismatch, 2 setup error.
"""
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parent.parent


def input_flags(feeds: dict, work: Path, prefix: str = "") -> list[str]:
    """Saves each feed as WORK/<prefix><name>.npy and returns the `lpc run --input` flags for them."""
    flags = []
    for name, value in feeds.items():
        np.save(work / f"{prefix}{name}.npy", value)
        flags += ["--input", f"{name}={work / (prefix + name + '.npy')}"]
    return flags


def prefill_inputs(original: str, prefill: int, rng, work: Path):
    """A random `prefill`-token prompt on an empty cache for the export in folder `original`:
    returns its graph inputs by name, its past_key_values input names and the `lpc run` flags."""
    source = onnx.load(str(Path(original) / "model.onnx"), load_external_data=False)
    inputs = {i.name: i for i in source.graph.input}
    past = [n for n in inputs if n.startswith("past_key_values.")]
    dims = inputs[past[0]].type.tensor_type.shape.dim
    kv_heads, head_dim = dims[1].dim_value, dims[3].dim_value
    feeds = {"input_ids": rng.integers(0, 49152, size=(1, prefill), dtype=np.int64)}
    if "attention_mask" in inputs:
        feeds["attention_mask"] = np.ones((1, prefill), dtype=np.int64)
    if "position_ids" in inputs:
        feeds["position_ids"] = np.arange(prefill, dtype=np.int64)[None, :]
    for name in past:
        feeds[name] = np.zeros((1, kv_heads, 0, head_dim), dtype=np.float32)
    return inputs, past, input_flags(feeds, work)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("original")
    ap.add_argument("optimized")
    ap.add_argument("--lpc", default=str(ROOT / ".build" / "release" / "lpc"))
    ap.add_argument("--prefill", type=int, default=64)
    ap.add_argument("--atol", type=float, default=0.0)
    args = ap.parse_args()

    path = Path(args.optimized) / "model.onnx"
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    domains = {o.domain: o.version for o in model.opset_import}
    print(f"onnx.checker (full_check) accepts {path}; opsets {domains}; metadata {meta}")
    if "lpc.optimized" not in meta:
        print("FAIL: no lpc.optimized in metadata_props")
        return 1
    misaligned = []
    for tensor in model.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        entries = {e.key: e.value for e in tensor.external_data}
        offset, length = int(entries.get("offset", 0)), int(entries.get("length", 0))
        if offset % 64 or (length >= 1 << 16 and offset % 4096):
            misaligned.append((tensor.name, offset, length))
    external = sum(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    print(f"{external} external tensors, {len(misaligned)} misaligned")
    if misaligned:
        print("FAIL: misaligned", misaligned[:5])
        return 1

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        _, _, flags = prefill_inputs(args.original, args.prefill, rng, work)
        outs = {}
        for label, folder in (("original", args.original), ("optimized", args.optimized)):
            out = work / label
            run = subprocess.run([args.lpc, "run", str(folder)] + flags + ["--output-dir", str(out)],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                print(f"lpc run {label} failed: {run.stderr.strip()}")
                return 2
            outs[label] = {p.name: np.load(p) for p in out.glob("*.npy")}
        worst = 0.0
        for name, expected in outs["original"].items():
            actual = outs["optimized"].get(name)
            if actual is None or actual.shape != expected.shape:
                print(f"FAIL: output {name} missing or of another shape")
                return 1
            worst = max(worst, float(np.abs(actual - expected).max()))
        print(f"lpc run, {args.prefill}-token prefill: {len(outs['original'])} outputs, "
              f"max |original - optimized| = {worst:.3g} (atol {args.atol})")
        if worst > args.atol:
            print("FAIL")
            return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
