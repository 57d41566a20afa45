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

    /// Ops whose output has the dtype of their (data) inputs and at least as many elements as each.
    static let atLeastInputSize: Set<String> = [
        "Transpose", "Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Expand", "Tile", "Concat",
        "Neg", "Abs", "Sqrt", "Reciprocal", "Exp", "Log", "Sin", "Cos", "Tanh", "Sigmoid", "Relu", "Erf",
        "Add", "Sub", "Mul", "Div", "Pow",
    ]

    public init(maxBytes: Int = 1 << 20) { self.maxBytes = maxBytes }

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        var removed = Set<Int>()
        for (i, node) in graph.nodes.enumerated() {
            guard !Self.nondeterministic.contains(node.opType), node.domain != GraphOptimizer.domain else { continue }
            let inputs = node.inputs
            guard inputs.allSatisfy({ $0.isEmpty || (graph.initializers[$0] != nil && !context.inputs.contains($0)) }) else { continue }
            guard let kernel = OpRegistry.kernel(for: node), let opset = graph.opset(for: node) else { continue }
            // These ops give at least as many bytes as their largest input, so a large input means
            // an output the size limit below would throw away: don't compute it (the transposed
            // tied embedding of a 135M model is 113 MB, copied at every load before this check).
            if Self.atLeastInputSize.contains(node.opType),
               inputs.contains(where: { (graph.initializers[$0]?.byteCount ?? 0) > maxBytes }) { continue }
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

/// Common-subexpression elimination: nodes with the same op, inputs and attributes compute the
/// same values (exporters repeat mask slices, rotary unsqueezes and shape values in every layer);
/// later copies are removed and their outputs renamed to the first's.
public struct CommonSubexpressionElimination: GraphPass {
    public var name: String { "common subexpressions" }
    public init() {}

    /// An attribute (or small constant) as a hashable value: equal keys mean equal values (floats
    /// by bit pattern). nil for what cannot be compared (large tensors, unsupported kinds).
    enum ValueKey: Hashable {
        case float(UInt32), int(Int), string(String), floats([UInt32]), ints([Int]), strings([String])
        case tensor(DType, [Int], [UInt8])
    }

    static func key(_ value: AttributeValue) -> ValueKey? {
        switch value {
        case let .float(v): return .float(v.bitPattern)
        case let .int(v): return .int(v)
        case let .string(v): return .string(v)
        case let .floats(v): return .floats(v.map(\.bitPattern))
        case let .ints(v): return .ints(v)
        case let .strings(v): return .strings(v)
        case let .tensor(t):
            guard t.byteCount <= 256 else { return nil }
            return .tensor(t.dtype, t.shape, Array(UnsafeRawBufferPointer(start: t.raw, count: t.byteCount)))
        case .unsupported: return nil
        }
    }

    /// What makes two nodes compute the same values.
    struct NodeKey: Hashable {
        var domain: String, opType: String, inputs: [String], outputCount: Int
        var attributes: [String: ValueKey]
    }

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        var seen: [NodeKey: Int] = [:]
        var rename: [String: String] = [:]
        var removed = Set<Int>()
        // Identical small constants (each layer's own copy of [0], [3], …) become one.
        var constants: [ValueKey: String] = [:]
        for name in graph.initializers.keys.sorted() where !context.inputs.contains(name) && !context.protected.contains(name) {
            let tensor = graph.initializers[name]!
            guard tensor.byteCount <= 256, let key = Self.key(.tensor(tensor)) else { continue }
            if let first = constants[key] { rename[name] = first } else { constants[key] = name }
        }
        var inputsChanged = false
        for (i, node) in graph.nodes.enumerated() {
            let inputs = node.inputs.map { rename[$0] ?? $0 }
            if inputs != node.inputs { inputsChanged = true; graph.nodes[i].inputs = inputs }
            guard !ConstantFolding.nondeterministic.contains(node.opType), !node.outputs.isEmpty,
                  !node.outputs.contains(where: { context.protected.contains($0) }) else { continue }
            var attributes: [String: ValueKey] = [:]
            var comparable = true
            for (name, value) in node.attributes {
                guard let key = Self.key(value) else { comparable = false; break }
                attributes[name] = key
            }
            guard comparable else { continue }
            let key = NodeKey(domain: node.domain, opType: node.opType, inputs: inputs, outputCount: node.outputs.count,
                              attributes: attributes)
            if let first = seen[key] {
                for (mine, theirs) in zip(node.outputs, graph.nodes[first].outputs) where !mine.isEmpty { rename[mine] = theirs }
                removed.insert(i)
            } else {
                seen[key] = i
            }
        }
        guard !removed.isEmpty || inputsChanged else { return false }
        graph.nodes = graph.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
        graph.pruneInitializers()
        return true
    }
}
