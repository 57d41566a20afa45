/// Why a model file could not be loaded: what failed, where (file, tensor, node), and how to fix it.
public enum ONNXImportError: Error, CustomStringConvertible {
    case cannotRead(path: String, reason: String)
    /// Not a decodable ONNX ModelProto: empty, truncated or corrupt.
    case notAModel(path: String, reason: String)
    case invalidModel(path: String, reason: String)
    case invalidTensor(tensor: String, reason: String)
    case externalData(tensor: String, location: String, reason: String)
    case invalidAttribute(node: String, attribute: String, reason: String)
    /// Writing a model (`lpc optimize`) failed.
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotRead(path, reason):
            "cannot read model '\(path)': \(reason)"
        case let .notAModel(path, reason):
            "'\(path)' is not a valid ONNX model: \(reason). Check that the file is complete (a truncated download or copy) and is an .onnx ModelProto."
        case let .invalidModel(path, reason):
            "invalid ONNX model '\(path)': \(reason)"
        case let .invalidTensor(tensor, reason):
            "tensor '\(tensor)': \(reason)"
        case let .externalData(tensor, location, reason):
            "external data of tensor '\(tensor)' (location '\(location)'): \(reason)"
        case let .invalidAttribute(node, attribute, reason):
            "node '\(node)', attribute '\(attribute)': \(reason)"
        case let .cannotWrite(path, reason):
            "cannot write '\(path)': \(reason)"
        }
    }
}
