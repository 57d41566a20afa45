import Graph
import TensorCore

/// Folds the head split and merge around attention into the fused ops (see `HeadLayout`).
///
/// Split: `T = Transpose(Reshape(x, shape), perm = [0, 2, 1, 3])`, with `shape` a constant or an
/// `lpc:SymbolicValue` of 4 entries whose last (the head size) is a constant > 0, and every reader
/// of T an `lpc:Rotary` (x), `lpc:KVAppend` (new positions) or `lpc:GQAttention` (Q): the readers
/// take x itself with `split_heads = 1` (`q_split_heads` for GQAttention) and `shape` as an extra
/// input (Rotary #3, KVAppend #2, GQAttention #8), from which they compute the Reshape's target
/// with its own rules when they run; Rotary then writes the [b, h, s, d] layout its readers expect.
/// Merge: `Reshape(Transpose(GQAttention(…), [0, 2, 1, 3]), shape)` becomes the GQAttention with
/// `merge_heads = 1` and `shape` as input #9: it writes [b, s, h, dv] directly.
///
/// Only where the removed values are read by nothing else and are not protected. In decode the
/// plumbing is 8 nodes per layer of pointer work; in prefill the Transposes are real copies.
public struct HeadLayoutAbsorption: GraphPass {
    public var name: String { "head layout absorption" }
    public init() {}

    /// Where each reader takes the split tensor, its split-shape input slot and attribute prefix.
    static let readers: [String: (slot: Int, shapeSlot: Int, prefix: String)] = [
        "lpc:Rotary": (0, 3, ""),
        "lpc:KVAppend": (1, 2, ""),
        "lpc:GQAttention": (0, 8, "q_"),
    ]
    static let mergeShapeSlot = 9

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        let m = Matcher(graph, context)
        var removed = Set<Int>()
        var edits: [Int: Node] = [:] // rewritten readers, by index
        func current(_ i: Int) -> Node { edits[i] ?? graph.nodes[i] }

        for (it, transpose) in graph.nodes.enumerated() where isHeadTranspose(transpose) {
            guard let (ir, reshape) = m.producer(transpose.inputs[0], "Reshape"), reshape.inputs.count == 2,
                  isSplitShape(reshape.inputs[1], m), m.isInternal(reshape.outputs[0], to: [it]) else { continue }
            let split = transpose.outputs[0]
            guard !context.protected.contains(split), !removed.contains(it), !removed.contains(ir) else { continue }
            let users = m.index.consumers[split] ?? []
            guard !users.isEmpty, users.allSatisfy({ canSplit(current($0), reading: split) }) else { continue }
            let allowzero = reshape.int("allowzero") ?? 0
            for user in users {
                var node = current(user)
                let reader = Self.readers[node.qualifiedOpType]!
                node.inputs[reader.slot] = reshape.inputs[0]
                Self.setInput(&node, reader.shapeSlot, reshape.inputs[1])
                node.attributes[reader.prefix + "split_heads"] = .int(1)
                node.attributes[reader.prefix + "split_allowzero"] = .int(allowzero)
                edits[user] = node
            }
            removed.formUnion([it, ir])
        }

        for (ia, attention) in graph.nodes.enumerated() where attention.qualifiedOpType == "lpc:GQAttention" {
            let node = current(ia)
            guard (node.int("merge_heads") ?? 0) == 0, node.outputs.count == 1,
                  let it = m.index.consumers[node.outputs[0]]?.first, m.isInternal(node.outputs[0], to: [it]),
                  isHeadTranspose(graph.nodes[it]), !removed.contains(it),
                  let ir = m.index.consumers[graph.nodes[it].outputs[0]]?.first, m.isInternal(graph.nodes[it].outputs[0], to: [ir]),
                  graph.nodes[ir].opType == "Reshape", graph.nodes[ir].domain.isEmpty, graph.nodes[ir].inputs.count == 2,
                  graph.nodes[ir].inputs[0] == graph.nodes[it].outputs[0], !removed.contains(ir) else { continue }
            let reshape = graph.nodes[ir]
            var merged = node
            merged.outputs = reshape.outputs
            Self.setInput(&merged, Self.mergeShapeSlot, reshape.inputs[1])
            merged.attributes["merge_heads"] = .int(1)
            merged.attributes["merge_allowzero"] = .int(reshape.int("allowzero") ?? 0)
            edits[ia] = merged
            removed.formUnion([it, ir])
        }

        guard !removed.isEmpty else { return false }
        for (i, node) in edits { graph.nodes[i] = node }
        graph.rewrite(removing: removed, adding: [])
        return true
    }

    /// Transpose with perm [0, 2, 1, 3] (default domain).
    private func isHeadTranspose(_ node: Node) -> Bool {
        node.opType == "Transpose" && node.domain.isEmpty && node.inputs.count == 1 && node.ints("perm") == [0, 2, 1, 3]
    }

    /// A Reshape shape of 4 entries whose last one, the head size, is a known constant > 0: a
    /// constant, or an `lpc:SymbolicValue` (the other entries are checked by the reader when it
    /// runs, with Reshape's rules).
    private func isSplitShape(_ value: String, _ m: Matcher) -> Bool {
        if let constant = m.constant(value) {
            let dims = constant.dtype.isInteger ? constant.ints() : []
            return constant.rank == 1 && dims.count == 4 && dims[3] > 0
        }
        guard let i = m.index.producer[value], m.graph.nodes[i].qualifiedOpType == "lpc:SymbolicValue" else { return false }
        let node = m.graph.nodes[i]
        guard node.ints("shape") == [4], let exprs = node.ints("exprs"), let symbols = node.ints("sym_input") else { return false }
        let width = symbols.count + 1
        guard exprs.count == 4 * width else { return false }
        let last = exprs[(3 * width)..<(4 * width)]
        return last.first! > 0 && last.dropFirst().allSatisfy { $0 == 0 }
    }

    /// True when `node` reads `value` once, in the slot where it can take a split layout, and
    /// has no split there yet.
    private func canSplit(_ node: Node, reading value: String) -> Bool {
        guard let reader = Self.readers[node.qualifiedOpType], node.inputs.filter({ $0 == value }).count == 1,
              reader.slot < node.inputs.count, node.inputs[reader.slot] == value,
              (node.int(reader.prefix + "split_heads") ?? 0) == 0 else { return false }
        // The shape slot must be free (Rotary and KVAppend take exactly 3 and 2 inputs today).
        return node.inputs.count <= reader.shapeSlot || node.inputs[reader.shapeSlot].isEmpty
    }

    /// Sets input `slot`, padding the inputs before it with empty (omitted) names.
    static func setInput(_ node: inout Node, _ slot: Int, _ value: String) {
        while node.inputs.count <= slot { node.inputs.append("") }
        node.inputs[slot] = value
    }
}
