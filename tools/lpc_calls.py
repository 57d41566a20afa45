"""Running the lpc CLI from the tools/ drivers (lpc_experiment.py, lpc_accuracy.py): one call with
its output in a log file and a timing record (seconds, status, load average) appended to a JSONL
log, and backbone-feature extraction per data split. Pure Python, no dependencies.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable


def load_average() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


class LpcCalls:
    def __init__(self, lpc: str, log: Path, env: dict[str, str]):
        self.lpc, self.log, self.env = lpc, log, env

    def __call__(self, argv: list[str], log_file: Path, what: str, stdout: Path | None = None) -> float:
        """Runs lpc with stderr (and stdout, unless `stdout` names a file for it) into log_file;
        returns the seconds taken, raises with the log's tail when lpc fails."""
        t, load0 = time.time(), load_average()
        with log_file.open("w") as f, (stdout.open("w") if stdout else open(os.devnull, "w")) as so:
            r = subprocess.run([self.lpc] + argv, stdout=so if stdout else f, stderr=f, env=self.env)
        seconds = time.time() - t
        with self.log.open("a") as f:
            f.write(json.dumps({"what": what, "argv": argv, "seconds": round(seconds, 2), "status": r.returncode,
                                "load_start": load0, "load_end": load_average(),
                                "time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}) + "\n")
        if r.returncode != 0:
            raise RuntimeError(f"lpc {argv[0]} failed ({what}); see {log_file}:\n{log_file.read_text()[-1500:]}")
        return seconds

    def eval_head(self, run: Path, split: str, data: str, common: list[str], what: str) -> float:
        """`lpc eval` of run/head on `data`: the report to run/eval-<split>.json, per-pair records to
        run/pairs-<split>.jsonl, the log to run/eval-<split>.log."""
        return self(["eval", "--head", str(run / "head"), "--data", data, "--format", "json",
                     "--pairs-out", str(run / f"pairs-{split}.jsonl")] + common,
                    run / f"eval-{split}.log", f"{what} eval {split}", stdout=run / f"eval-{split}.json")

    def features(self, splits: list[str], path_of: Callable[[str], str], model: str, cache: Path,
                 max_length: int, logs: Path, jobs: int):
        """`lpc features` once per split (a marker file in the cache says it is done), `jobs` at a
        time: distinct data files make distinct cache entries."""
        cache.mkdir(parents=True, exist_ok=True)

        def one(s):
            marker = cache / f".features-{s}-{max_length}"
            if marker.exists():
                return
            sec = self(["features", "--model", model, "--data", path_of(s), "--cache-dir", str(cache),
                        "--max-length", str(max_length), "--max-prompt-length", str(max_length // 2)],
                       logs / f"features-{s}.log", f"features {s}")
            marker.write_text(f"{sec:.1f}\n")
            print(f"  features {s}: {sec:.0f}s", flush=True)
        with ThreadPoolExecutor(max(1, jobs)) as pool:
            list(pool.map(one, splits))
