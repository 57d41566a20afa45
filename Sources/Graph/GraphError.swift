/// A graph that cannot run as given: each case names the nodes and values involved.
public enum GraphError: Error, CustomStringConvertible, Equatable {
    case undefinedInputs([(node: String, input: String)])
    case cycle(nodes: [String])
    case duplicateOutput(value: String, nodes: [String])
    case undefinedGraphOutput(String)

    public var description: String {
        switch self {
        case let .undefinedInputs(list):
            let items = list.map { "node '\($0.node)' reads '\($0.input)'" }.joined(separator: "; ")
            return "\(list.count) node input(s) are not produced by any node, initializer or graph input: \(items)"
        case let .cycle(nodes):
            return "the graph has a cycle through \(nodes.count) node(s): \(nodes.map { "'\($0)'" }.joined(separator: ", "))"
        case let .duplicateOutput(value, nodes):
            return "value '\(value)' is produced more than once (by \(nodes.map { "'\($0)'" }.joined(separator: ", ")))"
        case let .undefinedGraphOutput(name):
            return "graph output '\(name)' is not produced by any node, initializer or graph input"
        }
    }

    public static func == (lhs: GraphError, rhs: GraphError) -> Bool {
        lhs.description == rhs.description
    }
}
