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
    public init() {}

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        guard lpc_f24_supported() != 0 else { return false }
        let names = Self.candidates(in: graph, inputs: context.inputs)
        guard let packer = F24Packer(names: names, sources: names.map { graph.initializers[$0]! }) else { return false }
        var changed = false
        for t in packer.names.indices {
            guard let packed = packer.pack(t, parallel: true) else { continue }
            graph.initializers[packer.names[t]] = packed
            changed = true
        }
        return changed
    }

    /// The float32 [K, N] weights of the products f24 may store, in first-use order (the order a
    /// decode step reads them); not yet checked for exactness (`F24Packer` does that).
    public static func candidates(in graph: Graph, inputs: Set<String>) -> [String] {
        var names: [String] = [], seen = Set<String>(), transposed = Set<String>()
        for node in graph.nodes where node.domain == GraphOptimizer.domain {
            if node.opType == "MatMulNT", node.inputs.count > 1 { transposed.insert(node.inputs[1]) }
            guard packs(node) else { continue }
            for name in node.inputs.dropFirst() where !inputs.contains(name) && seen.insert(name).inserted {
                guard let w = graph.initializers[name], w.dtype == .float32, w.rank == 2 else { continue }
                names.append(name)
            }
        }
        return names.filter { !transposed.contains($0) }
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
    static func packs(_ node: Node) -> Bool {
        guard node.domain == GraphOptimizer.domain else { return false }
        if node.opType == "MatMulKN" { return node.inputs.count == 2 }
        return node.opType == "MatMulKNGroup" && (node.int("scaled") ?? 0) == 0
    }
}
