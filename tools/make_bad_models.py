#!/usr/bin/env python3
"""Generate broken ONNX files for error-handling tests under Tests/Fixtures/bad/.

Writes Tests/Fixtures/bad/<case>/... and Tests/Fixtures/bad/manifest.json, a list of
{"name", "path", "problem", "expect", ...} where "path" is relative to Tests/Fixtures/bad and
"expect" is a short lowercase keyword the loader's error message should contain. Optional keys:
"mentions" (strings the message should also name, e.g. node or tensor names), "input" (an .npy to
feed at run time), "golden" (expected output for the good input).

Nothing here goes through onnx.checker: models are assembled with onnx.helper and written as raw
bytes. Deterministic (fixed seeds). Usage:  PY=$(tools/venv.sh); $PY tools/make_bad_models.py
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "bad"
N = helper.make_node
F = TensorProto.FLOAT

MANIFEST: list[dict] = []


def model_bytes(nodes, inputs, outputs, inits=(), opsets=(("", 17),)) -> bytes:
    graph = helper.make_graph(list(nodes), "bad", list(inputs), list(outputs),
                              initializer=list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
                          producer_name="lpc-make_bad_models")
    m.ir_version = 8
    return m.SerializeToString()


def vi(name, shape, elem=F):
    return helper.make_tensor_value_info(name, elem, shape)


def write(case: str, filename: str, data: bytes) -> str:
    d = OUT / case
    d.mkdir(parents=True, exist_ok=True)
    (d / filename).write_bytes(data)
    return f"{case}/{filename}"


def add(name, path, problem, expect, **extra):
    MANIFEST.append({"name": name, "path": path, "problem": problem, "expect": expect, **extra})


def tiny_add_model() -> bytes:
    """x:[2,3] float + c:[2,3] (initializer) -> y. Valid."""
    c = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3) * 0.5, "c")
    return model_bytes([N("Add", ["x", "c"], ["y"], name="add")], [vi("x", [2, 3])],
                       [vi("y", [2, 3])], [c])


def external_tensor(name, dims, location, offset=None, length=None) -> TensorProto:
    t = TensorProto()
    t.name = name
    t.data_type = F
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    entries = [("location", location)]
    if offset is not None:
        entries.append(("offset", str(offset)))
    if length is not None:
        entries.append(("length", str(length)))
    for k, v in entries:
        e = t.external_data.add()
        e.key, e.value = k, v
    return t


def external_model(location, offset=None, length=None) -> bytes:
    w = external_tensor("w", [2, 3], location, offset, length)
    return model_bytes([N("Add", ["x", "w"], ["y"], name="add_w")], [vi("x", [2, 3])],
                       [vi("y", [2, 3])], [w])


def main() -> int:
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    rng = np.random.default_rng(20240229)

    # --- file-level damage -----------------------------------------------------------------
    add("empty_file", write("empty_file", "model.onnx", b""),
        "the model file is 0 bytes long", "empty")

    big = numpy_helper.from_array(np.linspace(-1, 1, 64, dtype=np.float32), "w")
    whole = model_bytes([N("Add", ["x", "w"], ["y"], name="add")], [vi("x", [64])],
                        [vi("y", [64])], [big])
    add("truncated", write("truncated", "model.onnx", whole[: len(whole) // 2]),
        f"a valid {len(whole)}-byte model cut to its first {len(whole) // 2} bytes (inside the "
        "initializer's raw_data)", "truncated")

    # Starts with 0x07 (field 0, wire type 7): no valid protobuf tag, then random bytes.
    garbage = b"\x07" + rng.integers(0, 256, 511, dtype=np.uint8).tobytes()
    add("corrupt_bytes", write("corrupt_bytes", "model.onnx", garbage),
        "512 bytes of random garbage; the first byte is not a valid protobuf tag", "corrupt")

    # --- graph-level problems ----------------------------------------------------------------
    add("unknown_ops", write("unknown_ops", "model.onnx", model_bytes(
        [N("FooOp", ["x"], ["a"], name="first_foo"),
         N("Relu", ["a"], ["b"], name="known_relu"),
         N("BarOp", ["b"], ["c"], name="second_bar"),
         N("Baz", ["c"], ["y"], name="third_baz", domain="com.example")],
        [vi("x", [2, 3])], [vi("y", [2, 3])], opsets=(("", 17), ("com.example", 1)))),
        "three unsupported ops on differently named nodes: FooOp (first_foo), BarOp "
        "(second_bar), com.example:Baz (third_baz); all should be reported at once",
        "unsupported", mentions=["FooOp", "BarOp", "Baz", "first_foo", "second_bar",
                                 "third_baz"])

    add("undefined_input", write("undefined_input", "model.onnx", model_bytes(
        [N("Relu", ["x"], ["a"], name="relu"),
         N("Add", ["a", "ghost"], ["y"], name="add_ghost")],
        [vi("x", [2, 3])], [vi("y", [2, 3])])),
        "node 'add_ghost' reads 'ghost', which no node, initializer or graph input defines",
        "not produced", mentions=["add_ghost", "ghost"])

    add("cycle", write("cycle", "model.onnx", model_bytes(
        [N("Add", ["x", "b_out"], ["a_out"], name="A"),
         N("Relu", ["a_out"], ["b_out"], name="B")],
        [vi("x", [2, 3])], [vi("b_out", [2, 3])])),
        "nodes A and B feed each other (A -> B -> A)", "cycle", mentions=["A", "B"])

    add("undefined_graph_output", write("undefined_graph_output", "model.onnx", model_bytes(
        [N("Relu", ["x"], ["y"], name="relu")], [vi("x", [2, 3])],
        [vi("y", [2, 3]), vi("nowhere", [2, 3])])),
        "graph output 'nowhere' is not produced by any node, initializer or graph input",
        "not produced", mentions=["nowhere"])

    # --- initializer problems ----------------------------------------------------------------
    t = TensorProto()
    t.name, t.data_type = "w_short", F
    t.dims.extend([2, 3])
    t.raw_data = np.ones(5, np.float32).tobytes()  # 20 bytes, needs 24
    add("raw_data_size_mismatch", write("raw_data_size_mismatch", "model.onnx", model_bytes(
        [N("Add", ["x", "w_short"], ["y"], name="add")], [vi("x", [2, 3])],
        [vi("y", [2, 3])], [t])),
        "initializer 'w_short' has dims [2,3] float (24 bytes) but raw_data holds 20 bytes",
        "raw_data", mentions=["w_short"])

    t = TensorProto()
    t.name, t.data_type = "w_huge", F
    t.dims.extend([1 << 40, 1 << 40])
    t.raw_data = np.ones(4, np.float32).tobytes()
    add("absurd_dims", write("absurd_dims", "model.onnx", model_bytes(
        [N("Identity", ["w_huge"], ["y"], name="id")], [], [vi("y", None)], [t])),
        "initializer 'w_huge' declares dims [2^40, 2^40] (element count overflows Int64) with "
        "16 bytes of raw_data; must fail cleanly, not allocate or trap", "large",
        mentions=["w_huge"])

    # --- external data ------------------------------------------------------------------------
    # A real file at bad/outside.bin so an unchecked loader would *succeed* at reading it.
    (OUT / "outside.bin").write_bytes(np.ones(6, np.float32).tobytes())
    add("external_path_escape", write("external_path_escape", "model.onnx",
                                      external_model("../outside.bin", 0, 24)),
        "initializer 'w' has external_data location '../outside.bin' (the file exists one "
        "folder up): the path leaves the model's folder and must be refused", "refused",
        mentions=["../outside.bin"])
    add("external_absolute_path", write("external_absolute_path", "model.onnx",
                                        external_model("/etc/passwd", 0, 24)),
        "initializer 'w' has external_data location '/etc/passwd' (absolute path); must be "
        "refused", "refused",
        mentions=["/etc/passwd"])
    write("external_past_end", "weights.bin", np.ones(6, np.float32).tobytes())  # 24 bytes
    add("external_past_end", write("external_past_end", "model.onnx",
                                   external_model("weights.bin", 16, 24)),
        "initializer 'w' reads offset 16 + length 24 from 'weights.bin', which is 24 bytes",
        "past the end", mentions=["weights.bin"])
    add("external_missing_file", write("external_missing_file", "model.onnx",
                                       external_model("missing.bin", 0, 24)),
        "initializer 'w' references 'missing.bin', which does not exist next to the model",
        "does not exist", mentions=["missing.bin"])

    # --- run-time input checks on a valid model -------------------------------------------------
    good = tiny_add_model()
    path = write("runtime_io", "model.onnx", good)
    x = (np.arange(6, dtype=np.float32).reshape(2, 3) - 2.0) / 4.0
    d = OUT / "runtime_io"
    np.save(d / "good_input.npy", x, allow_pickle=False)
    np.save(d / "wrong_dtype.npy", np.arange(6, dtype=np.int64).reshape(2, 3), allow_pickle=False)
    np.save(d / "wrong_shape.npy", x.reshape(3, 2), allow_pickle=False)
    np.save(d / "wrong_rank.npy", x.reshape(6), allow_pickle=False)
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(good, providers=["CPUExecutionProvider"])
        golden = sess.run(None, {"x": x})[0]
        np.save(d / "good_output.npy", golden, allow_pickle=False)
        golden_path = "runtime_io/good_output.npy"
    except ImportError:
        golden_path = None
    add("runtime_good_input", path, "valid model x:[2,3] float + constant -> y; this input is "
        "correct and must run", None, input="runtime_io/good_input.npy", input_name="x",
        golden=golden_path)
    add("runtime_wrong_dtype", path, "input 'x' fed int64 [2,3] where float32 [2,3] is declared",
        "dtype", input="runtime_io/wrong_dtype.npy", input_name="x", mentions=["x"])
    add("runtime_wrong_shape", path, "input 'x' fed float32 [3,2] where [2,3] is declared",
        "shape", input="runtime_io/wrong_shape.npy", input_name="x", mentions=["x"])
    add("runtime_wrong_rank", path, "input 'x' fed float32 [6] (rank 1) where rank 2 [2,3] is "
        "declared", "rank", input="runtime_io/wrong_rank.npy", input_name="x", mentions=["x"])

    (OUT / "manifest.json").write_text(json.dumps(MANIFEST, indent=1) + "\n")
    print(f"{len(MANIFEST)} bad-model entries written to {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
