#!/usr/bin/env python3
"""Builds the tiny random Llama/Mistral ONNX fixtures and their onnxruntime goldens.

Run:  $(tools/venv.sh) tools/make_fixtures.py [--only llama-optimum,...] [--keep-tmp]

Writes Tests/Fixtures/models/<family>-<exporter>/ (model.onnx [+ model.onnx_data], cases/...)
and Tests/Fixtures/models/manifest.json. Everything is seeded: re-running gives identical bytes.
See tools/FIXTURES.md for what each fixture is and what each exporter can and cannot do.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

import numpy as np
import onnx
import onnxruntime as ort
import torch
import transformers
from transformers import (DynamicCache, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "models"

# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

COMMON = dict(
    vocab_size=128,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,  # GQA: 2 query heads per KV head
    head_dim=8,
    max_position_embeddings=128,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    hidden_act="silu",
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
    attention_dropout=0.0,
    use_cache=True,
)
SLIDING_WINDOW = 6
SEEDS = {"llama": 1234, "mistral": 5678}
FAMILIES = ("llama", "mistral")
EXPORTERS = ("optimum", "dynamo18", "dynamo23")
EXTERNAL_DATA = {"llama-optimum"}  # fixtures saved with weights in model.onnx_data


def make_config(family: str):
    if family == "llama":
        # Tied embeddings like SmolLM2, so the exporters' handling of a shared weight is covered.
        return LlamaConfig(**COMMON, tie_word_embeddings=True, attention_bias=False, mlp_bias=False)
    if family == "mistral":
        return MistralConfig(**COMMON, tie_word_embeddings=False, sliding_window=SLIDING_WINDOW)
    raise ValueError(family)


def build_model(family: str) -> torch.nn.Module:
    """A random model whose logits are O(1)-O(10): N(0, 0.5²) embeddings, 1/sqrt(fan_in)
    linear weights (so activations keep their scale), RMSNorm weights 1 + 0.1·N(0,1)."""
    config = make_config(family)
    config._attn_implementation = "sdpa"
    torch.manual_seed(SEEDS[family])
    cls = LlamaForCausalLM if family == "llama" else MistralForCausalLM
    model = cls(config).eval()
    gen = torch.Generator().manual_seed(SEEDS[family])
    with torch.no_grad():
        for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            shape = tuple(p.shape)
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(1.0 + 0.1 * torch.randn(shape, generator=gen))
            elif "embed_tokens" in name:
                p.copy_(0.5 * torch.randn(shape, generator=gen))
            elif name == "lm_head.weight":
                p.copy_(torch.randn(shape, generator=gen) * (3.0 / math.sqrt(shape[1])))
            elif p.dim() == 2:
                gain = 1.5 if (".q_proj." in name or ".k_proj." in name) else 1.0
                p.copy_(torch.randn(shape, generator=gen) * (gain / math.sqrt(shape[1])))
            else:
                p.copy_(0.1 * torch.randn(shape, generator=gen))
    if config.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    return model


# ---------------------------------------------------------------------------------------------
# Flat-tensor wrapper for torch.onnx.export(dynamo=True)
# ---------------------------------------------------------------------------------------------

class FlatDecoder(torch.nn.Module):
    """forward(input_ids, attention_mask, position_ids, past_key_values.0.key, .0.value, ...)
    -> (logits, present.0.key, present.0.value, ...), caches [batch, kv_heads, len, head_dim].
    The DynamicCache is built inside without a config, so a sliding-window model keeps the full
    cache (present = concat(past, new)) and applies the window through the attention mask —
    the same contract as the optimum export."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.num_layers = model.config.num_hidden_layers

    def forward(self, input_ids, attention_mask, position_ids, *past):
        cache = DynamicCache(ddp_cache_data=[(past[2 * i], past[2 * i + 1])
                                             for i in range(self.num_layers)])
        out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                         position_ids=position_ids, past_key_values=cache, use_cache=True)
        result = [out.logits]
        for layer in out.past_key_values.layers:
            result += [layer.keys, layer.values]
        return tuple(result)


def io_names(num_layers: int):
    inputs = ["input_ids", "attention_mask", "position_ids"]
    outputs = ["logits"]
    for i in range(num_layers):
        inputs += [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
        outputs += [f"present.{i}.key", f"present.{i}.value"]
    return inputs, outputs


def example_inputs(config, batch=2, seq=3, past=4):
    g = torch.Generator().manual_seed(0)
    kv, hd = config.num_key_value_heads, config.head_dim
    ids = torch.randint(0, config.vocab_size, (batch, seq), generator=g)
    mask = torch.ones(batch, past + seq, dtype=torch.int64)
    pos = torch.arange(past, past + seq).unsqueeze(0).expand(batch, seq).contiguous()
    pasts = []
    for _ in range(config.num_hidden_layers):
        pasts += [torch.randn(batch, kv, past, hd, generator=g), torch.randn(batch, kv, past, hd, generator=g)]
    return (ids, mask, pos, *pasts)


def export_dynamo(model, family: str, opset: int, path: Path) -> dict:
    config = model.config
    wrapper = FlatDecoder(model).eval()
    in_names, out_names = io_names(config.num_hidden_layers)
    args = example_inputs(config)
    D = torch.export.Dim.DYNAMIC
    # forward(input_ids, attention_mask, position_ids, *past): the varargs are one tuple
    dyn = ({0: D, 1: D}, {0: D, 1: D}, {0: D, 1: D},
           tuple({0: D, 2: D} for _ in range(2 * config.num_hidden_layers)))
    # Stock transformers code, no patches: at opset 23 torch's exporter (with its onnxscript
    # optimizer) itself emits RMSNormalization, RotaryEmbedding and Attention.
    with torch.no_grad():
        expected = wrapper(*args)
        with contextlib.redirect_stdout(io.StringIO()):
            program = torch.onnx.export(wrapper, args, dynamo=True, opset_version=opset,
                                        input_names=in_names, output_names=out_names,
                                        dynamic_shapes=dyn, optimize=True,
                                        external_data=False)
    proto = program.model_proto
    strip_metadata(proto)
    rename_dims(proto, config)
    proto.producer_version = torch.__version__.split("+")[0]
    onnx.save_model(proto, str(path))
    # sanity: ORT on the export matches PyTorch on the tracing inputs
    sess = new_session(path)
    feeds = {n: a.numpy() for n, a in zip(in_names, args)}
    got = sess.run(out_names, feeds)
    err = max(float(np.max(np.abs(g - e.numpy()))) for g, e in zip(got, expected))
    if not err < 1e-4:
        raise RuntimeError(f"{family} dynamo opset {opset}: ORT differs from PyTorch by {err}")
    return {}


def strip_metadata(proto: onnx.ModelProto):
    """Drop torch's per-node provenance (stack traces with absolute paths, fx names): it makes
    the file 3x bigger and machine-dependent. Shapes (value_info) stay."""
    def walk(graph):
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g)
                for g in attr.graphs:
                    walk(g)
        del graph.metadata_props[:]
        for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
            del vi.metadata_props[:]
        for t in graph.initializer:
            del t.metadata_props[:]
    walk(proto.graph)
    del proto.metadata_props[:]
    proto.doc_string = ""


def rename_dims(proto: onnx.ModelProto, config):
    """torch names dynamic dims s0, s1, ...; give them optimum's names."""
    by_input = {}
    for vi in proto.graph.input:
        dims = vi.type.tensor_type.shape.dim
        if vi.name == "input_ids":
            by_input[dims[0].dim_param] = "batch_size"
            by_input[dims[1].dim_param] = "sequence_length"
        elif vi.name == "past_key_values.0.key":
            by_input[dims[2].dim_param] = "past_sequence_length"
    by_input.pop("", None)

    def rename(expr: str) -> str:
        if not expr:
            return expr
        import re
        return re.sub(r"\b[a-z]\d+\b", lambda m: by_input.get(m.group(0), m.group(0)), expr)

    for vi in list(proto.graph.input) + list(proto.graph.output) + list(proto.graph.value_info):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param"):
                d.dim_param = rename(d.dim_param)
    # attention_mask's second dim is its own symbol; name it like optimum does.
    for vi in proto.graph.input:
        if vi.name == "attention_mask":
            d = vi.type.tensor_type.shape.dim[1]
            if d.HasField("dim_param") and d.dim_param not in by_input.values():
                old = d.dim_param
                for v in list(proto.graph.input) + list(proto.graph.output) + list(proto.graph.value_info):
                    for dd in v.type.tensor_type.shape.dim:
                        if dd.HasField("dim_param") and dd.dim_param == old:
                            dd.dim_param = "past_sequence_length + sequence_length"


# ---------------------------------------------------------------------------------------------
# optimum export
# ---------------------------------------------------------------------------------------------

def export_optimum(model, family: str, path: Path, external: bool, tmp: Path) -> dict:
    from optimum.exporters.onnx import main_export
    src = tmp / f"{family}-hf"
    dst = tmp / f"{family}-optimum"
    model.save_pretrained(src, safe_serialization=True)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        main_export(str(src), output=str(dst), task="text-generation-with-past", opset=18,
                    device="cpu", local_files_only=True, do_validation=True, atol=1e-4)
    proto = onnx.load_model(str(dst / "model.onnx"), load_external_data=True)
    save_model(proto, path, external)
    return {}


def save_model(proto: onnx.ModelProto, path: Path, external: bool):
    for f in (path, path.with_name(path.name + "_data")):
        if f.exists():
            f.unlink()
    if external:
        onnx.save_model(proto, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + "_data", size_threshold=0, convert_attribute=False)
        os.chmod(path.with_name(path.name + "_data"), 0o644)  # onnx creates it 0600
    else:
        for t in proto.graph.initializer:  # make sure nothing still points at a temp file
            assert t.data_location != onnx.TensorProto.EXTERNAL
        onnx.save_model(proto, str(path))


# ---------------------------------------------------------------------------------------------
# Cases and goldens
# ---------------------------------------------------------------------------------------------

def new_session(path: Path) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def positions_from_mask(mask: np.ndarray) -> np.ndarray:
    """transformers' left-padding rule: cumsum(mask) - 1, masked positions set to 1."""
    pos = np.cumsum(mask, axis=-1) - 1
    pos[mask == 0] = 1
    return pos.astype(np.int64)


def empty_past(config, batch: int) -> dict:
    kv, hd = config.num_key_value_heads, config.head_dim
    return {f"past_key_values.{i}.{w}": np.zeros((batch, kv, 0, hd), np.float32)
            for i in range(config.num_hidden_layers) for w in ("key", "value")}


def presents_as_past(outputs: dict) -> dict:
    return {k.replace("present.", "past_key_values."): v for k, v in outputs.items()
            if k.startswith("present.")}


def token_ids(family: str, shape, salt: int) -> np.ndarray:
    rng = np.random.default_rng(SEEDS[family] * 100 + salt)
    return rng.integers(3, 128, size=shape).astype(np.int64)  # avoid pad/bos/eos ids 0..2


def run(sess: ort.InferenceSession, feeds: dict) -> dict:
    names = [o.name for o in sess.get_outputs()]
    graph_inputs = {i.name for i in sess.get_inputs()}
    missing = graph_inputs - feeds.keys()
    if missing:
        raise RuntimeError(f"no value for graph inputs {sorted(missing)}")
    feeds = {k: v for k, v in feeds.items() if k in graph_inputs}
    return dict(zip(names, sess.run(names, feeds)))


def make_cases(sess: ort.InferenceSession, family: str, config) -> list[tuple[str, dict, dict]]:
    cases = []
    graph_inputs = {i.name for i in sess.get_inputs()}

    def keep(feeds):  # only what the graph takes, in a stable order
        return {k: v for k, v in feeds.items() if k in graph_inputs}

    # (a) prefill: batch 1, 11 tokens, empty past.
    ids = token_ids(family, (1, 11), 1)
    mask = np.ones((1, 11), np.int64)
    feeds = {"input_ids": ids, "attention_mask": mask, "position_ids": positions_from_mask(mask),
             **empty_past(config, 1)}
    cases.append(("prefill", keep(feeds), run(sess, feeds)))

    # (b) batch 2, real past of 5 (row 1 left-padded by 2), then 4 new tokens.
    past_len, new_len, pad = 5, 4, 2
    ids0 = token_ids(family, (2, past_len), 2)
    ids0[1, :pad] = config.pad_token_id
    mask0 = np.ones((2, past_len), np.int64)
    mask0[1, :pad] = 0
    feeds0 = {"input_ids": ids0, "attention_mask": mask0,
              "position_ids": positions_from_mask(mask0), **empty_past(config, 2)}
    out0 = run(sess, feeds0)
    past = presents_as_past(out0)
    for k, v in past.items():
        if not np.all(np.isfinite(v)):
            raise RuntimeError(f"non-finite values in the left-padded prefill's {k}")
    ids1 = token_ids(family, (2, new_len), 3)
    mask = np.concatenate([mask0, np.ones((2, new_len), np.int64)], axis=1)
    feeds = {"input_ids": ids1, "attention_mask": mask,
             "position_ids": positions_from_mask(mask)[:, -new_len:], **past}
    cases.append(("batch2_leftpad_past", keep(feeds), run(sess, feeds)))

    # (c) prefill of 8, then greedy single-token decode steps past the sliding window (6).
    ids = token_ids(family, (1, 8), 4)
    mask = np.ones((1, 8), np.int64)
    feeds = {"input_ids": ids, "attention_mask": mask, "position_ids": positions_from_mask(mask),
             **empty_past(config, 1)}
    out = run(sess, feeds)
    for step in (1, 2, 3):
        total = mask.shape[1] + 1
        nxt = np.argmax(out["logits"][:, -1, :], axis=-1).astype(np.int64)[:, None]
        mask = np.ones((1, total), np.int64)
        feeds = {"input_ids": nxt, "attention_mask": mask,
                 "position_ids": np.array([[total - 1]], np.int64), **presents_as_past(out)}
        out = run(sess, feeds)
        cases.append((f"decode_{step}", keep(feeds), out))
    return cases


def torch_reference(model, feeds: dict) -> dict:
    """The same step in PyTorch (eager), for cross-checking every export."""
    config = model.config
    wrapper = FlatDecoder(model).eval()
    in_names, out_names = io_names(config.num_hidden_layers)
    with torch.no_grad():
        outs = wrapper(*[torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in in_names])
    return {n: o.numpy() for n, o in zip(out_names, outs)}


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

def file_name(name: str) -> str:
    return name.replace("/", "_").replace(":", "_") + ".npy"


def save_npy(path: Path, array: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)


def op_types(proto: onnx.ModelProto) -> dict:
    counts = collections.Counter()

    def walk(graph):
        for node in graph.node:
            key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
            counts[key] += 1
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    walk(attr.g)
                for g in attr.graphs:
                    walk(g)

    walk(proto.graph)
    for fn in proto.functions:
        for node in fn.node:
            counts[f"(function {fn.name}) {node.op_type}"] += 1
    return dict(sorted(counts.items()))


def value_info_json(vis) -> list:
    out = []
    for vi in vis:
        tt = vi.type.tensor_type
        shape = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in tt.shape.dim]
        out.append({"name": vi.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name,
                    "shape": shape})
    return out


def config_json(config) -> dict:
    keys = ["model_type", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings",
            "rms_norm_eps", "rope_theta", "tie_word_embeddings", "bos_token_id", "eos_token_id",
            "pad_token_id"]
    out = {k: getattr(config, k) for k in keys}
    out["sliding_window"] = getattr(config, "sliding_window", None)
    return out


def build_fixture(family: str, exporter: str, model, tmp: Path, log) -> dict:
    name = f"{family}-{exporter}"
    d = OUT / name
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    path = d / "model.onnx"
    external = name in EXTERNAL_DATA
    t0 = time.time()
    if exporter == "optimum":
        notes = export_optimum(model, family, path, external, tmp)
        opset = 18
    else:
        opset = int(exporter.removeprefix("dynamo"))
        notes = export_dynamo(model, family, opset, path)
    proto = onnx.load_model(str(path), load_external_data=False)
    onnx.checker.check_model(str(path))
    log(f"  exported {name} in {time.time() - t0:.1f}s: {len(proto.graph.node)} nodes")

    sess = new_session(path)
    cases_json = []
    worst_vs_torch = 0.0
    for case_name, inputs, outputs in make_cases(sess, family, model.config):
        ref = torch_reference(model, {**inputs})
        for k, v in outputs.items():
            diff = float(np.max(np.abs(v - ref[k])))
            worst_vs_torch = max(worst_vs_torch, diff)
            if not diff < 1e-4:
                raise RuntimeError(f"{name}/{case_name}/{k}: ORT vs PyTorch differ by {diff}")
        entry = {"name": case_name, "inputs": {}, "outputs": {}}
        for kind, tensors in (("inputs", inputs), ("outputs", outputs)):
            for k, v in tensors.items():
                rel = f"cases/{case_name}/{kind}/{file_name(k)}"
                save_npy(d / rel, v)
                entry[kind][k] = rel
        cases_json.append(entry)
    opset_import = {(o.domain or "ai.onnx"): o.version for o in proto.opset_import}
    return {
        "dir": name,
        "family": family,
        "exporter": exporter,
        "opset": opset_import.get("ai.onnx", opset),
        "opset_import": opset_import,
        "external_data": external,
        "files": sorted(p.name for p in d.iterdir() if p.is_file()),
        "node_count": len(proto.graph.node),
        "initializer_count": len(proto.graph.initializer),
        "op_types": op_types(proto),
        "graph_inputs": value_info_json(proto.graph.input),
        "graph_outputs": value_info_json(proto.graph.output),
        "max_abs_diff_vs_pytorch": worst_vs_torch,
        **notes,
        "cases": cases_json,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated fixture dirs, e.g. llama-optimum")
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args()

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    log = lambda s: print(s, flush=True)

    only = {s for s in args.only.split(",") if s}
    OUT.mkdir(parents=True, exist_ok=True)
    manifest_path = OUT / "manifest.json"
    previous = {}
    if manifest_path.exists() and only:
        previous = {m["dir"]: m for m in json.loads(manifest_path.read_text()).get("models", [])}

    tmp = Path(tempfile.mkdtemp(prefix="lpc-fixtures-"))
    models, failures = [], []
    try:
        for family in FAMILIES:
            model = build_model(family)
            for exporter in EXPORTERS:
                name = f"{family}-{exporter}"
                if only and name not in only:
                    if name in previous:
                        models.append(previous[name])
                    continue
                log(f"{name}:")
                try:
                    models.append(build_fixture(family, exporter, build_model(family), tmp, log))
                except Exception as e:  # keep going with the other exporters
                    traceback.print_exc()
                    failures.append({"dir": name, "error": f"{type(e).__name__}: {e}"[:2000]})
                    shutil.rmtree(OUT / name, ignore_errors=True)
    finally:
        if args.keep_tmp:
            log(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    manifest = {
        "generator": "tools/make_fixtures.py",
        "onnxruntime": ort.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnx": onnx.__version__,
        "tolerance_note": "goldens are onnxruntime CPU outputs; each agrees with PyTorch eager "
                          "to max_abs_diff_vs_pytorch",
        "configs": {f: config_json(make_config(f)) for f in FAMILIES},
        "models": sorted(models, key=lambda m: (FAMILIES.index(m["family"]), EXPORTERS.index(m["exporter"]))),
        "failures": failures,
    }
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    log(f"wrote {manifest_path.relative_to(ROOT)}; fixtures total {total / 1e6:.2f} MB")
    if failures:
        log("FAILED: " + ", ".join(f["dir"] for f in failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
