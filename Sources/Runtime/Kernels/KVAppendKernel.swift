import Graph
import TensorCore

/// `lpc:KVAppend(past, new) -> present` (`KVAppendRewrite`): past [b, h, L, d], new [b, h, s, d].
/// Without a KV store it is `Concat(past, new, axis=2)`. With one (`ExecutionState.kvStore`) it
/// writes `new` at positions L..<L+s of the store's buffer named by `cache` and returns a handle:
/// a tensor of shape [b, h, L+s, d] over the buffer's storage, whose real layout is
/// [b, h, capacity, d]. Only `lpc:GQAttention` (told by its `k_cache`/`v_cache` attribute) and
/// shape-only ops read it; the pass guarantees that.
enum KVAppendKernel {
    static func register(into table: inout [String: Kernel]) {
        table["lpc:KVAppend"] = { ctx in [try run(ctx)] }
    }

    static func run(_ ctx: KernelContext) throws -> Tensor {
        let past = try ctx.input(0, dtype: .float32), new = try ctx.input(1, dtype: .float32)
        // `split_heads` (HeadLayoutAbsorption): new's memory is [b, s, h, d], input 2 the absorbed
        // Reshape's shape; new is read as its [b, h, s, d] transpose, in place.
        let split = (ctx.node.int("split_heads") ?? 0) != 0
            ? try HeadLayout.split(new, shape: ctx.input(2), allowZero: (ctx.node.int("split_allowzero") ?? 0) != 0, name: "KVAppend") : nil
        let newShape = split.map { [$0.b, $0.h, $0.s, $0.d] } ?? new.shape
        guard past.rank == 4, newShape.count == 4, past.shape[0] == newShape[0], past.shape[1] == newShape[1],
              past.shape[3] == newShape[3] else {
            throw KernelError("KVAppend needs past [b, h, L, d] and new [b, h, s, d]; got \(past.shape) and \(newShape)")
        }
        let (b, h, s, d) = (newShape[0], newShape[1], newShape[2], newShape[3])
        guard let store = ctx.state?.kvStore else {
            guard split != nil else { return try ConcatKernels.concat(ctx)[0] }
            return concatSplit(past, new, b: b, h: h, s: s, d: d)
        }
        guard let name = ctx.node.string("cache") else { throw KernelError("KVAppend has no 'cache' attribute") }
        let length = store.length
        guard past.shape[2] == length else {
            throw KernelError("KVAppend: past '\(name)' has \(past.shape[2]) positions but the KV store holds \(length)")
        }
        let buffer = try store.buffer(name, batch: b, heads: h, dim: d, needed: length + s)
        buffer.reserve(length + s, keeping: length)
        if split != nil {
            buffer.writeSplit(new.pointer(Float.self), count: s, at: length)
        } else {
            buffer.write(new.pointer(Float.self), count: s, at: length)
        }
        if let appended = store.appendedLength, appended != length + s {
            throw KernelError("KVAppend: '\(name)' grows to \(length + s) positions but another cache input to \(appended)")
        }
        store.appendedLength = length + s
        return Tensor(dtype: .float32, shape: [b, h, length + s, d], storage: buffer.storage)
    }

    /// Concat(past [b, h, L, d], new, axis 2) with new's memory [b, s, h, d] (a split-heads input).
    static func concatSplit(_ past: Tensor, _ new: Tensor, b: Int, h: Int, s: Int, d: Int) -> Tensor {
        let length = past.shape[2], total = length + s
        let result = Tensor(uninitialized: .float32, shape: [b, h, total, d])
        let out = result.pointer(Float.self), p = past.pointer(Float.self), n = new.pointer(Float.self)
        for head in 0..<(b * h) {
            let bi = head / h, hi = head % h
            let dst = out + head * total * d
            dst.update(from: p + head * length * d, count: length * d)
            for si in 0..<s {
                (dst + (length + si) * d).update(from: n + ((bi * s + si) * h + hi) * d, count: d)
            }
        }
        return result
    }
}
