import Graph
import TensorCore

/// Computes the named graph outputs for the last sequence position only. For an output made by a
/// row-wise product `MatMul*(x[b, s, d], W)` (the LM head), x is sliced to its last position
/// first: `Slice(x, [-1], [max], [-2])` → [b, 1, d], so the output becomes [b, 1, N] and the
/// product costs one row per sequence instead of s. With left padding the last position is the
/// real last token of every row, which is what generation samples from.
///
/// Not a fixed-point pass: a session option (`SessionOptions.lastPositionOutputs`) applied once,
/// after the passes, so `lpc optimize` output keeps every position for `lpc run` and goldens.
public struct LastPositionOutputs: GraphPass {
    public var name: String { "last position outputs" }
    public let outputs: Set<String>
    public init(outputs: Set<String>) { self.outputs = outputs }

    /// Ops that compute each row of their output from the same row of input 0 alone.
    static let rowWise: Set<String> = ["MatMul", "lpc:MatMulKN", "lpc:MatMulNT"]

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        guard let opset = graph.opsets[""], opset >= 10 else { return false } // Slice with inputs
        let index = GraphIndex(graph)
        var changed = false
        for (position, info) in graph.outputs.enumerated() where outputs.contains(info.name) {
            guard let producer = index.producer[info.name] else { continue }
            let node = graph.nodes[producer]
            // A third input: the per-column scales of int16 weights (--weights i16), row-independent.
            guard Self.rowWise.contains(node.qualifiedOpType), node.inputs.count == 2 || node.qualifiedOpType != "MatMul" && node.inputs.count == 3,
                  let w = graph.initializers[node.inputs[1]], w.rank == 2,
                  info.shape?.count ?? 3 == 3 else { continue }
            let x = node.inputs[0]
            let sliced = x + "/lpc_last_position"
            let constants = [("starts", Int64(-1)), ("ends", Int64.max), ("axes", Int64(-2))].map { (name, value) in
                let key = sliced + "/" + name
                graph.initializers[key] = Tensor([value], shape: [1])
                return key
            }
            graph.nodes.append(Node(name: node.name + "/lpc_last_position", opType: "Slice",
                                    inputs: [x] + constants, outputs: [sliced]))
            graph.nodes[producer].inputs[0] = sliced
            if var shape = info.shape { shape[1] = .fixed(1); graph.outputs[position].shape = shape }
            changed = true
        }
        if changed { graph = try graph.verified() }
        return changed
    }
}
