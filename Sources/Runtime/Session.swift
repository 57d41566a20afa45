import Foundation
import Graph
import TensorCore

/// Runs a verified graph. Create once per model; `run` may be called many times (not concurrently).
public final class Session {
    public let graph: Graph
    /// For each node, the values whose last reader it is, freed after it runs (peak memory).
    private let releaseAfter: [[String]]
    private let kernels: [Kernel]
    private let opsets: [Int]
    /// Called after each node with its outputs, for tracing numeric drift node by node.
    public var trace: ((Node, [Tensor]) -> Void)?

    public init(graph: Graph) throws {
        let sorted = try graph.verified()
        var missing: [String: (opset: Int?, nodes: [String])] = [:]
        var kernels: [Kernel] = []
        var opsets: [Int] = []
        for node in sorted.nodes {
            let opset = sorted.opset(for: node)
            if let kernel = OpRegistry.kernel(for: node), let opset {
                kernels.append(kernel)
                opsets.append(opset)
            } else {
                missing[node.qualifiedOpType, default: (opset, [])].nodes.append(node.displayName)
            }
        }
        if !missing.isEmpty {
            throw RuntimeError.unsupportedOps(missing.keys.sorted().map { ($0, missing[$0]!.opset, missing[$0]!.nodes) })
        }
        self.graph = sorted
        self.kernels = kernels
        self.opsets = opsets

        // A value can be freed after its last reader, unless it is a graph output or initializer.
        var lastReader: [String: Int] = [:]
        for (index, node) in sorted.nodes.enumerated() {
            for input in node.inputs where !input.isEmpty { lastReader[input] = index }
        }
        let kept = Set(sorted.outputs.map(\.name)).union(sorted.initializers.keys)
        var release = [[String]](repeating: [], count: sorted.nodes.count)
        for (value, index) in lastReader where !kept.contains(value) { release[index].append(value) }
        releaseAfter = release
    }

    /// The graph inputs a caller must feed (those without an initializer default).
    public var requiredInputs: [ValueInfo] {
        graph.inputs.filter { graph.initializers[$0.name] == nil }
    }

    /// Runs the graph on `feeds` and returns the requested outputs (default: all graph outputs).
    public func run(_ feeds: [String: Tensor], outputs requested: [String]? = nil) throws -> [String: Tensor] {
        try validate(feeds)
        var values: [String: Tensor] = graph.initializers
        for (name, tensor) in feeds { values[name] = tensor }
        let wanted = requested ?? graph.outputs.map(\.name)

        for (index, node) in graph.nodes.enumerated() {
            let inputs = node.inputs.map { $0.isEmpty ? nil : values[$0] }
            let results: [Tensor]
            do {
                results = try kernels[index](KernelContext(node: node, inputs: inputs, opset: opsets[index]))
            } catch let error as KernelError {
                throw RuntimeError.node(name: node.displayName, op: node.qualifiedOpType, opset: opsets[index], message: error.message)
            }
            guard results.count >= node.outputs.filter({ !$0.isEmpty }).count || results.count == node.outputs.count else {
                throw RuntimeError.node(name: node.displayName, op: node.qualifiedOpType, opset: opsets[index],
                                        message: "produced \(results.count) output(s) for \(node.outputs.count) declared")
            }
            for (output, tensor) in zip(node.outputs, results) where !output.isEmpty {
                values[output] = tensor
            }
            trace?(node, results)
            for name in releaseAfter[index] where !wanted.contains(name) { values[name] = nil }
        }

        var result: [String: Tensor] = [:]
        for name in wanted {
            guard let tensor = values[name] else { throw RuntimeError.unknownOutput(name: name) }
            result[name] = tensor
        }
        return result
    }

    /// Checks names, dtypes and shapes of the feeds against the declared inputs; symbolic dims
    /// must agree across inputs (e.g. one batch size everywhere).
    private func validate(_ feeds: [String: Tensor]) throws {
        let declared = Dictionary(graph.inputs.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for name in feeds.keys.sorted() where declared[name] == nil {
            throw RuntimeError.unknownInput(name: name, known: graph.inputs.map(\.name))
        }
        var symbols: [String: (size: Int, input: String)] = [:]
        for info in graph.inputs {
            guard let tensor = feeds[info.name] else {
                if graph.initializers[info.name] == nil {
                    throw RuntimeError.missingInput(name: info.name, expected: info.typeDescription)
                }
                continue
            }
            if let dtype = info.dtype, dtype != tensor.dtype {
                throw RuntimeError.inputType(name: info.name, got: tensor.dtype, expected: info.typeDescription)
            }
            guard let shape = info.shape else { continue }
            guard shape.count == tensor.rank else {
                throw RuntimeError.inputShape(name: info.name, got: tensor.shape, expected: info.typeDescription,
                                              reason: "rank \(tensor.rank) instead of \(shape.count)")
            }
            for (axis, dim) in shape.enumerated() {
                let size = tensor.shape[axis]
                switch dim {
                case let .fixed(expected) where expected != size:
                    throw RuntimeError.inputShape(name: info.name, got: tensor.shape, expected: info.typeDescription,
                                                  reason: "dimension \(axis) is \(size), not \(expected)")
                case let .symbolic(symbol):
                    if let seen = symbols[symbol], seen.size != size {
                        throw RuntimeError.inputShape(name: info.name, got: tensor.shape, expected: info.typeDescription,
                                                      reason: "'\(symbol)' is \(size) here but \(seen.size) in input '\(seen.input)'")
                    }
                    symbols[symbol] = (size, info.name)
                default: break
                }
            }
        }
    }
}
