#!/usr/bin/env python3
"""Builds the population preference set of the LPC experiment (issue 6) from SmolLM2's own answers.

Usage:  PY=$(tools/venv.sh); $PY tools/make_population_data.py [--model DIR] [--out DIR] [--seed 1234]
            [--max-new-tokens 40] [--batch 32] [--workers 4] [--threads 1] [--limit 20]

1. Prompts: the first `--limit` (20) of each source's prompts in tools/make_preference_data.py
   (100 of its 215), each with its `source` (topic).
2. Answers: for every prompt, one sampled answer under each HIDDEN style instruction (STYLES: one
   short sentence / in detail / bulleted list / casual / formal), appended to the user message for
   generation only: the stored prompt is the plain prompt. SmolLM2-135M-Instruct
   (models/SmolLM2-135M-Instruct-hf, transformers, CPU, chat template, temperature 0.8, top-k
   50, at most 40 new tokens, seeded per batch), batched (32) with left padding, batches grouped
   by style so short styles stop early, shared by `--workers` one-thread processes (the answers
   do not depend on the number of workers). Answers cut by the token limit end at their last complete sentence or line.
3. Pairs: every two answers of a prompt, judged by the population tied to the prompt's source
   (tools/lpc_annotators.py: concise, elaborate, lists, formal, casual, with conflicting tastes);
   pairs under the population's margin are dropped (counted).
4. Split BY PROMPT, stratified by source: train / validation (for tuning) / eval (held out, never
   tuned on): 60 / 15 / 25 % of prompts.
5. Noise variant: train_flip50.jsonl = train with 50% of its pairs (seeded) swapped and " [FLIP]"
   appended to their prompts (`meta.flipped`); eval_flip50.jsonl the same made from eval (to ask
   whether held-out codes separate flipped from normal pairs).

Writes OUT/{train,validation,eval,train_flip50,eval_flip50}.jsonl, OUT/answers.jsonl (every generated answer
with its style) and OUT/manifest.json. Each pair line: {"prompt", "chosen", "rejected", "source",
"meta": {"population", "prompt_id", "chosen_style", "rejected_style", "margin", ...}}.
Measured (seed 1234, defaults, 4 workers on the shared 2-core machine at load average 10-14): 701 s
of generation; 500 answers (26% ended by EOS, mean 36 tokens); 526 pairs after dropping 474 under
the margins: train 324 (57 prompts), validation 76 (15), eval 126 (22).
Deterministic for a given seed, model and library versions (torch seeded per batch; the judging,
split and flips are pure functions of the answers and the seed).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import lpc_annotators as ann  # noqa: E402
from make_preference_data import prompts, trim  # noqa: E402  (the prompt lists and the trimming rule)

T0 = time.time()

# Hidden style instructions: appended to the user message at generation time only.
STYLES = {
    "short": "Answer in one short sentence.",
    "detailed": "Answer in detail, in several full sentences.",
    "list": "Answer with a bulleted list of short points.",
    "casual": "Answer casually and cheerfully, like texting a friend!",
    "formal": "Answer in a formal, academic tone.",
}
SPLITS = {"train": 0.60, "validation": 0.15, "eval": 0.25}


def say(msg: str):
    print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


def generation_jobs(items: list[dict]) -> list[list[tuple[int, str]]]:
    """The batches: (prompt index, style) jobs grouped by style, `--batch` per batch. A batch's
    composition and seed depend only on its index, so any number of workers gives the same answers."""
    jobs = [(i, style) for style in STYLES for i in range(len(items))]
    return jobs


def generate_shard(args, items: list[dict], shard: int, shards: int) -> list[tuple[int, list[dict]]]:
    """Batches b with b % shards == shard. Returns [(b, answers of batch b)]."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    model.eval()
    tok.padding_side = "left"
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    say(f"[worker {shard}] loaded {args.model} ({args.threads} torch threads, batch {args.batch})")

    jobs = generation_jobs(items)
    batches = [jobs[f:f + args.batch] for f in range(0, len(jobs), args.batch)]
    results = []
    start, new_tokens, done = time.time(), 0, 0
    mine = [b for b in range(len(batches)) if b % shards == shard]
    for b in mine:
        chunk = batches[b]
        texts = [tok.apply_chat_template(
            [{"role": "user", "content": items[i]["prompt"] + "\n\n" + STYLES[style]}],
            tokenize=False, add_generation_prompt=True) for i, style in chunk]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(args.seed * 1000 + b)
        with torch.no_grad():
            out = model.generate(**enc, do_sample=True, temperature=args.temperature, top_p=1.0,
                                 top_k=args.top_k, max_new_tokens=args.max_new_tokens,
                                 eos_token_id=eos, pad_token_id=eos)
        gen = out[:, enc["input_ids"].shape[1]:]
        answers = []
        for row, (i, style) in enumerate(chunk):
            ids = gen[row].tolist()
            finished = eos in ids
            if finished:
                ids = ids[:ids.index(eos)]
            new_tokens += len(ids)
            text = tok.decode(ids, skip_special_tokens=True).strip()
            answers.append({"prompt_id": i, "style": style, "text": text if finished else trim(text),
                            "finished": finished, "tokens": len(ids)})
        results.append((b, answers))
        done += 1
        el = time.time() - start
        say(f"  [worker {shard}] batch {done}/{len(mine)}, {new_tokens / el:.0f} new tok/s, "
            f"ETA {(len(mine) - done) * el / done:.0f}s")
    return results


def generate(args, items: list[dict]) -> list[dict]:
    """One answer per (prompt, style), in job order; `--workers` processes share the batches."""
    if args.workers == 1:
        results = generate_shard(args, items, 0, 1)
    else:
        from concurrent.futures import ProcessPoolExecutor
        import multiprocessing as mp
        with ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(generate_shard, args, items, k, args.workers) for k in range(args.workers)]
            results = [r for f in futures for r in f.result()]
    return [a for _, answers in sorted(results, key=lambda r: r[0]) for a in answers]


def load_items(limit: int) -> list[dict]:
    """The prompts: the first `limit` of each source (0: all), sources in POPULATION_OF_SOURCE order."""
    items = prompts()
    if not limit:
        return items
    return [it for s in ann.POPULATION_OF_SOURCE for it in [i for i in items if i["source"] == s][:limit]]


def split_prompts(items: list[dict], seed: int, fractions: dict[str, float] = SPLITS) -> dict[int, str]:
    """prompt index -> split, stratified by source (rounded per source, eval then validation)."""
    rng = random.Random(seed)
    where = {}
    for source in sorted({it["source"] for it in items}):
        ids = [i for i, it in enumerate(items) if it["source"] == source]
        rng.shuffle(ids)
        n_eval = round(len(ids) * fractions["eval"])
        n_val = round(len(ids) * fractions["validation"])
        for k, i in enumerate(ids):
            where[i] = "eval" if k < n_eval else "validation" if k < n_eval + n_val else "train"
    return where


def population_of_source(item: dict) -> str:
    return ann.POPULATION_OF_SOURCE[item["source"]]


def finished_meta(chosen: dict, rejected: dict) -> dict:
    """This set's extra pair metadata: whether each answer ended by EOS; no flip yet."""
    return {"chosen_finished": chosen["finished"], "rejected_finished": rejected["finished"], "flipped": False}


def make_pairs(items, answers, where, population_for=population_of_source, extra_meta=finished_meta):
    """Every two distinct non-empty answers of a prompt, judged by `population_for(item)`; pairs under
    its margin are dropped (counted per population). Returns ({split: rows}, {population: dropped})."""
    by_prompt: dict[int, list[dict]] = {}
    for a in answers:
        by_prompt.setdefault(a["prompt_id"], []).append(a)
    splits = {name: [] for name in SPLITS}
    dropped = {p: 0 for p in ann.POPULATIONS}
    for i, it in enumerate(items):
        population = population_for(it)
        group = sorted(by_prompt.get(i, []), key=lambda a: list(STYLES).index(a["style"]))
        for x in range(len(group)):
            for y in range(x + 1, len(group)):
                a, b = group[x], group[y]
                verdict = (ann.judge(population, a["text"], b["text"])
                           if a["text"] and b["text"] and a["text"] != b["text"] else None)
                if verdict is None:
                    dropped[population] += 1
                    continue
                winner, margin = verdict
                chosen, rejected = (a, b) if winner == 0 else (b, a)
                splits[where[i]].append({
                    "prompt": it["prompt"], "chosen": chosen["text"], "rejected": rejected["text"],
                    "source": it["source"],
                    "meta": {"population": population, "prompt_id": i, "margin": round(margin, 4),
                             "chosen_style": chosen["style"], "rejected_style": rejected["style"],
                             "chosen_features": ann.features(chosen["text"]),
                             "rejected_features": ann.features(rejected["text"]),
                             **extra_meta(chosen, rejected)},
                })
    return splits, dropped


def flip_variant(rows: list[dict], seed: int, fraction: float = 0.5) -> list[dict]:
    """A copy of rows with `fraction` of them (seeded) swapped and ' [FLIP]' on their prompts."""
    rng = random.Random(seed + 77)
    idx = list(range(len(rows)))
    rng.shuffle(idx)
    flip = set(idx[:round(len(rows) * fraction)])
    out = []
    for k, r in enumerate(rows):
        r = json.loads(json.dumps(r))
        if k in flip:
            r["prompt"] += " [FLIP]"
            r["chosen"], r["rejected"] = r["rejected"], r["chosen"]
            m = r["meta"]
            m["chosen_style"], m["rejected_style"] = m["rejected_style"], m["chosen_style"]
            m["chosen_features"], m["rejected_features"] = m["rejected_features"], m["chosen_features"]
            m["chosen_finished"], m["rejected_finished"] = m["rejected_finished"], m["chosen_finished"]
            m["flipped"] = True
        out.append(r)
    return out


def write_jsonl(path: Path, rows: list[dict]):
    tmp = path.with_name("." + path.name + ".tmp")
    with tmp.open("w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "models/SmolLM2-135M-Instruct-hf"))
    ap.add_argument("--out", default=str(ROOT / "data/population"))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--max-new-tokens", type=int, default=40)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--batch", type=int, default=32, help="sequences per generate() call")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    ap.add_argument("--workers", type=int, default=4,
                    help="generation processes, one torch thread each (on a busy shared machine several one-thread processes get more CPU than one multi-thread one)")
    ap.add_argument("--top-k", type=int, default=50)
    ap.add_argument("--limit", type=int, default=20,
                    help="the first N prompts of each source (0: all 215); 20 keeps generation near 15 min on a busy, shared 2-core machine")
    ap.add_argument("--answers", default="", help="reuse answers.jsonl from an earlier run (no generation)")
    args = ap.parse_args()

    items = load_items(args.limit)
    say(f"{len(items)} prompts: " + ", ".join(
        f"{s} {sum(1 for i in items if i['source'] == s)} -> {p}" for s, p in ann.POPULATION_OF_SOURCE.items()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gen_seconds = None
    if args.answers:
        answers = [json.loads(l) for l in Path(args.answers).read_text().splitlines() if l.strip()]
        old = Path(args.answers).with_name("manifest.json")  # keep the generation's time
        if old.exists():
            gen_seconds = json.loads(old.read_text()).get("generation_seconds")
    else:
        if not Path(args.model, "config.json").exists():
            sys.exit(f"no HF model folder at {args.model}; run tools/make_smollm2.py or pass --model")
        t = time.time()
        answers = generate(args, items)
        gen_seconds = round(time.time() - t, 1)
        write_jsonl(out / "answers.jsonl", answers)

    where = split_prompts(items, args.seed)
    splits, dropped = make_pairs(items, answers, where)
    splits["train_flip50"] = flip_variant(splits["train"], args.seed)
    splits["eval_flip50"] = flip_variant(splits["eval"], args.seed + 1)  # held-out codes vs flipped
    stats = {}
    for name, rows in splits.items():
        write_jsonl(out / f"{name}.jsonl", rows)
        stats[name] = {"pairs": len(rows), "prompts": len({r["meta"]["prompt_id"] for r in rows}),
                       "by_population": {p: sum(1 for r in rows if r["meta"]["population"] == p)
                                         for p in ann.POPULATIONS},
                       "flipped": sum(1 for r in rows if r["meta"]["flipped"])}
    style_wins = {s: [0, 0] for s in STYLES}
    for r in splits["train"] + splits["validation"] + splits["eval"]:
        style_wins[r["meta"]["chosen_style"]][0] += 1
        style_wins[r["meta"]["rejected_style"]][1] += 1
    manifest = {
        "generator": "tools/make_population_data.py", "model": args.model, "seed": args.seed,
        "styles": STYLES, "max_new_tokens": args.max_new_tokens, "temperature": args.temperature,
        "top_k": args.top_k, "batch": args.batch, "threads": args.threads, "workers": args.workers,
        "populations": ann.POPULATION_OF_SOURCE, "population_tastes": ann.DESCRIPTIONS,
        "margins": ann.MARGINS, "split_fractions": SPLITS, "prompts": len(items),
        "answers": len(answers),
        "finished_fraction": sum(a["finished"] for a in answers) / max(1, len(answers)),
        "mean_answer_tokens": sum(a["tokens"] for a in answers) / max(1, len(answers)),
        "dropped_pairs_under_margin": dropped, "splits": stats,
        "style_wins_losses": style_wins, "generation_seconds": gen_seconds,
        "seconds": round(time.time() - T0, 1),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    say(f"wrote {out}: " + ", ".join(f"{n} {s['pairs']} pairs ({s['prompts']} prompts)" for n, s in stats.items())
        + f"; dropped {dropped}")


if __name__ == "__main__":
    main()
