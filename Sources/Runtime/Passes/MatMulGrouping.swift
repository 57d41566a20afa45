import Graph
import TensorCore

/// `lpc:MatMulKN` nodes that read the same input with constant weights of one dtype and the same
/// K (a layer's Q/K/V projections, its gate/up pair) become one `lpc:MatMulKNGroup(x, W1, …, Wp)
/// -> (y1, …, yp)`: in decode they run as one parallel region (one thread-pool wake-up instead of
/// p), with the weights still read in place. Runs after weight conversion (any dtype the kernel
/// takes: float32, float16, bfloat16).
public struct MatMulGrouping: GraphPass {
    public var name: String { "MatMul grouping" }
    public init() {}

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        var groups: [String: [Int]] = [:] // "x|dtype|K" → nodes
        var order: [String] = []
        for (i, node) in graph.nodes.enumerated() where node.qualifiedOpType == "lpc:MatMulKN" && node.inputs.count == 2 {
            guard let w = graph.initializers[node.inputs[1]], !context.inputs.contains(node.inputs[1]), w.rank == 2,
                  [.float32, .float16, .bfloat16].contains(w.dtype) else { continue }
            let key = "\(node.inputs[0])|\(w.dtype)|\(w.shape[0])"
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(i)
        }
        var removed = Set<Int>(), added: [Node] = []
        for key in order {
            guard let members = groups[key], members.count > 1 else { continue }
            let nodes = members.map { graph.nodes[$0] }
            removed.formUnion(members)
            added.append(Node(name: nodes[0].name + "/lpc_group", opType: "MatMulKNGroup", domain: GraphOptimizer.domain,
                              inputs: [nodes[0].inputs[0]] + nodes.map { $0.inputs[1] }, outputs: nodes.map { $0.outputs[0] }))
        }
        guard !added.isEmpty else { return false }
        graph.rewrite(removing: removed, adding: added)
        return true
    }
}
