import CKernels
import TensorCore

/// Packs float32 weights to f24 (`lpc_f24`: the float32 value without its low byte) into one
/// huge-page arena, one weight at a time, for `F24Packing` (at load) and `BackgroundF24Packing`
/// (after load). A weight whose low bytes are not all zero is not packed: f24 never rounds.
final class F24Packer {
    /// Weights whose first `sampleCount` elements have a zero low byte (the others fail at once).
    let names: [String]
    private let sources: [Tensor]   // float32 [K, N]
    private let packed: [Tensor]    // f24 [K, N], views of the arena

    /// Elements checked before a weight gets arena space: a float32-trained weight fails here.
    static let sampleCount = 4096
    /// Elements per pool task (or between cancellation checks) while packing.
    static let chunkElements = 1 << 16

    /// nil when no weight passes the sample check.
    init?(names: [String], sources: [Tensor]) {
        let kept = zip(names, sources).filter { Self.sampleIsExact($0.1) }
        guard !kept.isEmpty else { return nil }
        self.names = kept.map(\.0)
        self.sources = kept.map(\.1)
        // Each tensor on a cache line.
        var offsets: [Int] = [], total = 0
        for w in self.sources {
            offsets.append(total)
            total += (w.count * 3 + 63) / 64 * 64
        }
        let arena = TensorStorage(weightByteCount: total)
        packed = zip(self.sources, offsets).map { w, offset in
            Tensor(dtype: .float24, shape: w.shape,
                   storage: TensorStorage(viewOf: arena.pointer + offset, byteCount: w.count * 3, owner: arena))
        }
    }

    /// Packs weight `t` and returns it as f24, or nil when a low byte is non-zero (or `cancelled`
    /// said stop). `parallel`: over the thread pool (at load); else on the calling thread. A
    /// memory-mapped source's pages are dropped afterwards (they are read again from the page
    /// cache if still read), so the peak stays near f24 plus what is left of float32.
    func pack(_ t: Int, parallel: Bool, cancelled: () -> Bool = { false }) -> Tensor? {
        let w = sources[t], destination = packed[t].raw.assumingMemoryBound(to: lpc_f24.self)
        let source = w.pointer(Float.self)
        let chunks = (w.count + Self.chunkElements - 1) / Self.chunkElements
        func packChunk(_ c: Int) -> Bool {
            let start = c * Self.chunkElements, count = min(Self.chunkElements, w.count - start)
            return lpc_f32_to_f24_n(source + start, destination + start, Int64(count)) == 0
        }
        var exact = true
        if parallel {
            var chunkExact = [Bool](repeating: false, count: chunks)
            chunkExact.withUnsafeMutableBufferPointer { chunkExact in
                RuntimeThreads.parallelFor(chunks) { c in chunkExact[c] = packChunk(c) }
            }
            exact = !chunkExact.contains(false)
        } else {
            for c in 0..<chunks where exact {
                if cancelled() { return nil }
                exact = packChunk(c)
            }
        }
        guard exact else { return nil }
        if w.storage.isFileMapped { WeightConversion.release(w) }
        return packed[t]
    }

    /// Whether the first `sampleCount` elements have a zero low byte.
    private static func sampleIsExact(_ w: Tensor) -> Bool {
        let bits = w.raw.assumingMemoryBound(to: UInt32.self)
        for i in 0..<min(w.count, sampleCount) where bits[i] & 0xff != 0 { return false }
        return true
    }
}
