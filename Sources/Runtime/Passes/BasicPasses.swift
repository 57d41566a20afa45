import Graph
import TensorCore

/// Evaluates every node whose inputs are all constants (initializers that are not graph inputs)
/// with its own kernel and stores the results as initializers. `Constant` nodes always fold;
/// other results fold when they are small (`maxBytes`), so weights are never duplicated.
public struct ConstantFolding: GraphPass {
    public var name: String { "constant folding" }
    public var maxBytes: Int
    static let nondeterministic: Set<String> = ["RandomNormal", "RandomUniform", "RandomNormalLike",
                                                "RandomUniformLike", "Multinomial", "Bernoulli"]

    public init(maxBytes: Int = 1 << 20) { self.maxBytes = maxBytes }

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        var removed = Set<Int>()
        for (i, node) in graph.nodes.enumerated() {
            guard !Self.nondeterministic.contains(node.opType), node.domain != GraphOptimizer.domain else { continue }
            let inputs = node.inputs
            guard inputs.allSatisfy({ $0.isEmpty || (graph.initializers[$0] != nil && !context.inputs.contains($0)) }) else { continue }
            guard let kernel = OpRegistry.kernel(for: node), let opset = graph.opset(for: node) else { continue }
            let results: [Tensor]
            do {
                results = try kernel(KernelContext(node: node, inputs: inputs.map { $0.isEmpty ? nil : graph.initializers[$0] }, opset: opset))
            } catch {
                continue // leave it to fail (with its message) at run time
            }
            let bytes = results.reduce(0) { $0 + $1.byteCount }
            if node.opType != "Constant" && bytes > maxBytes { continue }
            guard results.count >= node.outputs.filter({ !$0.isEmpty }).count else { continue }
            for (output, tensor) in zip(node.outputs, results) where !output.isEmpty {
                graph.initializers[output] = tensor
            }
            removed.insert(i)
        }
        guard !removed.isEmpty else { return false }
        graph.nodes = graph.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
        graph.pruneInitializers()
        return true
    }
}

/// Removes nodes none of whose outputs is needed by a graph output or a protected value.
public struct DeadCodeElimination: GraphPass {
    public var name: String { "dead-code elimination" }
    public init() {}

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        var needed = context.protected
        var live = [Bool](repeating: false, count: graph.nodes.count)
        for i in stride(from: graph.nodes.count - 1, through: 0, by: -1) {
            let node = graph.nodes[i]
            if node.outputs.contains(where: { needed.contains($0) }) {
                live[i] = true
                for input in node.inputs where !input.isEmpty { needed.insert(input) }
            }
        }
        let before = graph.nodes.count
        let initializerCount = graph.initializers.count
        graph.nodes = graph.nodes.enumerated().filter { live[$0.offset] }.map(\.element)
        graph.pruneInitializers()
        return graph.nodes.count != before || graph.initializers.count != initializerCount
    }
}

/// Removes Identity nodes and Casts to the type their input already has, renaming their
/// output to their input everywhere (unless the output is protected).
public struct NoOpElimination: GraphPass {
    public var name: String { "no-op elimination" }
    public init() {}

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        let types = DTypeInference.infer(graph)
        var rename: [String: String] = [:]
        var removed = Set<Int>()
        for (i, node) in graph.nodes.enumerated() where node.domain.isEmpty && node.inputs.count >= 1 {
            guard let output = node.outputs.first, node.outputs.count == 1, !context.protected.contains(output) else { continue }
            let input = node.inputs[0]
            guard !input.isEmpty else { continue }
            var noop = node.opType == "Identity"
            if node.opType == "Cast", let to = node.int("to"), let from = types[input], Int(from.rawValue) == to {
                noop = true
            }
            if noop {
                rename[output] = rename[input] ?? input
                removed.insert(i)
            }
        }
        guard !removed.isEmpty else { return false }
        var nodes: [Node] = []
        for (i, var node) in graph.nodes.enumerated() where !removed.contains(i) {
            node.inputs = node.inputs.map { rename[$0] ?? $0 }
            nodes.append(node)
        }
        graph.nodes = nodes
        return true
    }
}
