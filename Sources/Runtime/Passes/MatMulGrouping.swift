import Graph
import TensorCore

/// `lpc:MatMulKN` nodes that read the same input with constant weights of one dtype and the same
/// K (a layer's Q/K/V projections, its gate/up pair) become one `lpc:MatMulKNGroup(x, W1, …, Wp)
/// -> (y1, …, yp)`: in decode they run as one parallel region (one thread-pool wake-up instead of
/// p), with the weights still read in place. Runs after weight conversion (any dtype the kernel
/// takes: float32, float16, bfloat16, int16).
///
/// A float32 group with a narrow part (fewer than `narrowColumns` columns: the K/V projections of
/// grouped-query attention) is stored once more as one [K, N1 + … + Np] matrix, each row the
/// parts' rows side by side: `lpc:MatMulKNGroup(x, W, splits = [N1, …, Np])`. Decode then streams
/// one matrix in equal K-row blocks (measured on SmolLM2's Q/K/V, 576 × (576 + 192 + 192): 10–18%
/// less time per call than three separate parts, whose narrow rows make short, unequal tasks; the
/// wide gate/up pair gains nothing and stays in place). Costs one copy at load (66 MB for SmolLM2);
/// the source pages of a memory map are dropped afterwards.
public struct MatMulGrouping: GraphPass {
    public var name: String { "MatMul grouping" }
    public var narrowColumns: Int
    public init(narrowColumns: Int = 512) { self.narrowColumns = narrowColumns }

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        var groups: [String: [Int]] = [:] // "x|dtype|K" → nodes
        var order: [String] = []
        // A third input is the per-column scales of int16 weights (WeightConversion, --weights i16):
        // such products group only with each other, as `scaled = 1` groups (x, W1…Wp, scales1…scalesp).
        for (i, node) in graph.nodes.enumerated() where node.qualifiedOpType == "lpc:MatMulKN" && (2...3).contains(node.inputs.count) {
            guard let w = graph.initializers[node.inputs[1]], !context.inputs.contains(node.inputs[1]), w.rank == 2,
                  [.float32, .float16, .bfloat16, .int16, .float24].contains(w.dtype),
                  node.inputs.count == 2 || graph.initializers[node.inputs[2]] != nil && !context.inputs.contains(node.inputs[2])
            else { continue }
            let key = "\(node.inputs[0])|\(w.dtype)|\(w.shape[0])|\(node.inputs.count)"
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(i)
        }
        var removed = Set<Int>(), added: [Node] = []
        var concatenated: [(name: String, parts: [String])] = []
        for key in order {
            guard let members = groups[key], members.count > 1 else { continue }
            let nodes = members.map { graph.nodes[$0] }
            removed.formUnion(members)
            let weights = nodes.map { graph.initializers[$0.inputs[1]]! }
            let name = nodes[0].name + "/lpc_group"
            if weights[0].dtype == .float32, weights.contains(where: { $0.shape[1] < narrowColumns }) {
                let joined = nodes[0].inputs[1] + ".group"
                concatenated.append((joined, nodes.map { $0.inputs[1] }))
                added.append(Node(name: name, opType: "MatMulKNGroup", domain: GraphOptimizer.domain,
                                  inputs: [nodes[0].inputs[0], joined], outputs: nodes.map { $0.outputs[0] },
                                  attributes: ["splits": .ints(weights.map { $0.shape[1] })]))
            } else if nodes[0].inputs.count == 3 {
                added.append(Node(name: name, opType: "MatMulKNGroup", domain: GraphOptimizer.domain,
                                  inputs: [nodes[0].inputs[0]] + nodes.map { $0.inputs[1] } + nodes.map { $0.inputs[2] },
                                  outputs: nodes.map { $0.outputs[0] }, attributes: ["scaled": .int(1)]))
            } else {
                added.append(Node(name: name, opType: "MatMulKNGroup", domain: GraphOptimizer.domain,
                                  inputs: [nodes[0].inputs[0]] + nodes.map { $0.inputs[1] }, outputs: nodes.map { $0.outputs[0] }))
            }
        }
        guard !added.isEmpty else { return false }
        Self.concatenate(concatenated, in: &graph)
        graph.rewrite(removing: removed, adding: added)
        graph.pruneInitializers()
        return true
    }

    /// Writes each group's float32 parts [K, Ni] as one [K, ΣNi] initializer, all in one huge-page
    /// arena (`TensorStorage(weightByteCount:)`), and drops the parts' memory-mapped pages.
    static func concatenate(_ groups: [(name: String, parts: [String])], in graph: inout Graph) {
        guard !groups.isEmpty else { return }
        var offsets: [Int] = [], total = 0
        for group in groups {
            offsets.append(total)
            total += (group.parts.reduce(0) { $0 + graph.initializers[$1]!.byteCount } + 63) / 64 * 64
        }
        let arena = TensorStorage(weightByteCount: total)
        let partsOf = groups.map { group in group.parts.map { graph.initializers[$0]! } }
        let joined = zip(partsOf, offsets).map { parts, offset -> Tensor in
            let k = parts[0].shape[0], width = parts.reduce(0) { $0 + $1.shape[1] }
            return Tensor(dtype: .float32, shape: [k, width],
                          storage: TensorStorage(viewOf: arena.pointer + offset, byteCount: k * width * 4, owner: arena))
        }
        // The copies on the pool: a load-time cost (page faults on both sides), ~50 ms for 66 MB on one thread.
        RuntimeThreads.parallelFor(groups.count) { g in
            let parts = partsOf[g], width = joined[g].shape[1], destination = joined[g].pointer(Float.self)
            var column = 0
            for part in parts {
                let n = part.shape[1], source = part.pointer(Float.self)
                for row in 0..<part.shape[0] { (destination + row * width + column).update(from: source + row * n, count: n) }
                column += n
            }
            for part in parts where part.storage.isFileMapped { WeightConversion.release(part) }
        }
        for (group, tensor) in zip(groups, joined) { graph.initializers[group.name] = tensor }
    }
}
