import Graph
import TensorCore

/// The KV-cache growth `present = Concat(past, new, axis=2)`, with `past` a graph input
/// [batch, kv_heads, past, head_dim] (float32, fixed heads and head size), becomes
/// `lpc:KVAppend(past, new)` with `cache` = the past input's name. Run plainly it is the same
/// Concat; run with a `KVStore` (`Session.run(_:outputs:kvStore:)`) it appends `new` into the
/// store's buffer in place and yields a handle to it, which `lpc:GQAttention` reads with the
/// buffer's head stride (its `k_cache` / `v_cache` attributes name the buffer).
///
/// Only rewritten where that is safe: `past` is read by nothing but this Concat and shape-only
/// ops, and `present` by nothing but GQAttention's K/V inputs and shape-only ops (and it may be
/// a graph output, which the session then copies out of the store on request).
public struct KVAppendRewrite: GraphPass {
    public var name: String { "in-place KV append" }
    public init() {}

    /// Ops that read only the shape of an input.
    static let shapeOnly: Set<String> = ["Shape", "lpc:SymbolicValue", "lpc:RepeatKVShape"]

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        let index = GraphIndex(graph)
        let declared = Dictionary(graph.inputs.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var changed = false
        var attention: [Int: [String: AttributeValue]] = [:]
        for (i, node) in graph.nodes.enumerated() where node.opType == "Concat" && node.domain.isEmpty && node.inputs.count == 2 {
            let past = node.inputs[0], present = node.outputs[0]
            guard let info = declared[past], graph.initializers[past] == nil, info.dtype == .float32,
                  let shape = info.shape, shape.count == 4, case .fixed = shape[1], case .fixed = shape[3],
                  let axis = node.int("axis"), axis == 2 || axis == -2 else { continue }
            let pastReaders = (index.consumers[past] ?? []).filter { $0 != i }
            guard pastReaders.allSatisfy({ Self.shapeOnly.contains(graph.nodes[$0].qualifiedOpType) }) else { continue }
            var uses: [(Int, String)] = []
            var safe = true
            for reader in index.consumers[present] ?? [] {
                let user = graph.nodes[reader]
                if Self.shapeOnly.contains(user.qualifiedOpType) { continue }
                guard user.qualifiedOpType == "lpc:GQAttention" else { safe = false; break }
                for (slot, input) in user.inputs.enumerated() where input == present {
                    if slot == 1 { uses.append((reader, "k_cache")) } else if slot == 2 { uses.append((reader, "v_cache")) } else { safe = false }
                }
            }
            guard safe, !uses.isEmpty else { continue }
            graph.nodes[i] = Node(name: node.name, opType: "KVAppend", domain: GraphOptimizer.domain, inputs: node.inputs,
                                  outputs: node.outputs, attributes: ["axis": .int(2), "cache": .string(past)])
            for (reader, key) in uses { attention[reader, default: [:]][key] = .string(past) }
            changed = true
        }
        for (reader, attributes) in attention {
            graph.nodes[reader].attributes.merge(attributes) { _, new in new }
        }
        return changed
    }
}
