import Graph
import TensorCore

/// Expand and Tile: both repeat the input, which `StridedCopy` does with stride-0 axes.
enum ShapeExpandKernels {
    static func register(into table: inout [String: Kernel]) {
        table["Expand"] = expand
        table["Tile"] = tile
    }

    /// input: [a…], shape: [n] int64 → broadcast(a…, shape) (bidirectional, so a 1 in `shape`
    /// keeps the input dim and `shape` may have a smaller rank than the input).
    @Sendable static func expand(_ ctx: KernelContext) throws -> [Tensor] {
        let input = try ctx.input(0)
        let requested = try ShapeSupport.integerList(try ctx.input(1), "Expand shape input")
        guard requested.allSatisfy({ $0 >= 0 }) else {
            throw KernelError("Expand shape \(requested) has a negative dimension")
        }
        let shape = try Broadcast.shape([input.shape, requested])
        if shape == input.shape { return [input] }
        let result = try ShapeSupport.output(input.dtype, shape)
        StridedCopy.copy(from: input.raw, offset: 0, strides: Broadcast.strides(of: input.shape, to: shape),
                         shape: shape, elementSize: input.dtype.size, to: result.raw)
        return [result]
    }

    /// input: [d0, …], repeats: [rank] int64 ≥ 0 → [d0·r0, …]. Seen as the input broadcast to
    /// [r0, d0, r1, d1, …], with stride 0 on each repeat axis.
    @Sendable static func tile(_ ctx: KernelContext) throws -> [Tensor] {
        let input = try ctx.input(0)
        let repeats = try ShapeSupport.integerList(try ctx.input(1), "Tile repeats")
        guard repeats.count == input.rank else {
            throw KernelError("Tile repeats \(repeats) must have one entry per input axis (\(input.shape))")
        }
        guard repeats.allSatisfy({ $0 >= 0 }) else { throw KernelError("Tile repeats \(repeats) has a negative entry") }
        var expandedShape: [Int] = [], strides: [Int] = []
        let inputStrides = input.strides
        for axis in 0..<input.rank {
            expandedShape += [repeats[axis], input.shape[axis]]
            strides += [0, inputStrides[axis]]
        }
        let count = try ShapeSupport.checkedCount(expandedShape, elementSize: input.dtype.size, what: "Tile output")
        let shape = (0..<input.rank).map { repeats[$0] * input.shape[$0] }
        if repeats.allSatisfy({ $0 == 1 }) { return [input] }
        let result = Tensor(uninitialized: input.dtype, shape: shape)
        if count > 0 {
            StridedCopy.copy(from: input.raw, offset: 0, strides: strides, shape: expandedShape,
                             elementSize: input.dtype.size, to: result.raw)
        }
        return [result]
    }
}
