#!/usr/bin/env python3
"""Side-by-side speed of lpc, onnxruntime and onnxruntime-genai on one machine, in one run.

Usage:
  PY=$(tools/venv.sh)
  swift build -c release
  $PY tools/bench_vs_ort.py models/SmolLM2-135M-Instruct --threads 2 --runs 5 \
      [--genai-model models/SmolLM2-135M-Instruct-genai --genai-python /work/main/.venv-genai/bin/python] \
      [--repeats 3] [--lpc-args "--weights f16"] [--lpc-optimized /tmp/smol-lpc] [--long-past 1024] [--markdown]

Every engine runs the same file (genai: its own builder export of the same weights) with the same
thread count, a random prompt of --prompt-tokens ids, then --gen-tokens single-token decode steps,
--runs interleaved rounds (every engine once per round, so load drift hits all alike). Figures
are medians over rounds; ratios are each engine ÷ onnxruntime. onnxruntime, lpc and genai run
first in each round, back to back, and lpc's decode time and prefill speed over theirs are also given per round
(median and range: the host's speed drifts between rounds). --repeats N has every engine repeat
its prompt and decode N times within its turn (medians): one 128-token prefill is a ~0.2 s sample,
the noisiest figure on a shared host. lpc computes only the last
position's logits at prefill (what generation needs); the "--all-logits" row computes every
position, as the onnxruntime session on the export does. --lpc-optimized FOLDER adds lpc on a
folder written by `lpc optimize` (made if missing): its load skips parsing plumbing and passes;
and on FOLDER-f24, written by `lpc optimize --weights f24` (f24 weights read from the file).
The "lpc" rows use lpc's default weight storage, `auto`: float32 at load (load time is that of
f32), then a background thread packs the exact float32 weights to f24 (the same values in 3 bytes,
so the same logits bit for bit); `lpc bench` starts its runs once that is done and reports the
packing's seconds (printed below the table). Rows "lpc --weights f32/f16/i16" store the product
weights as exported (f32, used in place from the file) or rounded to 16 bits (f16/i16).

onnxruntime: intra_op_num_threads = --threads, inter_op 1, default graph optimizations; decode
feeds the previous step's present.* tensors back as past_key_values.* (plain session.run, as an
optimum user does). Load = InferenceSession creation. lpc: `lpc bench --format json`.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ort_bench(model_dir, threads, prompt_tokens, gen_tokens, runs):
    import numpy as np
    import onnxruntime as ort

    path = str(Path(model_dir) / "model.onnx") if Path(model_dir).is_dir() else model_dir
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    loads = []
    for _ in range(max(1, min(runs, 3))):
        t = time.perf_counter()
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        loads.append(time.perf_counter() - t)
    inputs = {i.name: i for i in sess.get_inputs()}
    past_names = [n for n in inputs if n.startswith("past_key_values.")]
    shape = inputs[past_names[0]].shape
    kv_heads, head_dim = shape[1], shape[3]
    vocab = sess.get_outputs()[0].shape[-1]
    vocab = vocab if isinstance(vocab, int) else 49152
    rng = np.random.default_rng(0)

    def feeds(ids, past, past_len):
        total = past_len + ids.shape[1]
        f = {"input_ids": ids}
        if "attention_mask" in inputs:
            f["attention_mask"] = np.ones((1, total), dtype=np.int64)
        if "position_ids" in inputs:
            f["position_ids"] = np.arange(past_len, total, dtype=np.int64)[None, :]
        f.update(past)
        return f

    out_names = [o.name for o in sess.get_outputs()]
    present_names = [n for n in out_names if n.startswith("present.")]
    prefill, decode = [], []
    for run in range(runs + 1):  # the first run warms up
        past = {n: np.zeros((1, kv_heads, 0, head_dim), dtype=np.float32) for n in past_names}
        ids = rng.integers(0, vocab, size=(1, prompt_tokens), dtype=np.int64)
        t = time.perf_counter()
        outs = sess.run(out_names, feeds(ids, past, 0))
        if run:
            prefill.append(prompt_tokens / (time.perf_counter() - t))
        length = prompt_tokens
        for _ in range(gen_tokens):
            logits = outs[0]
            token = np.array([[int(np.argmax(logits[0, -1]))]], dtype=np.int64)
            past = {n.replace("present.", "past_key_values."): v for n, v in zip(out_names, outs) if n in present_names}
            t = time.perf_counter()
            outs = sess.run(out_names, feeds(token, past, length))
            if run:
                decode.append((time.perf_counter() - t) * 1000)
            length += 1
    return {"load_s": statistics.median(loads), "prefill_tokens_per_s": statistics.median(prefill),
            "decode_ms_per_token": statistics.median(decode), "version": ort.__version__}


GENAI_SCRIPT = r"""
import json, sys, time, statistics
import numpy as np
import onnxruntime_genai as og
path, threads, prompt_tokens, gen_tokens, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
t = time.perf_counter()
config = og.Config(path)
config.clear_providers()
model = og.Model(config)
load = time.perf_counter() - t
rng = np.random.default_rng(0)
prefill, decode = [], []
for run in range(runs + 1):
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=prompt_tokens + gen_tokens + 1, do_sample=False)
    gen = og.Generator(model, params)
    ids = rng.integers(0, 49152, size=prompt_tokens).tolist()
    t = time.perf_counter()
    gen.append_tokens(ids)
    gen.generate_next_token() if hasattr(gen, "compute_logits") else None
    if run: prefill.append(prompt_tokens / (time.perf_counter() - t))
    for _ in range(gen_tokens):
        t = time.perf_counter()
        gen.generate_next_token()
        if run: decode.append((time.perf_counter() - t) * 1000)
    del gen
print(json.dumps({"load_s": load, "prefill_tokens_per_s": statistics.median(prefill),
                  "decode_ms_per_token": statistics.median(decode), "version": og.__version__}))
"""


def genai_bench(python, model_dir, threads, prompt_tokens, gen_tokens, runs):
    # Thread count: genai reads session options from genai_config.json; set intra_op_num_threads there.
    config_path = Path(model_dir) / "genai_config.json"
    config = json.loads(config_path.read_text())
    session_options = config["model"]["decoder"].setdefault("session_options", {})
    if session_options.get("intra_op_num_threads") != threads:
        session_options["intra_op_num_threads"] = threads
        session_options["inter_op_num_threads"] = 1
        config_path.write_text(json.dumps(config, indent=4))
    out = subprocess.run([python, "-c", GENAI_SCRIPT, str(model_dir), str(threads), str(prompt_tokens),
                          str(gen_tokens), str(runs)], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "genai failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def lpc_bench(lpc, model_dir, threads, prompt_tokens, gen_tokens, runs, extra):
    cmd = [lpc, "bench", str(model_dir), "--threads", str(threads), "--runs", str(runs),
           "--prompt-tokens", str(prompt_tokens), "--gen-tokens", str(gen_tokens), "--format", "json"] + extra
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or "lpc bench failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_rows(samples):
    """Per engine, the median of each figure over the interleaved rounds."""
    rows = {}
    for name, runs in samples.items():
        if not runs:
            continue
        row = dict(runs[-1])
        # Every measured figure is a median over the rounds (the roofline fraction: of each round's
        # decode against the same round's bandwidth); the rest (sizes, settings) are the same in every round.
        for key in ("load_s", "prefill_tokens_per_s", "decode_ms_per_token", "decode_ms_min", "decode_ms_max",
                    "background_pack_s", "decode_pool_wait_ms_per_token", "decode_pool_caller_task_ms_per_token",
                    "decode_pool_worker_task_ms_per_token", "bandwidth_gb_per_s", "roofline_ms_per_token",
                    "roofline_fraction", "peak_rss_bytes"):
            if all(r.get(key) is not None for r in runs):
                row[key] = statistics.median(r[key] for r in runs)
        if all(r.get("roofline_fraction") is not None for r in runs):
            row["roofline_fraction_range"] = [min(r["roofline_fraction"] for r in runs), max(r["roofline_fraction"] for r in runs)]
        row["rounds"] = len(runs)
        rows[name] = row
    return rows


def paired_summary(samples):
    """lpc's decode time and prefill speed over onnxruntime's and genai's within each round
    (engines run back to back), as a median with its range: steadier than a ratio of medians when
    the host's speed drifts between rounds."""
    ours = samples.get("lpc", [])
    for name in ("onnxruntime (optimum export)", "onnxruntime-genai (builder export)"):
        theirs = samples.get(name, [])
        if len(theirs) != len(ours) or not ours:
            continue  # a round failed for one of them: rounds no longer pair up
        engine = name.split(" ")[0]
        for key, label, better in (("decode_ms_per_token", "decode ms", lambda r: r < 1),
                                   ("prefill_tokens_per_s", "prefill tok/s", lambda r: r > 1)):
            ratios = [a[key] / b[key] for a, b in zip(ours, theirs)]
            print(f"lpc {label} ÷ {engine}'s, per round: median {statistics.median(ratios):.2f}x "
                  f"(range {min(ratios):.2f}-{max(ratios):.2f}x); lpc faster in {sum(map(better, ratios))} of {len(ratios)} rounds")


def ensure_optimized(lpc, model, folder, weights):
    """Writes `lpc optimize MODEL -o FOLDER` unless FOLDER already holds an optimized model."""
    if (Path(folder) / "model.onnx").exists():
        return
    cmd = [lpc, "optimize", str(model), "-o", str(folder)] + (["--weights", weights] if weights != "f32" else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or "lpc optimize failed")
    print(out.stdout.strip(), file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5, help="interleaved rounds: every engine once per round")
    ap.add_argument("--repeats", type=int, default=1,
                    help="prompt + decode repetitions per engine per round (each engine reports their medians): "
                         "a 128-token prefill is one ~0.2 s sample, noisy on a shared host")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--lpc", default=str(ROOT / ".build" / "release" / "lpc"))
    ap.add_argument("--lpc-args", default="", help="extra lpc bench arguments, e.g. '--weights f16'")
    ap.add_argument("--lpc-optimized", help="folder written by `lpc optimize MODEL -o FOLDER` (made if missing); "
                                            "adds rows for lpc loading it")
    ap.add_argument("--no-f16", action="store_true", help="skip the lpc --weights f32, f16 and i16 rows")
    ap.add_argument("--genai-model", help="onnxruntime-genai builder export of the same model")
    ap.add_argument("--genai-python", default=str(ROOT.parent / "main" / ".venv-genai" / "bin" / "python"))
    ap.add_argument("--long-past", type=int, default=0, help="also measure lpc decode after this many tokens")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()

    print(f"# {args.model}: {args.threads} threads, prompt {args.prompt_tokens}, {args.gen_tokens} decode steps, "
          f"{args.runs} interleaved rounds (medians); load average {os.getloadavg()}", file=sys.stderr)
    extra = args.lpc_args.split()
    f24_folder = args.lpc_optimized.rstrip("/") + "-f24" if args.lpc_optimized else None
    if args.lpc_optimized:
        ensure_optimized(args.lpc, args.model, args.lpc_optimized, "f32")
        if "--weights" not in extra and not args.no_f16:
            ensure_optimized(args.lpc, args.model, f24_folder, "f24")
    # Engines, each run once per round so machine noise hits all of them alike.
    # lpc computes the last position's logits at prefill by default (all generation needs);
    # "--all-logits" computes every position, as the onnxruntime session on the export does.
    engines = {
        "onnxruntime (optimum export)": lambda: ort_bench(args.model, args.threads, args.prompt_tokens, args.gen_tokens, args.repeats),
        "lpc": lambda: lpc_bench(args.lpc, args.model, args.threads, args.prompt_tokens, args.gen_tokens, args.repeats, extra),
    }
    # The three engines the acceptance compares run back to back, so a round's ratios between them
    # see one phase of the (shared, noisy) host.
    if args.genai_model:
        engines["onnxruntime-genai (builder export)"] = lambda: genai_bench(
            args.genai_python, args.genai_model, args.threads, args.prompt_tokens, args.gen_tokens, args.repeats)
    engines |= {
        "lpc --all-logits": lambda: lpc_bench(args.lpc, args.model, args.threads, args.prompt_tokens, args.gen_tokens, args.repeats,
                                              extra + ["--all-logits"]),
    }
    if args.lpc_optimized:
        engines["lpc (lpc optimize folder)"] = lambda: lpc_bench(args.lpc, args.lpc_optimized, args.threads,
                                                                 args.prompt_tokens, args.gen_tokens, args.repeats, extra)
    if f24_folder and "--weights" not in extra and not args.no_f16:
        engines["lpc --weights f24 (lpc optimize folder)"] = lambda: lpc_bench(args.lpc, f24_folder, args.threads,
                                                                              args.prompt_tokens, args.gen_tokens, args.repeats, extra)
    if "--weights" not in extra and not args.no_f16:
        for storage in ("f32", "f16", "i16"):
            engines[f"lpc --weights {storage}"] = lambda storage=storage: lpc_bench(
                args.lpc, args.model, args.threads, args.prompt_tokens, args.gen_tokens, args.repeats, extra + ["--weights", storage])
    samples = {name: [] for name in engines}
    loads = []
    for round_index in range(args.runs):
        for name, run in engines.items():
            try:
                samples[name].append(run())
            except Exception as error:  # noqa: BLE001 - reported, not fatal
                print(f"{name}: not measured in round {round_index} ({error})", file=sys.stderr)
        loads.append(os.getloadavg()[0])
    rows = median_rows(samples)
    long = None
    if args.long_past:
        # Past 64 and past --long-past alternate, one run each per round, so drift hits both alike.
        shorts, longs = [], []
        for _ in range(args.runs):
            shorts.append(lpc_bench(args.lpc, args.model, args.threads, 64, 32, 1, extra)["decode_ms_per_token"])
            longs.append(lpc_bench(args.lpc, args.model, args.threads, args.long_past, 32, 1, extra)["decode_ms_per_token"])
        short = {"decode_ms_per_token": statistics.median(shorts)}
        long = {"decode_ms_per_token": statistics.median(longs)}

    ours = rows["lpc"]
    ort = rows["onnxruntime (optimum export)"]
    header = ["engine", "load s", "prefill tok/s", "decode ms/token", "vs onnxruntime: load", "prefill", "decode ms"]
    lines = []
    for name, r in rows.items():
        lines.append([name, f"{r['load_s']:.3f}", f"{r['prefill_tokens_per_s']:.1f}", f"{r['decode_ms_per_token']:.2f}",
                      f"{r['load_s'] / ort['load_s']:.2f}x",
                      f"{r['prefill_tokens_per_s'] / ort['prefill_tokens_per_s']:.2f}x",
                      f"{r['decode_ms_per_token'] / ort['decode_ms_per_token']:.2f}x"])
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for line in lines:
            print("| " + " | ".join(line) + " |")
    else:
        widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(header)]
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for line in lines:
            print("  ".join(c.ljust(w) for c, w in zip(line, widths)))
    print(f"load average (1 min) after each round: {', '.join(f'{l:.1f}' for l in loads)}")
    spread = ours.get("roofline_fraction_range")
    spread = f" (per round {spread[0] * 100:.0f}-{spread[1] * 100:.0f}%)" if spread else ""
    print(f"lpc: roofline {ours['roofline_ms_per_token']:.2f} ms/token at {ours['bandwidth_gb_per_s']:.1f} GB/s "
          f"-> {ours['roofline_fraction'] * 100:.0f}% reached{spread} (medians over rounds; a round's fraction is its "
          f"decode against its own bandwidth); peak RSS {ours['peak_rss_bytes'] / 1e6:.0f} MB = "
          f"{ours['peak_rss_bytes'] / (ours['weight_bytes'] + ours['kv_cache_bytes']):.2f}x (weights + KV)")
    if ours.get("decode_pool_wait_ms_per_token") is not None:
        print(f"lpc: decode thread pool: tasks {ours['decode_pool_caller_task_ms_per_token']:.2f} ms/token on the caller, "
              f"{ours['decode_pool_worker_task_ms_per_token']:.2f} on workers; the caller waited "
              f"{ours['decode_pool_wait_ms_per_token']:.2f} ms/token at job ends (medians)")
    if ours.get("background_pack_s") is not None:
        print(f"lpc: background f24 packing took {ours['background_pack_s']:.3f} s after load (median; "
              f"the measured runs start after it)")
    if (f32 := rows.get("lpc --weights f32")):
        print(f"lpc (auto) vs lpc --weights f32: decode {f32['decode_ms_per_token'] / ours['decode_ms_per_token']:.2f}x "
              f"faster ({ours['decode_ms_per_token']:.2f} vs {f32['decode_ms_per_token']:.2f} ms)")
        for storage in ("f16", "i16"):
            if (r := rows.get(f"lpc --weights {storage}")):
                print(f"lpc --weights {storage}: decode {f32['decode_ms_per_token'] / r['decode_ms_per_token']:.2f}x "
                      f"faster than f32 ({r['decode_ms_per_token']:.2f} vs {f32['decode_ms_per_token']:.2f} ms)")
    paired_summary(samples)
    if long:
        print(f"lpc decode at past 64: {short['decode_ms_per_token']:.2f} ms, at past {args.long_past}: "
              f"{long['decode_ms_per_token']:.2f} ms ({long['decode_ms_per_token'] / short['decode_ms_per_token']:.2f}x; "
              f"medians of {args.runs} alternating runs)")
    print(json.dumps({"rows": rows, "samples": samples}), file=sys.stderr)


if __name__ == "__main__":
    main()
