import Graph
import TensorCore

/// Transpose: output axis i is input axis perm[i]. Runs on raw elements through `StridedCopy`,
/// whose axis coalescing gives the fast paths: [0,2,1,3] (attention heads) keeps the last axis,
/// so it is a memcpy of head_dim-long rows; permutations that only move size-1 axes become a
/// zero-copy reshape; the rest is a strided gather along the output's last axis.
enum TransposeKernels {
    static func register(into table: inout [String: Kernel]) {
        table["Transpose"] = transpose
    }

    /// data: [d0, …, d(n-1)] → [d(perm[0]), …, d(perm[n-1])]; perm defaults to reversed axes.
    @Sendable static func transpose(_ ctx: KernelContext) throws -> [Tensor] {
        let input = try ctx.input(0)
        let rank = input.rank
        let perm = ctx.node.ints("perm") ?? Array((0..<rank).reversed())
        guard perm.count == rank else {
            throw KernelError("Transpose perm \(perm) has \(perm.count) entries for an input of rank \(rank) \(input.shape)")
        }
        let axes = try ShapeSupport.axes(perm, rank: rank, what: "Transpose perm")
        return [permuted(input, axes)]
    }

    /// `input` with its axes permuted (`perm` already validated: a permutation of 0..<rank).
    static func permuted(_ input: Tensor, _ perm: [Int]) -> Tensor {
        let shape = perm.map { input.shape[$0] }
        // Only size-1 axes move: the bytes are already in output order.
        let moved = perm.filter { input.shape[$0] != 1 }
        if moved == moved.sorted() { return input.reshaped(shape) }
        let inputStrides = input.strides
        let result = Tensor(uninitialized: input.dtype, shape: shape)
        StridedCopy.copy(from: input.raw, offset: 0, strides: perm.map { inputStrides[$0] }, shape: shape,
                         elementSize: input.dtype.size, to: result.raw)
        return result
    }
}
