#!/usr/bin/env python3
"""Generate per-op ONNX fixtures with onnxruntime goldens under Tests/Fixtures/ops/.

Each case is a single-node (or tiny multi-node) model built with onnx.helper and run through
onnxruntime's CPUExecutionProvider. Layout per case:

    Tests/Fixtures/ops/<case>/model.onnx
    Tests/Fixtures/ops/<case>/inputs/<i>.npy    (i = position of the graph input)
    Tests/Fixtures/ops/<case>/outputs/<i>.npy   (i = position of the graph output)

plus Tests/Fixtures/ops/manifest.json. Cases ORT cannot run are kept (model + inputs) with a
"skipped_reason" and no outputs; no golden is ever invented.

Usage:  PY=$(tools/venv.sh); $PY tools/make_op_cases.py [--check-reference]
  --check-reference also runs onnx.reference.ReferenceEvaluator on every case and prints where it
  disagrees with onnxruntime (informational only; goldens always come from onnxruntime).
Deterministic: every case seeds its own RNG from its name.
"""
from __future__ import annotations

import json
import re
import shutil
import sys
import zlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "Fixtures" / "ops"
GENERATOR = "tools/make_op_cases.py"

F32, F16, I64, I32, I8, U8, BOOL = (np.float32, np.float16, np.int64, np.int32, np.int8,
                                    np.uint8, np.bool_)
INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min
FLOAT_LOWEST = float(np.finfo(np.float32).min)

EXACT = dict(atol=1e-6, rtol=0.0)  # integer / shape / pure data-movement ops
FLOAT = dict(atol=1e-5, rtol=1e-5)  # float math

N = helper.make_node

# ---------------------------------------------------------------------------------------------
# case registry

CASES: list[dict] = []
_RNG = np.random.default_rng(0)
_CUR: str | None = None


def new(name: str) -> None:
    """Start a case: reseed the RNG from the case name so cases are independent and stable."""
    global _RNG, _CUR
    _CUR = name
    _RNG = np.random.default_rng(zlib.crc32(name.encode()))


def f32(*shape, lo=-2.0, hi=2.0):
    return _RNG.uniform(lo, hi, size=shape).astype(F32)


def ints(*shape, lo=-5, hi=6, dtype=I64):
    return _RNG.integers(lo, hi, size=shape).astype(dtype)


def a(x, dtype):
    return np.array(x, dtype=dtype)


def case(op, opset, desc, nodes, inputs=(), inits=(), outputs=None, out_types=None, tol=None,
         name=None, domain_opsets=None):
    """Register a case. inputs/inits: lists of (name, ndarray). outputs: graph output names
    (default: outputs of the last node). out_types: numpy dtypes of the outputs (default: from
    ONNX shape inference)."""
    name = name or _CUR
    assert name == _CUR, f"case {name} not started with new()"
    assert all(c["name"] != name for c in CASES), f"duplicate case {name}"
    if isinstance(nodes, onnx.NodeProto):
        nodes = [nodes]
    if outputs is None:
        outputs = [o for o in nodes[-1].output if o]
    if tol is None:
        tol = FLOAT
    CASES.append(dict(name=name, op=op, opset=opset, description=desc, nodes=list(nodes),
                      inputs=list(inputs), inits=list(inits), outputs=list(outputs),
                      out_types=out_types, tol=tol, domain_opsets=domain_opsets or {}))


def unary(op, opset, desc, x, tol=None, out_type=None, **attrs):
    case(op, opset, desc, N(op, ["x"], ["y"], **attrs), inputs=[("x", x)],
         out_types=[out_type] if out_type else None, tol=tol)


def binary(op, opset, desc, x, y, tol=None, out_type=None, **attrs):
    case(op, opset, desc, N(op, ["a", "b"], ["y"], **attrs), inputs=[("a", x), ("b", y)],
         out_types=[out_type] if out_type else None, tol=tol)


# ---------------------------------------------------------------------------------------------
# cases


def constant_cases():
    new("constant_value_tensor")
    t = numpy_helper.from_array(a([[1.5, -2.0, 3.25], [0.0, 4.0, -5.5]], F32), "v")
    case("Constant", 13, "value= float tensor [2,3]", N("Constant", [], ["y"], value=t),
         tol=EXACT)
    new("constant_value_float")
    case("Constant", 13, "value_float= scalar (rank 0 float)",
         N("Constant", [], ["y"], value_float=2.5), tol=EXACT)
    new("constant_value_floats")
    case("Constant", 13, "value_floats= 1-D float list",
         N("Constant", [], ["y"], value_floats=[1.0, -0.5, 3.0]), tol=EXACT)
    new("constant_value_int")
    case("Constant", 13, "value_int= scalar int64",
         N("Constant", [], ["y"], value_int=-7), tol=EXACT)
    new("constant_value_ints")
    case("Constant", 13, "value_ints= 1-D int64 list (typical Reshape shape)",
         N("Constant", [], ["y"], value_ints=[0, -1, 4]), tol=EXACT)
    new("constant_value_int64_empty")
    t = numpy_helper.from_array(np.zeros((0,), I64), "v")
    case("Constant", 13, "value= empty int64 tensor shape [0]",
         N("Constant", [], ["y"], value=t), tol=EXACT)
    new("constant_value_tensor_used")
    t = numpy_helper.from_array(a([10.0, 20.0, 30.0], F32), "v")
    case("Constant", 13, "Constant feeding Add with a graph input",
         [N("Constant", [], ["c"], value=t), N("Add", ["x", "c"], ["y"])],
         inputs=[("x", f32(2, 3))], tol=FLOAT)


def constant_of_shape_cases():
    new("constantofshape_default")
    case("ConstantOfShape", 20, "no value attr -> float32 zeros; shape is a graph input",
         N("ConstantOfShape", ["s"], ["y"]), inputs=[("s", a([2, 3], I64))], tol=EXACT)
    new("constantofshape_int64_value")
    case("ConstantOfShape", 20, "value = int64 [7]",
         N("ConstantOfShape", ["s"], ["y"], value=numpy_helper.from_array(a([7], I64), "v")),
         inputs=[("s", a([3, 2], I64))], tol=EXACT)
    new("constantofshape_float_value_init")
    case("ConstantOfShape", 20, "value = float [1.5], shape is an initializer",
         N("ConstantOfShape", ["s"], ["y"], value=numpy_helper.from_array(a([1.5], F32), "v")),
         inits=[("s", a([2, 2, 2], I64))], tol=EXACT)
    new("constantofshape_empty_shape_scalar")
    case("ConstantOfShape", 20, "shape input is [] (size 0) -> rank-0 scalar output",
         N("ConstantOfShape", ["s"], ["y"], value=numpy_helper.from_array(a([3.0], F32), "v")),
         inputs=[("s", np.zeros((0,), I64))], tol=EXACT)
    new("constantofshape_zero_dim")
    case("ConstantOfShape", 20, "shape [2,0,3] -> empty tensor",
         N("ConstantOfShape", ["s"], ["y"], value=numpy_helper.from_array(a([1], I64), "v")),
         inputs=[("s", a([2, 0, 3], I64))], tol=EXACT)
    new("constantofshape_bool")
    case("ConstantOfShape", 20, "value = bool [true]",
         N("ConstantOfShape", ["s"], ["y"], value=numpy_helper.from_array(a([True], BOOL), "v")),
         inputs=[("s", a([2, 3], I64))], tol=EXACT)


def shape_cases():
    x = np.zeros((2, 3, 4, 5), F32)
    for nm, opset, attrs, desc in [
        ("shape_full_op13", 13, {}, "opset 13, whole shape"),
        ("shape_full_op15", 15, {}, "opset 15, no start/end"),
        ("shape_start1", 15, {"start": 1}, "start=1"),
        ("shape_end_neg1", 15, {"end": -1}, "end=-1"),
        ("shape_start_neg2", 15, {"start": -2}, "start=-2"),
        ("shape_start1_end3", 15, {"start": 1, "end": 3}, "start=1,end=3"),
        ("shape_clamped", 15, {"start": -10, "end": 10}, "start/end out of range are clamped"),
        ("shape_start_gt_end", 15, {"start": 3, "end": 1}, "start > end -> empty [0] result"),
    ]:
        new(nm)
        case("Shape", opset, desc, N("Shape", ["x"], ["y"], **attrs), inputs=[("x", x)],
             tol=EXACT)
    new("shape_scalar_input")
    case("Shape", 15, "rank-0 input -> shape [0] (empty int64)", N("Shape", ["x"], ["y"]),
         inputs=[("x", a(1.0, F32))], tol=EXACT)
    new("shape_empty_dim")
    case("Shape", 15, "input with a 0 dim", N("Shape", ["x"], ["y"]),
         inputs=[("x", np.zeros((3, 0, 2), F32))], tol=EXACT)


def gather_cases():
    new("gather_axis0")
    case("Gather", 13, "embedding-style: data [10,4], int64 indices [2,3] -> [2,3,4]",
         N("Gather", ["d", "i"], ["y"], axis=0),
         inputs=[("d", f32(10, 4)), ("i", ints(2, 3, lo=0, hi=10))], tol=EXACT)
    new("gather_negative_indices")
    case("Gather", 13, "negative indices count from the end", N("Gather", ["d", "i"], ["y"]),
         inputs=[("d", f32(5, 3)), ("i", a([-1, 0, -5, 2], I64))], tol=EXACT)
    new("gather_axis_neg1")
    case("Gather", 13, "axis=-1 on [2,3,4]", N("Gather", ["d", "i"], ["y"], axis=-1),
         inputs=[("d", f32(2, 3, 4)), ("i", a([3, 0, -2], I64))], tol=EXACT)
    new("gather_scalar_index")
    case("Gather", 13, "rank-0 index drops the axis (shape plumbing: Shape->Gather(0))",
         N("Gather", ["d", "i"], ["y"], axis=0),
         inputs=[("d", a([7, 3, 5], I64)), ("i", a(1, I64))], tol=EXACT)
    new("gather_scalar_index_axis1")
    case("Gather", 13, "rank-0 index on axis 1 of [2,3,4] -> [2,4]",
         N("Gather", ["d", "i"], ["y"], axis=1),
         inputs=[("d", f32(2, 3, 4)), ("i", a(-1, I64))], tol=EXACT)
    new("gather_int32_indices")
    case("Gather", 13, "int32 indices", N("Gather", ["d", "i"], ["y"], axis=0),
         inputs=[("d", f32(6, 2)), ("i", a([[5, 1], [0, -6]], I32))], tol=EXACT)
    new("gather_empty_indices")
    case("Gather", 13, "indices shape [0] -> empty output [0,3]",
         N("Gather", ["d", "i"], ["y"], axis=0),
         inputs=[("d", f32(4, 3)), ("i", np.zeros((0,), I64))], tol=EXACT)
    new("gather_2d_indices_axis1")
    case("Gather", 13, "2-D indices on axis 1 -> rank grows ([3,4] x [2,2] -> [3,2,2])",
         N("Gather", ["d", "i"], ["y"], axis=1),
         inputs=[("d", f32(3, 4)), ("i", a([[0, 3], [1, 1]], I64))], tol=EXACT)


def gathernd_cases():
    new("gathernd_full_index")
    case("GatherND", 13, "batch_dims=0, indices last dim == rank -> scalars",
         N("GatherND", ["d", "i"], ["y"]),
         inputs=[("d", f32(3, 4)), ("i", a([[0, 0], [2, 3], [1, 2]], I64))], tol=EXACT)
    new("gathernd_slices")
    case("GatherND", 13, "batch_dims=0, partial index -> slices",
         N("GatherND", ["d", "i"], ["y"]),
         inputs=[("d", f32(3, 2, 4)), ("i", a([[[2], [0]], [[1], [1]]], I64))], tol=EXACT)
    new("gathernd_batch_dims1")
    case("GatherND", 13, "batch_dims=1 (e.g. pick last token per batch)",
         N("GatherND", ["d", "i"], ["y"], batch_dims=1),
         inputs=[("d", f32(2, 5, 3)), ("i", a([[4], [1]], I64))], tol=EXACT)
    new("gathernd_batch_dims1_full")
    case("GatherND", 13, "batch_dims=1, index all remaining dims",
         N("GatherND", ["d", "i"], ["y"], batch_dims=1),
         inputs=[("d", f32(2, 3, 4)), ("i", a([[[0, 1], [2, 3]], [[1, 0], [0, 0]]], I64))],
         tol=EXACT)
    new("gathernd_negative")
    case("GatherND", 13, "negative indices", N("GatherND", ["d", "i"], ["y"]),
         inputs=[("d", f32(3, 4)), ("i", a([[-1, -1], [0, -4]], I64))], tol=EXACT)


def unsqueeze_cases():
    x = f32(2, 3)
    new("unsqueeze_op11_attr")
    case("Unsqueeze", 11, "opset 11: axes attribute [0]",
         N("Unsqueeze", ["x"], ["y"], axes=[0]), inputs=[("x", x)], tol=EXACT)
    new("unsqueeze_op11_attr_negative")
    case("Unsqueeze", 11, "opset 11: axes attribute [-1] (relative to output rank)",
         N("Unsqueeze", ["x"], ["y"], axes=[-1]), inputs=[("x", x)], tol=EXACT)
    new("unsqueeze_op11_multi_unordered")
    case("Unsqueeze", 11, "opset 11: axes [3,0] unordered -> [1,2,3,1]",
         N("Unsqueeze", ["x"], ["y"], axes=[3, 0]), inputs=[("x", x)], tol=EXACT)
    new("unsqueeze_op13_input")
    case("Unsqueeze", 13, "opset 13: axes input (initializer) [1]",
         N("Unsqueeze", ["x", "axes"], ["y"]), inputs=[("x", x)], inits=[("axes", a([1], I64))],
         tol=EXACT)
    new("unsqueeze_op13_multi_unordered_negative")
    case("Unsqueeze", 13, "opset 13: axes [-1, 0] -> [1,2,3,1]",
         N("Unsqueeze", ["x", "axes"], ["y"]), inputs=[("x", x)],
         inits=[("axes", a([-1, 0], I64))], tol=EXACT)
    new("unsqueeze_op13_runtime_axes")
    case("Unsqueeze", 13, "opset 13: axes given as a graph input [2,0]",
         N("Unsqueeze", ["x", "axes"], ["y"]), inputs=[("x", x), ("axes", a([2, 0], I64))],
         tol=EXACT)
    new("unsqueeze_scalar")
    case("Unsqueeze", 13, "rank-0 int64 -> [1] (shape plumbing before Concat)",
         N("Unsqueeze", ["x", "axes"], ["y"]), inputs=[("x", a(5, I64))],
         inits=[("axes", a([0], I64))], tol=EXACT)


def squeeze_cases():
    new("squeeze_op11_axes")
    case("Squeeze", 11, "opset 11: axes attribute [0,2]",
         N("Squeeze", ["x"], ["y"], axes=[0, 2]), inputs=[("x", f32(1, 3, 1, 2))], tol=EXACT)
    new("squeeze_op11_no_axes")
    case("Squeeze", 11, "opset 11: no axes -> drop all 1-dims",
         N("Squeeze", ["x"], ["y"]), inputs=[("x", f32(1, 3, 1, 2))], tol=EXACT)
    new("squeeze_op13_axes_negative")
    case("Squeeze", 13, "opset 13: axes input [-2]",
         N("Squeeze", ["x", "axes"], ["y"]), inputs=[("x", f32(2, 3, 1, 2))],
         inits=[("axes", a([-2], I64))], tol=EXACT)
    new("squeeze_op13_no_axes")
    case("Squeeze", 13, "opset 13: axes omitted -> drop all 1-dims",
         N("Squeeze", ["x"], ["y"]), inputs=[("x", f32(1, 4, 1))], tol=EXACT)
    new("squeeze_to_scalar")
    case("Squeeze", 13, "[1,1] -> rank 0",
         N("Squeeze", ["x"], ["y"]), inputs=[("x", a([[7]], I64))], tol=EXACT)
    new("squeeze_zero_dim")
    case("Squeeze", 13, "[0,1,3] axes [1] -> [0,3]",
         N("Squeeze", ["x", "axes"], ["y"]), inputs=[("x", np.zeros((0, 1, 3), F32))],
         inits=[("axes", a([1], I64))], tol=EXACT)


def reshape_cases():
    x = f32(2, 3, 4)
    for nm, shape, desc in [
        ("reshape_basic", [4, 6], "plain reshape [2,3,4] -> [4,6]"),
        ("reshape_zero_copies", [0, 12], "0 copies the input dim"),
        ("reshape_infer", [-1, 4], "-1 inferred"),
        ("reshape_zero_and_infer", [0, -1, 2], "0 and -1 together -> [2,6,2]"),
        ("reshape_to_4d_heads", [0, 0, 2, 2], "split last dim into heads [2,3,2,2]"),
    ]:
        new(nm)
        case("Reshape", 14, desc, N("Reshape", ["x", "s"], ["y"]), inputs=[("x", x)],
             inits=[("s", a(shape, I64))], tol=EXACT)
    new("reshape_runtime_shape")
    case("Reshape", 14, "shape tensor supplied as a graph input",
         N("Reshape", ["x", "s"], ["y"]), inputs=[("x", x), ("s", a([3, -1], I64))], tol=EXACT)
    new("reshape_allowzero")
    case("Reshape", 14, "allowzero=1: a 0 in shape is a literal 0 ([0,3] -> [3,0])",
         N("Reshape", ["x", "s"], ["y"], allowzero=1),
         inputs=[("x", np.zeros((0, 3), F32))], inits=[("s", a([3, 0], I64))], tol=EXACT)
    new("reshape_empty_copy_zero")
    case("Reshape", 14, "empty input [2,0,3], shape [6,0] with allowzero=0 copies dim 1 (0)",
         N("Reshape", ["x", "s"], ["y"]), inputs=[("x", np.zeros((2, 0, 3), F32))],
         inits=[("s", a([6, 0], I64))], tol=EXACT)
    new("reshape_to_scalar")
    case("Reshape", 14, "[1] -> shape [] -> rank 0", N("Reshape", ["x", "s"], ["y"]),
         inputs=[("x", a([3.5], F32))], inits=[("s", np.zeros((0,), I64))], tol=EXACT)
    new("reshape_op13")
    case("Reshape", 13, "opset 13 (no allowzero attr), 0 and -1",
         N("Reshape", ["x", "s"], ["y"]), inputs=[("x", x)], inits=[("s", a([0, -1], I64))],
         tol=EXACT)


def flatten_cases():
    x = f32(2, 3, 2, 2)
    for nm, axis, desc in [
        ("flatten_default", None, "default axis 1 -> [2,12]"),
        ("flatten_axis0", 0, "axis 0 -> [1,24]"),
        ("flatten_axis2", 2, "axis 2 -> [6,4]"),
        ("flatten_axis_neg1", -1, "axis -1 -> [12,2]"),
        ("flatten_axis_rank", 4, "axis == rank -> [24,1]"),
    ]:
        new(nm)
        attrs = {} if axis is None else {"axis": axis}
        case("Flatten", 13, desc, N("Flatten", ["x"], ["y"], **attrs), inputs=[("x", x)],
             tol=EXACT)


def transpose_cases():
    new("transpose_default_3d")
    case("Transpose", 13, "no perm -> reversed dims", N("Transpose", ["x"], ["y"]),
         inputs=[("x", f32(2, 3, 4))], tol=EXACT)
    new("transpose_2d")
    case("Transpose", 13, "explicit perm [1,0]", N("Transpose", ["x"], ["y"], perm=[1, 0]),
         inputs=[("x", f32(3, 5))], tol=EXACT)
    new("transpose_4d_heads")
    case("Transpose", 13, "perm [0,2,1,3] (attention heads)",
         N("Transpose", ["x"], ["y"], perm=[0, 2, 1, 3]), inputs=[("x", f32(2, 3, 4, 5))],
         tol=EXACT)
    new("transpose_4d_kT")
    case("Transpose", 13, "perm [0,1,3,2] (K^T)",
         N("Transpose", ["x"], ["y"], perm=[0, 1, 3, 2]), inputs=[("x", f32(1, 2, 3, 4))],
         tol=EXACT)
    new("transpose_4d_rotate")
    case("Transpose", 13, "perm [3,0,2,1]",
         N("Transpose", ["x"], ["y"], perm=[3, 0, 2, 1]), inputs=[("x", f32(2, 3, 4, 5))],
         tol=EXACT)
    new("transpose_int64")
    case("Transpose", 13, "int64 data", N("Transpose", ["x"], ["y"], perm=[1, 0]),
         inputs=[("x", ints(2, 3))], tol=EXACT)
    new("transpose_empty")
    case("Transpose", 13, "empty [0,3] -> [3,0]", N("Transpose", ["x"], ["y"], perm=[1, 0]),
         inputs=[("x", np.zeros((0, 3), F32))], tol=EXACT)


def slice_cases():
    x = f32(4, 6)
    new("slice_op9_attrs")
    case("Slice", 9, "opset 9: starts/ends attributes, no axes",
         N("Slice", ["x"], ["y"], starts=[1, 2], ends=[3, 5]), inputs=[("x", x)], tol=EXACT)
    new("slice_op9_attrs_axes_neg")
    case("Slice", 9, "opset 9: axes=[1], starts [-3], ends [INT64_MAX]",
         N("Slice", ["x"], ["y"], starts=[-3], ends=[INT64_MAX], axes=[1]),
         inputs=[("x", x)], tol=EXACT)

    def s(nm, opset, desc, data, starts, ends, axes=None, steps=None, runtime=False):
        new(nm)
        names = ["x", "starts", "ends"]
        vals = [a(starts, I64), a(ends, I64)]
        if axes is not None or steps is not None:
            names.append("axes" if axes is not None else "")
            if axes is not None:
                vals.append(a(axes, I64))
        if steps is not None:
            names.append("steps")
            vals.append(a(steps, I64))
        tensors = [(n, v) for n, v in zip([n for n in names[1:] if n], vals)]
        if runtime:
            case("Slice", opset, desc, N("Slice", names, ["y"]),
                 inputs=[("x", data)] + tensors, tol=EXACT)
        else:
            case("Slice", opset, desc, N("Slice", names, ["y"]), inputs=[("x", data)],
                 inits=tensors, tol=EXACT)

    s("slice_op10_inputs", 10, "opset 10: starts/ends/axes/steps inputs", x, [1], [4], [1], [2])
    s("slice_omitted_axes", 13, "axes omitted -> 0..len(starts)-1", x, [1, 0], [3, 2])
    s("slice_negative_starts_ends", 13, "negative starts/ends", x, [-3, -4], [-1, -1], [0, 1])
    s("slice_int64_max_end", 13, "ends INT64_MAX as exporters write 'to the end'", x, [2],
      [INT64_MAX], [1])
    s("slice_reverse_int64_min", 13, "steps -1 with starts -1 / ends INT64_MIN -> full reverse",
      x, [-1], [INT64_MIN], [1], [-1])
    s("slice_negative_step2", 13, "steps -2 with clamped start 10 / end -10", x, [10], [-10],
      [1], [-2])
    s("slice_clamp", 13, "starts < -dim and ends > dim are clamped", x, [-100, 2], [100, 1000],
      [0, 1])
    s("slice_empty_result", 13, "starts > ends with positive step -> empty", x, [3], [1], [0])
    s("slice_negative_axis", 13, "axes [-1] with step 3", x, [0], [6], [-1], [3])
    s("slice_empty_input", 13, "input [0,6] sliced on axis 1", np.zeros((0, 6), F32), [1], [4],
      [1])
    s("slice_runtime_inputs", 13, "starts/ends/axes/steps supplied as graph inputs",
      f32(2, 3, 4), [0, 1], [INT64_MAX, -1], [2, 0], [2, 1], runtime=True)
    s("slice_rope_half", 13, "rotate_half style: last dim second half (start = d/2, end = max)",
      f32(1, 2, 3, 8), [4], [INT64_MAX], [3], [1])


def concat_cases():
    new("concat_axis0")
    case("Concat", 13, "two inputs axis 0", N("Concat", ["a", "b"], ["y"], axis=0),
         inputs=[("a", f32(2, 3)), ("b", f32(1, 3))], tol=EXACT)
    new("concat_axis_neg1_three")
    case("Concat", 13, "three inputs, axis -1", N("Concat", ["a", "b", "c"], ["y"], axis=-1),
         inputs=[("a", f32(2, 2, 1)), ("b", f32(2, 2, 3)), ("c", f32(2, 2, 2))], tol=EXACT)
    new("concat_with_empty")
    case("Concat", 13, "an empty [2,0] input among non-empty ones on axis 1",
         N("Concat", ["a", "b", "c"], ["y"], axis=1),
         inputs=[("a", f32(2, 3)), ("b", np.zeros((2, 0), F32)), ("c", f32(2, 1))], tol=EXACT)
    new("concat_kv_cache_empty_past")
    case("Concat", 13, "KV-cache style: empty past [1,2,0,4] ++ new [1,2,3,4] on axis -2",
         N("Concat", ["past", "new"], ["y"], axis=-2),
         inputs=[("past", np.zeros((1, 2, 0, 4), F32)), ("new", f32(1, 2, 3, 4))], tol=EXACT)
    new("concat_int64_shape")
    case("Concat", 13, "1-D int64 shape building", N("Concat", ["a", "b", "c"], ["y"], axis=0),
         inputs=[("a", a([2], I64)), ("b", a([-1], I64)), ("c", a([4, 8], I64))], tol=EXACT)
    new("concat_all_empty")
    case("Concat", 13, "all inputs empty [0,3] -> [0,3]", N("Concat", ["a", "b"], ["y"], axis=0),
         inputs=[("a", np.zeros((0, 3), F32)), ("b", np.zeros((0, 3), F32))], tol=EXACT)


def expand_cases():
    def e(nm, desc, x, shape, runtime=False):
        new(nm)
        if runtime:
            case("Expand", 13, desc, N("Expand", ["x", "s"], ["y"]),
                 inputs=[("x", x), ("s", a(shape, I64))], tol=EXACT)
        else:
            case("Expand", 13, desc, N("Expand", ["x", "s"], ["y"]), inputs=[("x", x)],
                 inits=[("s", a(shape, I64))], tol=EXACT)

    e("expand_both_ways", "input [3,1] shape [2,1,4] -> [2,3,4]", f32(3, 1), [2, 1, 4])
    e("expand_shape_smaller_rank", "input [2,3,4] shape [3,1] -> [2,3,4]", f32(2, 3, 4), [3, 1])
    e("expand_ones_shape", "shape [1] keeps input [3,1]", f32(3, 1), [1])
    e("expand_scalar", "rank-0 input to [2,3]", a(1.25, F32), [2, 3])
    e("expand_int64_runtime", "int64 input, shape as graph input", ints(1, 4), [3, 1, 4], True)
    e("expand_zero_dim", "input [3,1] shape [0,1,1] -> [0,3,1]", f32(3, 1), [0, 1, 1])
    e("expand_bool_mask", "bool [1,1,1,4] -> [2,1,3,4]",
      a([[[[True, False, True, True]]]], BOOL), [2, 1, 3, 4])


def range_cases():
    def r(nm, desc, start, limit, delta, dtype, runtime=True):
        new(nm)
        vals = [("start", a(start, dtype)), ("limit", a(limit, dtype)), ("delta", a(delta, dtype))]
        tol = FLOAT if dtype == F32 else EXACT
        if runtime:
            case("Range", 11, desc, N("Range", ["start", "limit", "delta"], ["y"]), inputs=vals,
                 tol=tol)
        else:
            case("Range", 11, desc, N("Range", ["start", "limit", "delta"], ["y"]), inits=vals,
                 tol=tol)

    r("range_int64", "int64 0..5 step 1", 0, 5, 1, I64)
    r("range_float", "float 0..1 step 0.25", 0.0, 1.0, 0.25, F32)
    r("range_negative_delta", "int64 10 -> 0 step -3", 10, 0, -3, I64)
    r("range_float_negative_delta", "float 1.0 -> -1.0 step -0.5 (initializers)", 1.0, -1.0,
      -0.5, F32, runtime=False)
    r("range_empty", "start 5 limit 0 step 1 -> empty", 5, 0, 1, I64)
    r("range_int32", "int32 -3..4 step 2", -3, 4, 2, I32)
    r("range_float_inexact", "float 0..1 step 0.3 -> ceil((limit-start)/delta) = 4", 0.0, 1.0,
      0.3, F32)


def cast_cases():
    def c(nm, desc, x, to, tol=EXACT):
        new(nm)
        case("Cast", 13, desc, N("Cast", ["x"], ["y"], to=to), inputs=[("x", x)], tol=tol)

    c("cast_float_to_int64", "float->int64 truncates toward zero",
      a([-2.7, -1.5, -0.5, 0.0, 0.5, 1.5, 2.7, 100.9], F32), TensorProto.INT64)
    c("cast_int64_to_float", "int64->float", a([-3, 0, 7, 1 << 20], I64), TensorProto.FLOAT)
    c("cast_float_to_float16", "float->float16 (round to nearest even)",
      a([0.1, -2.5, 65504.0, 1e-4, 3.14159], F32), TensorProto.FLOAT16)
    c("cast_bool_to_float", "bool->float", a([[True, False], [False, True]], BOOL),
      TensorProto.FLOAT)
    c("cast_float_to_bool", "float->bool (non-zero is true, -0.0 is false)",
      a([0.0, -0.0, 0.5, -2.0, 1e-30], F32), TensorProto.BOOL)
    c("cast_int64_to_bool", "int64->bool", a([0, 1, -1, 5], I64), TensorProto.BOOL)
    c("cast_bool_to_int64", "bool->int64 (attention_mask style)", a([True, False, True], BOOL),
      TensorProto.INT64)
    c("cast_int64_to_int32", "int64->int32", a([-5, 0, 123456], I64), TensorProto.INT32)
    c("cast_int32_to_int64", "int32->int64", a([-5, 0, 123456], I32), TensorProto.INT64)
    c("cast_float_to_float", "float->float is identity", f32(2, 3), TensorProto.FLOAT)
    c("cast_empty", "empty float [0,2] -> int64", np.zeros((0, 2), F32), TensorProto.INT64)
    new("cast_float_float16_float")
    case("Cast", 13, "float->float16->float round trip (two nodes) loses precision",
         [N("Cast", ["x"], ["h"], to=TensorProto.FLOAT16),
          N("Cast", ["h"], ["y"], to=TensorProto.FLOAT)],
         inputs=[("x", a([0.1, 1.0 / 3.0, -2.71828, 1000.7, 1e-5], F32))], tol=EXACT)


def identity_cases():
    new("identity_float")
    unary("Identity", 13, "float", f32(2, 3), tol=EXACT)
    new("identity_int64")
    unary("Identity", 13, "int64", ints(4), tol=EXACT)
    new("identity_scalar")
    unary("Identity", 13, "rank-0", a(2.0, F32), tol=EXACT)
    new("identity_empty")
    unary("Identity", 13, "empty [0,4]", np.zeros((0, 4), F32), tol=EXACT)


def where_cases():
    new("where_3way_broadcast")
    case("Where", 16, "cond [2,1,4], x [3,1], y [4] -> [2,3,4]",
         N("Where", ["c", "x", "y"], ["z"]),
         inputs=[("c", _RNG.integers(0, 2, (2, 1, 4)).astype(BOOL)), ("x", f32(3, 1)),
                 ("y", f32(4))], tol=EXACT)
    new("where_same_shape")
    case("Where", 16, "all [2,3]", N("Where", ["c", "x", "y"], ["z"]),
         inputs=[("c", _RNG.integers(0, 2, (2, 3)).astype(BOOL)), ("x", f32(2, 3)),
                 ("y", f32(2, 3))], tol=EXACT)
    new("where_mask_lowest")
    case("Where", 16, "causal-mask style: scalar x = float32 lowest, y = 0",
         N("Where", ["c", "x", "y"], ["z"]),
         inputs=[("c", np.triu(np.ones((4, 4), BOOL), 1)[None, None])],
         inits=[("x", a(FLOAT_LOWEST, F32)), ("y", a(0.0, F32))], tol=EXACT)
    new("where_int64")
    case("Where", 16, "int64 x/y with broadcast", N("Where", ["c", "x", "y"], ["z"]),
         inputs=[("c", a([True, False, True], BOOL)), ("x", ints(2, 3)), ("y", a(-1, I64))],
         tol=EXACT)
    new("where_empty")
    case("Where", 16, "empty cond [0,3]", N("Where", ["c", "x", "y"], ["z"]),
         inputs=[("c", np.zeros((0, 3), BOOL)), ("x", f32(3)), ("y", a(0.0, F32))], tol=EXACT)


def compare_cases():
    for op, opset in [("Equal", 13), ("Greater", 13), ("Less", 13), ("LessOrEqual", 16)]:
        lo = op.lower()
        new(f"{lo}_int64_broadcast")
        binary(op, opset, "int64 [2,3] vs [3]", ints(2, 3, lo=-2, hi=3), ints(3, lo=-2, hi=3),
               tol=EXACT)
        new(f"{lo}_float_broadcast")
        xv = a([[0.5, -1.0, 2.0], [3.0, 0.0, -0.0]], F32)
        binary(op, opset, "float [2,3] vs [2,1] incl. equal values and -0.0 == 0.0", xv,
               a([[0.5], [0.0]], F32), tol=EXACT)
        new(f"{lo}_scalar")
        binary(op, opset, "int64 [4] vs scalar", a([0, 1, 2, 3], I64), a(2, I64), tol=EXACT)
    new("equal_bool")
    binary("Equal", 13, "bool vs bool", a([True, False, True], BOOL), a([True, True, False], BOOL),
           tol=EXACT)
    new("greater_empty")
    binary("Greater", 13, "empty [0,3] vs [3]", np.zeros((0, 3), F32), f32(3), tol=EXACT)


def logical_cases():
    t = a([[True, False, True], [False, False, True]], BOOL)
    new("and_broadcast")
    binary("And", 7, "bool [2,3] and [3]", t, a([True, True, False], BOOL), tol=EXACT)
    new("and_scalar")
    binary("And", 7, "bool [2,3] and scalar false", t, a(False, BOOL), tol=EXACT)
    new("or_broadcast")
    binary("Or", 7, "bool [2,3] or [2,1]", t, a([[False], [True]], BOOL), tol=EXACT)
    new("or_same")
    binary("Or", 7, "bool [4] or [4]", a([1, 0, 1, 0], BOOL), a([1, 1, 0, 0], BOOL), tol=EXACT)
    new("not_basic")
    unary("Not", 1, "bool [2,3]", t, tol=EXACT)
    new("not_empty")
    unary("Not", 1, "bool [0]", np.zeros((0,), BOOL), tol=EXACT)
    new("isnan_basic")
    unary("IsNaN", 20, "nan, inf, -inf, finite",
          a([np.nan, 1.0, np.inf, -np.inf, 0.0, -np.nan], F32), tol=EXACT)
    new("isnan_2d")
    x = f32(2, 3)
    x[1, 2] = np.nan
    unary("IsNaN", 13, "opset 13, [2,3] with one NaN", x, tol=EXACT)


def arith_cases():
    for op in ["Add", "Sub", "Mul", "Div"]:
        lo = op.lower()
        new(f"{lo}_broadcast_row")
        binary(op, 14, "float [2,3] op [3]", f32(2, 3), f32(3, lo=0.5, hi=2.0))
        new(f"{lo}_scalar")
        binary(op, 14, "float [2,3] op rank-0", f32(2, 3), a(1.5, F32))
        new(f"{lo}_rank_mismatch")
        binary(op, 14, "float [2,1,3] op [4,1] -> [2,4,3]", f32(2, 1, 3),
               f32(4, 1, lo=0.5, hi=2.0))
        new(f"{lo}_int64")
        binary(op, 14, "int64 [2,3] op [2,3]", ints(2, 3, lo=-20, hi=21),
               ints(2, 3, lo=1, hi=6) * a([[1, -1, 1], [-1, 1, -1]], I64), tol=EXACT)
        new(f"{lo}_int32")
        binary(op, 14, "int32 [3] op scalar", a([7, -7, 9], I32), a(-2, I32), tol=EXACT)
        new(f"{lo}_empty")
        binary(op, 14, "empty [0,3] op [3]", np.zeros((0, 3), F32), f32(3, lo=1.0, hi=2.0))
    new("div_int64_trunc")
    binary("Div", 14, "int64 division truncates toward zero with negatives",
           a([7, -7, 7, -7, 1, -1, 0], I64), a([2, 2, -2, -2, 3, 3, 5], I64), tol=EXACT)
    new("add_left_broadcast")
    binary("Add", 14, "[3] + [2,3] (broadcast on the left operand)", f32(3), f32(2, 3))
    new("mul_both_broadcast")
    binary("Mul", 14, "[2,1] * [1,3] -> [2,3]", f32(2, 1), f32(1, 3))


def pow_cases():
    new("pow_square")
    case("Pow", 15, "float ^ 2 (RMSNorm variance)", N("Pow", ["x", "e"], ["y"]),
         inputs=[("x", f32(2, 4))], inits=[("e", a(2.0, F32))])
    new("pow_sqrt")
    case("Pow", 15, "positive float ^ 0.5", N("Pow", ["x", "e"], ["y"]),
         inputs=[("x", f32(2, 4, lo=0.0, hi=5.0))], inits=[("e", a(0.5, F32))])
    new("pow_negative_base_int_exp")
    case("Pow", 15, "negative bases with exponent 3.0 and 2.0",
         N("Pow", ["x", "e"], ["y"]), inputs=[("x", a([-2.0, -1.5, 0.0, 1.5], F32)),
                                              ("e", a([3.0, 2.0, 2.0, 3.0], F32))])
    new("pow_elementwise_broadcast")
    binary("Pow", 15, "float [2,3] ^ float [3]", f32(2, 3, lo=0.1, hi=3.0),
           a([-1.0, 0.0, 1.5], F32))
    new("pow_int64")
    binary("Pow", 15, "int64 base ^ int64 exponent", a([2, -3, 5, 0, 1], I64),
           a([3, 3, 0, 2, 7], I64), tol=EXACT)
    new("pow_float_int64_exp")
    binary("Pow", 15, "float base ^ int64 exponent", a([1.5, -2.0, 3.0], F32), a(2, I64))


def unary_math_cases():
    def u(op, nm, desc, x, opset=13, tol=FLOAT):
        new(nm)
        unary(op, opset, desc, x, tol=tol)

    u("Sqrt", "sqrt_basic", "positive floats", f32(3, 4, lo=0.0, hi=10.0))
    u("Sqrt", "sqrt_edges", "0, tiny, large", a([0.0, 1e-30, 1.0, 1e30], F32))
    u("Sqrt", "sqrt_empty", "empty", np.zeros((0, 2), F32))
    u("Reciprocal", "reciprocal_basic", "mixed sign", a([2.0, -4.0, 0.5, 3.0, -0.1], F32))
    u("Reciprocal", "reciprocal_2d", "[2,3]", f32(2, 3, lo=0.5, hi=3.0))
    u("Neg", "neg_float", "float incl. 0", a([1.5, -2.0, 0.0], F32), tol=EXACT)
    u("Neg", "neg_int64", "int64", a([3, -4, 0, INT64_MAX], I64), tol=EXACT)
    u("Neg", "neg_int32", "int32", a([3, -4, 0], I32), tol=EXACT)
    u("Sigmoid", "sigmoid_basic", "random", f32(3, 4, lo=-6, hi=6))
    u("Sigmoid", "sigmoid_extremes", "+-20, +-100", a([-100.0, -20.0, 0.0, 20.0, 100.0], F32))
    u("Cos", "cos_basic", "random", f32(3, 4, lo=-7, hi=7))
    u("Cos", "cos_large", "large arguments (rope positions * freq)", a([0.0, 100.0, 1000.5,
                                                                          -4096.25], F32))
    u("Sin", "sin_basic", "random", f32(3, 4, lo=-7, hi=7))
    u("Sin", "sin_large", "large arguments", a([0.0, 100.0, 1000.5, -4096.25], F32))
    u("Tanh", "tanh_basic", "random", f32(3, 4, lo=-4, hi=4))
    u("Tanh", "tanh_extremes", "+-50, 0", a([-50.0, -1.0, 0.0, 1e-6, 50.0], F32))
    u("Erf", "erf_basic", "random", f32(3, 4, lo=-3, hi=3))
    u("Erf", "erf_extremes", "+-10, 0", a([-10.0, -0.5, 0.0, 0.5, 10.0], F32))
    u("Floor", "floor_basic", "mixed sign", a([-2.5, -1.0, -0.2, 0.0, 0.7, 3.999], F32),
      tol=EXACT)
    u("Floor", "floor_2d", "random", f32(2, 3, lo=-10, hi=10), tol=EXACT)
    u("Abs", "abs_float", "float", a([-2.5, 0.0, 3.0, -0.0], F32), tol=EXACT)
    u("Abs", "abs_int64", "int64", a([-5, 0, 7], I64), tol=EXACT)
    u("Exp", "exp_basic", "random", f32(3, 4, lo=-5, hi=5))
    u("Exp", "exp_extremes", "-100 (underflow to ~0), 0, 20", a([-100.0, -10.0, 0.0, 20.0], F32))
    u("Log", "log_basic", "positive", f32(3, 4, lo=0.01, hi=10.0))
    u("Log", "log_edges", "1, tiny, large", a([1.0, 1e-30, 1e30, 2.718281828], F32))


def minmax_cases():
    new("max_variadic_broadcast")
    case("Max", 13, "3 inputs [2,3], [3], [2,1]", N("Max", ["a", "b", "c"], ["y"]),
         inputs=[("a", f32(2, 3)), ("b", f32(3)), ("c", f32(2, 1))], tol=EXACT)
    new("max_two_int64")
    binary("Max", 13, "int64 [4] vs scalar", a([-3, 0, 5, 2], I64), a(1, I64), tol=EXACT)
    new("max_single")
    case("Max", 13, "single input", N("Max", ["a"], ["y"]), inputs=[("a", f32(2, 2))],
         tol=EXACT)
    new("min_two_float")
    binary("Min", 13, "float [2,3] vs [3]", f32(2, 3), f32(3), tol=EXACT)
    new("min_variadic_int64")
    case("Min", 13, "3 int64 inputs with broadcast", N("Min", ["a", "b", "c"], ["y"]),
         inputs=[("a", ints(2, 3)), ("b", ints(3)), ("c", a(0, I64))], tol=EXACT)


def reduce_cases():
    x = f32(2, 3, 4)

    def r13(op, nm, desc, axes, keepdims=None, data=x, tol=FLOAT):
        new(nm)
        attrs = {}
        if axes is not None:
            attrs["axes"] = axes
        if keepdims is not None:
            attrs["keepdims"] = keepdims
        case(op, 13 if op != "ReduceSum" else 11, desc, N(op, ["x"], ["y"], **attrs),
             inputs=[("x", data)], tol=tol)

    def r18(op, nm, desc, axes, keepdims=None, noop=None, data=x, tol=FLOAT, opset=18):
        new(nm)
        attrs = {}
        if keepdims is not None:
            attrs["keepdims"] = keepdims
        if noop is not None:
            attrs["noop_with_empty_axes"] = noop
        if axes is None:
            case(op, opset, desc, N(op, ["x"], ["y"], **attrs), inputs=[("x", data)], tol=tol)
        else:
            case(op, opset, desc, N(op, ["x", "axes"], ["y"], **attrs), inputs=[("x", data)],
                 inits=[("axes", a(axes, I64))], tol=tol)

    r13("ReduceMean", "reducemean_op13_last_keep", "opset 13 axes attr [-1], keepdims default 1",
        [-1])
    r13("ReduceMean", "reducemean_op13_multi_nokeep", "opset 13 axes [0,2], keepdims 0",
        [0, 2], 0)
    r13("ReduceMean", "reducemean_op13_all", "opset 13 no axes -> reduce all, keepdims 1", None)
    r18("ReduceMean", "reducemean_op18_last_keep", "opset 18 axes input [-1], keepdims 1", [-1])
    r18("ReduceMean", "reducemean_op18_neg_nokeep", "opset 18 axes [-1,-3], keepdims 0",
        [-1, -3], 0)
    r18("ReduceMean", "reducemean_op18_no_axes", "opset 18 axes omitted -> reduce all", None,
        keepdims=0)
    r18("ReduceMean", "reducemean_op18_noop_empty", "opset 18 noop_with_empty_axes=1, no axes "
        "-> identity", None, noop=1)
    r18("ReduceMean", "reducemean_op18_empty_axes_tensor", "opset 18 axes = [] (size 0) with "
        "noop=0 -> reduce all", [], keepdims=1)
    r18("ReduceMean", "reducemean_op18_noop_empty_tensor", "opset 18 axes = [] with noop=1 -> "
        "identity", [], noop=1)
    r13("ReduceSum", "reducesum_op11_attr", "opset 11 axes attr [1], keepdims 0", [1], 0)
    r18("ReduceSum", "reducesum_op13_input", "opset 13 axes input [-1]", [-1], opset=13)
    r18("ReduceSum", "reducesum_op13_int64", "opset 13 int64 reduce all, keepdims 0", None,
        keepdims=0, data=ints(3, 4), tol=EXACT, opset=13)
    r18("ReduceSum", "reducesum_op13_noop", "opset 13 noop_with_empty_axes=1 -> identity", None,
        noop=1, opset=13)
    r13("ReduceMax", "reducemax_op13_attr", "opset 13 axes attr [-1]", [-1], tol=EXACT)
    r18("ReduceMax", "reducemax_op18_input", "opset 18 axes input [0,1], keepdims 0", [0, 1], 0,
        tol=EXACT)
    r18("ReduceMax", "reducemax_op18_int64", "opset 18 int64 axes [1]", [1],
        data=ints(3, 4), tol=EXACT)


def matmul_cases():
    def m(nm, desc, x, y, tol=FLOAT):
        new(nm)
        binary("MatMul", 13, desc, x, y, tol=tol)

    m("matmul_2d", "[3,4] x [4,5]", f32(3, 4), f32(4, 5))
    m("matmul_3d_batched", "[2,3,4] x [2,4,5]", f32(2, 3, 4), f32(2, 4, 5))
    m("matmul_3d_x_2d", "[2,3,4] x [4,5] (weights [in,out])", f32(2, 3, 4), f32(4, 5))
    m("matmul_4d_broadcast", "[2,1,3,4] x [1,3,4,2] -> [2,3,3,2]", f32(2, 1, 3, 4),
      f32(1, 3, 4, 2))
    m("matmul_4d_attention", "[1,2,3,4] x [1,2,4,3] (Q K^T)", f32(1, 2, 3, 4), f32(1, 2, 4, 3))
    m("matmul_rank_mismatch", "[2,2,3,4] x [4,5] -> [2,2,3,5]", f32(2, 2, 3, 4), f32(4, 5))
    m("matmul_1d_x_2d", "[4] x [4,3] -> [3]", f32(4), f32(4, 3))
    m("matmul_2d_x_1d", "[3,4] x [4] -> [3]", f32(3, 4), f32(4))
    m("matmul_1d_x_1d", "[4] x [4] -> rank 0", f32(4), f32(4))
    m("matmul_1d_x_3d", "[4] x [2,4,3] -> [2,3]", f32(4), f32(2, 4, 3))
    m("matmul_k0", "K=0: [2,0] x [0,3] -> zeros [2,3]", np.zeros((2, 0), F32),
      np.zeros((0, 3), F32))
    m("matmul_m0", "M=0: [0,4] x [4,3] -> [0,3]", np.zeros((0, 4), F32), f32(4, 3))
    m("matmul_int64", "int64 [2,3] x [3,2]", ints(2, 3), ints(3, 2), tol=EXACT)


def softmax_cases():
    x3 = f32(2, 3, 4, lo=-3, hi=3)
    new("softmax_op11_axis1_3d")
    case("Softmax", 11, "opset 11 axis=1 on [2,3,4]: coerced to 2-D [2,12], normalised over 12",
         N("Softmax", ["x"], ["y"], axis=1), inputs=[("x", x3)])
    new("softmax_op11_default_axis")
    case("Softmax", 11, "opset 11 default axis=1 on [2,3,4] (same as above)",
         N("Softmax", ["x"], ["y"]), inputs=[("x", x3)])
    new("softmax_op11_axis_neg1")
    case("Softmax", 11, "opset 11 axis=-1 on [2,3,4] (coerce to [6,4])",
         N("Softmax", ["x"], ["y"], axis=-1), inputs=[("x", x3)])
    new("softmax_op13_axis1_3d")
    case("Softmax", 13, "opset 13 axis=1 on [2,3,4]: single-axis softmax over dim 1",
         N("Softmax", ["x"], ["y"], axis=1), inputs=[("x", x3)])
    new("softmax_op13_default")
    case("Softmax", 13, "opset 13 default axis -1", N("Softmax", ["x"], ["y"]),
         inputs=[("x", x3)])
    new("softmax_op13_4d")
    case("Softmax", 13, "attention scores [1,2,3,5] axis -1", N("Softmax", ["x"], ["y"], axis=-1),
         inputs=[("x", f32(1, 2, 3, 5, lo=-4, hi=4))])
    new("softmax_large_values")
    case("Softmax", 13, "large values 1000..1003 need max subtraction",
         N("Softmax", ["x"], ["y"], axis=-1),
         inputs=[("x", a([[1000.0, 1001.0, 1002.0, 1003.0], [-1000.0, 0.0, 1000.0, 50.0]], F32))])
    new("softmax_masked_lowest")
    xm = f32(2, 4)
    xm[0, 2:] = FLOAT_LOWEST
    xm[1, 3] = -np.inf
    case("Softmax", 13, "masked entries: float32 lowest and -inf (row never fully masked)",
         N("Softmax", ["x"], ["y"], axis=-1), inputs=[("x", xm)])


def trilu_cases():
    new("trilu_upper_default")
    unary("Trilu", 14, "upper, k omitted", f32(4, 4), tol=EXACT)
    new("trilu_lower")
    unary("Trilu", 14, "lower (upper=0)", f32(4, 4), tol=EXACT, upper=0)
    new("trilu_upper_k1_nonsquare")
    case("Trilu", 14, "upper k=1 on [3,5] (causal mask construction)",
         N("Trilu", ["x", "k"], ["y"]), inputs=[("x", f32(3, 5))], inits=[("k", a(1, I64))],
         tol=EXACT)
    new("trilu_lower_kneg_batched")
    case("Trilu", 14, "lower k=-1 on [2,3,3]", N("Trilu", ["x", "k"], ["y"], upper=0),
         inputs=[("x", f32(2, 3, 3))], inits=[("k", a(-1, I64))], tol=EXACT)
    new("trilu_int64")
    case("Trilu", 14, "int64 upper k=0 as runtime input", N("Trilu", ["x", "k"], ["y"]),
         inputs=[("x", ints(3, 3)), ("k", a(0, I64))], tol=EXACT)


def scatternd_cases():
    new("scatternd_1d")
    case("ScatterND", 13, "1-D elements", N("ScatterND", ["d", "i", "u"], ["y"]),
         inputs=[("d", f32(8)), ("i", a([[4], [3], [1], [7]], I64)), ("u", f32(4))], tol=EXACT)
    new("scatternd_rows")
    case("ScatterND", 13, "replace rows of [4,3]", N("ScatterND", ["d", "i", "u"], ["y"]),
         inputs=[("d", f32(4, 3)), ("i", a([[0], [2]], I64)), ("u", f32(2, 3))], tol=EXACT)
    new("scatternd_elements_2d")
    case("ScatterND", 13, "full-index element updates in [2,3,4]",
         N("ScatterND", ["d", "i", "u"], ["y"]),
         inputs=[("d", f32(2, 3, 4)), ("i", a([[0, 1, 2], [1, 2, 3]], I64)), ("u", f32(2))],
         tol=EXACT)
    new("scatternd_add")
    case("ScatterND", 16, "opset 16 reduction=add with duplicate indices",
         N("ScatterND", ["d", "i", "u"], ["y"], reduction="add"),
         inputs=[("d", f32(4)), ("i", a([[1], [1], [3]], I64)), ("u", f32(3))])


def cumsum_cases():
    def c(nm, desc, x, axis, tol=EXACT, **attrs):
        new(nm)
        case("CumSum", 14, desc, N("CumSum", ["x", "axis"], ["y"], **attrs), inputs=[("x", x)],
             inits=[("axis", a(axis, I64))], tol=tol)

    c("cumsum_1d_float", "1-D float axis 0", f32(6), 0, tol=FLOAT)
    c("cumsum_int64_axis1", "attention_mask cumsum for position_ids, [2,5] axis 1",
      a([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]], I64), 1)
    c("cumsum_exclusive", "exclusive=1", a([1, 2, 3, 4], I64), 0, exclusive=1)
    c("cumsum_reverse", "reverse=1", a([1, 2, 3, 4], I64), 0, reverse=1)
    c("cumsum_neg_axis_excl_rev", "axis -1, exclusive and reverse", f32(2, 4), -1, tol=FLOAT,
      exclusive=1, reverse=1)
    new("cumsum_int32_axis")
    case("CumSum", 14, "axis given as int32", N("CumSum", ["x", "axis"], ["y"]),
         inputs=[("x", f32(3, 2))], inits=[("axis", a(0, I32))])


def split_cases():
    new("split_op13_sizes")
    case("Split", 13, "opset 13 split input [2,4] on axis 1", N("Split", ["x", "s"], ["a", "b"],
                                                                 axis=1),
         inputs=[("x", f32(2, 6))], inits=[("s", a([2, 4], I64))], tol=EXACT)
    new("split_op13_equal")
    case("Split", 13, "opset 13 no split input -> equal parts (3 outputs)",
         N("Split", ["x"], ["a", "b", "c"], axis=0), inputs=[("x", f32(6, 2))], tol=EXACT)
    new("split_op11_attr")
    case("Split", 11, "opset 11 split attribute [1,2], axis -1",
         N("Split", ["x"], ["a", "b"], axis=-1, split=[1, 2]), inputs=[("x", f32(2, 3))],
         tol=EXACT)
    new("split_op18_num_outputs_uneven")
    case("Split", 18, "opset 18 num_outputs=3 on dim 7 -> 3,3,1",
         N("Split", ["x"], ["a", "b", "c"], axis=1, num_outputs=3), inputs=[("x", f32(2, 7))],
         tol=EXACT)
    new("split_zero_size_part")
    case("Split", 13, "split [0,3] includes an empty output", N("Split", ["x", "s"], ["a", "b"]),
         inputs=[("x", f32(3, 2))], inits=[("s", a([0, 3], I64))], tol=EXACT)


def tile_cases():
    new("tile_2d")
    case("Tile", 13, "[2,3] repeats [2,1]", N("Tile", ["x", "r"], ["y"]),
         inputs=[("x", f32(2, 3))], inits=[("r", a([2, 1], I64))], tol=EXACT)
    new("tile_3d_int64")
    case("Tile", 13, "int64 [1,2,2] repeats [3,1,2]", N("Tile", ["x", "r"], ["y"]),
         inputs=[("x", ints(1, 2, 2)), ("r", a([3, 1, 2], I64))], tol=EXACT)
    new("tile_zero_repeat")
    case("Tile", 13, "repeat 0 -> empty", N("Tile", ["x", "r"], ["y"]),
         inputs=[("x", f32(2, 2))], inits=[("r", a([0, 2], I64))], tol=EXACT)


def mod_cases():
    new("mod_int64_python")
    binary("Mod", 13, "int64 fmod=0: result takes the sign of the divisor",
           a([7, -7, 7, -7, 0, 5], I64), a([3, 3, -3, -3, 3, 5], I64), tol=EXACT)
    new("mod_int64_fmod")
    binary("Mod", 13, "int64 fmod=1: result takes the sign of the dividend",
           a([7, -7, 7, -7], I64), a([3, 3, -3, -3], I64), tol=EXACT, fmod=1)
    new("mod_float_fmod")
    binary("Mod", 13, "float fmod=1 (C fmod)", a([5.5, -5.5, 5.5, -5.5, 1.0], F32),
           a([2.0, 2.0, -2.0, -2.0, 0.3], F32), fmod=1)
    new("mod_int64_broadcast")
    binary("Mod", 13, "int64 [2,3] mod scalar", ints(2, 3, lo=-10, hi=10), a(4, I64), tol=EXACT)


def rmsnorm_cases():
    def rn(nm, desc, x, scale, **attrs):
        new(nm)
        case("RMSNormalization", 23, desc, N("RMSNormalization", ["x", "scale"], ["y"], **attrs),
             inputs=[("x", x)], inits=[("scale", scale)])

    rn("rmsnorm_last_axis", "axis -1 (default), default epsilon 1e-5, scale [8]", f32(2, 3, 8),
       f32(8, lo=0.5, hi=1.5))
    rn("rmsnorm_eps", "epsilon=1e-6 explicit, axis=-1", f32(1, 4, 6), f32(6, lo=0.5, hi=1.5),
       epsilon=1e-6, axis=-1)
    rn("rmsnorm_big_eps", "epsilon=0.5 (visible effect)", f32(2, 5, lo=-0.5, hi=0.5),
       f32(5, lo=0.5, hi=1.5), epsilon=0.5)
    rn("rmsnorm_axis1", "axis=1 on [2,3,4]: normalise over the last two dims, scale [3,4]",
       f32(2, 3, 4), f32(3, 4, lo=0.5, hi=1.5), axis=1)
    rn("rmsnorm_scale_broadcast", "axis=1, scale [4] broadcast over normalised dims [3,4]",
       f32(2, 3, 4), f32(4, lo=0.5, hi=1.5), axis=1)
    rn("rmsnorm_stash_type_float", "stash_type=1 explicit, 2-D input", f32(3, 8),
       f32(8, lo=0.5, hi=1.5), stash_type=1)


def rope_cache(positions, rot_dim, base=10000.0):
    inv = 1.0 / (base ** (np.arange(0, rot_dim, 2, dtype=np.float64) / rot_dim))
    ang = np.asarray(positions, np.float64)[..., None] * inv
    return np.cos(ang).astype(F32), np.sin(ang).astype(F32)


def rotary_cases():
    def ro(nm, desc, x, cos, sin, pos=None, **attrs):
        new(nm)
        names = ["x", "cos", "sin"] + (["pos"] if pos is not None else [])
        inputs = [("x", x)] + ([("pos", pos)] if pos is not None else [])
        case("RotaryEmbedding", 23, desc, N("RotaryEmbedding", names, ["y"], **attrs),
             inputs=inputs, inits=[("cos", cos), ("sin", sin)])

    max_pos = 16
    c8, s8 = rope_cache(np.arange(max_pos), 8)
    pos = a([[3, 4, 5]], I64)
    ro("rotary_4d_posids", "4D [b=1,heads=2,s=3,d=8], cache [16,4] + position_ids",
       f32(1, 2, 3, 8), c8, s8, pos)
    ro("rotary_4d_interleaved", "4D interleaved=1 with position_ids", f32(1, 2, 3, 8), c8, s8, pos,
       interleaved=1)
    ro("rotary_3d_num_heads", "3D [b=2,s=3,hidden=16] num_heads=2, position_ids [2,3]",
       f32(2, 3, 16), c8, s8, a([[0, 1, 2], [5, 6, 7]], I64), num_heads=2)
    cb, sb = rope_cache(a([[2, 3, 4]], I64), 8)
    ro("rotary_4d_no_posids", "4D without position_ids: cache [b=1,s=3,4]", f32(1, 2, 3, 8), cb,
       sb)
    c4, s4 = rope_cache(np.arange(max_pos), 4)
    ro("rotary_partial_dim", "rotary_embedding_dim=4 of head 8 (rest passes through)",
       f32(1, 2, 3, 8), c4, s4, pos, rotary_embedding_dim=4)
    cb4, sb4 = rope_cache(a([[0, 1], [7, 9]], I64), 4)
    ro("rotary_3d_interleaved_partial_no_posids", "3D num_heads=2 head 6, rot dim 4, "
       "interleaved, cache [2,2,2]", f32(2, 2, 12), cb4, sb4, num_heads=2, interleaved=1,
       rotary_embedding_dim=4)


def attention_cases():
    def at(nm, desc, ins, outs=("y",), **attrs):
        new(nm)
        names = [n for n, _ in ins]
        node_in = []
        order = ["q", "k", "v", "mask", "past_k", "past_v"]
        last = max(order.index(n) for n in names)
        for n in order[: last + 1]:
            node_in.append(n if n in names else "")
        case("Attention", 23, desc, N("Attention", node_in, list(outs), **attrs),
             inputs=[(n, v) for n, v in ins])

    b, sq, skv, d = 1, 3, 3, 4
    at("attention_4d_mha", "4D Q/K/V [1,2,3,4], no mask",
       [("q", f32(b, 2, sq, d)), ("k", f32(b, 2, skv, d)), ("v", f32(b, 2, skv, d))])
    at("attention_4d_gqa", "4D GQA: q heads 4, kv heads 2",
       [("q", f32(2, 4, sq, d)), ("k", f32(2, 2, skv, d)), ("v", f32(2, 2, skv, d))])
    at("attention_3d_gqa", "3D inputs [b,s,heads*d] with q_num_heads=4 kv_num_heads=2",
       [("q", f32(1, 3, 16)), ("k", f32(1, 3, 8)), ("v", f32(1, 3, 8))],
       q_num_heads=4, kv_num_heads=2)
    at("attention_causal_sq_lt_skv", "is_causal=1 with seq_q=2 < seq_kv=5",
       [("q", f32(1, 2, 2, d)), ("k", f32(1, 2, 5, d)), ("v", f32(1, 2, 5, d))], is_causal=1)
    at("attention_causal_square", "is_causal=1, seq_q == seq_kv == 4, GQA 4/2",
       [("q", f32(1, 4, 4, d)), ("k", f32(1, 2, 4, d)), ("v", f32(1, 2, 4, d))], is_causal=1)
    bm = np.ones((3, 5), BOOL)
    bm[:, 0] = False
    bm[0, 4] = False
    at("attention_bool_mask", "bool mask [sq=3, skv=5] broadcast over batch and heads",
       [("q", f32(2, 2, 3, d)), ("k", f32(2, 2, 5, d)), ("v", f32(2, 2, 5, d)), ("mask", bm)])
    fm = np.zeros((2, 1, 1, 4), F32)
    fm[0, ..., 3] = FLOAT_LOWEST
    fm[1, ..., :2] = -1.5
    at("attention_float_mask", "float additive mask [b=2,1,1,skv=4] broadcast over heads AND "
       "query rows (padding style; allowed by the spec)",
       [("q", f32(2, 2, 3, d)), ("k", f32(2, 2, 4, d)), ("v", f32(2, 2, 4, d)), ("mask", fm)])
    fm3 = np.zeros((2, 1, 3, 4), F32)
    fm3[0, :, :, 3] = FLOAT_LOWEST
    fm3[1, :, 0, 1:] = -2.0
    at("attention_float_mask_heads_broadcast", "float additive mask [b=2,1,sq=3,skv=4] "
       "broadcast over heads",
       [("q", f32(2, 2, 3, d)), ("k", f32(2, 2, 4, d)), ("v", f32(2, 2, 4, d)), ("mask", fm3)])
    fm2 = np.zeros((3, 4), F32)
    fm2[0, 1:] = FLOAT_LOWEST
    fm2[1, 2:] = -1.0
    at("attention_float_mask_2d", "float additive mask [sq=3, skv=4], GQA 4/2",
       [("q", f32(1, 4, 3, d)), ("k", f32(1, 2, 4, d)), ("v", f32(1, 2, 4, d)), ("mask", fm2)])
    bfull = np.ones((1, 1, 2, 3), BOOL)
    bfull[0, 0, 1, :] = False
    at("attention_bool_mask_full_row", "bool mask with one fully-masked query row (spec errata: "
       "zero output row, not NaN)",
       [("q", f32(1, 2, 2, d)), ("k", f32(1, 2, 3, d)), ("v", f32(1, 2, 3, d)), ("mask", bfull)])
    bm2 = np.ones((2, 5), BOOL)
    bm2[:, 0] = False
    at("attention_causal_and_bool_mask_past", "is_causal=1 + bool mask [sq=2,total=5] + past 3",
       [("q", f32(1, 2, 2, d)), ("k", f32(1, 2, 2, d)), ("v", f32(1, 2, 2, d)), ("mask", bm2),
        ("past_k", f32(1, 2, 3, d)), ("past_v", f32(1, 2, 3, d))],
       outs=("y", "present_k", "present_v"), is_causal=1)
    at("attention_3d_past", "3D Q/K/V (q_num_heads=2, kv_num_heads=1) with 4D past [1,1,2,4]",
       [("q", f32(1, 2, 8)), ("k", f32(1, 2, 4)), ("v", f32(1, 2, 4)),
        ("past_k", f32(1, 1, 2, d)), ("past_v", f32(1, 1, 2, d))],
       outs=("y", "present_k", "present_v"), q_num_heads=2, kv_num_heads=1)
    at("attention_past_kv", "past_key/past_value [1,2,3,4] + new kv 2 -> present [1,2,5,4]",
       [("q", f32(1, 4, 2, d)), ("k", f32(1, 2, 2, d)), ("v", f32(1, 2, 2, d)),
        ("past_k", f32(1, 2, 3, d)), ("past_v", f32(1, 2, 3, d))],
       outs=("y", "present_k", "present_v"))
    at("attention_past_kv_causal", "decode step: past 3, new 1, is_causal=1, presents out",
       [("q", f32(1, 2, 1, d)), ("k", f32(1, 2, 1, d)), ("v", f32(1, 2, 1, d)),
        ("past_k", f32(1, 2, 3, d)), ("past_v", f32(1, 2, 3, d))],
       outs=("y", "present_k", "present_v"), is_causal=1)
    at("attention_past_kv_mask", "past 2 + new 2 with float mask [sq=2, total=4]",
       [("q", f32(1, 2, 2, d)), ("k", f32(1, 2, 2, d)), ("v", f32(1, 2, 2, d)),
        ("mask", a([[0, 0, 0, FLOAT_LOWEST], [0, 0, 0, 0]], F32)),
        ("past_k", f32(1, 2, 2, d)), ("past_v", f32(1, 2, 2, d))],
       outs=("y", "present_k", "present_v"))
    at("attention_scale", "scale=0.1 instead of 1/sqrt(d)",
       [("q", f32(1, 2, 3, d)), ("k", f32(1, 2, 3, d)), ("v", f32(1, 2, 3, d))], scale=0.1)
    at("attention_softcap", "softcap=2.0",
       [("q", f32(1, 2, 3, d, lo=-3, hi=3)), ("k", f32(1, 2, 3, d, lo=-3, hi=3)),
        ("v", f32(1, 2, 3, d))], softcap=2.0)
    at("attention_v_head_differs", "v head size 6 != qk head size 4",
       [("q", f32(1, 2, 3, d)), ("k", f32(1, 2, 3, d)), ("v", f32(1, 2, 3, 6))])


def pattern_cases():
    """Tiny multi-node graphs as optimum/TorchScript exports write them."""
    new("pattern_rmsnorm_decomposed")
    eps = numpy_helper.from_array(a(1e-6, F32), "eps_v")
    case("Pow+ReduceMean+Add+Sqrt+Div+Mul", 13, "RMSNorm as primitive ops",
         [N("Pow", ["x", "two"], ["sq"]), N("ReduceMean", ["sq"], ["var"], axes=[-1]),
          N("Constant", [], ["eps"], value=eps), N("Add", ["var", "eps"], ["ve"]),
          N("Sqrt", ["ve"], ["rms"]), N("Div", ["x", "rms"], ["xn"]),
          N("Mul", ["w", "xn"], ["y"])],
         inputs=[("x", f32(1, 3, 8))],
         inits=[("two", a(2.0, F32)), ("w", f32(8, lo=0.5, hi=1.5))])
    new("pattern_rotate_half")
    case("Slice+Neg+Concat", 13, "rotate_half: cat(-x[..., d/2:], x[..., :d/2])",
         [N("Slice", ["x", "s0", "e0", "ax"], ["x1"]),
          N("Slice", ["x", "s1", "e1", "ax"], ["x2"]),
          N("Neg", ["x2"], ["nx2"]), N("Concat", ["nx2", "x1"], ["y"], axis=-1)],
         inputs=[("x", f32(1, 2, 3, 8))],
         inits=[("s0", a([0], I64)), ("e0", a([4], I64)), ("s1", a([4], I64)),
                ("e1", a([INT64_MAX], I64)), ("ax", a([-1], I64))], tol=EXACT)
    new("pattern_shape_plumbing")
    case("Shape+Gather+Unsqueeze+Concat+Reshape", 13,
         "reshape x [b,s,8] to [b,s,2,4] via Shape/Gather/Unsqueeze/Concat",
         [N("Shape", ["x"], ["shp"]),
          N("Gather", ["shp", "i0"], ["b"], axis=0), N("Gather", ["shp", "i1"], ["s"], axis=0),
          N("Unsqueeze", ["b", "ax0"], ["bu"]), N("Unsqueeze", ["s", "ax0"], ["su"]),
          N("Concat", ["bu", "su", "tail"], ["newshape"], axis=0),
          N("Reshape", ["x", "newshape"], ["y"])],
         inputs=[("x", f32(2, 3, 8))],
         inits=[("i0", a(0, I64)), ("i1", a(1, I64)), ("ax0", a([0], I64)),
                ("tail", a([2, 4], I64))], tol=EXACT)
    new("pattern_causal_mask")
    case("Range+Unsqueeze+LessOrEqual+Where", 16, "causal additive mask from a sequence length",
         [N("Range", ["zero", "n", "one"], ["r"]),
          N("Unsqueeze", ["r", "ax0"], ["row"]), N("Unsqueeze", ["r", "ax1"], ["col"]),
          N("LessOrEqual", ["row", "col"], ["keep"]),
          N("Where", ["keep", "fzero", "lowest"], ["y"])],
         inputs=[("n", a(4, I64))],
         inits=[("zero", a(0, I64)), ("one", a(1, I64)), ("ax0", a([0], I64)),
                ("ax1", a([1], I64)), ("fzero", a(0.0, F32)), ("lowest", a(FLOAT_LOWEST, F32))],
         tol=EXACT)


def typed_initializer_case():
    """Initializers stored in the typed repeated fields instead of raw_data."""
    new("typed_initializers")
    T = TensorProto

    def typed(name, dt, dims, field, values):
        t = T()
        t.name = name
        t.data_type = dt
        t.dims.extend(dims)
        getattr(t, field).extend(values)
        return t

    f16_bits = a([1.0, -2.5, 0.1, 65504.0], F16).view(np.uint16).astype(np.int32).tolist()
    # bfloat16 = upper 16 bits of the float32 pattern (values chosen to be exact in bf16)
    bf16_bits = (a([1.0, -2.5, 0.15625, 3.0e38], F32).view(np.uint32) >> 16).astype(
        np.int32).tolist()
    inits = [
        typed("w_float", T.FLOAT, [2, 2], "float_data", [1.5, -2.0, 0.25, 3.0]),
        typed("w_int64", T.INT64, [3], "int64_data", [-5, 0, 1 << 40]),
        typed("w_int32", T.INT32, [3], "int32_data", [-7, 0, 123456]),
        typed("w_int8", T.INT8, [4], "int32_data", [-128, -1, 0, 127]),
        typed("w_uint8", T.UINT8, [4], "int32_data", [0, 1, 128, 255]),
        typed("w_bool", T.BOOL, [3], "int32_data", [1, 0, 1]),
        typed("w_float16", T.FLOAT16, [4], "int32_data", f16_bits),
        typed("w_bfloat16", T.BFLOAT16, [4], "int32_data", bf16_bits),
        typed("w_double", T.DOUBLE, [2], "double_data", [0.1, -1e10]),
    ]
    nodes = [N("Add", ["x", "w_float"], ["y_float"])]
    outs = ["y_float"]
    for t in inits[1:]:
        out = "y_" + t.name[2:]
        nodes.append(N("Cast", [t.name], [out], to=T.FLOAT))
        outs.append(out)
    case("Cast/Add", 21, "initializers in float_data/int64_data/int32_data (int32, int8, uint8, "
         "bool, float16 bits, bfloat16 bits)/double_data; each output is Cast to float32",
         nodes, inputs=[("x", a([[0.0, 1.0], [2.0, 3.0]], F32))], inits=inits, outputs=outs,
         out_types=[F32] * len(outs), tol=EXACT)


ALL = [constant_cases, constant_of_shape_cases, shape_cases, gather_cases, gathernd_cases,
       unsqueeze_cases, squeeze_cases, reshape_cases, flatten_cases, transpose_cases,
       slice_cases, concat_cases, expand_cases, range_cases, cast_cases, identity_cases,
       where_cases, compare_cases, logical_cases, arith_cases, pow_cases, unary_math_cases,
       minmax_cases, reduce_cases, matmul_cases, softmax_cases, trilu_cases, scatternd_cases,
       cumsum_cases, split_cases, tile_cases, mod_cases, rmsnorm_cases, rotary_cases,
       attention_cases, pattern_cases, typed_initializer_case]


# ---------------------------------------------------------------------------------------------
# building and running


def np_to_onnx(dt) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dt))


def build_model(c) -> onnx.ModelProto:
    ginputs = [helper.make_tensor_value_info(n, np_to_onnx(v.dtype), list(v.shape))
               for n, v in c["inputs"]]
    inits = [t if isinstance(t, TensorProto) else numpy_helper.from_array(t[1], t[0])
             for t in c["inits"]]
    out_types = c["out_types"]
    if out_types is None:
        probe = helper.make_graph(c["nodes"], c["name"], ginputs, [], initializer=inits)
        pm = helper.make_model(probe, opset_imports=[helper.make_opsetid("", c["opset"])])
        inferred = onnx.shape_inference.infer_shapes(pm, strict_mode=False)
        types = {vi.name: vi.type.tensor_type.elem_type for vi in inferred.graph.value_info}
        elem = []
        for o in c["outputs"]:
            if types.get(o, 0) == 0:
                # Fallback: same type as the first data input.
                first = c["inputs"][0][1] if c["inputs"] else c["inits"][0][1]
                elem.append(np_to_onnx(first.dtype))
            else:
                elem.append(types[o])
    else:
        elem = [np_to_onnx(t) for t in out_types]
    goutputs = [helper.make_tensor_value_info(o, e, None) for o, e in zip(c["outputs"], elem)]
    graph = helper.make_graph(c["nodes"], c["name"], ginputs, goutputs, initializer=inits)
    opsets = [helper.make_opsetid("", c["opset"])]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="lpc-make_op_cases")
    model.ir_version = max(7, helper.find_min_ir_version_for(opsets, ignore_unknown=True))
    return model


def run_ort(model, feeds):
    so = ort.SessionOptions()
    so.log_severity_level = 4
    sess = ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    ro = ort.RunOptions()
    ro.log_severity_level = 4
    return sess.run(None, feeds, ro)


def check_reference(c, model, feeds, results) -> str | None:
    """Compare ORT with onnx.reference; return a note when they disagree (None = agree)."""
    from onnx.reference import ReferenceEvaluator

    try:
        with np.errstate(all="ignore"):
            ref = ReferenceEvaluator(model).run(None, feeds)
    except Exception as e:  # noqa: BLE001
        return "onnx.reference failed: " + str(e).strip().splitlines()[0][:200]
    for i, (g, r) in enumerate(zip(results, ref)):
        g, r = np.asarray(g), np.asarray(r)
        if g.shape != r.shape or g.dtype != r.dtype:
            return f"output {i}: onnx.reference gives {r.dtype}{list(r.shape)}"
        if g.dtype.kind == "f":
            if not np.allclose(g, r, atol=max(c["tol"]["atol"], 1e-5),
                               rtol=max(c["tol"]["rtol"], 1e-5), equal_nan=True):
                err = float(np.nanmax(np.abs(g.astype(np.float64) - r)))
                return f"output {i}: onnx.reference differs (max abs diff {err:.3g})"
        elif not np.array_equal(g, r):
            return f"output {i}: onnx.reference differs"
    return None


def main() -> int:
    check = "--check-reference" in sys.argv[1:]
    ort.set_default_logger_severity(3)
    for fn in ALL:
        fn()
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    manifest = {"generator": GENERATOR, "onnx": onnx.__version__,
                "onnxruntime": ort.__version__, "numpy": np.__version__, "cases": []}
    skipped = []
    for c in CASES:
        d = OUT / c["name"]
        (d / "inputs").mkdir(parents=True)
        model = build_model(c)
        onnx.save(model, d / "model.onnx")
        in_files = []
        for i, (_, v) in enumerate(c["inputs"]):
            np.save(d / "inputs" / f"{i}.npy", v, allow_pickle=False)
            in_files.append(f"inputs/{i}.npy")
        entry = {"name": c["name"], "op": c["op"], "opset": c["opset"],
                 "description": c["description"], "inputs": in_files,
                 "input_names": [n for n, _ in c["inputs"]], "outputs": [],
                 "output_names": list(c["outputs"]), "atol": c["tol"]["atol"],
                 "rtol": c["tol"]["rtol"]}
        try:
            results = run_ort(model, {n: v for n, v in c["inputs"]})
        except Exception as e:  # noqa: BLE001 - ORT raises several exception types
            msg = str(e).strip().splitlines()[0]
            m = re.search(r"\) (\S[^()]*\(?.*? was false\..*)$", msg)
            reason = f"onnxruntime {ort.__version__} CPU rejects it: " + (m.group(1) if m else msg)[:300]
            entry["skipped_reason"] = reason
            skipped.append((c["name"], reason))
        else:
            (d / "outputs").mkdir()
            for i, r in enumerate(results):
                r = np.asarray(r)
                np.save(d / "outputs" / f"{i}.npy", r, allow_pickle=False)
                entry["outputs"].append(f"outputs/{i}.npy")
            if check:
                note = check_reference(c, model, {n: v for n, v in c["inputs"]}, results)
                if note:
                    print(f"  reference check {c['name']}: {note}", file=sys.stderr)
        manifest["cases"].append(entry)
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    n_ok = len(CASES) - len(skipped)
    print(f"{len(CASES)} cases, {n_ok} with goldens, {len(skipped)} skipped", file=sys.stderr)
    for n, r in skipped:
        print(f"  skipped {n}: {r}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
