#!/usr/bin/env python3
"""Writes docs/accuracy.md (issue 5's held-out accuracy table) from the run folder of tools/lpc_accuracy.py.

Usage: python3 tools/lpc_accuracy_report.py --out out/accuracy --data data/accuracy --report docs/accuracy.md
Reads OUT/runs/<objective>-<variant>-s<seed>/{done.json, eval-eval.json, eval-train.json, pairs-eval.jsonl},
OUT/tune/*, OUT/selected.json, OUT/log.jsonl, OUT/timing.jsonl and DATA/manifest.json. Every number
printed is computed here from those files. Pure Python (no numpy needed).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from lpc_accuracy import GRID, COMMON, LPC_COMMON, OBJECTIVES, VARIANTS, NAME, label  # noqa: E402

T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}
VARIANT_NAME = {"base": "no LPC", "lpc": "LPC"}


def jl(path: Path) -> list[dict]:
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.exists() else []


def js(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def mean_sd(v: list[float]) -> str:
    if not v:
        return "–"
    if len(v) == 1:
        return pct(v[0])
    return f"{100 * statistics.mean(v):.1f} ± {100 * statistics.stdev(v):.1f}"


def t_interval(v: list[float]) -> tuple[float, float] | None:
    """95% interval of the mean over seeds (Student t, n − 1 degrees of freedom)."""
    if len(v) < 2:
        return None
    m, h = statistics.mean(v), T975.get(len(v) - 1, 1.96) * statistics.stdev(v) / math.sqrt(len(v))
    return m - h, m + h


def cluster_bootstrap(per_prompt: dict[int, list[float]], reps: int = 10000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the pooled accuracy, resampling eval PROMPTS with replacement (pairs of
    one prompt share answers, so they are not independent draws). per_prompt: prompt -> per-pair
    correctness (1, ½, 0) over all seeds."""
    rng = random.Random(seed)
    keys = sorted(per_prompt)
    sums = {k: (sum(per_prompt[k]), len(per_prompt[k])) for k in keys}
    stats = []
    for _ in range(reps):
        s = n = 0.0
        for _ in keys:
            a, b = sums[keys[rng.randrange(len(keys))]]
            s += a
            n += b
        stats.append(s / n)
    stats.sort()
    return stats[int(0.025 * reps)], stats[int(0.975 * reps) - 1]


class Report:
    def __init__(self, a):
        self.a = a
        self.out, self.data = Path(a.out), Path(a.data)
        self.seeds = [a.seed + i for i in range(a.n_seeds)]
        self.tune_seeds = [a.seed + i for i in range(a.tune_seeds)]
        self.eval_rows = jl(self.data / "eval.jsonl")
        self.manifest = js(self.data / "manifest.json") or {}
        self.selected = js(self.out / "selected.json") or {}
        self.lines: list[str] = []

    def w(self, s: str = ""):
        self.lines.append(s)

    def run(self, objective, variant, seed) -> Path | None:
        d = self.out / "runs" / f"{objective}-{variant}-s{seed}"
        return d if (d / "done.json").exists() else None

    def cell(self, objective, variant):
        """Per seed: accuracies (primary / posterior / none) on eval and train, codes; pooled per prompt."""
        primary = "prior" if variant == "lpc" else "none"
        res = {"seeds": [], "eval": [], "train": [], "posterior": [], "none": [], "per_prompt": {}, "codes_used": [],
               "config": None, "pairs": None}
        for seed in self.seeds:
            d = self.run(objective, variant, seed)
            if d is None:
                continue
            ev, tr = js(d / "eval-eval.json"), js(d / "eval-train.json")
            res["seeds"].append(seed)
            res["eval"].append(ev["accuracy"][primary])
            if tr:
                res["train"].append(tr["accuracy"][primary])
            res["pairs"] = ev["choices"][primary]["pairs"]
            res["config"] = js(d / "done.json")["config"]
            if variant == "lpc":
                res["posterior"].append(ev["accuracy"]["posterior"])
                res["none"].append(ev["accuracy"]["none"])
                res["codes_used"].append(sum(1 for c in ev["codes"]["prior"] if c))
            for rec in jl(d / "pairs-eval.jsonl"):
                prompt = self.eval_rows[rec["line"] - 1]["meta"]["prompt_id"]
                res["per_prompt"].setdefault(prompt, []).append(rec["correct"][primary])
        return res

    def write(self):
        m = self.manifest
        sp = m.get("splits", {})
        self.w("# Held-out preference accuracy: DPO, SimPO, IPO with and without LPC (issue 5)")
        self.w()
        self.w("Written by `tools/lpc_accuracy_report.py` from the run folder of `tools/lpc_accuracy.py`; every number "
               "below is computed from the runs' files. Accuracy: a pair is correct when the chosen answer's implicit "
               "reward β·Σ(log π_θ − log π_ref) is higher, ½ on a tie (|Δ| ≤ 1e-4 nats); an untrained head ties every "
               "pair (50%, measured below). LPC heads are scored with the prior's code, what generation uses. "
               "Why the earlier population set stayed near 55–60%, and what changed: `docs/accuracy-diagnosis.md`.")
        self.w()
        cells = {(o, v): self.cell(o, v) for o in OBJECTIVES for v in VARIANTS}

        # ---- headline
        self.w("## Result")
        self.w()
        self.w(f"Eval split: {sp.get('eval', {}).get('pairs', '?')} pairs from {sp.get('eval', {}).get('prompts', '?')} "
               "prompts never used for any choice. Mean ± sd over seeds "
               + ", ".join(map(str, self.seeds)) + "; the t interval is over the seeds' accuracies; the bootstrap interval "
               "resamples eval prompts (10,000 draws) over all seeds' pairs pooled.")
        self.w()
        self.w("| objective | variant | seeds | eval accuracy % | per seed | 95% t interval (seeds) | 95% bootstrap interval (prompts) | train-split accuracy % (first seed) |")
        self.w("|---|---|---|---|---|---|---|---|")
        summary = []
        for o in OBJECTIVES:
            for v in VARIANTS:
                c = cells[(o, v)]
                if not c["eval"]:
                    self.w(f"| {NAME[o]} | {VARIANT_NAME[v]} | 0 | – | – | – | – | – |")
                    continue
                ti = t_interval(c["eval"])
                bi = cluster_bootstrap(c["per_prompt"]) if c["per_prompt"] else None
                tr = c["train"]
                self.w(f"| {NAME[o]} | {VARIANT_NAME[v]} | {len(c['eval'])} | **{mean_sd(c['eval'])}** | "
                       + " ".join(pct(x) for x in c["eval"]) + " | "
                       + (f"{pct(ti[0])} – {pct(ti[1])}" if ti else "–") + " | "
                       + (f"{pct(bi[0])} – {pct(bi[1])}" if bi else "–") + f" | {mean_sd(tr)} |")
                summary.append((o, v, statistics.mean(c["eval"]), ti, bi))
        u = self.out / "untrained"
        ue = js(u / "eval-eval.json") if (u / "done.json").exists() else None
        if ue:
            ch = ue["choices"]["none"]
            self.w(f"| untrained head (chance) | – | 1 | {pct(ue['accuracy']['none'])} | ties {ch['ties']} of {ch['pairs']} | – | – | – |")
        self.w()
        above = [s for s in summary if s[3] and s[4] and s[3][0] > 0.5 and s[4][0] > 0.5]
        self.w(f"Cells whose mean is above 50% with both intervals excluding 50%: **{len(above)} of {len(summary)}**"
               + (f" (lowest mean: {min(100 * s[2] for s in summary):.1f}%)." if summary else "."))
        self.w()
        lpc_rows = [(o, cells[(o, 'lpc')]) for o in OBJECTIVES if cells[(o, 'lpc')]["eval"]]
        if lpc_rows:
            self.w("LPC heads under the other code choices (eval, mean ± sd): "
                   + "; ".join(f"{NAME[o]} posterior's code {mean_sd(c['posterior'])}, no code {mean_sd(c['none'])}, "
                               f"distinct prior codes used {'/'.join(map(str, c['codes_used']))}" for o, c in lpc_rows) + ".")
            self.w()
        diffs = []
        for o in OBJECTIVES:
            b, l = cells[(o, "base")], cells[(o, "lpc")]
            paired = [(x, y) for s, x in zip(b["seeds"], b["eval"]) for s2, y in zip(l["seeds"], l["eval"]) if s == s2]
            if paired:
                d = [y - x for x, y in paired]
                diffs.append(f"{NAME[o]} {100 * statistics.mean(d):+.1f} points (per seed "
                             + ", ".join(f"{100 * x:+.1f}" for x in d) + ")")
        if diffs:
            self.w("LPC minus no LPC, paired by seed: " + "; ".join(diffs) + ".")
            self.w()

        # ---- shortcuts
        self.shortcuts(cells)

        # ---- data
        self.w("## Data")
        self.w()
        self.w(f"`tools/make_accuracy_data.py` (seed {m.get('seed')}): the {m.get('answer_count')} answers of "
               f"`tools/make_population_data.py` ({m.get('prompts')} prompts in 5 topics, one answer per hidden style "
               "instruction — short, detailed, list, casual, formal — sampled from SmolLM2-135M-Instruct itself, ≤ 40 new "
               f"tokens, temperature 0.8; answers file sha256 `{str(m.get('answers_sha256'))[:16]}…`), every two answers of a "
               f"prompt judged by ONE annotator for all prompts: **{m.get('population')}** ({m.get('taste')}; pairs whose "
               f"score differs by less than {m.get('margin')} are dropped: {m.get('dropped_pairs_under_margin')}). Split by "
               "prompt, stratified by topic: "
               + ", ".join(f"{n} {s['pairs']} pairs ({s['prompts']} prompts)" for n, s in sp.items()) + ".")
        self.w()
        if sp:
            self.w("| split | pairs | prompts | chosen answer's hidden style |")
            self.w("|---|---|---|---|")
            for n, s in sp.items():
                self.w(f"| {n} | {s['pairs']} | {s['prompts']} | " + ", ".join(f"{k} {v}" for k, v in s["chosen_style"].items()) + " |")
            self.w()

        # ---- settings
        self.w("## Settings")
        self.w()
        self.w("Frozen SmolLM2-135M-Instruct (optimum ONNX export, fp32); cached final hidden states; reference log-probs: "
               f"`--reference {self.done_field('reference', 'cached')}`; max length 256 (prompt 128). Shared: "
               + ", ".join(f"{k} {v}" for k, v in COMMON.items()) + "; LPC: " + ", ".join(f"{k} {v}" for k, v in LPC_COMMON.items())
               + "; otherwise lpc's defaults (DPO β 0.1 summed log-ratios; SimPO β 2, γ = β/2; IPO τ 0.1 with "
               "length-averaged log-ratios unless `log-ratio sum`). Training LM head: "
               f"`--lm-head-precision {self.precision()}`; evaluation always f32.")
        self.w()
        self.w("| cell | selected setting (validation) | validation accuracy % |")
        self.w("|---|---|---|")
        for o in OBJECTIVES:
            for v in VARIANTS:
                s = self.selected.get(f"{o}-{v}")
                if s:
                    self.w(f"| {NAME[o]} {VARIANT_NAME[v]} | candidate {s['index']}: {label(s['config'])} | {pct(s['validation_accuracy'])} |")
        self.w()

        # ---- tuning
        self.w("## Tuning (validation split only)")
        self.w()
        self.w(f"Each candidate trained on the train split with seed(s) {', '.join(map(str, self.tune_seeds))} and scored on the "
               f"validation split ({sp.get('validation', {}).get('pairs', '?')} pairs; one pair is "
               f"{100 / max(1, sp.get('validation', {}).get('pairs', 1)):.1f} points). The best mean wins; ties go to the earlier candidate.")
        self.w()
        self.w("| objective | candidate | setting | no LPC | LPC (prior code) | LPC run, last 5 training steps (first seed) |")
        self.w("|---|---|---|---|---|---|")
        for o in OBJECTIVES:
            for i, cfg in enumerate(GRID[o]):
                vals = {}
                for v in VARIANTS:
                    accs = []
                    for s in self.tune_seeds:
                        d = self.out / "tune" / f"{o}-{v}-c{i}-s{s}"
                        e = js(d / "eval-validation.json") if (d / "done.json").exists() else None
                        if e:
                            accs.append(e["accuracy"]["prior" if v == "lpc" else "none"])
                    mark = " ✓" if self.selected.get(f"{o}-{v}", {}).get("index") == i else ""
                    vals[v] = (mean_sd(accs) + mark) if accs else "–"
                last = self.last_train_metrics(self.out / "tune" / f"{o}-lpc-c{i}-s{self.tune_seeds[0]}")
                self.w(f"| {NAME[o]} | {i} | {label(cfg)} | {vals['base']} | {vals['lpc']} | {last} |")
        self.w()

        # ---- reproduce / timing
        self.w("## Reproduce")
        self.w()
        self.w("```sh")
        self.w("swift build -c release --product lpc")
        self.w("tools/lpc_accuracy.sh        # data, features, tune, main, report (skips finished parts)")
        self.w("```")
        self.w()
        log = jl(self.out / "log.jsonl")
        if log:
            by = {}
            for r in log:
                by.setdefault(r["argv"][0], []).append(r["seconds"])
            loads = sorted(x for r in log for x in (r.get("load_start"), r.get("load_end")) if x is not None)
            self.w(f"- time inside `lpc` ({len(log)} calls): " + ", ".join(
                f"{k} {sum(v) / 60:.1f} min (median {statistics.median(v):.0f} s)" for k, v in sorted(by.items()))
                + f"; 1-minute load average during the calls: median {statistics.median(loads):.1f}, range "
                f"{loads[0]:.1f}–{loads[-1]:.1f} (2-core machine shared with other builds; runs went `--jobs` at a time, "
                "one OpenBLAS thread each, so these are not throughput figures).")
        feats = {f.name.split("-")[1]: f.read_text().strip() for f in sorted((self.out / "cache").glob(".features-*"))}
        if feats:
            self.w("- feature extraction, once per split (`lpc features`, one OpenBLAS thread; cached and reused by every run): "
                   + ", ".join(f"{k} {v} s" for k, v in feats.items()) + ".")
        for t in jl(self.out / "timing.jsonl"):
            self.w(f"- stage `{t['stage']}` ended {t['end']} UTC after {t['seconds'] / 60:.1f} min (load {t['load_end']:.1f}).")
        try:
            commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        except OSError:
            commit = "?"
        self.w(f"- lpc commit when this report was written: `{commit}`.")
        self.w()

    def lengths(self) -> tuple[list[tuple[int, int]], str]:
        """(chosen, rejected) length of every eval pair: SmolLM2 tokens when `tokenizers` is there, else words."""
        try:
            from tokenizers import Tokenizer
            tok = Tokenizer.from_file(str(Path(self.a.model) / "tokenizer.json"))
            n, unit = (lambda t: len(tok.encode(t, add_special_tokens=False).ids)), "tokens"
        except Exception:  # noqa: BLE001 (no tokenizers package or no model folder)
            n, unit = (lambda t: len(t.split())), "words"
        return [(n(r["chosen"]), n(r["rejected"])) for r in self.eval_rows], unit

    def shortcuts(self, cells):
        """Could a shortcut explain the accuracy? Length and the hidden style instruction, on the eval split."""
        if not self.eval_rows:
            return
        lens, unit = self.lengths()
        n = len(lens)
        longer = sum(1.0 if c > r else 0.5 if c == r else 0.0 for c, r in lens) / n
        style = sum(1.0 if (r["meta"]["chosen_style"] == "casual") > (r["meta"]["rejected_style"] == "casual") else
                    0.0 if (r["meta"]["chosen_style"] == "casual") < (r["meta"]["rejected_style"] == "casual") else 0.5
                    for r in self.eval_rows) / n
        self.w("## Could a shortcut explain it?")
        self.w()
        self.w(f"On the eval split, \"the longer answer ({unit}) wins\" scores {pct(longer)}% and \"the shorter wins\" "
               f"{pct(1 - longer)}% (ties ½); \"the answer sampled under the hidden *casual* instruction wins\" (which the "
               f"head never sees) scores {pct(style)}%. Accuracy of the trained heads split by whether the chosen answer "
               "is the shorter or the longer one (mean over seeds; pairs of equal length left out):")
        self.w()
        self.w("| objective | variant | chosen shorter | chosen longer |")
        self.w("|---|---|---|---|")
        shorter_idx = {i + 1 for i, (c, r) in enumerate(lens) if c < r}
        longer_idx = {i + 1 for i, (c, r) in enumerate(lens) if c > r}
        for o in OBJECTIVES:
            for v in VARIANTS:
                primary = "prior" if v == "lpc" else "none"
                parts = {"s": [], "l": []}
                for seed in self.seeds:
                    d = self.run(o, v, seed)
                    if d is None:
                        continue
                    recs = jl(d / "pairs-eval.jsonl")
                    for key, idx in (("s", shorter_idx), ("l", longer_idx)):
                        xs = [rec["correct"][primary] for rec in recs if rec["line"] in idx]
                        if xs:
                            parts[key].append(sum(xs) / len(xs))
                if parts["s"] or parts["l"]:
                    self.w(f"| {NAME[o]} | {VARIANT_NAME[v]} | {mean_sd(parts['s'])} (n = {len(shorter_idx)}) | "
                           f"{mean_sd(parts['l'])} (n = {len(longer_idx)}) |")
        self.w()

    def precision(self) -> str:
        return self.done_field("lm_head_precision", "?")

    def done_field(self, key: str, default: str) -> str:
        """A setting recorded in the main runs' done.json (the same for all; the first found)."""
        for o in OBJECTIVES:
            for v in VARIANTS:
                for s in self.seeds:
                    d = self.run(o, v, s)
                    if d:
                        return js(d / "done.json").get(key, default)
        return default

    @staticmethod
    def last_train_metrics(d: Path) -> str:
        """The last logged training step: rewards/accuracies and margins (a fit check, train batch)."""
        rows = [r for r in jl(d / "head" / "metrics.jsonl") if "rewards/margins" in r and "step" in r and "eval/accuracy/prior" not in r]
        if not rows:
            return "–"
        tail = rows[-5:]
        acc = statistics.mean(r["rewards/accuracies"] for r in tail)
        return f"batch accuracy {100 * acc:.0f}%, reward margin {statistics.mean(r['rewards/margins'] for r in tail):.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "out/accuracy"))
    ap.add_argument("--data", default=str(ROOT / "data/accuracy"))
    ap.add_argument("--report", default=str(ROOT / "docs/accuracy.md"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n-seeds", type=int, default=3)
    ap.add_argument("--tune-seeds", type=int, default=2)
    ap.add_argument("--model", default=str(ROOT / "models/SmolLM2-135M-Instruct"), help="for its tokenizer.json (lengths)")
    a = ap.parse_args()
    r = Report(a)
    r.write()
    Path(a.report).parent.mkdir(parents=True, exist_ok=True)
    Path(a.report).write_text("\n".join(r.lines) + "\n")
    print(f"wrote {a.report}", flush=True)


if __name__ == "__main__":
    main()
