#!/usr/bin/env python3
"""Builds the held-out-accuracy preference set of issue 5: SmolLM2's own answers judged by ONE taste.

Usage:  PY=$(tools/venv.sh); $PY tools/make_accuracy_data.py [--answers FILE] [--population casual]
            [--out data/accuracy] [--seed 1234]

Why a second set: the population set of the LPC experiment (tools/make_population_data.py) judges
each topic with a different, conflicting taste (concise vs elaborate, formal vs casual), so a
frozen-backbone head must read the topic before it knows which answer wins; 324 training pairs
were not enough for that (held-out accuracy 55-60%, docs/experiment/report.md). Issue 5 asks a
simpler question, whether training learns a preference at all, so here every prompt is judged by
the same annotator: a consistent signal that is readable from the answers.

1. Answers: the 500 answers of tools/make_population_data.py (100 prompts x 5 hidden style
   instructions, sampled from SmolLM2-135M-Instruct), read from `--answers` (default
   data/population/answers.jsonl). When that file does not exist it is generated first with
   `tools/make_population_data.py --seed 1234` (~12 min on the shared machine), so the set is
   reproducible from nothing but the model.
2. Pairs: every two answers of a prompt, judged by ONE population of tools/lpc_annotators.py for
   every prompt (default `casual`: contractions, exclamations, emoji, chatty words and "you" per
   10 words, short words); pairs under the population's margin are dropped (counted).
3. Split BY PROMPT, stratified by the prompt's topic (`source`), seeded: train / validation
   (hyper-parameter choices) / eval (held out, never used for any choice): `--fractions`
   (default 55 / 15 / 30 % of prompts).

Writes OUT/{train,validation,eval}.jsonl and OUT/manifest.json. Each pair line: {"prompt", "chosen",
"rejected", "source", "meta": {"population", "prompt_id", "margin", "chosen_style",
"rejected_style", "chosen_features", "rejected_features"}}. Deterministic: a pure function of the
answers, the population and the seed (no sampling here).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import lpc_annotators as ann  # noqa: E402
from make_population_data import STYLES, load_items, make_pairs, split_prompts, write_jsonl  # noqa: E402

STYLE_ORDER = list(STYLES)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--answers", default=str(ROOT / "data/population/answers.jsonl"),
                    help="answers.jsonl of tools/make_population_data.py (generated there when missing)")
    ap.add_argument("--population", default="casual", choices=ann.POPULATIONS,
                    help="the one taste that judges every prompt's pairs")
    ap.add_argument("--out", default=str(ROOT / "data/accuracy"))
    ap.add_argument("--seed", type=int, default=1234, help="seed of the split (and of answer generation when missing)")
    ap.add_argument("--fractions", default="0.55,0.15,0.30", help="train,validation,eval fractions of the prompts")
    ap.add_argument("--limit", type=int, default=20, help="prompts per source the answers were made for (make_population_data.py --limit)")
    args = ap.parse_args()

    fr = [float(x) for x in args.fractions.split(",")]
    if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1) > 1e-6:
        sys.exit(f"error: --fractions needs three non-negative numbers summing to 1, got {args.fractions!r}")
    fractions = dict(zip(["train", "validation", "eval"], fr))
    answers_path = Path(args.answers)
    if not answers_path.exists():
        cmd = [sys.executable, str(ROOT / "tools/make_population_data.py"), "--out", str(answers_path.parent),
               "--seed", str(args.seed), "--limit", str(args.limit)]
        print(f"{answers_path} missing; generating: {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True)
    raw = answers_path.read_bytes()
    answers = [json.loads(l) for l in raw.decode().splitlines() if l.strip()]
    items = load_items(args.limit)
    bad = [a for a in answers if not (0 <= a["prompt_id"] < len(items)) or a["style"] not in STYLE_ORDER]
    if bad:
        sys.exit(f"error: {answers_path}: {len(bad)} answers do not fit {len(items)} prompts / styles "
                 f"{STYLE_ORDER} (first: {bad[0]}); pass the --limit the answers were made with")

    where = split_prompts(items, args.seed, fractions)
    splits, by_population = make_pairs(items, answers, where, population_for=lambda _: args.population,
                                       extra_meta=lambda chosen, rejected: {})
    dropped = sum(by_population.values())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stats = {}
    for name, rows in splits.items():
        write_jsonl(out / f"{name}.jsonl", rows)
        wins = {}
        for r in rows:
            wins[r["meta"]["chosen_style"]] = wins.get(r["meta"]["chosen_style"], 0) + 1
        stats[name] = {"pairs": len(rows), "prompts": len({r["meta"]["prompt_id"] for r in rows}),
                       "by_source": {s: sum(1 for r in rows if r["source"] == s) for s in ann.POPULATION_OF_SOURCE},
                       "chosen_style": dict(sorted(wins.items()))}
    manifest = {
        "generator": "tools/make_accuracy_data.py", "answers": str(answers_path),
        "answers_sha256": hashlib.sha256(raw).hexdigest(), "answer_count": len(answers),
        "population": args.population, "taste": ann.DESCRIPTIONS[args.population],
        "margin": ann.MARGINS[args.population], "seed": args.seed, "split_fractions": fractions,
        "prompts": len(items), "dropped_pairs_under_margin": dropped, "splits": stats,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {out} ({args.population} taste for every prompt): "
          + ", ".join(f"{n} {s['pairs']} pairs ({s['prompts']} prompts)" for n, s in stats.items())
          + f"; dropped {dropped} under the margin", flush=True)


if __name__ == "__main__":
    main()
