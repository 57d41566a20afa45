#!/usr/bin/env python3
"""A quick, model-free preference set for A/B checks of training numerics (e.g. lpc train
--lm-head-precision f32 vs bf16 on the same data). Not a substitute for make_preference_data.py.

Usage:  python3 tools/make_length_prefs.py [--out DIR] [--pairs 400] [--seed 7]

Answers are English sentences taken from the docstrings of Python's standard library (whatever
python3 this runs under). Each prompt asks about a topic either "briefly" (source "brief": the
shorter answer wins) or "in detail" (source "detail": the longer answer wins); answers differ by
at least 6 words. Split by prompt: 75% train, 25% eval -> OUT/train.jsonl, OUT/eval.jsonl.
"""
import argparse
import ast
import json
import random
import re
import sysconfig
from pathlib import Path


def sentences(limit: int = 6000) -> list[str]:
    out, seen = [], set()
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            tree = ast.parse(path.read_text(errors="ignore"))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)):
                doc = ast.get_docstring(node) or ""
                for s in re.split(r"(?<=[.!?])\s+", " ".join(doc.split())):
                    words = s.split()
                    if 5 <= len(words) <= 40 and s[0].isupper() and s.endswith(".") and not re.search(r"[>{}\[\]=_`|]", s) and s not in seen:
                        seen.add(s)
                        out.append(s)
        if len(out) >= limit:
            break
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="data/length_prefs")
    ap.add_argument("--pairs", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    pool = sentences()
    topics = ["files", "numbers", "text", "time", "networks", "errors", "lists", "threads", "data", "modules"]
    pairs = []
    while len(pairs) < args.pairs:
        a, b = rng.sample(pool, 2)
        if abs(len(a.split()) - len(b.split())) < 6:
            continue
        short, long_ = sorted((a, b), key=lambda s: len(s.split()))
        source = rng.choice(["brief", "detail"])
        topic = rng.choice(topics)
        prompt = f"Tell me about {topic} {'briefly' if source == 'brief' else 'in detail'}. (#{len(pairs)})"
        chosen, rejected = (short, long_) if source == "brief" else (long_, short)
        pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected, "source": source})
    rng.shuffle(pairs)
    cut = len(pairs) * 3 // 4
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, part in (("train", pairs[:cut]), ("eval", pairs[cut:])):
        (out / f"{name}.jsonl").write_text("".join(json.dumps(p) + "\n" for p in part))
    print(f"{len(pool)} sentences; {cut} train, {len(pairs) - cut} eval pairs in {out}")


if __name__ == "__main__":
    main()
