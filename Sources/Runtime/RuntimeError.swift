import Graph
import TensorCore

/// Why a graph cannot run, or a run failed: each case names the node, op, opset or input involved.
public enum RuntimeError: Error, CustomStringConvertible {
    /// Every op the runtime lacks, with the nodes that use it, reported at once.
    case unsupportedOps([(op: String, opset: Int?, nodes: [String])])
    case missingInput(name: String, expected: String)
    case unknownInput(name: String, known: [String])
    case inputType(name: String, got: DType, expected: String)
    case inputShape(name: String, got: [Int], expected: String, reason: String)
    case node(name: String, op: String, opset: Int, message: String)
    case unknownOutput(name: String)
    case unsupportedOption(String)
    /// A run with an in-place KV store that cannot proceed.
    case kvStore(String)

    public var description: String {
        switch self {
        case let .unsupportedOps(list):
            let lines = list.map { entry in
                let shown = entry.nodes.prefix(5).map { "'\($0)'" }.joined(separator: ", ")
                let more = entry.nodes.count > 5 ? " and \(entry.nodes.count - 5) more" : ""
                let opset = entry.opset.map { " (opset \($0))" } ?? ""
                return "  \(entry.op)\(opset): \(entry.nodes.count) node(s): \(shown)\(more)"
            }
            return "the model uses \(list.count) unsupported op type(s):\n" + lines.joined(separator: "\n")
        case let .missingInput(name, expected):
            return "missing input '\(name)' (\(expected))"
        case let .unknownInput(name, known):
            return "the model has no input named '\(name)'; its inputs are: \(known.joined(separator: ", "))"
        case let .inputType(name, got, expected):
            return "input '\(name)' has dtype \(got) but the model expects \(expected)"
        case let .inputShape(name, got, expected, reason):
            return "input '\(name)' has shape \(got) but the model expects \(expected): \(reason)"
        case let .node(name, op, opset, message):
            return "node '\(name)' (\(op), opset \(opset)): \(message)"
        case let .unknownOutput(name):
            return "the model has no value named '\(name)' to output"
        case let .unsupportedOption(message):
            return message
        case let .kvStore(message):
            return "in-place KV cache: \(message)"
        }
    }
}
