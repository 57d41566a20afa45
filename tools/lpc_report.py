#!/usr/bin/env python3
"""Writes the LPC experiment's report (docs/experiment/report.md + PNG plots) from its run folder.

Usage: python tools/lpc_report.py --out out/experiment --report docs/experiment [--data data/population]
Called by tools/lpc_experiment.py (stage `report`). Needs matplotlib (tools/requirements.txt).
Reads OUT/runs/<run>/{done.json, eval-<split>.json, pairs-<split>.jsonl}, OUT/steering/, OUT/log.jsonl,
OUT/determinism.json and OUT/tuning/ (validation runs). Missing parts are reported as missing.
Everything printed is computed here from those files (nothing typed in by hand).
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import lpc_annotators as ann  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

OBJ = ["dpo", "simpo", "ipo"]
NAME = {"dpo": "DPO", "simpo": "SimPO", "ipo": "IPO"}


def jl(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []


def entropy(counts) -> float:
    n = sum(counts)
    return -sum(c / n * math.log(c / n) for c in counts if c) if n else 0.0


def nmi(xs: list, ys: list) -> float:
    """Normalized mutual information, arithmetic-mean normalisation (scikit-learn's default):
    2·I(X;Y) / (H(X) + H(Y)); 0 when both are constant."""
    n = len(xs)
    if n == 0:
        return float("nan")
    hx, hy = entropy(Counter(xs).values()), entropy(Counter(ys).values())
    joint = Counter(zip(xs, ys))
    px, py = Counter(xs), Counter(ys)
    i = sum(c / n * math.log((c / n) / (px[x] / n * py[y] / n)) for (x, y), c in joint.items())
    return 0.0 if hx + hy == 0 else max(0.0, 2 * i / (hx + hy))


def ms(values: list[float], pct=True) -> str:
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not v:
        return "n/a"
    f = 100 if pct else 1
    m = statistics.mean(v) * f
    if len(v) == 1:
        return f"{m:.1f}" if pct else f"{m:.3f}"
    sd = statistics.stdev(v) * f
    return f"{m:.1f} ± {sd:.1f}" if pct else f"{m:.3f} ± {sd:.3f}"


class Runs:
    def __init__(self, out: Path, data: Path):
        self.out, self.data = out, data
        self.runs = {}
        for done in sorted((out / "runs").glob("*/done.json")):
            self.runs[done.parent.name] = json.loads(done.read_text())
        self.rows = {s: jl(data / f"{s}.jsonl") for s in ("train", "validation", "eval", "train_flip50", "eval_flip50")}

    def has(self, name):
        return name in self.runs

    def report(self, name, split="eval"):
        p = self.out / "runs" / name / f"eval-{split}.json"
        return json.loads(p.read_text()) if p.exists() else None

    def pairs(self, name, split="eval"):
        return jl(self.out / "runs" / name / f"pairs-{split}.jsonl")

    def row_of(self, record, split):
        """The data line of a per-pair record (records carry the 1-based line of their file)."""
        rows = self.rows[split]
        line = record.get("line")
        return rows[line - 1] if line else rows[record["pair"]]

    def acc(self, name, choice, split="eval"):
        r = self.report(name, split)
        return None if r is None else r["accuracy"].get(choice)


def fig_save(fig, path: Path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "out/experiment"))
    ap.add_argument("--report", default=str(ROOT / "docs/experiment"))
    ap.add_argument("--data", default=str(ROOT / "data/population"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n-seeds", type=int, default=3)
    ap.add_argument("--codes", type=int, default=16, help="K of the main runs")
    ap.add_argument("--tuning", default=str(ROOT / "out/tuning"))
    args = ap.parse_args()
    out, rep, data = Path(args.out), Path(args.report), Path(args.data)
    rep.mkdir(parents=True, exist_ok=True)
    R = Runs(out, data)
    seeds = [args.seed + i for i in range(args.n_seeds)]
    manifest = json.loads((data / "manifest.json").read_text()) if (data / "manifest.json").exists() else {}
    md: list[str] = []
    add = md.append

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    log = jl(out / "log.jsonl")
    timing = jl(out / "timing.jsonl")
    add("# LPC at small scale: SmolLM2-135M-Instruct, synthetic annotator populations\n")
    add("Written by `tools/lpc_report.py` from the run folder of `tools/lpc_experiment.py`; every number "
        "below is computed from the runs' files. Held-out accuracy counts ties as ½.\n")

    # ---------------------------------------------------------------- setup
    add("## Setup\n")
    if manifest:
        sp = manifest["splits"]
        add(f"- **Data** (`tools/make_population_data.py`, seed {manifest['seed']}): {manifest['prompts']} prompts in 5 "
            f"topics (`source`), {manifest['answers']} answers sampled from SmolLM2-135M-Instruct itself, one per "
            f"hidden style instruction ({', '.join(manifest['styles'])}; the instruction is not in the stored prompt), "
            f"≤ {manifest['max_new_tokens']} new tokens, temperature {manifest['temperature']}, top-k {manifest.get('top_k')}; "
            f"generation took {manifest.get('generation_seconds') or 0:.0f} s.")
        add(f"- **Populations** (`tools/lpc_annotators.py`), one per topic, tastes in conflict: " + "; ".join(
            f"{src} → **{pop}** ({ann.DESCRIPTIONS[pop]})" for src, pop in manifest["populations"].items()) + ".")
        add(f"- **Pairs**: every two answers of a prompt judged by its population; pairs under the population's "
            f"margin dropped. Split by prompt, stratified by topic: train {sp['train']['pairs']} pairs "
            f"({sp['train']['prompts']} prompts), validation {sp['validation']['pairs']} ({sp['validation']['prompts']}), "
            f"eval {sp['eval']['pairs']} ({sp['eval']['prompts']}, held out, never used for any choice). "
            f"Noise set: train_flip50 = train with {sp['train_flip50']['flipped']} of {sp['train_flip50']['pairs']} pairs "
            f"flipped and ` [FLIP]` appended to their prompts.")
    any_run = next(iter(R.runs.values()), None)
    if any_run:
        s = any_run["settings"]
        add(f"- **Training**: frozen backbone, cached features, `lpc train` with {s['epochs']} epochs, lr {s['lr']}, "
            f"batch {s['batch_size']}, warmup {s['warmup_steps']} steps then cosine, adapter rank {s['rank']}, "
            f"max length {s['max_length']}; LPC: K = {s['codes']}, Gumbel τ {s['gumbel_temperature']}"
            f"{' → ' + str(s['gumbel_temperature_end']) if s.get('gumbel_temperature_end') else ''}, λ = {s['kl_weight']}; "
            f"β and the rest at lpc's defaults (DPO β 0.1; SimPO β 2, γ = β/2; IPO τ 0.1 with length-averaged "
            f"log-ratios, as TRL). Reference log-probs: the backbone's own (`--reference cached`). "
            f"LM head in training: {s.get('lm_head_precision', 'f32')} (evaluation: f32).")
    add("")

    # ---------------------------------------------------------------- main table
    add("## Held-out preference accuracy (eval split)\n")
    add(f"Mean ± sd over seeds {', '.join(map(str, seeds))} (runs present: n). LPC heads are scored with the "
        "prior's code (what generation uses), the posterior's code (sees the answers: an upper bound) and no code.\n")
    add("| objective | variant | n | prior code | posterior code | no code | per seed (primary) |")
    add("|---|---|---|---|---|---|---|")
    main_acc = {}
    for o in OBJ:
        for v in ("base", "lpc"):
            names = [f"{o}-{v}-s{s}" for s in seeds if R.has(f"{o}-{v}-s{s}")]
            prim = "prior" if v == "lpc" else "none"
            vals = {c: [R.acc(n, c) for n in names] for c in ("prior", "posterior", "none")}
            main_acc[(o, v)] = vals[prim]
            add(f"| {NAME[o]} | {'LPC' if v == 'lpc' else 'no LPC'} | {len(names)} | "
                f"{ms(vals['prior']) if v == 'lpc' else '–'} | {ms(vals['posterior']) if v == 'lpc' else '–'} | "
                f"{ms(vals['none'])} | {' '.join(f'{100 * x:.1f}' for x in vals[prim] if x is not None)} |")
    add("")
    gains = []
    for o in OBJ:
        paired = [(R.acc(f"{o}-lpc-s{s}", "prior"), R.acc(f"{o}-base-s{s}", "none")) for s in seeds
                  if R.has(f"{o}-lpc-s{s}") and R.has(f"{o}-base-s{s}")]
        if paired:
            d = [a - b for a, b in paired]
            gains.append(f"{NAME[o]} {100 * statistics.mean(d):+.1f} points (per seed: {', '.join(f'{100 * x:+.1f}' for x in d)})")
    if gains:
        add("LPC (prior code) minus no LPC, paired by seed: " + "; ".join(gains) + ".\n")

    # per-population accuracy for the first seed
    first = [n for n in (f"{o}-{v}-s{seeds[0]}" for o in OBJ for v in ("base", "lpc")) if R.has(n)]
    if first:
        pops = ann.POPULATIONS
        add(f"Per population (seed {seeds[0]}, primary choice):\n")
        add("| run | " + " | ".join(pops) + " |")
        add("|---|" + "---|" * len(pops))
        for n in first:
            rec = R.pairs(n)
            prim = "prior" if "-lpc-" in n else "none"
            cells = []
            for p in pops:
                c = [r["correct"][prim] for r in rec if ann.POPULATION_OF_SOURCE.get(r["source"]) == p]
                cells.append(f"{100 * statistics.mean(c):.0f}" if c else "–")
            add(f"| {n} | " + " | ".join(cells) + " |")
        add("")

    # accuracy figure
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for j, (v, color) in enumerate((("base", "#999999"), ("lpc", "#3366cc"))):
        means = [100 * statistics.mean([x for x in main_acc[(o, v)] if x is not None]) if any(x is not None for x in main_acc[(o, v)]) else 0 for o in OBJ]
        sds = [100 * statistics.stdev([x for x in main_acc[(o, v)] if x is not None]) if sum(x is not None for x in main_acc[(o, v)]) > 1 else 0 for o in OBJ]
        ax.bar([i + (j - 0.5) * 0.38 for i in range(3)], means, 0.38, yerr=sds, color=color, capsize=3,
               label="no LPC" if v == "base" else "LPC (prior code)")
    ax.axhline(50, color="k", lw=0.8, ls=":")
    ax.set_xticks(range(3), [NAME[o] for o in OBJ])
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_ylim(40, 100)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("Held-out preference accuracy (mean ± sd over seeds)", fontsize=9)
    fig_save(fig, rep / "accuracy.png")
    add("![accuracy](accuracy.png)\n")

    # ---------------------------------------------------------------- codes vs populations
    add("## Do the codes find the populations?\n")
    add("Normalized mutual information (2·I/(H_code + H_population), natural logs) between each eval pair's code "
        "(argmax of the prior, or of the posterior) and its population; 0 = unrelated, 1 = one-to-one. Code usage: "
        "distinct codes that are some pair's argmax.\n")
    add("| run | NMI prior code | NMI posterior code | codes used (prior / posterior) | code perplexity |")
    add("|---|---|---|---|---|")
    nmis = defaultdict(lambda: ([], []))
    for o in OBJ:
        for s in seeds:
            n = f"{o}-lpc-s{s}"
            if not R.has(n):
                continue
            rec = R.pairs(n)
            pop = [ann.POPULATION_OF_SOURCE[r["source"]] for r in rec]
            a = nmi([r["prior_code"] for r in rec], pop)
            b = nmi([r["posterior_code"] for r in rec], pop)
            nmis[o][0].append(a)
            nmis[o][1].append(b)
            ppl = R.report(n)["metrics"].get("codes/perplexity")
            add(f"| {n} | {a:.3f} | {b:.3f} | {len(set(r['prior_code'] for r in rec))} / "
                f"{len(set(r['posterior_code'] for r in rec))} | {ppl:.2f} |" if ppl is not None else f"| {n} | {a:.3f} | {b:.3f} | | |")
    add("")
    add("Means: " + "; ".join(f"{NAME[o]} prior {ms(v[0], False)}, posterior {ms(v[1], False)}" for o, v in nmis.items()) + ".\n")
    hm = f"dpo-lpc-s{seeds[0]}"
    if R.has(hm):
        rec = R.pairs(hm)
        for key, title in (("prior_code", "prior"), ("posterior_code", "posterior")):
            codes = sorted({r[key] for r in rec})
            pops = ann.POPULATIONS
            m = [[sum(1 for r in rec if r[key] == k and ann.POPULATION_OF_SOURCE[r["source"]] == p) for k in codes] for p in pops]
            fig, ax = plt.subplots(figsize=(max(4, 0.55 * len(codes) + 2.5), 3.2))
            norm = [[c / max(1, sum(row)) for c in row] for row in m]
            im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1, aspect="auto")
            for i, row in enumerate(m):
                for j, c in enumerate(row):
                    if c:
                        ax.text(j, i, str(c), ha="center", va="center", fontsize=7,
                                color="white" if norm[i][j] > 0.6 else "black")
            ax.set_xticks(range(len(codes)), codes)
            ax.set_yticks(range(len(pops)), pops)
            ax.set_xlabel(f"{title} code (argmax)")
            ax.set_title(f"{hm}: eval pairs per code and population (NMI {nmi([r[key] for r in rec], [ann.POPULATION_OF_SOURCE[r['source']] for r in rec]):.3f})", fontsize=8)
            fig.colorbar(im, ax=ax, fraction=0.04, label="share of the population's pairs")
            fig_save(fig, rep / f"codes_{title}.png")
            add(f"![codes by population, {title}](codes_{title}.png)\n")

    # ---------------------------------------------------------------- K sweep
    add("## Codebook size K (LPC-DPO)\n")
    ks = [8, 16, 32, 64, 128]
    pts = []
    for k in ks:
        names = [(f"dpo-lpc-s{s}" if k == args.codes else f"k{k}-dpo-lpc-s{s}") for s in seeds]
        names = [n for n in names if R.has(n)]
        if names:
            pts.append((k, names))
    if pts:
        add("| K | n | prior code | posterior code | NMI prior code | codes used (prior argmax) | code perplexity |")
        add("|---|---|---|---|---|---|---|")
        for k, names in pts:
            nm = [nmi([r["prior_code"] for r in R.pairs(n)], [ann.POPULATION_OF_SOURCE[r["source"]] for r in R.pairs(n)]) for n in names]
            ppl = [R.report(n)["metrics"].get("codes/perplexity") for n in names]
            add(f"| {k} | {len(names)} | {ms([R.acc(n, 'prior') for n in names])} | {ms([R.acc(n, 'posterior') for n in names])} | "
                f"{ms(nm, False)} | {', '.join(str(len({r['prior_code'] for r in R.pairs(n)})) for n in names)} | {ms(ppl, False)} |")
        add("")
        base = [R.acc(f"dpo-base-s{s}", "none") for s in seeds if R.has(f"dpo-base-s{s}")]
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        for choice, color in (("prior", "#3366cc"), ("posterior", "#dd8800")):
            ys = [100 * statistics.mean([R.acc(n, choice) for n in names]) for _, names in pts]
            ax.plot([k for k, _ in pts], ys, "o-", color=color, label=f"LPC-DPO, {choice} code")
        if base:
            ax.axhline(100 * statistics.mean(base), color="#999999", ls="--", label="DPO without LPC")
        ax.set_xscale("log", base=2)
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("codebook size K")
        ax.set_ylabel("held-out accuracy (%)")
        ax.legend(fontsize=8)
        ax.set_title("Accuracy vs K (mean over the seeds run at each K)", fontsize=9)
        fig_save(fig, rep / "k_sweep.png")
        add("![accuracy vs K](k_sweep.png)\n")
    else:
        add("Not run.\n")

    # ---------------------------------------------------------------- noise
    add("## Noise: 50% of training pairs flipped, ` [FLIP]` on their prompts\n")
    noise_rows = []
    for o in OBJ:
        for v in ("base", "lpc"):
            names = [f"noise-{o}-{v}-s{s}" for s in seeds if R.has(f"noise-{o}-{v}-s{s}")]
            if not names:
                continue
            prim = "prior" if v == "lpc" else "none"
            # the clean runs of the same seeds, so both columns average the same seeds
            clean = [R.acc(f"{o}-{v}-s{n.rsplit('-s', 1)[1]}", prim) for n in names]
            noisy = [R.acc(n, prim) for n in names]
            flip_nmi_p, flip_nmi_q, flip_acc = [], [], []
            for n in names:
                rec = R.pairs(n, "eval_flip50")
                if rec:
                    fl = [bool(R.row_of(r, "eval_flip50")["meta"]["flipped"]) for r in rec]
                    flip_nmi_p.append(nmi([r["prior_code"] for r in rec], fl))
                    flip_nmi_q.append(nmi([r["posterior_code"] for r in rec], fl))
                    flip_acc.append(R.acc(n, prim, "eval_flip50"))
            noise_rows.append((o, v, names, clean, noisy, flip_nmi_p, flip_nmi_q, flip_acc))
    if noise_rows:
        add("Accuracy on the clean eval split of heads trained on clean data vs on train_flip50; for LPC heads, "
            "NMI between the code and flipped/normal on eval_flip50 (the eval split with 50% flipped + ` [FLIP]`), "
            "and accuracy on eval_flip50 against its (flipped) labels.\n")
        add("| objective | variant | n | trained clean | trained 50% flipped | drop | NMI prior code ↔ flipped | NMI posterior code ↔ flipped | acc. on eval_flip50 |")
        add("|---|---|---|---|---|---|---|---|---|")
        for o, v, names, clean, noisy, fp, fq, fa in noise_rows:
            c = [x for x in clean if x is not None]
            drop = (statistics.mean(c) - statistics.mean(noisy)) * 100 if c and noisy else float("nan")
            add(f"| {NAME[o]} | {'LPC' if v == 'lpc' else 'no LPC'} | {len(names)} | {ms(clean)} | {ms(noisy)} | {drop:+.1f} | "
                f"{ms(fp, False) if fp else '–'} | {ms(fq, False) if fq else '–'} | {ms(fa) if fa else '–'} |")
        add("")
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        labels = [f"{NAME[o]}\n{'LPC' if v == 'lpc' else 'no LPC'}" for o, v, *_ in noise_rows]
        xs = range(len(noise_rows))
        cm = [100 * statistics.mean([x for x in r[3] if x is not None]) if any(x is not None for x in r[3]) else 0 for r in noise_rows]
        nm = [100 * statistics.mean(r[4]) for r in noise_rows]
        ax.bar([x - 0.2 for x in xs], cm, 0.4, color="#3366cc", label="0% flipped")
        ax.bar([x + 0.2 for x in xs], nm, 0.4, color="#cc3333", label="50% flipped + [FLIP]")
        ax.axhline(50, color="k", lw=0.8, ls=":")
        ax.set_xticks(list(xs), labels, fontsize=8)
        ax.set_ylim(40, 100)
        ax.set_ylabel("clean held-out accuracy (%)")
        ax.legend(fontsize=8)
        ax.set_title("Accuracy vs label noise", fontsize=9)
        fig_save(fig, rep / "noise.png")
        add("![accuracy vs noise](noise.png)\n")
    else:
        add("Not run.\n")

    # ---------------------------------------------------------------- steering
    add("## Steering: generate with a fixed code, score with every population\n")
    steer = jl(out / "steering/outputs.jsonl")
    meta = json.loads((out / "steering/meta.json").read_text()) if (out / "steering/meta.json").exists() else None
    if steer and meta:
        conds = list(dict.fromkeys(r["condition"] for r in steer))
        pops = ann.POPULATIONS
        allv = {p: [r["scores"][p] for r in steer] for p in pops}
        mu = {p: statistics.mean(v) for p, v in allv.items()}
        sd = {p: (statistics.pstdev(v) or 1.0) for p, v in allv.items()}
        z = [[statistics.mean([(r["scores"][p] - mu[p]) / sd[p] for r in steer if r["condition"] == c]) for p in pops] for c in conds]
        add(f"Head `{Path(meta['head']).parent.name}`; {len(meta['prompts'])} eval prompts (round-robin over topics), greedy decoding, "
            f"≤ {meta['max_tokens']} tokens; conditions: no head (the reference model), the codes the head uses on the eval split "
            f"(argmax of prior or posterior: {', '.join(f'{k} ({n} times)' for k, n in sorted(((int(k), n) for k, n in meta['usage'].items()), key=lambda t: -t[1]))}), "
            f"{'unused codes ' + ', '.join(map(str, meta.get('unused_codes', []))) + ' for contrast, ' if meta.get('unused_codes') else ''}"
            f"each with `--code k`, and `--code auto`. Cells: mean population score, z-scored per population over all outputs "
            f"(higher = that population likes it more).\n")
        add("| condition | n | " + " | ".join(pops) + " | words | list lines | casual markers |")
        add("|---|---|" + "---|" * (len(pops) + 3))
        for c, row in zip(conds, z):
            rs = [r for r in steer if r["condition"] == c]
            add(f"| {c} | {len(rs)} | " + " | ".join(f"{x:+.2f}" for x in row) +
                f" | {statistics.mean(r['features']['words'] for r in rs):.1f} | {statistics.mean(r['features']['list_lines'] for r in rs):.1f} | "
                f"{statistics.mean(r['features']['casual_markers'] for r in rs):.1f} |")
        add("")
        distinct = {c: len({r["text"] for r in steer if r["condition"] == c}) for c in conds}
        same_as_ref = sum(1 for r in steer if r["condition"] != "none" and any(
            q["condition"] == "none" and q["prompt"] == r["prompt"] and q["text"] == r["text"] for q in steer))
        add(f"Outputs identical to the reference model's for the same prompt: {same_as_ref} of "
            f"{sum(1 for r in steer if r['condition'] != 'none')}.\n")
        fig, ax = plt.subplots(figsize=(6, 0.38 * len(conds) + 1.6))
        lim = max(0.5, max(abs(x) for row in z for x in row))
        im = ax.imshow(z, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
        for i, row in enumerate(z):
            for j, x in enumerate(row):
                ax.text(j, i, f"{x:+.2f}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(pops)), pops)
        ax.set_yticks(range(len(conds)), conds)
        ax.set_title("Steering: mean z-scored population score per code", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.04)
        fig_save(fig, rep / "steering.png")
        add("![steering](steering.png)\n")
        ex = [r for r in steer if r["prompt"] == meta["prompts"][0][1]]
        if ex:
            add(f"Example, prompt “{ex[0]['prompt']}”:\n")
            for r in ex:
                t = r["text"].replace("\n", " ⏎ ")
                add(f"- *{r['condition']}*: {t[:220]}{'…' if len(t) > 220 else ''}")
            add("")
    else:
        add("Not run.\n")

    # ---------------------------------------------------------------- tuning
    add("## Tuning (validation split only)\n")
    tune = []
    for done in sorted(Path(args.tuning).glob("*/validation/*/done.json")):
        d = json.loads(done.read_text())
        r = json.loads((done.parent / "eval-validation.json").read_text())
        tune.append((done.parent.parent.parent.name, d, r))
    if tune:
        add("Settings tried before the main run, each scored on the validation split (never the eval split):\n")
        add("| config | run | epochs | lr | K | τ | λ | prior code | posterior code | no code | code perplexity |")
        add("|---|---|---|---|---|---|---|---|---|---|---|")
        for tag, d, r in tune:
            s = d["settings"]
            acc = r["accuracy"]
            f = lambda c: f"{100 * acc[c]:.1f}" if acc.get(c) is not None else "–"
            ppl = r["metrics"].get("codes/perplexity")
            add(f"| {tag} | {d['name']} | {s['epochs']} | {s['lr']} | {d['codes'] or '–'} | {s['gumbel_temperature'] if d['lpc'] else '–'} | "
                f"{s['kl_weight'] if d['lpc'] else '–'} | {f('prior')} | {f('posterior')} | {f('none')} | "
                f"{f'{ppl:.2f}' if d['lpc'] and ppl is not None else '–'} |")
        add("")
        if any_run:
            keys = ("epochs", "lr", "gumbel_temperature", "kl_weight", "codes")
            chosen = sorted({tag for tag, d, _ in tune if d["lpc"] and all(d["settings"][k] == any_run["settings"][k] for k in keys)})
            ppls = [r["metrics"].get("codes/perplexity") for _, d, r in tune if d["lpc"]]
            collapsed = sum(1 for x in ppls if x is not None and x < 1.05)
            n_val = len(R.rows["validation"])
            add(f"The main runs use the settings of config {', '.join(chosen) or '(none of the above)'} "
                f"(the best validation accuracy with LPC; ties broken towards the smaller learning rate). "
                f"{collapsed} of {len(ppls)} LPC settings tried ended with collapsed codes (code perplexity < 1.05). "
                f"One validation pair is {100 / max(1, n_val):.1f} points: these differences are within noise. "
                f"One epoch was a time constraint (about 6 min per run on the shared machine), not a tuning result.\n")
    else:
        add("No tuning runs found.\n")

    # ---------------------------------------------------------------- reproducibility
    add("## Reproduce\n")
    argv = timing[-1]["argv"] if timing else []
    add("```sh\nswift build -c release --product lpc\nPY=$(tools/venv.sh)    # torch, transformers, matplotlib\n"
        f"$PY tools/make_population_data.py --seed {manifest.get('seed', 1234)}\n"
        f"$PY tools/lpc_experiment.py --seed {args.seed}\n```\n")
    total_lpc = sum(e["seconds"] for e in log)
    add(f"- lpc commit: `{commit}` (the branch head when this report was written); last invocation: "
        f"`tools/lpc_experiment.py {' '.join(argv)}`.")
    for t in timing:
        add(f"- run of stages `{','.join(t['stages'])}` ended {t['end']} UTC after {t['seconds'] / 60:.1f} min wall.")
    by_kind = defaultdict(float)
    for e in log:
        by_kind[e["argv"][0]] += e["seconds"]
    add(f"- time inside `lpc` (sum over calls, {len(log)} calls): {total_lpc / 60:.1f} min "
        f"({', '.join(f'{k} {v / 60:.1f} min' for k, v in sorted(by_kind.items()))}); runs went `--jobs` at a time on a "
        f"2-core machine shared with three other helpers' builds and tests (load average 6–14), one OpenBLAS thread each, "
        f"so wall times are not throughput figures.")
    # Data determinism: rebuild the pairs, splits and flips from the stored answers and compare bytes.
    if (data / "answers.jsonl").exists() and manifest:
        import make_population_data as mpd
        items = mpd.prompts()
        if manifest.get("prompts", 0) < len(items):
            per = manifest["prompts"] // len(ann.POPULATION_OF_SOURCE)
            items = [it for s_ in ann.POPULATION_OF_SOURCE for it in [i for i in items if i["source"] == s_][:per]]
        answers = jl(data / "answers.jsonl")
        splits, _ = mpd.make_pairs(items, answers, mpd.split_prompts(items, manifest["seed"]))
        splits["train_flip50"] = mpd.flip_variant(splits["train"], manifest["seed"])
        splits["eval_flip50"] = mpd.flip_variant(splits["eval"], manifest["seed"] + 1)
        same = {name: "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) == (data / f"{name}.jsonl").read_text()
                for name, rows in splits.items()}
        add(f"- Data determinism: pairs, splits and flips rebuilt from the stored answers (`answers.jsonl`) are "
            f"byte-identical to the data files: {', '.join(f'{k} {v}' for k, v in same.items())}. (The sampling of the "
            f"answers themselves is seeded per batch but was not re-run here: it takes ~12 min.)")
    det = out / "determinism.json"
    if det.exists():
        d = json.loads(det.read_text())
        add(f"- Determinism: `{d['rerun']}` re-trained `{d['run']}` with the same seed: head bytes identical: "
            f"**{d['head_bytes_identical']}**, per-pair eval records identical: **{d['pair_records_identical']}**.")
    add("")
    # ---------------------------------------------------------------- headline numbers (top of the report)
    summary = ["## Headline numbers\n"]
    cells = []
    for o in OBJ:
        b, l = main_acc.get((o, "base"), []), main_acc.get((o, "lpc"), [])
        if any(x is not None for x in b) or any(x is not None for x in l):
            cells.append(f"{NAME[o]} {ms(b)} → {ms(l)}")
    n_train = manifest.get("splits", {}).get("train", {}).get("pairs", "?")
    n_eval = manifest.get("splits", {}).get("eval", {}).get("pairs", "?")
    summary.append(
        f"On a synthetic population preference set built from SmolLM2-135M-Instruct's own answers "
        f"({n_train} train / {n_eval} held-out pairs, 5 annotator populations with conflicting tastes tied to the "
        f"prompt's topic), held-out accuracy without → with LPC (prior code, mean ± sd over seeds, %): "
        + "; ".join(cells) + ". "
        + ("Code ↔ population NMI (prior code): " + "; ".join(f"{NAME[o]} {ms(v[0], False)}" for o, v in nmis.items()) + ". " if nmis else "")
        + "Details below.")
    summary.append("")
    md[2:2] = summary  # after the title and the intro line
    (rep / "report.md").write_text("\n".join(md) + "\n")
    print(f"wrote {rep / 'report.md'}")


if __name__ == "__main__":
    main()
