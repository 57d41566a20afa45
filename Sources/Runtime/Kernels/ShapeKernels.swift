import Graph
import TensorCore

/// Data-movement kernels: constants, shape queries, zero-copy reshapes, and (from their own files)
/// gather, slice, transpose, concat/split, expand/tile, range, trilu, scatter and pad.
enum ShapeKernels {
    static func register(into table: inout [String: Kernel]) {
        table["Constant"] = constant
        table["ConstantOfShape"] = constantOfShape
        table["Shape"] = shape
        table["Size"] = size
        table["Identity"] = { ctx in [try ctx.input(0)] }
        table["Unsqueeze"] = unsqueeze
        table["Squeeze"] = squeeze
        table["Reshape"] = reshape
        table["Flatten"] = flatten
        GatherKernels.register(into: &table)
        TransposeKernels.register(into: &table)
        SliceKernels.register(into: &table)
        ConcatKernels.register(into: &table)
        ShapeExpandKernels.register(into: &table)
        ShapeRangeKernels.register(into: &table)
        ShapeTriluKernels.register(into: &table)
        ScatterKernels.register(into: &table)
        ShapePadKernels.register(into: &table)
    }

    // MARK: Constants

    /// Exactly one of value, value_float(s), value_int(s) (value_string(s), sparse_value unsupported).
    @Sendable static func constant(_ ctx: KernelContext) throws -> [Tensor] {
        let node = ctx.node
        let known = ["value", "value_float", "value_floats", "value_int", "value_ints",
                     "value_string", "value_strings", "sparse_value"]
        let present = known.filter { node.attributes[$0] != nil }
        guard present.count == 1, let name = present.first else {
            throw KernelError(present.isEmpty
                ? "Constant needs one of the attributes \(known.joined(separator: ", "))"
                : "Constant has several value attributes (\(present.joined(separator: ", "))); ONNX allows exactly one")
        }
        switch (name, node.attributes[name]) {
        case ("value", .tensor(let tensor)?):
            return [tensor]
        case ("value_float", .float(let value)?):
            return [Tensor(scalar: value)]
        case ("value_floats", .floats(let values)?):
            return [Tensor(values, shape: [values.count])]
        case ("value_floats", .float(let value)?):
            return [Tensor([value], shape: [1])]
        case ("value_int", .int(let value)?):
            return [Tensor(scalar: Int64(value))]
        case ("value_ints", .ints(let values)?):
            return [Tensor(values.map { Int64($0) }, shape: [values.count])]
        case ("value_ints", .int(let value)?):
            return [Tensor([Int64(value)], shape: [1])]
        case ("value_string", _), ("value_strings", _):
            throw KernelError("Constant with \(name): string tensors are not supported")
        case ("sparse_value", _):
            throw KernelError("Constant with sparse_value: sparse tensors are not supported; densify the constant when exporting")
        default:
            throw KernelError("Constant attribute \(name) has an unexpected type")
        }
    }

    /// shape: [rank] int64 (empty → scalar output); `value`: one-element tensor, default float32 0.
    @Sendable static func constantOfShape(_ ctx: KernelContext) throws -> [Tensor] {
        let dims = try ShapeSupport.integerList(try ctx.input(0), "ConstantOfShape shape input")
        let value = ctx.node.tensor("value") ?? Tensor(scalar: Float(0))
        guard value.count == 1 else {
            throw KernelError("ConstantOfShape value attribute must hold one element, got shape \(value.shape)")
        }
        let result = try ShapeSupport.output(value.dtype, dims)
        ShapeSupport.fill(result.raw, count: result.count, pattern: value.raw, elementSize: value.dtype.size)
        return [result]
    }

    // MARK: Shape queries

    /// Output: [end - start] int64. Opset 15 `start`/`end`: negatives count from the end, clamped.
    @Sendable static func shape(_ ctx: KernelContext) throws -> [Tensor] {
        let input = try ctx.input(0)
        let rank = input.rank
        func clampAxis(_ value: Int) -> Int {
            let adjusted = value < 0 ? ShapeSupport.clampedAdd(value, rank) : value
            return min(max(adjusted, 0), rank)
        }
        let start = clampAxis(ctx.node.int("start") ?? 0)
        let end = clampAxis(ctx.node.int("end") ?? rank)
        let dims = start < end ? input.shape[start..<end].map { Int64($0) } : []
        return [Tensor(dims, shape: [dims.count])]
    }

    /// Output: int64 scalar, the element count.
    @Sendable static func size(_ ctx: KernelContext) throws -> [Tensor] {
        [Tensor(scalar: Int64(try ctx.input(0).count))]
    }

    // MARK: Zero-copy reshapes

    /// Axes (attribute before opset 13, input from 13) index the output, whose rank is rank + |axes|.
    @Sendable static func unsqueeze(_ ctx: KernelContext) throws -> [Tensor] {
        let input = try ctx.input(0)
        let rawAxes: [Int]
        if ctx.opset >= 13 {
            rawAxes = try ShapeSupport.integerList(try ctx.input(1), "Unsqueeze axes")
        } else {
            guard let attribute = ctx.node.ints("axes") else { throw KernelError("Unsqueeze needs the axes attribute") }
            rawAxes = attribute
        }
        let outputRank = input.rank + rawAxes.count
        let axes = try ShapeSupport.axes(rawAxes, rank: outputRank, what: "Unsqueeze axes")
        var inserted = [Bool](repeating: false, count: outputRank)
        for axis in axes { inserted[axis] = true }
        var shape: [Int] = []
        var next = 0
        for axis in 0..<outputRank {
            if inserted[axis] { shape.append(1) } else { shape.append(input.shape[next]); next += 1 }
        }
        return [input.reshaped(shape)]
    }

    /// Without axes, drops every 1-dim; with axes, each named dim must be 1.
    @Sendable static func squeeze(_ ctx: KernelContext) throws -> [Tensor] {
        let input = try ctx.input(0)
        let rawAxes: [Int]?
        if ctx.opset >= 13 {
            rawAxes = try ctx.optionalInput(1).map { t throws(KernelError) in try ShapeSupport.integerList(t, "Squeeze axes") }
        } else {
            rawAxes = ctx.node.ints("axes")
        }
        guard let rawAxes else { return [input.reshaped(input.shape.filter { $0 != 1 })] }
        let axes = try ShapeSupport.axes(rawAxes, rank: input.rank, what: "Squeeze axes")
        for axis in axes where input.shape[axis] != 1 {
            throw KernelError("Squeeze axis \(axis) of shape \(input.shape) has size \(input.shape[axis]), not 1")
        }
        let shape = input.shape.enumerated().filter { !axes.contains($0.offset) }.map(\.element)
        return [input.reshaped(shape)]
    }

    /// 0 copies the input dim (unless allowzero=1), one -1 is inferred.
    @Sendable static func reshape(_ ctx: KernelContext) throws -> [Tensor] {
        let input = try ctx.input(0)
        let requested: [Int]
        if ctx.opset >= 5 {
            requested = try ShapeSupport.integerList(try ctx.input(1), "Reshape shape input")
        } else {
            guard let attribute = ctx.node.ints("shape") else { throw KernelError("Reshape needs the shape attribute") }
            requested = attribute
        }
        let allowZero = (ctx.node.int("allowzero") ?? 0) != 0
        return [input.reshaped(try reshapeTarget(input.shape, count: input.count, requested: requested, allowZero: allowZero))]
    }

    /// The shape `Reshape` gives an input of `shape` (`count` elements) for `requested`: 0 copies the
    /// input dim (unless allowZero), one -1 is inferred. Also used by the ops that absorb a Reshape.
    static func reshapeTarget(_ inputShape: [Int], count inputCount: Int, requested: [Int], allowZero: Bool) throws(KernelError) -> [Int] {
        var shape = requested
        var inferred: Int?
        for (axis, dim) in requested.enumerated() {
            switch dim {
            case -1:
                guard inferred == nil else { throw KernelError("Reshape shape \(requested) has more than one -1") }
                inferred = axis
            case 0 where !allowZero:
                guard axis < inputShape.count else {
                    throw KernelError("Reshape shape \(requested) copies dim \(axis) with 0, but the input \(inputShape) has rank \(inputShape.count)")
                }
                shape[axis] = inputShape[axis]
            case let d where d < -1:
                throw KernelError("Reshape shape \(requested) has an invalid dimension \(d)")
            default:
                break
            }
        }
        if allowZero && inferred != nil && requested.contains(0) {
            throw KernelError("Reshape shape \(requested) has both -1 and 0 with allowzero=1")
        }
        if let inferred {
            shape[inferred] = 1
            let known = try ShapeSupport.checkedCount(shape, what: "Reshape shape")
            guard known != 0, inputCount % known == 0 else {
                throw KernelError("Reshape cannot infer -1 in \(requested) for input \(inputShape) (\(inputCount) elements)")
            }
            shape[inferred] = inputCount / known
        }
        let count = try ShapeSupport.checkedCount(shape, what: "Reshape shape")
        guard count == inputCount else {
            throw KernelError("Reshape of \(inputShape) (\(inputCount) elements) to \(requested) → \(shape) (\(count) elements)")
        }
        return shape
    }

    /// Output: [prod(shape[..<axis]), prod(shape[axis...])]; axis in [-rank, rank].
    @Sendable static func flatten(_ ctx: KernelContext) throws -> [Tensor] {
        let input = try ctx.input(0)
        let raw = ctx.node.int("axis") ?? 1
        let axis = raw < 0 ? raw + input.rank : raw
        guard axis >= 0 && axis <= input.rank else {
            throw KernelError("Flatten axis \(raw) is out of range for rank \(input.rank)")
        }
        let outer = input.shape[..<axis].reduce(1, *)
        let inner = input.shape[axis...].reduce(1, *)
        return [input.reshaped([outer, inner])]
    }
}
