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
/// weight instead of 4. The packed matrices are stored in tiles of 16 rows × 48 columns
/// (`lpc_f24.h`), contiguous both for a decode task's rows and for a prefill strip's chunk.
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
        let groups = Self.candidates(in: graph, inputs: context.inputs)
        guard let packer = F24Packer(groups: groups, initializers: graph.initializers) else { return false }
        var changed = false
        for g in packer.groups.indices {
            guard let packed = packer.pack(group: g, parallel: true) else { continue }
            for (name, tensor) in packed { graph.initializers[name] = tensor }
            changed = true
        }
        return changed
    }

    /// The float32 [K, N] weights of the products f24 may store, in groups that must change
    /// storage together (a product's weights share one dtype: the parts of a `MatMulKNGroup`, and
    /// every product a weight feeds), in first-use order (the order a decode step reads them).
    /// Not yet checked for exactness (`F24Packer` does that).
    public static func candidates(in graph: Graph, inputs: Set<String>) -> [[String]] {
        var transposed = Set<String>()
        for node in graph.nodes where node.domain == GraphOptimizer.domain && node.opType == "MatMulNT" && node.inputs.count > 1 {
            transposed.insert(node.inputs[1])
        }
        var groups: [[String]] = [], groupOf: [String: Int] = [:]
        for node in graph.nodes where packs(node) {
            let weights = node.inputs.dropFirst().filter { name in
                guard !inputs.contains(name), let w = graph.initializers[name] else { return false }
                return w.dtype == .float32 && w.rank == 2
            }
            // A weight that cannot be packed (read transposed elsewhere, or not a float32 [K, N]
            // constant) keeps the whole product float32.
            guard !weights.isEmpty, weights.count == node.inputs.count - 1, !weights.contains(where: transposed.contains) else {
                for name in weights { groupOf[name] = -1 }
                continue
            }
            // Join the groups these weights are already in (a weight fed to several products).
            let joined = Set(weights.compactMap { groupOf[$0] })
            if joined.contains(-1) { for name in weights { groupOf[name] = -1 }; continue }
            var members = weights
            for g in joined.sorted() { members += groups[g]; groups[g] = [] }
            var unique: [String] = [], seen = Set<String>()
            for name in members where seen.insert(name).inserted { unique.append(name) }
            groups.append(unique)
            for name in unique { groupOf[name] = groups.count - 1 }
        }
        // A group joined later by a product that cannot be packed is dropped whole.
        return groups.filter { group in !group.isEmpty && group.allSatisfy { groupOf[$0] != -1 } }
    }

    /// `lpc optimize --weights f24` writes f24 weights as ONNX uint8 [K, N, 3] (ONNX has no 24-bit
    /// type), their bytes in the kernels' tiles (`lpc_f24.h`). In a graph it wrote (the
    /// optimized-graph and `lpc.weights = f24` metadata), such weight inputs of the products are
    /// views of the same bytes as f24 [K, N] again. A folder from an older pass version (pass
    /// version 2 stored f24 row-major) is refused: its bytes would be misread.
    public static func importWritten(_ graph: Graph) throws(RuntimeError) -> Graph {
        guard graph.metadata[weightsKey] == WeightStorage.f24.rawValue else { return graph }
        if let version = graph.metadata[GraphOptimizer.optimizedKey], version != GraphOptimizer.passVersion {
            throw .unsupportedOption("this model's f24 weights were written by lpc optimize with pass version \(version), "
                                     + "whose layout this version (\(GraphOptimizer.passVersion)) does not read: "
                                     + "run lpc optimize again on the original model")
        }
        guard GraphOptimizer.isOptimized(graph) else { return graph }
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
