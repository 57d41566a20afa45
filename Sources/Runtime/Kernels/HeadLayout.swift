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
    static func split(_ x: Tensor, shape: Tensor, allowZero: Bool, name: StaticString) throws(KernelError) -> (b: Int, s: Int, h: Int, d: Int) {
        if let dims = fastSplit(x, shape: shape, allowZero: allowZero) { return dims }
        let requested = try ShapeSupport.integerList(shape, "\(name) head-split shape input")
        let dims = try ShapeKernels.reshapeTarget(x.shape, count: x.count, requested: requested, allowZero: allowZero)
        guard dims.count == 4 else {
            throw KernelError("\(name): the head split reshapes \(x.shape) to \(dims), not [batch, seq, heads, head_size]")
        }
        return (dims[0], dims[1], dims[2], dims[3])
    }

    /// `split` for the usual case (an int64 [4] shape with known positive dims, 0s copying x's and at
    /// most one -1) without arrays or messages: this runs per layer per decode step. nil sends
    /// everything else, errors included, to the general path.
    @inline(__always)
    private static func fastSplit(_ x: Tensor, shape: Tensor, allowZero: Bool) -> (b: Int, s: Int, h: Int, d: Int)? {
        guard shape.dtype == .int64, shape.rank == 1, shape.shape[0] == 4, !allowZero else { return nil }
        let p = shape.pointer(Int64.self)
        var dims = (Int(p[0]), Int(p[1]), Int(p[2]), Int(p[3]))
        func resolve(_ value: inout Int, _ axis: Int) -> Bool {
            if value == 0 { guard axis < x.rank else { return false }; value = x.shape[axis] }
            return value >= -1
        }
        guard resolve(&dims.0, 0), resolve(&dims.1, 1), resolve(&dims.2, 2), resolve(&dims.3, 3) else { return nil }
        var known = 1, inferred = -1
        for (axis, value) in [dims.0, dims.1, dims.2, dims.3].enumerated() {
            if value == -1 {
                guard inferred < 0 else { return nil }
                inferred = axis
                continue
            }
            let (product, overflow) = known.multipliedReportingOverflow(by: value)
            guard !overflow else { return nil }
            known = product
        }
        let total = x.count
        if inferred >= 0 {
            guard known > 0, total % known == 0 else { return nil }
            switch inferred {
            case 0: dims.0 = total / known
            case 1: dims.1 = total / known
            case 2: dims.2 = total / known
            default: dims.3 = total / known
            }
        } else if known != total {
            return nil
        }
        return dims
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
