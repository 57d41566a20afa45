import CKernels
import TensorCore

/// Packs float32 weights to f24 (`lpc_f24`: the float32 value without its low byte) into one
/// huge-page arena, a group at a time, for `F24Packing` (at load) and `BackgroundF24Packing`
/// (after load). A group (the weights of products that must share one dtype) is packed only if
/// every low byte of every member is zero: f24 never rounds, and a product never sees mixed dtypes.
final class F24Packer {
    /// Groups whose members' first `sampleCount` elements all have a zero low byte (the others
    /// fail at once and get no arena space).
    let groups: [[String]]
    private let sources: [String: Tensor]   // float32 [K, N]
    private let packed: [String: Tensor]    // f24 [K, N] in tiles (lpc_f24.h), views of the arena

    /// Elements checked before a weight gets arena space: a float32-trained weight fails here.
    static let sampleCount = 4096
    /// Elements per pool task (or between cancellation checks) while packing.
    static let chunkElements = 1 << 16

    /// nil when no group passes the sample check.
    init?(groups: [[String]], initializers: [String: Tensor]) {
        let kept = groups.filter { group in group.allSatisfy { initializers[$0].map(Self.sampleIsExact) ?? false } }
        guard !kept.isEmpty else { return nil }
        self.groups = kept
        var sources: [String: Tensor] = [:]
        // Each tensor on a cache line.
        var offsets: [(String, Int)] = [], total = 0
        for name in kept.joined() {
            let w = initializers[name]!
            sources[name] = w
            offsets.append((name, total))
            total += (w.count * 3 + 63) / 64 * 64
        }
        self.sources = sources
        let arena = TensorStorage(weightByteCount: total)
        var packed: [String: Tensor] = [:]
        for (name, offset) in offsets {
            let w = sources[name]!
            packed[name] = Tensor(dtype: .float24, shape: w.shape,
                                  storage: TensorStorage(viewOf: arena.pointer + offset, byteCount: w.count * 3, owner: arena))
        }
        self.packed = packed
    }

    /// Packs group `g` and returns its f24 tensors by name, or nil when a low byte is non-zero (or
    /// `cancelled` said stop). `parallel`: over the thread pool (at load); else on the calling
    /// thread. Memory-mapped sources' pages are dropped afterwards (read again from the page cache
    /// if still used), so the peak stays near f24 plus what is left of float32.
    func pack(group g: Int, parallel: Bool, cancelled: () -> Bool = { false }) -> [(name: String, tensor: Tensor)]? {
        for name in groups[g] {
            guard pack(sources[name]!, into: packed[name]!, parallel: parallel, cancelled: cancelled) else { return nil }
        }
        for name in groups[g] where sources[name]!.storage.isFileMapped { WeightConversion.release(sources[name]!) }
        return groups[g].map { ($0, packed[$0]!) }
    }

    /// Whether every element of `w` was exact (and packing was not cancelled). `w` is [K, N]; the
    /// f24 copy is in the kernels' tiles (`lpc_f32_to_f24_tiles`), packed in row ranges of whole
    /// 16-row blocks.
    private func pack(_ w: Tensor, into f24: Tensor, parallel: Bool, cancelled: () -> Bool) -> Bool {
        let source = w.pointer(Float.self), destination = f24.raw.assumingMemoryBound(to: lpc_f24.self)
        let k = w.shape[0], n = w.shape[1], block = Int(LPC_F24_BLOCK_ROWS)
        let rowsPerChunk = max(1, Self.chunkElements / max(n, 1) / block) * block
        let chunks = (k + rowsPerChunk - 1) / rowsPerChunk
        func packChunk(_ c: Int) -> Bool {
            let r0 = c * rowsPerChunk, r1 = min(k, r0 + rowsPerChunk)
            return lpc_f32_to_f24_tiles(source, destination, Int64(k), Int64(n), Int64(r0), Int64(r1)) == 0
        }
        guard parallel else {
            for c in 0..<chunks {
                if cancelled() || !packChunk(c) { return false }
            }
            return true
        }
        var chunkExact = [Bool](repeating: false, count: chunks)
        chunkExact.withUnsafeMutableBufferPointer { chunkExact in
            RuntimeThreads.parallelFor(chunks) { c in chunkExact[c] = packChunk(c) }
        }
        return !chunkExact.contains(false)
    }

    /// Whether the first `sampleCount` elements have a zero low byte.
    private static func sampleIsExact(_ w: Tensor) -> Bool {
        let bits = w.raw.assumingMemoryBound(to: UInt32.self)
        for i in 0..<min(w.count, sampleCount) where bits[i] & 0xff != 0 { return false }
        return true
    }
}
