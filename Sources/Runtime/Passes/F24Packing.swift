import CKernels
import Graph
import TensorCore

/// `--weights f24`: stores float32 product weights in 3 bytes each where that is exact, at load.
///
/// Many exports hold float32 weights with fewer significant bits than float32 has: weights trained
/// or kept in a narrower format and widened on export. In SmolLM2-135M's export every layer
/// weight (210 matrices, 425 MB) has its 8 lowest mantissa bits zero (at most 14 of 23 are used),
/// so dropping the low byte (`lpc_f24`) loses nothing: the products compute with the same float32
/// values, in the same order (the f24 decode kernels mirror the float32 ones; at prefill our sgemm
/// widens B's chunks as it copies them), and give the same bits, while decode streams 3 bytes per
/// weight instead of 4.
/// A weight with any non-zero low byte stays float32, so the result never differs from `f32`.
///
/// Runs after MatMulGrouping, on the weights of `lpc:MatMulKN` and `lpc:MatMulKNGroup` (also the
/// side-by-side Q/K/V matrices), so the graph keeps the float32 structure. Transposed products
/// (`lpc:MatMulNT`, a tied LM head) stay float32. Only where the fast f24 kernel runs (AVX-512
/// with VBMI: `lpc_f24_supported`); elsewhere the pass does nothing.
public struct F24Packing: GraphPass {
    public var name: String { "f24 packing" }
    /// Elements checked before a weight is packed: a float32-trained weight fails here at once.
    static let sampleCount = 4096
    /// Elements per pool task while packing.
    static let chunkElements = 1 << 16

    public init() {}

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        guard lpc_f24_supported() != 0 else { return false }
        // Candidates in first-use order (the order a decode step reads them).
        var names: [String] = [], seen = Set<String>(), transposed = Set<String>()
        for node in graph.nodes where node.domain == GraphOptimizer.domain {
            if node.opType == "MatMulNT", node.inputs.count > 1 { transposed.insert(node.inputs[1]) }
            guard Self.packs(node) else { continue }
            for name in node.inputs.dropFirst() where !context.inputs.contains(name) && seen.insert(name).inserted {
                guard let w = graph.initializers[name], w.dtype == .float32, w.rank == 2, Self.sampleIsExact(w) else { continue }
                names.append(name)
            }
        }
        names.removeAll { transposed.contains($0) }
        guard !names.isEmpty else { return false }

        // One huge-page arena for all (as WeightConversion), each tensor on a cache line.
        var offsets: [Int] = [], total = 0
        for name in names {
            offsets.append(total)
            total += (graph.initializers[name]!.count * 3 + 63) / 64 * 64
        }
        let arena = TensorStorage(weightByteCount: total)
        let sources = names.map { graph.initializers[$0]! }
        let packed = zip(sources, offsets).map { w, offset in
            Tensor(dtype: .float24, shape: w.shape,
                   storage: TensorStorage(viewOf: arena.pointer + offset, byteCount: w.count * 3, owner: arena))
        }
        // One pool run per weight, its memory-mapped source pages dropped right after (keeps the
        // peak near f24 + what is left of f32). A weight with a non-zero low byte stays float32.
        var renamed: [String: String] = [:]
        for (t, name) in names.enumerated() {
            let w = sources[t], destination = packed[t].raw.assumingMemoryBound(to: lpc_f24.self)
            let chunks = (w.count + Self.chunkElements - 1) / Self.chunkElements
            var exact = [Bool](repeating: false, count: chunks)
            exact.withUnsafeMutableBufferPointer { exact in
                RuntimeThreads.parallelFor(chunks) { c in
                    let start = c * Self.chunkElements, count = min(Self.chunkElements, w.count - start)
                    exact[c] = lpc_f32_to_f24_n(w.pointer(Float.self) + start, destination + start, Int64(count)) == 0
                }
            }
            guard !exact.contains(false) else { continue }
            graph.initializers[name + ".f24"] = packed[t]
            renamed[name] = name + ".f24"
            if w.storage.isFileMapped { WeightConversion.release(w) }
        }
        guard !renamed.isEmpty else { return false }
        for i in graph.nodes.indices where Self.packs(graph.nodes[i]) {
            for j in 1..<graph.nodes[i].inputs.count {
                if let newName = renamed[graph.nodes[i].inputs[j]] { graph.nodes[i].inputs[j] = newName }
            }
        }
        graph.pruneInitializers()
        return true
    }

    /// `lpc optimize --weights f24` writes f24 weights as ONNX uint8 [K, N, 3] (ONNX has no 24-bit
    /// type). In a graph it wrote (the optimized-graph and `lpc.weights = f24` metadata), such
    /// weight inputs of the products are views of the same bytes as f24 [K, N] again.
    public static func importWritten(_ graph: Graph) -> Graph {
        guard GraphOptimizer.isOptimized(graph), graph.metadata[weightsKey] == WeightStorage.f24.rawValue else { return graph }
        var graph = graph
        for node in graph.nodes where packs(node) {
            for name in node.inputs.dropFirst() {
                guard let bytes = graph.initializers[name], bytes.dtype == .uint8, bytes.rank == 3, bytes.shape[2] == 3 else { continue }
                graph.initializers[name] = Tensor(dtype: .float24, shape: Array(bytes.shape.prefix(2)), storage: bytes.storage)
            }
        }
        return graph
    }

    /// The metadata key `lpc optimize` records its weight storage under.
    public static let weightsKey = "lpc.weights"

    /// Products whose weight inputs (all after x) may be f24: MatMulKN and the unscaled groups.
    private static func packs(_ node: Node) -> Bool {
        guard node.domain == GraphOptimizer.domain else { return false }
        if node.opType == "MatMulKN" { return node.inputs.count == 2 }
        return node.opType == "MatMulKNGroup" && (node.int("scaled") ?? 0) == 0
    }

    /// Whether the first `sampleCount` elements have a zero low byte.
    private static func sampleIsExact(_ w: Tensor) -> Bool {
        let bits = w.raw.assumingMemoryBound(to: UInt32.self)
        for i in 0..<min(w.count, sampleCount) where bits[i] & 0xff != 0 { return false }
        return true
    }
}
