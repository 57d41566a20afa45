import TensorCore

/// One operator application. Inputs and outputs are value names; an empty name is an omitted
/// optional input or output, as in ONNX.
public struct Node: Sendable {
    public var name: String
    public var opType: String
    /// "" for the default ONNX domain ("ai.onnx" is normalised to "").
    public var domain: String
    public var inputs: [String]
    public var outputs: [String]
    public var attributes: [String: AttributeValue]

    public init(name: String, opType: String, domain: String = "", inputs: [String], outputs: [String],
                attributes: [String: AttributeValue] = [:]) {
        self.name = name
        self.opType = opType
        self.domain = domain == "ai.onnx" ? "" : domain
        self.inputs = inputs
        self.outputs = outputs
        self.attributes = attributes
    }

    /// `domain:opType`, or just `opType` in the default domain.
    public var qualifiedOpType: String { domain.isEmpty ? opType : "\(domain):\(opType)" }

    /// How the node is named in messages: its name, or its first output when it has none.
    public var displayName: String { name.isEmpty ? "<unnamed, output '\(outputs.first ?? "")'>" : name }
}

/// An attribute value, in the forms ONNX defines that our ops use.
public enum AttributeValue: Sendable {
    case float(Float)
    case int(Int)
    case string(String)
    case tensor(Tensor)
    case floats([Float])
    case ints([Int])
    case strings([String])
    /// Graph, sparse-tensor and type attributes: kept by name so errors can mention them.
    case unsupported(kind: String)
}

extension Node {
    public func int(_ key: String) -> Int? {
        if case let .int(value)? = attributes[key] { return value }
        return nil
    }

    public func float(_ key: String) -> Float? {
        switch attributes[key] {
        case let .float(value)?: value
        case let .int(value)?: Float(value)
        default: nil
        }
    }

    public func ints(_ key: String) -> [Int]? {
        switch attributes[key] {
        case let .ints(value)?: value
        case let .int(value)?: [value]
        default: nil
        }
    }

    public func string(_ key: String) -> String? {
        if case let .string(value)? = attributes[key] { return value }
        return nil
    }

    public func tensor(_ key: String) -> Tensor? {
        if case let .tensor(value)? = attributes[key] { return value }
        return nil
    }
}
