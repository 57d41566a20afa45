/// Element types, numbered as ONNX's `TensorProto.DataType` so the loader maps them directly.
public enum DType: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case float32 = 1
    case uint8 = 2
    case int8 = 3
    /// Only as weight storage (`--weights i16`: 16-bit integers with a float32 scale per output).
    case int16 = 5
    case int32 = 6
    case int64 = 7
    case bool = 9
    case float16 = 10
    case float64 = 11
    case bfloat16 = 16
    /// Only as weight storage, never in an ONNX file (its code is not an ONNX one): a float32
    /// without its low byte, 3 bytes (CKernels' lpc_f24), for weights whose low byte is zero.
    case float24 = 1024

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .uint8, .int8, .bool: 1
        case .float16, .bfloat16, .int16: 2
        case .float24: 3
        case .float32, .int32: 4
        case .int64, .float64: 8
        }
    }

    public var isFloatingPoint: Bool {
        switch self {
        case .float32, .float16, .bfloat16, .float64: true
        default: false
        }
    }

    public var isInteger: Bool {
        switch self {
        case .uint8, .int8, .int16, .int32, .int64: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .float32: "float32"
        case .uint8: "uint8"
        case .int8: "int8"
        case .int16: "int16"
        case .int32: "int32"
        case .int64: "int64"
        case .bool: "bool"
        case .float16: "float16"
        case .float64: "float64"
        case .bfloat16: "bfloat16"
        case .float24: "float24"
        }
    }

    /// The type of an ONNX `TensorProto.DataType` code (nil for codes we do not support and for
    /// our own storage-only codes, which no ONNX file may use).
    public init?(onnx code: Int32) {
        guard let known = DType(rawValue: code), known != .float24 else { return nil }
        self = known
    }

    /// The ONNX name of a data type code, including the ones we do not support, for error messages.
    public static func onnxName(_ code: Int32) -> String {
        if let known = DType(onnx: code) { return known.description }
        let names: [Int32: String] = [
            0: "undefined", 4: "uint16", 5: "int16", 8: "string", 12: "uint32", 13: "uint64",
            14: "complex64", 15: "complex128", 17: "float8e4m3fn", 18: "float8e4m3fnuz",
            19: "float8e5m2", 20: "float8e5m2fnuz", 21: "uint4", 22: "int4", 23: "float4e2m1",
        ]
        return names[code] ?? "data type \(code)"
    }
}
