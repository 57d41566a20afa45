import TensorCore

/// An in-place KV cache: one growable buffer per cache input (`past_key_values.N.key|value`),
/// laid out [batch, kv_heads, capacity, head_dim], so appending a decode step's keys writes only
/// the new rows instead of copying the whole cache through `Concat` (DESIGN.md §6: that copy
/// makes decode O(n²)). Capacity doubles when full, so growth costs O(1) amortised per token.
///
/// Use it through `Session.run(_:outputs:kvStore:)`: the session feeds the cache inputs from the
/// store, its `lpc:KVAppend` nodes append into it, and `lpc:GQAttention` reads it in place.
/// Not thread-safe; one store per sequence (or batch of sequences).
public final class KVStore: @unchecked Sendable {
    /// One cache input's buffer: [batch, heads, capacity, dim] float32.
    final class Buffer {
        let batch: Int, heads: Int, dim: Int
        private(set) var capacity: Int
        private(set) var storage: TensorStorage

        init(batch: Int, heads: Int, dim: Int, capacity: Int) {
            self.batch = batch
            self.heads = heads
            self.dim = dim
            self.capacity = max(capacity, 1)
            storage = TensorStorage(uninitializedByteCount: batch * heads * self.capacity * dim * 4)
        }

        /// Elements between consecutive heads (of all batches): capacity · dim.
        var headStride: Int { capacity * dim }
        var base: UnsafeMutablePointer<Float> { storage.pointer.assumingMemoryBound(to: Float.self) }

        /// Makes room for `needed` positions, keeping the first `keep` (capacity at least doubles).
        func reserve(_ needed: Int, keeping keep: Int) {
            guard needed > capacity else { return }
            // Room to grow by as much again: a long prefill is not followed by a copy at the next
            // token. Untouched pages of the reservation cost no memory.
            let newCapacity = max(needed * 2, capacity * 2)
            let grown = TensorStorage(uninitializedByteCount: batch * heads * newCapacity * dim * 4)
            let from = base, to = grown.pointer.assumingMemoryBound(to: Float.self)
            for head in 0..<(batch * heads) where keep > 0 {
                (to + head * newCapacity * dim).update(from: from + head * capacity * dim, count: keep * dim)
            }
            storage = grown
            capacity = newCapacity
        }

        /// Writes rows `rows` [batch, heads, s, dim] (contiguous) at positions at..<at+s.
        func write(_ rows: UnsafePointer<Float>, count s: Int, at position: Int) {
            let stride = headStride
            for head in 0..<(batch * heads) where s > 0 {
                (base + head * stride + position * dim).update(from: rows + head * s * dim, count: s * dim)
            }
        }

        /// `write` from rows laid out [batch, s, heads, dim] (a head split read in place).
        func writeSplit(_ rows: UnsafePointer<Float>, count s: Int, at position: Int) {
            let stride = headStride
            for head in 0..<(batch * heads) where s > 0 {
                let bi = head / heads, hi = head % heads
                let dst = base + head * stride + position * dim
                for si in 0..<s {
                    (dst + si * dim).update(from: rows + ((bi * s + si) * heads + hi) * dim, count: dim)
                }
            }
        }

        /// The first `length` positions as a contiguous [batch, heads, length, dim] tensor (a copy).
        func contiguous(length: Int) -> Tensor {
            let result = Tensor(uninitialized: .float32, shape: [batch, heads, length, dim])
            let out = result.pointer(Float.self)
            for head in 0..<(batch * heads) where length > 0 {
                (out + head * length * dim).update(from: base + head * headStride, count: length * dim)
            }
            return result
        }

        func copy(length: Int) -> Buffer {
            let result = Buffer(batch: batch, heads: heads, dim: dim, capacity: capacity)
            for head in 0..<(batch * heads) where length > 0 {
                (result.base + head * headStride).update(from: base + head * headStride, count: length * dim)
            }
            return result
        }
    }

    /// Positions every buffer holds (the past length the next run continues from).
    public internal(set) var length: Int = 0
    /// Positions to reserve when a buffer is first made (at least what the first run needs).
    public let initialCapacity: Int
    var buffers: [String: Buffer] = [:]
    /// The length the current run's appends reach (set by `lpc:KVAppend`, committed by the session).
    var appendedLength: Int?

    public init(initialCapacity: Int = 256) {
        self.initialCapacity = max(initialCapacity, 1)
    }

    /// Forgets positions from `newLength` on (a chat turn that diverges from what is cached, or a
    /// rewind). The memory stays reserved.
    public func truncate(to newLength: Int) {
        length = min(length, max(newLength, 0))
    }

    /// Names of the cache inputs the store holds buffers for.
    public var names: [String] { buffers.keys.sorted() }

    /// Bytes reserved by the buffers.
    public var reservedBytes: Int { buffers.values.reduce(0) { $0 + $1.batch * $1.heads * $1.capacity * $1.dim * 4 } }

    /// The cache input `name` as a contiguous [batch, heads, length, dim] tensor (a copy), or nil
    /// when the store holds nothing under that name.
    public func tensor(_ name: String, length: Int? = nil) -> Tensor? {
        buffers[name]?.contiguous(length: min(length ?? self.length, self.length))
    }

    /// A deep copy holding the same first `length` positions (copy-on-write for value types).
    public func copy() -> KVStore {
        let result = KVStore(initialCapacity: initialCapacity)
        result.length = length
        for (name, buffer) in buffers { result.buffers[name] = buffer.copy(length: length) }
        return result
    }

    /// Replaces the contents with contiguous [batch, heads, length, dim] float32 tensors (one per
    /// cache input, all of the same length), e.g. a past computed elsewhere.
    public func load(_ tensors: [String: Tensor]) throws(KernelError) {
        let lengths = Set(tensors.values.map { $0.rank == 4 ? $0.shape[2] : -1 })
        let newLength = lengths.first ?? 0
        guard lengths.count <= 1, newLength >= 0 else {
            throw KernelError("KV store: cache tensors must all be [batch, heads, length, dim] with one length; got \(tensors.mapValues(\.shape))")
        }
        var loaded: [String: Buffer] = [:]
        for (name, tensor) in tensors {
            guard tensor.dtype == .float32 else { throw KernelError("KV store: '\(name)' is \(tensor.dtype); the in-place cache holds float32") }
            let buffer = Buffer(batch: tensor.shape[0], heads: tensor.shape[1], dim: tensor.shape[3],
                                capacity: max(initialCapacity, newLength))
            buffer.write(tensor.pointer(Float.self), count: newLength, at: 0)
            loaded[name] = buffer
        }
        buffers = loaded
        length = newLength
    }

    /// The buffer for `name`, made for [batch, heads, ·, dim] if new; throws if it exists with
    /// other dims.
    func buffer(_ name: String, batch: Int, heads: Int, dim: Int, needed: Int) throws(KernelError) -> Buffer {
        if let existing = buffers[name] {
            guard existing.batch == batch, existing.heads == heads, existing.dim == dim else {
                throw KernelError("KV store: '\(name)' holds [\(existing.batch), \(existing.heads), ·, \(existing.dim)], not [\(batch), \(heads), ·, \(dim)]; use a new store for a new batch")
            }
            return existing
        }
        let made = Buffer(batch: batch, heads: heads, dim: dim, capacity: max(initialCapacity, 2 * needed))
        buffers[name] = made
        return made
    }
}
