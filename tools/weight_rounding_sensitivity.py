#!/usr/bin/env python3
"""Where 16-bit weight storage moves SmolLM2's logits, simulated in PyTorch: weights rounded to a
16-bit format and widened back, everything else computed in float32 (as lpc's prefill does with
--weights f16|bf16|i16). For a set of prompts it prints max |Δlogit| against float32 over the
prefill positions and at one decode step (one token on the float32 prefill's cache), per
configuration: all weights, the LM head alone, one weight kind alone (q/k/v/o/gate/up/down), all
but one kind, one layer alone, the LM head + the first N layers kept float32, and other formats.

Usage:  PY=$(tools/venv.sh)
        $PY tools/weight_rounding_sensitivity.py models/SmolLM2-135M-Instruct-hf [--sections all,kinds,layers,keep,formats]

Prompts: random 64-token prompts for seeds 0..3 (the same ids as tools/check_weight_precision.py
--seeds 0,1,2,3), a chat prompt and a prose passage (their first 64 tokens). The simulation agrees
with lpc run on the same prompt: f16, seed 0: 0.0485 here vs 0.0486 in lpc (prefill), 0.0181 vs
0.0182 (decode step); i16: 0.0083 vs 0.0084.
Formats: f16, bf16 (round to nearest even); i16 = int16 with a scale max|w|/32767 per output
(lpc's --weights i16); i16t = one scale per tensor; e3m12 = a 16-bit float with 3 exponent bits
and 12 significand bits and a per-tensor offset (not implemented in lpc).
"""
import argparse
import copy
import sys

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM

KINDS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
HEAD = (None, "lm_head")
CHAT = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nExplain in a few sentences why the sky is blue during the day and red at sunset, "
        "and what Rayleigh scattering has to do with it.<|im_end|>\n<|im_start|>assistant\nThe sky looks blue because")
PROSE = ("The history of the printing press begins in the fifteenth century, when Johannes Gutenberg combined "
         "movable metal type, oil-based ink and a wooden screw press into a system that could produce books "
         "faster and more cheaply than any scribe. Within fifty years, presses had spread to more than two hundred cities")


def e3m12(w):  # sign-magnitude: |v| = F - c with F on a 12-bit-significand grid in [c, 256c)
    c = w.abs().max() / 254
    a = w.abs() + c
    step = torch.pow(2.0, torch.floor(torch.log2(a)) - 12)
    return torch.sign(w) * (torch.round(a / step) * step - c)


FORMATS = {
    "f16": lambda w: w.half().double(),
    "bf16": lambda w: w.bfloat16().double(),
    # torch weights are [out, in]: one scale per output = per row here.
    "i16": lambda w: torch.round(w / (w.abs().amax(dim=1, keepdim=True) / 32767).clamp_min(1e-30))
    * (w.abs().amax(dim=1, keepdim=True) / 32767),
    "i16t": lambda w: torch.round(w / (w.abs().max() / 32767)) * (w.abs().max() / 32767),
    "e3m12": e3m12,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("hf_model", help="a transformers Llama folder (e.g. models/SmolLM2-135M-Instruct-hf)")
    ap.add_argument("--sections", default="all,kinds,layers,keep,formats")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    sections = set(args.sections.split(","))
    torch.set_num_threads(args.threads)

    model = AutoModelForCausalLM.from_pretrained(args.hf_model, dtype=torch.float32).eval()
    # Untie the head: lpc's embedding Gather keeps reading the float32 table.
    model.lm_head.weight = torch.nn.Parameter(model.model.embed_tokens.weight.detach().clone())
    layers = len(model.model.layers)

    def weight(key):
        layer, kind = key
        if kind == "lm_head":
            return model.lm_head.weight
        block = model.model.layers[layer]
        return getattr(block.self_attn if kind in KINDS[:4] else block.mlp, kind).weight

    everything = [(layer, kind) for layer in range(layers) for kind in KINDS] + [HEAD]
    original = {key: weight(key).detach().clone() for key in everything}

    def set_weights(selected, fmt):
        with torch.no_grad():
            for key in everything:
                w = original[key]
                weight(key).copy_(FORMATS[fmt](w.double()).float() if key in selected else w)

    tokenizer = Tokenizer.from_file(args.hf_model + "/tokenizer.json")
    prompts = {}
    for seed in range(4):
        rng = np.random.default_rng(seed)
        ids = rng.integers(0, 49152, size=(1, 64), dtype=np.int64)
        prompts[f"rand{seed}"] = (ids, rng.integers(0, 49152, size=(1, 1), dtype=np.int64))
    for name, text in (("chat", CHAT), ("prose", PROSE)):
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        prompts[name] = (np.array([ids[:64]]), np.array([[ids[64] if len(ids) > 64 else ids[-1]]]))

    reference = {}
    with torch.no_grad():
        for name, (ids, step) in prompts.items():
            out = model(torch.from_numpy(ids), use_cache=True)
            s = model(torch.from_numpy(step), past_key_values=copy.deepcopy(out.past_key_values), use_cache=True)
            reference[name] = (out.logits[0].numpy(), s.logits[0, -1].numpy(), out.past_key_values)

    print("prompts: " + ", ".join(f"{k} ({v[0].shape[1]} tokens)" for k, v in prompts.items()))
    print("cells: max |Δlogit| over the prefill positions / at the decode step, per prompt")

    def measure(label, selected, fmt="f16"):
        set_weights(selected, fmt)
        cells, pre, dec = [], 0.0, 0.0
        with torch.no_grad():
            for name, (ids, step) in prompts.items():
                lp, ls, cache = reference[name]
                out = model(torch.from_numpy(ids)).logits[0].numpy()
                s = model(torch.from_numpy(step), past_key_values=copy.deepcopy(cache)).logits[0, -1].numpy()
                p, d = float(np.abs(out - lp).max()), float(np.abs(s - ls).max())
                pre, dec = max(pre, p), max(dec, d)
                cells.append(f"{p:.4f}/{d:.4f}")
        print(f"{label:34s} prefill {pre:.4f} decode {dec:.4f} | {' '.join(cells)}", flush=True)

    every = set(everything)
    if "all" in sections:
        measure("all f16", every)
        measure("LM head only f16", {HEAD})
        measure("all but the LM head f16", every - {HEAD})
    if "kinds" in sections:
        for kind in KINDS:
            measure(f"only {kind}", {k for k in everything if k[1] == kind})
        for kind in KINDS:
            measure(f"all but {kind}", {k for k in everything if k[1] != kind})
    if "layers" in sections:
        for layer in range(layers):
            measure(f"only layer {layer}", {k for k in everything if k[0] == layer})
    if "keep" in sections:
        for n in range(0, 7):
            measure(f"f32 LM head + first {n} layers", {k for k in everything if k != HEAD and (k[0] is None or k[0] >= n)})
        measure("f32 LM head + first 4 + last 4", {k for k in everything if k != HEAD and 4 <= k[0] < layers - 4})
    if "formats" in sections:
        for fmt in FORMATS:
            measure(f"all {fmt}", every, fmt)
            measure(f"all {fmt}, f32 LM head", every - {HEAD}, fmt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
