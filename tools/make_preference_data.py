#!/usr/bin/env python3
"""Builds a small preference set from SmolLM2-135M-Instruct itself, for LPC training (issue 5).

Usage:  PY=$(tools/venv.sh); $PY tools/make_preference_data.py [--model DIR] [--out DIR]
            [--samples 3] [--max-new-tokens 48] [--temperature 0.8] [--seed 1234] [--limit N]

1. Prompts: the built-in list below, ~230 short instructions in five `source`s.
2. Answers: `--samples` sampled answers per prompt from the HF-format model folder
   (models/SmolLM2-135M-Instruct-hf, written by tools/make_smollm2.py) with transformers on the CPU,
   chat template applied, temperature 0.8, top-p 0.95, at most 48 new tokens, seeded per batch.
3. Pairs: every two answers of one prompt, judged by the synthetic annotator (`judge`), whose
   taste depends on the prompt's source -- a latent factor LPC should discover:
     science, definitions  -> prefers the SHORTER answer (by words; needs >= 4 words of difference)
     creative, advice      -> prefers the LONGER answer (same margin)
     howto                 -> prefers the answer with MORE list lines ("- x", "* x", "1. x", "2) x");
                              equal list lines -> the shorter answer (same margin)
   Pairs without a clear winner are dropped (counted). The rule is learnable from the backbone's
   hidden states: the source is visible in the prompt, length and list structure in the answer.
4. Split by prompt (never by pair, so eval prompts are unseen), stratified by source:
   ~73% train, ~27% eval -> OUT/train.jsonl, OUT/eval.jsonl, OUT/manifest.json.

Each JSONL line: {"prompt": str, "chosen": str, "rejected": str, "source": str, "meta": {...}}.
Answers are plain assistant text; LPC's loader appends the template's end of turn (<|im_end|>).
`meta.chosen_finished` / `rejected_finished` say whether the model ended the answer itself (EOS)
or hit the token limit; an answer cut by the limit is trimmed to its last complete sentence or line
(SmolLM2-135M rarely finishes within 48 tokens, so without this every answer has the same length). Deterministic for a given seed, model and library versions.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
T0 = time.time()


def say(msg: str):
    print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# Prompts
# ---------------------------------------------------------------------------------------------

SCIENCE = [
    "Why is the sky blue?", "What causes the tides?", "Why do leaves change color in autumn?",
    "How do vaccines work?", "Why does ice float on water?", "What makes thunder?",
    "How do magnets work?", "Why do we have seasons?", "How does the heart pump blood?",
    "What causes earthquakes?", "Why is the ocean salty?", "How do plants drink water?",
    "Why do stars twinkle?", "What is inside the Sun?", "How do bees make honey?",
    "Why do cats purr?", "How does a rainbow form?", "Why does bread rise?",
    "What causes a fever?", "How do birds know where to migrate?", "Why is Mars red?",
    "How do fish breathe underwater?", "What makes a volcano erupt?", "Why do onions make you cry?",
    "How does sound travel?", "Why does the Moon have phases?", "How do airplanes stay in the air?",
    "What causes wind?", "Why do we dream?", "How does a battery store energy?",
    "Why is blood red?", "How do clouds form?", "What makes popcorn pop?",
    "Why do we need sleep?", "How does the eye see color?", "What causes lightning?",
    "Why do apples turn brown after cutting?", "How do whales communicate?", "Why is snow white?",
    "How does a compass point north?", "What causes hiccups?", "Why do metals conduct electricity?",
    "How do mushrooms grow?", "Why does the Earth spin?", "How do our lungs work?",
]

TERMS = [
    "photosynthesis", "inflation", "a prime number", "an algorithm", "democracy", "gravity",
    "an ecosystem", "a metaphor", "entropy", "a neuron", "an atom", "a black hole",
    "recycling", "a budget", "a verb", "a glacier", "evolution", "an election", "a virus",
    "a fraction", "a molecule", "climate", "a haiku", "a vaccine", "an orbit", "erosion",
    "a democracy's constitution", "a noun", "a continent", "friction", "a mammal", "a simile",
    "a spreadsheet", "a password", "a habitat", "supply and demand", "a galaxy", "a protein",
    "a carbohydrate", "a percentage",
]
DEFINITION_FORMS = ["What is {}?", "Define {}.", "What does the word '{}' mean?",
                    "Explain {} in one sentence.", "Give a short definition of {}."]

CREATIVE = [
    "Write a short poem about the sea.", "Tell a short story about a lost robot.",
    "Describe a quiet morning in the mountains.", "Write a short poem about autumn leaves.",
    "Tell a story about a dragon who is afraid of the dark.", "Describe a busy city market.",
    "Write a poem about friendship.", "Tell a short story about a cat who learns to fly.",
    "Describe the taste of a fresh strawberry.", "Write a short poem about the night sky.",
    "Tell a story about a child who finds a secret door.", "Describe a thunderstorm at sea.",
    "Write a short poem about rain on a window.", "Tell a short story about an old lighthouse keeper.",
    "Describe a winter forest.", "Write a poem about a sleepy town.",
    "Tell a story about a talking tree.", "Describe a summer festival.",
    "Write a short poem about coffee.", "Tell a short story about a brave little mouse.",
    "Describe a train journey through the countryside.", "Write a poem about the moon.",
    "Tell a story about two friends building a boat.", "Describe a garden in spring.",
    "Write a short poem about a river.", "Tell a short story about a wizard's apprentice.",
    "Describe the first snow of the year.", "Write a poem about an old house.",
    "Tell a story about a robot who wants to paint.", "Describe a desert at sunset.",
    "Write a short poem about birds at dawn.", "Tell a short story about a pirate's map.",
    "Describe a cozy library.", "Write a poem about the wind.",
    "Tell a story about a girl who can talk to animals.", "Describe a beach in the morning.",
    "Write a short poem about a candle.", "Tell a short story about a time traveler's breakfast.",
    "Describe a mountain village.", "Write a poem about hope.",
    "Tell a story about a fox and a crow.", "Describe an abandoned castle.",
    "Write a short poem about the stars.", "Tell a short story about a lonely whale.",
    "Describe a rainy afternoon in a cafe.",
]

HOWTO_TASKS = [
    "make a cup of tea", "plant tomatoes", "change a bicycle tire", "start a vegetable garden",
    "bake bread at home", "learn a new language", "write a good resume", "clean a laptop keyboard",
    "prepare for a job interview", "make a paper airplane", "save money each month",
    "organize my closet", "train a puppy to sit", "make pancakes", "start running",
    "study for an exam", "set up a fish tank", "write a short essay", "fold a shirt neatly",
    "make a simple budget", "boil an egg", "care for a houseplant", "pack for a camping trip",
    "make a smoothie", "learn to play guitar", "back up my computer files", "wash a car",
    "make a grocery list", "start journaling", "build a birdhouse", "make lemonade",
    "prepare a presentation", "clean a kitchen quickly", "plan a birthday party",
    "improve my handwriting", "make a sandwich", "start meditating", "paint a room",
    "write a thank-you note", "learn to swim", "cook rice", "make a to-do list",
    "take care of a cat", "set up a new phone", "make a paper boat",
]
HOWTO_FORMS = ["How do I {}?", "What are the steps to {}?", "Explain how to {}.",
               "Give me instructions to {}."]

ADVICE = [
    "What should I do if I feel stressed before an exam?", "How can I make new friends in a new city?",
    "What should I consider before adopting a dog?", "How can I be more productive at work?",
    "What should I do if I can't sleep at night?", "How can I stay motivated to exercise?",
    "What is a good way to handle a disagreement with a friend?", "How can I become a better listener?",
    "What should I think about before changing careers?", "How can I manage my time better?",
    "What should I do when I feel lonely?", "How can I eat more healthily?",
    "How do I deal with a difficult coworker?", "What should I do if I made a mistake at work?",
    "How can I be more confident when speaking in public?", "How can I reduce my screen time?",
    "What should I do on a rainy weekend?", "How can I support a friend who is sad?",
    "What should I consider when buying a used car?", "How can I keep a plant alive?",
    "How do I choose a good book to read?", "How can I save for a vacation?",
    "What should I do if I feel bored?", "How can I get along with my roommate?",
    "What should I pack for a trip to the beach?", "How can I learn to cook?",
    "How can I be kinder to myself?", "What should I do before a long flight?",
    "How can I keep my room tidy?", "How can I make my mornings less rushed?",
    "What should I tell a child who is afraid of the dark?", "How do I pick a hobby?",
    "How can I stop procrastinating?", "What should I do if my phone is stolen?",
    "How can I make a good first impression?", "How do I stay calm in traffic?",
    "How can I help the environment at home?", "What should I do if I forget a friend's birthday?",
    "How can I improve my writing?", "How can I feel less nervous on a first day at school?",
]


def prompts() -> list[dict]:
    """~230 prompts, each with its source. Deterministic order."""
    out = [{"prompt": p, "source": "science"} for p in SCIENCE]
    out += [{"prompt": DEFINITION_FORMS[i % len(DEFINITION_FORMS)].format(t), "source": "definitions"}
            for i, t in enumerate(TERMS)]
    out += [{"prompt": p, "source": "creative"} for p in CREATIVE]
    out += [{"prompt": HOWTO_FORMS[i % len(HOWTO_FORMS)].format(t), "source": "howto"}
            for i, t in enumerate(HOWTO_TASKS)]
    out += [{"prompt": p, "source": "advice"} for p in ADVICE]
    seen = set()
    for p in out:
        assert p["prompt"] not in seen, p["prompt"]
        seen.add(p["prompt"])
    return out


# ---------------------------------------------------------------------------------------------
# The synthetic annotator
# ---------------------------------------------------------------------------------------------

RULES = {"science": "shorter", "definitions": "shorter", "creative": "longer", "advice": "longer",
         "howto": "list"}
MARGIN = 4  # words
LIST_LINE = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+\S", re.MULTILINE)


def words(text: str) -> int:
    return len(text.split())


def list_lines(text: str) -> int:
    return len(LIST_LINE.findall(text))


def judge(source: str, a: str, b: str) -> tuple[int, str] | None:
    """0 if a wins, 1 if b wins, None when the annotator has no clear preference; with the reason."""
    rule = RULES[source]
    if rule == "list":
        la, lb = list_lines(a), list_lines(b)
        if la != lb:
            return (0 if la > lb else 1), "more list lines"
        rule = "shorter"
    wa, wb = words(a), words(b)
    if abs(wa - wb) < MARGIN:
        return None
    if rule == "shorter":
        return (0 if wa < wb else 1), "shorter"
    return (0 if wa > wb else 1), "longer"


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------

SENTENCE_END = re.compile(r"[.!?:](?=\s|$)|\n")


def trim(text: str) -> str:
    """An answer cut by the token limit ends at its last complete sentence or line (if any)."""
    ends = [m.end() for m in SENTENCE_END.finditer(text)]
    return text[:ends[-1]].strip() if ends and ends[-1] >= 20 else text


def generate(args, items: list[dict]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    model.eval()
    tok.padding_side = "left"
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    say(f"loaded {args.model} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, "
        f"{args.threads} threads)")

    texts = [tok.apply_chat_template([{"role": "user", "content": it["prompt"]}], tokenize=False,
                                     add_generation_prompt=True) for it in items]
    start = time.time()
    new_tokens = 0
    for first in range(0, len(items), args.batch):
        batch = texts[first:first + args.batch]
        enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(args.seed + first)
        with torch.no_grad():
            out = model.generate(**enc, do_sample=True, temperature=args.temperature, top_p=0.95,
                                 top_k=0, max_new_tokens=args.max_new_tokens,
                                 num_return_sequences=args.samples, eos_token_id=eos, pad_token_id=eos)
        gen = out[:, enc["input_ids"].shape[1]:]
        for row in range(gen.shape[0]):
            ids = gen[row].tolist()
            finished = eos in ids
            if finished:
                ids = ids[:ids.index(eos)]
            new_tokens += len(ids) + (1 if finished else 0)
            item = items[first + row // args.samples]
            text = tok.decode(ids, skip_special_tokens=True).strip()
            item.setdefault("answers", []).append(
                {"text": text if finished else trim(text), "finished": finished})
        done = min(first + args.batch, len(items))
        rate = done / (time.time() - start)
        say(f"  {done}/{len(items)} prompts, {rate:.2f} prompts/s, {new_tokens / (time.time() - start):.0f} "
            f"new tok/s, ETA {(len(items) - done) / rate:.0f}s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(ROOT / "models/SmolLM2-135M-Instruct-hf"),
                    help="HF-format folder (tools/make_smollm2.py keeps one next to the ONNX export)")
    ap.add_argument("--out", default=str(ROOT / "data/smollm2_prefs"))
    ap.add_argument("--samples", type=int, default=3, help="answers per prompt; every two make a pair")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--batch", type=int, default=8, help="prompts per generate() call")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1: two threads oversubscribe a busy 2-core machine badly)")
    ap.add_argument("--eval-fraction", type=float, default=0.27)
    ap.add_argument("--limit", type=int, default=0, help="only the first N prompts of each source (smoke test)")
    args = ap.parse_args()
    if not Path(args.model, "config.json").exists():
        sys.exit(f"no HF model folder at {args.model}; run tools/make_smollm2.py (it keeps one) or pass --model")

    items = prompts()
    if args.limit:
        items = [it for s in RULES for it in [i for i in items if i["source"] == s][:args.limit]]
    say(f"{len(items)} prompts: " + ", ".join(f"{s} {sum(1 for i in items if i['source'] == s)}" for s in RULES))
    generate(args, items)

    # Split by prompt, stratified by source.
    rng = random.Random(args.seed)
    eval_ids = set()
    for source in RULES:
        ids = [i for i, it in enumerate(items) if it["source"] == source]
        rng.shuffle(ids)
        eval_ids.update(ids[:round(len(ids) * args.eval_fraction)])

    splits = {"train": [], "eval": []}
    dropped = {s: 0 for s in RULES}
    for index, it in enumerate(items):
        answers = it["answers"]
        for i in range(len(answers)):
            for j in range(i + 1, len(answers)):
                a, b = answers[i], answers[j]
                verdict = judge(it["source"], a["text"], b["text"]) if a["text"] and b["text"] else None
                if verdict is None:
                    dropped[it["source"]] += 1
                    continue
                winner, reason = verdict
                chosen, rejected = (a, b) if winner == 0 else (b, a)
                splits["eval" if index in eval_ids else "train"].append({
                    "prompt": it["prompt"], "chosen": chosen["text"], "rejected": rejected["text"],
                    "source": it["source"],
                    "meta": {"prompt_id": index, "rule": RULES[it["source"]], "reason": reason,
                             "chosen_words": words(chosen["text"]), "rejected_words": words(rejected["text"]),
                             "chosen_list_lines": list_lines(chosen["text"]),
                             "rejected_list_lines": list_lines(rejected["text"]),
                             "chosen_finished": chosen["finished"], "rejected_finished": rejected["finished"]},
                })

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stats = {}
    for name, rows in splits.items():
        tmp = out / f".{name}.jsonl.tmp"
        with tmp.open("w") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        tmp.replace(out / f"{name}.jsonl")
        stats[name] = {"pairs": len(rows), "prompts": len({r["meta"]["prompt_id"] for r in rows}),
                       "by_source": {s: sum(1 for r in rows if r["source"] == s) for s in RULES}}
    chosen_shorter = sum(1 for rows in splits.values() for r in rows
                         if r["meta"]["chosen_words"] < r["meta"]["rejected_words"])
    total = sum(len(r) for r in splits.values())
    manifest = {
        "generator": "tools/make_preference_data.py", "model": args.model, "seed": args.seed,
        "samples_per_prompt": args.samples, "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature, "top_p": 0.95, "rules": RULES, "margin_words": MARGIN,
        "prompts": len(items), "dropped_ties": dropped, "splits": stats,
        "chosen_shorter_fraction": chosen_shorter / max(total, 1),
        "finished_fraction": sum(a["finished"] for it in items for a in it["answers"])
        / max(1, sum(len(it["answers"]) for it in items)),
        "seconds": round(time.time() - T0, 1),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    say(f"wrote {out}: train {stats['train']['pairs']} pairs ({stats['train']['prompts']} prompts), "
        f"eval {stats['eval']['pairs']} pairs ({stats['eval']['prompts']} prompts); dropped ties {dropped}; "
        f"chosen shorter in {manifest['chosen_shorter_fraction']:.0%}; answers finished "
        f"{manifest['finished_fraction']:.0%}")


if __name__ == "__main__":
    main()
