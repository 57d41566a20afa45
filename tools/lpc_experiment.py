#!/usr/bin/env python3
"""The LPC experiment of issue 6, end to end, with one command and a seed.

Usage (from the repository root, after `swift build -c release --product lpc`):

    tools/lpc_experiment.sh --seed 1                              # everything: data, runs, report
    python3 tools/lpc_experiment.py --seed 1                      # the same with this python (torch,
                                                                  # transformers, matplotlib needed)
    python3 tools/lpc_experiment.py --seed 1 --stages main,report # a part
    python3 tools/lpc_experiment.py --seed 1 --validation         # tuning runs: score on the validation split

Stages (each skips runs already finished, so the command can be re-run after an interruption):
  data      tools/make_population_data.py --seed --data-seed into --data, unless its train.jsonl
            exists (answers sampled from SmolLM2 itself: ~12 min on the shared machine)
  features  extract and cache backbone features of every split once (`lpc features`)
  main1     main for the first seed only (so an interrupted run already has every part)
  main      DPO, SimPO, IPO, each with and without LPC, seeds S, S+1, S+2 -> held-out accuracy
            (ties 1/2) with the prior's code, the posterior's code and no code, per-pair codes
  noise     the same trained on train_flip50 (50% of pairs flipped, " [FLIP]" on their prompts),
            scored on the clean eval split, plus codes on eval_flip50 (NMI code <-> flipped)
  ksweep    LPC-DPO with K = 8, 16, 32, 64, 128
  steer     one LPC head: for each code it uses, `lpc generate --code k` on N eval prompts (greedy),
            every output scored by every population's annotator
  determinism  re-train one run into a second folder and compare the heads and per-pair records
  report    tools/lpc_report.py -> docs/experiment/report.md + PNG plots
Hyper-parameters (defaults below) were chosen on the validation split only (--validation runs
score on it and write to OUT/validation/); the eval split is never used for choices.
Every `lpc` call and its wall time is logged in OUT/log.jsonl.
Measured (data of tools/make_population_data.py defaults, --jobs 3, one OpenBLAS thread per run, the
2-core machine shared with other builds at load average 4-14): features 18 min wall, then the runs
(18 main + 18 noise + 12 K-sweep + steering + determinism) 43 min wall.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import lpc_annotators as ann  # noqa: E402
from lpc_calls import LpcCalls  # noqa: E402

OBJECTIVES = ["dpo", "simpo", "ipo"]
K_SWEEP = [8, 16, 32, 64, 128]
# Defaults, tuned on the validation split (see docs/experiment/report.md, "Tuning").
DEFAULTS = {"epochs": 1, "lr": 2e-3, "batch_size": 8, "codes": 16, "gumbel_temperature": 1.0,
            "kl_weight": 0.05, "rank": 64, "max_length": 256, "warmup_steps": 5,
            "lm_head_precision": "f32"}  # bf16: AMX LM head in training (~4x faster); eval stays f32


def now() -> float:
    return time.time()


class Experiment:
    def __init__(self, args):
        self.a = args
        self.out = Path(args.out)
        self.data = Path(args.data)
        self.cache = Path(args.cache) if args.cache else self.out / "cache"
        self.runs = self.out / ("validation" if args.validation else "runs")
        self.runs.mkdir(parents=True, exist_ok=True)
        self.log = self.out / "log.jsonl"
        self.seeds = [args.seed + i for i in range(args.n_seeds)]
        self.eval_split = "validation" if args.validation else "eval"
        self.lpc = LpcCalls(args.lpc, self.log, dict(os.environ, OPENBLAS_NUM_THREADS=str(args.threads)))

    def common(self) -> list[str]:
        return ["--model", self.a.model, "--cache", str(self.cache), "--reference", "cached",
                "--max-length", str(self.a.max_length), "--max-prompt-length", str(self.a.max_length // 2)]

    def split(self, name: str) -> str:
        path = self.data / f"{name}.jsonl"
        if not path.exists():
            raise SystemExit(f"error: {path} is missing; make it with tools/make_population_data.py")
        return str(path)

    # -- one training run + its evaluations ---------------------------------------------------------
    def run(self, name: str, objective: str, lpc: bool, seed: int, train: str = "train", codes: int | None = None,
            evals: tuple[str, ...] | None = None) -> Path:
        """Trains one head into RUNS/name and evaluates it on each split in `evals` (default: the
        eval split, or validation with --validation) -> eval-<split>.json and pairs-<split>.jsonl."""
        d = self.runs / name
        evals = evals or (self.eval_split,)
        done = d / "done.json"
        if done.exists():
            return d
        d.mkdir(parents=True, exist_ok=True)
        a = self.a
        argv = ["train", "--data", self.split(train), "--objective", objective, "--epochs", str(a.epochs),
                "--lr", str(a.lr), "--batch-size", str(a.batch_size), "--warmup-steps", str(a.warmup_steps),
                "--rank", str(a.rank), "--seed", str(seed), "--lm-head-precision", a.lm_head_precision,
                "--out", str(d / "head")] + self.common()
        if lpc:
            argv += ["--codes", str(codes or a.codes), "--gumbel-temperature", str(a.gumbel_temperature),
                     "--kl-weight", str(a.kl_weight)]
            if a.gumbel_temperature_end is not None:
                argv += ["--gumbel-temperature-end", str(a.gumbel_temperature_end)]
        else:
            argv += ["--no-lpc"]
        seconds = {"train": self.lpc(argv, d / "train.log", name)}
        for split in evals:
            seconds[f"eval-{split}"] = self.lpc.eval_head(d, split, self.split(split), self.common(), name)
        config = {"name": name, "objective": objective, "lpc": lpc, "seed": seed, "train": train,
                  "codes": (codes or a.codes) if lpc else None, "evals": list(evals), "seconds": seconds,
                  "settings": {k: getattr(a, k) for k in DEFAULTS} | {"gumbel_temperature_end": a.gumbel_temperature_end}}
        done.write_text(json.dumps(config, indent=1) + "\n")
        print(f"  done {name}: " + ", ".join(f"{k} {v:.0f}s" for k, v in seconds.items()), flush=True)
        return d

    def parallel(self, jobs: list[tuple]):
        """Runs (name, kwargs) jobs, --jobs at a time, in the given order."""
        def go(job):
            name, kw = job
            return self.run(name, **kw)
        if self.a.jobs == 1:
            for j in jobs:
                go(j)
        else:
            with ThreadPoolExecutor(self.a.jobs) as pool:
                for _ in pool.map(go, jobs):
                    pass

    # -- stages ---------------------------------------------------------------------------------
    def make_data(self):
        """The preference set, unless --data already holds one (it is deterministic for a seed)."""
        if (self.data / "train.jsonl").exists():
            print(f"  data: {self.data} exists, kept", flush=True)
            return
        hf = Path(self.a.model).parent / (Path(self.a.model).name + "-hf")
        cmd = [sys.executable, str(ROOT / "tools/make_population_data.py"), "--out", str(self.data),
               "--seed", str(self.a.data_seed), "--model", str(hf)]
        print("  " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)

    def features(self):
        """Each split's features once (distinct data => distinct cache entries, so --jobs at a time)."""
        splits = ["train", "validation"] if self.a.validation else ["train", "validation", "eval", "train_flip50", "eval_flip50"]
        self.lpc.features(splits, self.split, self.a.model, self.cache, self.a.max_length, self.out, self.a.jobs)

    def main_runs(self, seeds=None):
        jobs = []
        for seed in seeds or self.seeds:  # seed outermost: an interrupted run has complete rows
            for o in self.a.objectives:
                for lpc in (True, False):
                    if ("lpc" if lpc else "base") in self.a.variants:
                        jobs.append((f"{o}-{'lpc' if lpc else 'base'}-s{seed}", dict(objective=o, lpc=lpc, seed=seed)))
        self.parallel(jobs)

    def noise(self, seeds=None):
        jobs = []
        for seed in seeds or self.seeds:
            for o in self.a.noise_objectives:
                for lpc in (True, False):
                    evals = (self.eval_split, "eval_flip50") if lpc and not self.a.validation else (self.eval_split,)
                    jobs.append((f"noise-{o}-{'lpc' if lpc else 'base'}-s{seed}",
                                 dict(objective=o, lpc=lpc, seed=seed, train="train_flip50", evals=evals)))
        self.parallel(jobs)

    def ksweep(self, seeds=None):
        jobs = []
        for seed in seeds or self.seeds[:self.a.ksweep_seeds]:
            for k in K_SWEEP:
                if k == self.a.codes:
                    continue  # the main run dpo-lpc-s<seed> is this point
                jobs.append((f"k{k}-dpo-lpc-s{seed}", dict(objective="dpo", lpc=True, seed=seed, codes=k)))
        self.parallel(jobs)

    def steer(self):
        seed = self.seeds[0]
        head_run = self.runs / f"dpo-lpc-s{seed}"
        out = self.out / "steering"
        out.mkdir(parents=True, exist_ok=True)
        pairs = [json.loads(l) for l in (head_run / f"pairs-{self.eval_split}.jsonl").read_text().splitlines() if l]
        usage: dict[int, int] = {}
        for p in pairs:
            for key in ("prior_code", "posterior_code"):
                if p[key] is not None:
                    usage[p[key]] = usage.get(p[key], 0) + 1
        codes = sorted(sorted(usage, key=lambda k: (-usage[k], k))[:self.a.steer_codes])
        # With collapsed codes (one or two used), add unused codes (lowest indices) for contrast:
        # they show whether the codebook vectors steer at all. Marked "(unused)" in the tables.
        unused = [k for k in range(self.a.codes) if k not in usage][:max(0, self.a.steer_min_codes - len(codes))]
        # N eval prompts, round-robin over sources in file order (deterministic).
        rows = [json.loads(l) for l in Path(self.split(self.eval_split)).read_text().splitlines() if l]
        by_source: dict[str, list[str]] = {}
        for r in rows:
            lst = by_source.setdefault(r["source"], [])
            if r["prompt"] not in lst:
                lst.append(r["prompt"])
        prompts = []
        for i in range(max(len(v) for v in by_source.values())):
            for s in sorted(by_source):
                if i < len(by_source[s]) and len(prompts) < self.a.steer_prompts:
                    prompts.append((s, by_source[s][i]))
        conditions = ([("none", None)] + [(f"code {k}", str(k)) for k in codes]
                      + [(f"code {k} (unused)", str(k)) for k in unused] + [("auto", "auto")])
        results_file = out / "outputs.jsonl"
        done = {}
        if results_file.exists():
            for l in results_file.read_text().splitlines():
                r = json.loads(l)
                done[(r["condition"], r["prompt"])] = r
        with results_file.open("a") as f:
            for cond, code in conditions:
                for source, prompt in prompts:
                    if (cond, prompt) in done:
                        continue
                    argv = ["generate", "--model", self.a.model, "--prompt", prompt, "--greedy",
                            "--max-tokens", str(self.a.steer_tokens), "--format", "jsonl"]
                    if code is not None:
                        argv += ["--head", str(head_run / "head"), "--code", code]
                    log, jsonl = out / "last.log", out / "last.jsonl"
                    t = now()
                    self.lpc(argv, log, f"steer {cond}", stdout=jsonl)
                    text, chosen = "", None
                    for line in jsonl.read_text().splitlines():
                        if not line.startswith("{"):
                            continue
                        o = json.loads(line)
                        if o.get("type") == "token":
                            text += o.get("text", "")
                        elif o.get("type") == "code":
                            chosen = o.get("code")
                    r = {"condition": cond, "code_arg": code, "chosen_code": chosen, "source": source,
                         "population": ann.POPULATION_OF_SOURCE[source], "prompt": prompt, "text": text.strip(),
                         "scores": ann.score_all(text.strip()), "features": ann.features(text.strip()),
                         "seconds": round(now() - t, 2)}
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
                    f.flush()
        (out / "meta.json").write_text(json.dumps({"head": str(head_run / "head"), "codes": codes, "unused_codes": unused, "usage": usage,
                                                   "prompts": prompts, "max_tokens": self.a.steer_tokens,
                                                   "decoding": "greedy"}, indent=1) + "\n")
        print(f"  steering: {len(conditions)} conditions x {len(prompts)} prompts", flush=True)

    def determinism(self):
        """Re-trains the first DPO-LPC run into a second folder: same seed => same head bytes and records."""
        seed = self.seeds[0]
        a = self.runs / f"dpo-lpc-s{seed}"
        b = self.run(f"rerun-dpo-lpc-s{seed}", objective="dpo", lpc=True, seed=seed)
        same_head = (a / "head/head.safetensors").read_bytes() == (b / "head/head.safetensors").read_bytes()
        same_pairs = (a / f"pairs-{self.eval_split}.jsonl").read_bytes() == (b / f"pairs-{self.eval_split}.jsonl").read_bytes()
        result = {"run": a.name, "rerun": b.name, "head_bytes_identical": same_head, "pair_records_identical": same_pairs}
        (self.out / "determinism.json").write_text(json.dumps(result, indent=1) + "\n")
        print(f"  determinism: {result}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--seed", type=int, default=1, help="first seed; runs use S, S+1, ... (--n-seeds)")
    ap.add_argument("--n-seeds", type=int, default=3)
    ap.add_argument("--stages", default="data,features,main1,steer,noise1,ksweep,main,determinism,noise,report",
                    help="in this order; main1/noise1 = the first seed only, so a time-boxed run has every part early")
    ap.add_argument("--data", default=str(ROOT / "data/population"))
    ap.add_argument("--data-seed", type=int, default=1234, help="seed of the data stage (answer sampling)")
    ap.add_argument("--out", default=str(ROOT / "out/experiment"))
    ap.add_argument("--cache", default="", help="feature cache folder (default OUT/cache)")
    ap.add_argument("--lpc", default=str(ROOT / ".build/release/lpc"))
    ap.add_argument("--model", default=str(ROOT / "models/SmolLM2-135M-Instruct"))
    ap.add_argument("--validation", action="store_true", help="score on the validation split (tuning)")
    ap.add_argument("--jobs", type=int, default=2, help="lpc runs at a time")
    ap.add_argument("--threads", type=int, default=1, help="OpenBLAS threads per lpc run")
    ap.add_argument("--objectives", default=",".join(OBJECTIVES))
    ap.add_argument("--variants", default="lpc,base", help="main runs: with LPC (lpc), without (base), or both")
    ap.add_argument("--noise-objectives", default="dpo,simpo,ipo")
    ap.add_argument("--ksweep-seeds", type=int, default=3)
    ap.add_argument("--steer-codes", type=int, default=6, help="at most this many codes (the most used)")
    ap.add_argument("--steer-min-codes", type=int, default=3, help="pad with unused codes up to this many")
    ap.add_argument("--steer-prompts", type=int, default=5)
    ap.add_argument("--steer-tokens", type=int, default=40)
    ap.add_argument("--report", default=str(ROOT / "docs/experiment"))
    for k, v in DEFAULTS.items():
        ap.add_argument("--" + k.replace("_", "-"), type=type(v), default=v)
    ap.add_argument("--gumbel-temperature-end", type=float, default=None)
    args = ap.parse_args()
    args.objectives = args.objectives.split(",")
    args.noise_objectives = args.noise_objectives.split(",")
    if not Path(args.lpc).exists():
        raise SystemExit(f"error: {args.lpc} not found; build it: swift build -c release --product lpc")
    ex = Experiment(args)
    t0 = now()
    stages = args.stages.split(",")
    background = None
    for stage in stages:
        if stage == "report" and background is not None:
            background.join()  # the steering outputs go into the report
        print(f"== {stage} ({time.strftime('%H:%M:%S')})", flush=True)
        if stage == "data":
            ex.make_data()
        elif stage == "features":
            ex.features()
        elif stage == "main":
            ex.main_runs()
        elif stage == "main1":  # the first seed only (ordering helper for a time-boxed run)
            ex.main_runs(seeds=ex.seeds[:1])
        elif stage == "noise":
            ex.noise()
        elif stage == "noise1":
            ex.noise(seeds=ex.seeds[:1])
        elif stage == "ksweep":
            ex.ksweep()
        elif stage == "steer":
            # Steering is a few dozen short `lpc generate` calls: mostly waiting on a busy machine, little
            # CPU. It runs beside the next stages' training runs and is joined before the report.
            import threading
            background = threading.Thread(target=ex.steer, name="steer")
            background.start()
        elif stage == "determinism":
            ex.determinism()
        elif stage == "report":
            cmd = [sys.executable, str(ROOT / "tools/lpc_report.py"), "--out", str(ex.out), "--report", args.report,
                   "--data", args.data, "--seed", str(args.seed), "--n-seeds", str(args.n_seeds), "--codes", str(args.codes)]
            subprocess.run(cmd, check=True)
        else:
            raise SystemExit(f"error: unknown stage {stage!r}")
    if background is not None:
        background.join()
    total = now() - t0
    with (ex.out / "timing.jsonl").open("a") as f:
        f.write(json.dumps({"stages": stages, "seconds": round(total, 1), "end": time.strftime("%Y-%m-%d %H:%M:%S"),
                            "argv": sys.argv[1:]}) + "\n")
    print(f"== finished in {total / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()
