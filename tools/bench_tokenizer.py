#!/usr/bin/env python3
"""Encoding speed of the Swift Tokenizers module vs HF `tokenizers`, one thread, ~1 MB of text.

Builds a small release binary from Sources/Tokenizers/*.swift plus a driver (written to
.build-bench-tokenizer/, not part of the package), then for each tokenizer:
  - HF:    Tokenizer.from_file(...).encode(text) with RAYON_NUM_THREADS=1 (no encode_batch)
  - Swift: Tokenizer(contentsOfFile:).encode(text)
both on the same text: the whole 1 MB string in one call, and the same text line by line.
"cold" is the first call on a freshly loaded tokenizer (empty word cache), "warm" the best of the
following runs. Also checks that both produce identical ids on the benchmark text.

Usage:  PY=$(tools/venv.sh); $PY tools/bench_tokenizer.py [--runs 5] [--mb 1.0] [names...]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

from tokenizers import Tokenizer  # noqa: E402  (after the thread settings)

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "Tests" / "Fixtures" / "tokenizers"
WORK = ROOT / ".build-bench-tokenizer"

DRIVER = r'''
import Foundation

@main
struct Bench {
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func main() throws {
        let args = CommandLine.arguments
        let tokPath = args[1], textPath = args[2], idsOut = args[3], runs = Int(args[4])!
        let text = try String(contentsOfFile: textPath, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { String($0) + "\n" }
        var t0 = now()
        let tok = try Tokenizer(contentsOfFile: tokPath)
        let loadMs = (now() - t0) * 1000
        t0 = now()
        let ids = try tok.encode(text, addSpecialTokens: false)
        let cold = (now() - t0) * 1000
        var warm = Double.infinity
        for _ in 0..<runs {
            t0 = now()
            _ = try tok.encode(text, addSpecialTokens: false)
            warm = min(warm, (now() - t0) * 1000)
        }
        let tok2 = try Tokenizer(contentsOfFile: tokPath)
        t0 = now()
        for l in lines { _ = try tok2.encode(l, addSpecialTokens: false) }
        let linesCold = (now() - t0) * 1000
        var linesWarm = Double.infinity
        for _ in 0..<runs {
            t0 = now()
            for l in lines { _ = try tok2.encode(l, addSpecialTokens: false) }
            linesWarm = min(linesWarm, (now() - t0) * 1000)
        }
        try JSONSerialization.data(withJSONObject: ids).write(to: URL(fileURLWithPath: idsOut))
        let result: [String: Any] = ["load_ms": loadMs, "cold_ms": cold, "warm_ms": warm, "lines_cold_ms": linesCold,
                                     "lines_warm_ms": linesWarm, "tokens": ids.count]
        print(String(data: try JSONSerialization.data(withJSONObject: result), encoding: .utf8)!)
    }
}
'''


def bench_text(mb: float) -> str:
    """Python stdlib source (English + code) with the multilingual corpus mixed in."""
    target = int(mb * 1_000_000)
    corpus = json.loads((FIX / "corpus.json").read_text(encoding="utf-8"))
    multilingual = "\n".join(s for s in corpus if s) + "\n"
    stdlib = Path(json.__file__).resolve().parent.parent
    parts, size = [], 0
    for f in sorted(stdlib.glob("*.py")):
        try:
            t = f.read_text(encoding="utf-8")
        except Exception:
            continue
        parts.append(t)
        size += len(t.encode())
        if len(parts) % 8 == 0:
            parts.append(multilingual)
            size += len(multilingual.encode())
        if size >= target:
            break
    data = "".join(parts).encode()[:target]
    return data.decode("utf-8", errors="ignore")


def build() -> Path:
    WORK.mkdir(exist_ok=True)
    main = WORK / "bench_driver.swift"
    main.write_text(DRIVER)
    # The tokenizer.json pipeline only (the chat-template files of the module are not needed).
    sources = sorted(str(p) for p in (ROOT / "Sources" / "Tokenizers").glob("*.swift")
                     if not p.name.startswith(("Jinja", "ChatTemplate")))
    exe = WORK / "bench"
    cmd = ["swiftc", "-O", "-wmo", "-parse-as-library", "-module-name", "Tokenizers", *sources, str(main), "-o", str(exe)]
    print("building:", " ".join(cmd[:6]), "...", file=sys.stderr)
    subprocess.run(cmd, check=True)
    return exe


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("names", nargs="*", default=["smollm2", "llama3_bpe", "qwen2_bpe", "sp_llama2"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--mb", type=float, default=1.0)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()

    text = bench_text(args.mb)
    text_path = WORK / "bench.txt"
    WORK.mkdir(exist_ok=True)
    text_path.write_text(text, encoding="utf-8")
    lines = [l + "\n" for l in text.split("\n")]
    nbytes = len(text.encode())
    exe = WORK / "bench" if args.no_build else build()
    print(f"text: {nbytes / 1e6:.2f} MB, {len(lines)} lines; one thread (RAYON_NUM_THREADS=1)")
    print(f"{'tokenizer':<13} {'impl':<6} {'load ms':>8} {'cold ms':>8} {'warm ms':>8} {'MB/s':>6} "
          f"{'lines cold':>10} {'lines warm':>10} {'tokens':>8}  ids")
    for name in args.names:
        path = FIX / f"{name}.tokenizer.json"
        if not path.exists():
            print(f"{name}: missing {path}", file=sys.stderr)
            continue
        t0 = time.perf_counter()
        hf = Tokenizer.from_file(str(path))
        load = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        hf_ids = hf.encode(text, add_special_tokens=False).ids
        cold = (time.perf_counter() - t0) * 1000
        warm = min(_timed(lambda: hf.encode(text, add_special_tokens=False)) for _ in range(args.runs))
        hf2 = Tokenizer.from_file(str(path))
        lines_cold = _timed(lambda: [hf2.encode(l, add_special_tokens=False) for l in lines])
        lines_warm = min(_timed(lambda: [hf2.encode(l, add_special_tokens=False) for l in lines]) for _ in range(args.runs))
        print(f"{name:<13} {'HF':<6} {load:8.1f} {cold:8.1f} {warm:8.1f} {nbytes / warm / 1e3:6.2f} "
              f"{lines_cold:10.1f} {lines_warm:10.1f} {len(hf_ids):8d}")

        ids_path = WORK / f"{name}.ids.json"
        out = subprocess.run([str(exe), str(path), str(text_path), str(ids_path), str(args.runs)],
                             check=True, capture_output=True, text=True)
        r = json.loads(out.stdout)
        same = json.loads(ids_path.read_text()) == hf_ids
        print(f"{'':<13} {'Swift':<6} {r['load_ms']:8.1f} {r['cold_ms']:8.1f} {r['warm_ms']:8.1f} "
              f"{nbytes / r['warm_ms'] / 1e3:6.2f} {r['lines_cold_ms']:10.1f} {r['lines_warm_ms']:10.1f} "
              f"{r['tokens']:8d}  {'identical' if same else 'DIFFERENT'}")
    return 0


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


if __name__ == "__main__":
    sys.exit(main())
