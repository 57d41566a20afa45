import Graph
import TensorCore

/// The residual add feeding a norm, `n = lpc:RMSNorm(s = Add(a, b), w)`, becomes
/// `lpc:AddRMSNorm(a, b, w) -> (s, n)`: both values keep their names (s is the next residual's
/// input), so nothing that reads or protects them changes. Only float32 operands.
public struct AddRMSNormFusion: GraphPass {
    public var name: String { "Add + RMSNorm fusion" }
    public init() {}

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        let m = Matcher(graph, context)
        let types = DTypeInference.infer(graph)
        var removed = Set<Int>(), added: [Node] = []
        for (ia, add) in graph.nodes.enumerated() where add.opType == "Add" && add.domain.isEmpty && add.inputs.count == 2 {
            let sum = add.outputs[0]
            guard types[add.inputs[0]] == .float32, types[add.inputs[1]] == .float32,
                  let inorm = (m.index.consumers[sum] ?? []).first(where: { i in
                      let node = graph.nodes[i]
                      return node.qualifiedOpType == "lpc:RMSNorm" && node.inputs.count == 2 && node.inputs[0] == sum
                          && node.inputs[1] != sum && node.outputs.count == 1
                  }), !removed.contains(inorm), !removed.contains(ia) else { continue }
            let norm = graph.nodes[inorm]
            removed.formUnion([ia, inorm])
            added.append(Node(name: norm.name + "/lpc_add", opType: "AddRMSNorm", domain: GraphOptimizer.domain,
                              inputs: add.inputs + [norm.inputs[1]], outputs: [sum, norm.outputs[0]],
                              attributes: norm.attributes))
        }
        guard !added.isEmpty else { return false }
        graph.rewrite(removing: removed, adding: added)
        return true
    }
}
