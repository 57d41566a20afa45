import Graph
import TensorCore

/// Slice (opset 1–9 attributes starts/ends/axes; opset 10+ inputs starts, ends, axes, steps).
/// Bounds follow the spec exactly, with saturating arithmetic so INT64_MAX / INT64_MIN sentinels
/// never overflow. The copy goes through `StridedCopy`, so slices of whole rows are memcpys.
enum SliceKernels {
    static func register(into table: inout [String: Kernel]) {
        table["Slice"] = slice
    }

    /// The selected elements along one axis: `count` elements from `start`, `step` apart.
    struct AxisRange: Equatable {
        var start: Int
        var step: Int
        var count: Int
    }

    /// ONNX Slice bounds for one axis of size `dim`: negative start/end add `dim`; for step > 0
    /// both clamp to [0, dim]; for step < 0 start clamps to [0, dim-1] and end to [-1, dim-1].
    static func range(start rawStart: Int, end rawEnd: Int, step: Int, dim: Int) -> AxisRange {
        precondition(step != 0 && dim >= 0)
        // Adding a non-negative dim to a negative value cannot overflow.
        var start = rawStart < 0 ? rawStart + dim : rawStart
        var end = rawEnd < 0 ? rawEnd + dim : rawEnd
        let count: Int
        if step > 0 {
            start = min(max(start, 0), dim)
            end = min(max(end, 0), dim)
            count = end > start ? (end - start - 1) / step + 1 : 0
        } else {
            start = min(max(start, 0), dim - 1)
            end = min(max(end, -1), dim - 1)
            // step.magnitude: -Int.min would overflow.
            count = start > end ? Int(UInt(start - end - 1) / step.magnitude) + 1 : 0
        }
        return AxisRange(start: count > 0 ? start : 0, step: step, count: count)
    }

    /// data: [d…] → [count per axis]; starts, ends, axes, steps: [n] int32/int64.
    @Sendable static func slice(_ ctx: KernelContext) throws -> [Tensor] {
        let input = try ctx.input(0)
        let starts: [Int], ends: [Int], rawAxes: [Int]?, rawSteps: [Int]?
        if ctx.opset >= 10 {
            starts = try ShapeSupport.integerList(try ctx.input(1), "Slice starts")
            ends = try ShapeSupport.integerList(try ctx.input(2), "Slice ends")
            rawAxes = try ctx.optionalInput(3).map { t throws(KernelError) in try ShapeSupport.integerList(t, "Slice axes") }
            rawSteps = try ctx.optionalInput(4).map { t throws(KernelError) in try ShapeSupport.integerList(t, "Slice steps") }
        } else {
            guard let s = ctx.node.ints("starts"), let e = ctx.node.ints("ends") else {
                throw KernelError("Slice (opset \(ctx.opset)) needs the starts and ends attributes")
            }
            starts = s
            ends = e
            rawAxes = ctx.node.ints("axes")
            rawSteps = nil
        }
        guard starts.count == ends.count else {
            throw KernelError("Slice starts \(starts) and ends \(ends) differ in length")
        }
        let axes = try ShapeSupport.axes(rawAxes ?? Array(0..<starts.count), rank: input.rank, what: "Slice axes")
        let steps = rawSteps ?? [Int](repeating: 1, count: starts.count)
        guard axes.count == starts.count, steps.count == starts.count else {
            throw KernelError("Slice starts (\(starts.count)), ends (\(ends.count)), axes (\(axes.count)) and steps (\(steps.count)) must have the same length")
        }
        var ranges = input.shape.map { AxisRange(start: 0, step: 1, count: $0) }
        for (i, axis) in axes.enumerated() {
            guard steps[i] != 0 else { throw KernelError("Slice step for axis \(axis) is 0") }
            ranges[axis] = range(start: starts[i], end: ends[i], step: steps[i], dim: input.shape[axis])
        }
        return [sliced(input, ranges)]
    }

    /// A fresh tensor holding `input` restricted to `ranges` (one per axis, already clamped),
    /// or the input itself when the ranges select everything.
    static func sliced(_ input: Tensor, _ ranges: [AxisRange]) -> Tensor {
        let shape = ranges.map(\.count)
        let whole = zip(ranges, input.shape).allSatisfy { range, dim in
            range.count == dim && (range.start == 0 && range.step == 1 || dim <= 1)
        }
        if whole { return input }
        let result = Tensor(uninitialized: input.dtype, shape: shape)
        if result.count == 0 { return result }
        let inputStrides = input.strides
        var offset = 0
        var strides: [Int] = []
        for (axis, range) in ranges.enumerated() {
            offset += range.start * inputStrides[axis]
            // A single element needs no stride (and a huge step times a stride could overflow).
            strides.append(range.count > 1 ? range.step * inputStrides[axis] : 0)
        }
        StridedCopy.copy(from: input.raw, offset: offset, strides: strides, shape: shape,
                         elementSize: input.dtype.size, to: result.raw)
        return result
    }
}
