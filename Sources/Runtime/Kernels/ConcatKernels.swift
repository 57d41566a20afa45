import Graph
import TensorCore

/// Concat and its inverse Split: both view tensors as [outer, dim(axis) · inner] blocks and move
/// each input's (or output's) contiguous chunk of a block with one memcpy.
enum ConcatKernels {
    static func register(into table: inout [String: Kernel]) {
        table["Concat"] = concat
        table["Split"] = split
    }

    /// inputs: [… a_i …] with equal rank and equal dims off the axis → [… Σ a_i …].
    @Sendable static func concat(_ ctx: KernelContext) throws -> [Tensor] {
        let inputs = try ctx.inputs.indices.map { i throws(KernelError) in try ctx.input(i) }
        guard let first = inputs.first else { throw KernelError("Concat needs at least one input") }
        guard let rawAxis = ctx.node.int("axis") else { throw KernelError("Concat needs the axis attribute") }
        guard first.rank >= 1 else { throw KernelError("Concat inputs must have rank >= 1, got a scalar") }
        let axis = try normalizedAxis(rawAxis, rank: first.rank)
        var shape = first.shape
        shape[axis] = 0
        for (i, input) in inputs.enumerated() {
            guard input.dtype == first.dtype else {
                throw KernelError("Concat input #\(i) is \(input.dtype), input #0 is \(first.dtype)")
            }
            guard input.rank == first.rank,
                  input.shape.indices.allSatisfy({ $0 == axis || input.shape[$0] == first.shape[$0] }) else {
                throw KernelError("Concat input #\(i) has shape \(input.shape), incompatible with input #0 \(first.shape) on axis \(axis)")
            }
            shape[axis] += input.shape[axis]
        }
        let result = try ShapeSupport.output(first.dtype, shape)
        guard result.count > 0 else { return [result] }
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *) * first.dtype.size
        let outputBlock = shape[axis] * inner
        var column = 0  // byte offset of the current input's chunk inside an output block
        for input in inputs {
            let chunk = input.shape[axis] * inner
            if chunk > 0 {
                let source = UnsafeRawPointer(input.raw)
                for o in 0..<outer {
                    (result.raw + o * outputBlock + column).copyMemory(from: source + o * chunk, byteCount: chunk)
                }
            }
            column += chunk
        }
        return [result]
    }

    /// data: [… d …] → one output per node output, [… s_i …] with Σ s_i = d. Sizes come from the
    /// `split` input (opset 13+) or attribute (before 13); else `num_outputs` (opset 18) or the
    /// output count gives equal parts of ceil(d / n), the last one smaller.
    @Sendable static func split(_ ctx: KernelContext) throws -> [Tensor] {
        let input = try ctx.input(0)
        guard input.rank >= 1 else { throw KernelError("Split input must have rank >= 1, got a scalar") }
        let axis = try normalizedAxis(ctx.node.int("axis") ?? 0, rank: input.rank)
        let dim = input.shape[axis]
        let outputCount = ctx.node.outputs.count
        guard outputCount >= 1 else { throw KernelError("Split has no outputs") }
        var sizes: [Int]
        if ctx.opset >= 13, let splitInput = ctx.optionalInput(1) {
            sizes = try ShapeSupport.integerList(splitInput, "Split split input")
        } else if ctx.opset < 13, let attribute = ctx.node.ints("split") {
            sizes = attribute
        } else {
            let parts = ctx.opset >= 18 ? (ctx.node.int("num_outputs") ?? outputCount) : outputCount
            guard parts == outputCount else {
                throw KernelError("Split num_outputs \(parts) differs from the node's \(outputCount) outputs")
            }
            if ctx.opset < 18 && dim % parts != 0 {
                throw KernelError("Split cannot divide axis \(axis) of size \(dim) into \(parts) equal parts")
            }
            let chunk = (dim + parts - 1) / parts
            sizes = (0..<parts).map { max(0, min(chunk, dim - $0 * chunk)) }
        }
        guard sizes.count == outputCount else {
            throw KernelError("Split sizes \(sizes) give \(sizes.count) parts for \(outputCount) outputs")
        }
        guard sizes.allSatisfy({ $0 >= 0 }), sizes.reduce(0, +) == dim else {
            throw KernelError("Split sizes \(sizes) do not add up to axis \(axis) of size \(dim) in \(input.shape)")
        }
        let outer = input.shape[..<axis].reduce(1, *)
        let inner = input.shape[(axis + 1)...].reduce(1, *) * input.dtype.size
        let inputBlock = dim * inner
        var column = 0
        var results: [Tensor] = []
        for size in sizes {
            var shape = input.shape
            shape[axis] = size
            let result = Tensor(uninitialized: input.dtype, shape: shape)
            let chunk = size * inner
            if chunk > 0 {
                let source = UnsafeRawPointer(input.raw)
                for o in 0..<outer {
                    (result.raw + o * chunk).copyMemory(from: source + o * inputBlock + column, byteCount: chunk)
                }
            }
            column += chunk
            results.append(result)
        }
        return results
    }
}
