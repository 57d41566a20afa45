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
        let past = try ctx.input(0, dtypes: [.float32]), new = try ctx.input(1, dtypes: [.float32])
        guard past.rank == 4, new.rank == 4, past.shape[0] == new.shape[0], past.shape[1] == new.shape[1],
              past.shape[3] == new.shape[3] else {
            throw KernelError("KVAppend needs past [b, h, L, d] and new [b, h, s, d]; got \(past.shape) and \(new.shape)")
        }
        guard let store = ctx.state?.kvStore else {
            return try ConcatKernels.concat(ctx)[0]
        }
        guard let name = ctx.node.string("cache") else { throw KernelError("KVAppend has no 'cache' attribute") }
        let (b, h, s, d) = (new.shape[0], new.shape[1], new.shape[2], new.shape[3])
        let length = store.length
        guard past.shape[2] == length else {
            throw KernelError("KVAppend: past '\(name)' has \(past.shape[2]) positions but the KV store holds \(length)")
        }
        let buffer = try store.buffer(name, batch: b, heads: h, dim: d, needed: length + s)
        buffer.reserve(length + s, keeping: length)
        buffer.write(new.pointer(Float.self), count: s, at: length)
        if let appended = store.appendedLength, appended != length + s {
            throw KernelError("KVAppend: '\(name)' grows to \(length + s) positions but another cache input to \(appended)")
        }
        store.appendedLength = length + s
        return Tensor(dtype: .float32, shape: [b, h, length + s, d], storage: buffer.storage)
    }
}
