import TensorCore

/// A dimension of a declared input or output: fixed, named (symbolic, e.g. "batch_size"), or unknown.
public enum Dim: Sendable, Equatable, CustomStringConvertible {
    case fixed(Int)
    case symbolic(String)
    case unknown

    public var description: String {
        switch self {
        case let .fixed(size): "\(size)"
        case let .symbolic(name): name
        case .unknown: "?"
        }
    }
}

/// A graph input or output as declared: name, element type and shape, each possibly unknown.
public struct ValueInfo: Sendable {
    public var name: String
    /// nil when the model does not say, or says a type we cannot represent (see `declaredType`).
    public var dtype: DType?
    /// The ONNX data type code as declared (0 when absent), for messages about unsupported types.
    public var declaredType: Int32
    /// nil when the rank is unknown.
    public var shape: [Dim]?

    public init(name: String, dtype: DType?, declaredType: Int32? = nil, shape: [Dim]?) {
        self.name = name
        self.dtype = dtype
        self.declaredType = declaredType ?? dtype?.rawValue ?? 0
        self.shape = shape
    }

    /// "float32[batch_size, 3]"-style text for messages and `lpc inspect`.
    public var typeDescription: String {
        let type = dtype?.description ?? DType.onnxName(declaredType)
        guard let shape else { return "\(type)[rank unknown]" }
        return "\(type)[" + shape.map(\.description).joined(separator: ", ") + "]"
    }
}

/// A computation graph: the unit the runtime executes. Initializers are tensors, usually views
/// on the model file's memory map.
public struct Graph: Sendable {
    public var name: String
    public var inputs: [ValueInfo]
    public var outputs: [ValueInfo]
    public var initializers: [String: Tensor]
    /// In topological order once `verified()` has run.
    public var nodes: [Node]
    /// Operator set version per domain ("" is the default ONNX domain).
    public var opsets: [String: Int]
    /// The model's `metadata_props` (e.g. the mark `lpc optimize` leaves so loads skip the passes).
    public var metadata: [String: String]

    public init(name: String = "", inputs: [ValueInfo], outputs: [ValueInfo], initializers: [String: Tensor],
                nodes: [Node], opsets: [String: Int], metadata: [String: String] = [:]) {
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.initializers = initializers
        self.nodes = nodes
        self.opsets = opsets
        self.metadata = metadata
    }

    /// The opset version that applies to a node, from its domain's import.
    public func opset(for node: Node) -> Int? {
        opsets[node.domain]
    }

    /// Total number of parameter elements and bytes in the initializers.
    public var parameterCount: Int { initializers.values.reduce(0) { $0 + $1.count } }
    public var parameterBytes: Int { initializers.values.reduce(0) { $0 + $1.byteCount } }
}
