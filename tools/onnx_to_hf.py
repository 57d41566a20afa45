#!/usr/bin/env python3
"""Rebuild a Hugging Face folder (safetensors + config + tokenizer) from an optimum Llama export,
so other exporters (the onnxruntime-genai model builder) can make their own export of the very
same weights. MatMul weights are stored [in, out] in ONNX and [out, in] in HF.

Usage: $PY tools/onnx_to_hf.py models/SmolLM2-135M-Instruct models/SmolLM2-135M-Instruct-hf
"""
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from safetensors.numpy import save_file

src, dst = Path(sys.argv[1]), Path(sys.argv[2])
model = onnx.load(str(src / "model.onnx"), load_external_data=True)
inits = {t.name: t for t in model.graph.initializer}
tensors = {}
for name, t in inits.items():
    if name.startswith("model."):
        tensors[name] = numpy_helper.to_array(t)
for node in model.graph.node:
    m = re.match(r"/model/layers\.(\d+)/(self_attn|mlp)/(\w+_proj)/MatMul$", node.name)
    if m and node.input[1] in inits:
        w = numpy_helper.to_array(inits[node.input[1]])
        tensors[f"model.layers.{m.group(1)}.{m.group(2)}.{m.group(3)}.weight"] = np.ascontiguousarray(w.T)
dst.mkdir(parents=True, exist_ok=True)
save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
for f in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
    if (src / f).exists():
        shutil.copyfile(src / f, dst / f)
print(f"wrote {len(tensors)} tensors to {dst}")
