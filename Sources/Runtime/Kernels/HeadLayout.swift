import Graph
import TensorCore

/// The head split and merge around attention that `HeadLayoutAbsorption` folds into the `lpc` ops.
///
/// Split: `Transpose(Reshape(x, shape), perm = [0, 2, 1, 3])`. The Reshape only reinterprets x's
/// memory, so an op told `split_heads = 1` reads x's memory as [B, S, H, D] (the Reshape target,
/// computed here with Reshape's own rules from the `shape` input it now takes) and sees the
/// logical [B, H, S, D] tensor the Transpose made, without the copy.
/// Merge: `Reshape(Transpose(A, [0, 2, 1, 3]), shape)` of an attention output A [b, h, s, dv]: the
/// op writes [b, s, h, dv] memory and gives it the Reshape's target shape.
enum HeadLayout {
    /// The Reshape target of a head split: x's memory as [B, S, H, D] (`shape` must give rank 4).
    static func split(_ x: Tensor, shape: Tensor, allowZero: Bool, name: String) throws(KernelError) -> (b: Int, s: Int, h: Int, d: Int) {
        let requested = try ShapeSupport.integerList(shape, "\(name) head-split shape input")
        let dims = try ShapeKernels.reshapeTarget(x.shape, count: x.count, requested: requested, allowZero: allowZero)
        guard dims.count == 4 else {
            throw KernelError("\(name): the head split reshapes \(x.shape) to \(dims), not [batch, seq, heads, head_size]")
        }
        return (dims[0], dims[1], dims[2], dims[3])
    }

    /// Element strides (batch, head, seq) of the logical [B, H, S, D] view of split memory [B, S, H, D].
    static func splitStrides(_ b: Int, _ s: Int, _ h: Int, _ d: Int) -> (batch: Int, head: Int, seq: Int) {
        (s * h * d, d, h * d)
    }

    /// The output shape of a head merge: Reshape of [b, s, h, dv] to `shape`.
    static func merged(_ b: Int, _ s: Int, _ h: Int, _ dv: Int, shape: Tensor, allowZero: Bool) throws(KernelError) -> [Int] {
        let requested = try ShapeSupport.integerList(shape, "GQAttention head-merge shape input")
        let transposed = [b, s, h, dv]
        return try ShapeKernels.reshapeTarget(transposed, count: Tensor.elementCount(transposed), requested: requested, allowZero: allowZero)
    }
}
