#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorCore

/// One-input elementwise ops. Floating ops run on float32 and float64; float16 and bfloat16 are
/// widened to float32 and rounded back.
enum Unary {
    /// A float function given for both precisions (libm has a separate entry point for each).
    /// - Parameters:
    ///   - x: float tensor, any shape.
    /// - Returns: same shape and dtype.
    @inline(__always)
    static func floating(_ name: String, _ x: Tensor,
                         _ f: (Float) -> Float, _ d: (Double) -> Double) throws(KernelError) -> Tensor {
        switch x.dtype {
        case .float32: return ElementwiseLoops.unary(x, Float.self, Float.self, f)
        case .float64: return ElementwiseLoops.unary(x, Double.self, Double.self, d)
        case .float16, .bfloat16:
            let wide = ElementwiseLoops.unary(Conversion.convert(x, to: .float32), Float.self, Float.self, f)
            return Conversion.convert(wide, to: x.dtype)
        default: throw KernelError("\(name) needs a floating-point input, got \(x.dtype)")
        }
    }

    /// A float predicate (IsNaN, IsInf) → bool, same shape.
    static func predicate(_ name: String, _ x: Tensor, _ f: (Double) -> Bool) throws(KernelError) -> Tensor {
        switch x.dtype {
        case .float32: return ElementwiseLoops.unary(x, Float.self, Bool.self) { f(Double($0)) }
        case .float64: return ElementwiseLoops.unary(x, Double.self, Bool.self, f)
        case .float16, .bfloat16: return try predicate(name, Conversion.convert(x, to: .float32), f)
        default: throw KernelError("\(name) needs a floating-point input, got \(x.dtype)")
        }
    }

    /// Neg, Abs, Relu: float or signed integer (Abs also unsigned). Integer overflow wraps
    /// (Neg and Abs of the minimum stay the minimum, as in C).
    enum Signed { case neg, abs, relu }

    static func signed(_ op: Signed, _ x: Tensor) throws(KernelError) -> Tensor {
        switch x.dtype {
        case .float32: return signedFloat(op, x, Float.self)
        case .float64: return signedFloat(op, x, Double.self)
        case .float16, .bfloat16, .float24: return Conversion.convert(signedFloat(op, Conversion.convert(x, to: .float32), Float.self), to: x.dtype)
        case .int64: return signedInteger(op, x, Int64.self)
        case .int32: return signedInteger(op, x, Int32.self)
        case .int8: return signedInteger(op, x, Int8.self)
        case .int16: return signedInteger(op, x, Int16.self)
        case .uint8:
            guard op == .abs else { throw KernelError("\(op == .neg ? "Neg" : "Relu") does not take uint8 inputs") }
            return x
        case .bool: throw KernelError("\(op) does not take bool inputs")
        }
    }

    @inline(__always)
    private static func signedFloat<T: BinaryFloatingPoint & TensorElement>(_ op: Signed, _ x: Tensor, _: T.Type) -> Tensor {
        switch op {
        case .neg: ElementwiseLoops.unary(x, T.self, T.self) { -$0 }
        case .abs: ElementwiseLoops.unary(x, T.self, T.self) { $0.magnitude }
        // NaN stays NaN (max(0, NaN) in onnxruntime's Eigen kernel gives NaN too).
        case .relu: ElementwiseLoops.unary(x, T.self, T.self) { $0 < 0 ? 0 : $0 }
        }
    }

    @inline(__always)
    private static func signedInteger<T: FixedWidthInteger & SignedInteger & TensorElement>(_ op: Signed, _ x: Tensor, _: T.Type) -> Tensor {
        switch op {
        case .neg: ElementwiseLoops.unary(x, T.self, T.self) { 0 &- $0 }
        case .abs: ElementwiseLoops.unary(x, T.self, T.self) { $0 < 0 ? 0 &- $0 : $0 }
        case .relu: ElementwiseLoops.unary(x, T.self, T.self) { $0 < 0 ? 0 : $0 }
        }
    }

    /// Sigmoid without overflow: for x < 0 use e^x / (1 + e^x), so e^-x never overflows.
    @inline(__always) static func sigmoid(_ x: Float) -> Float {
        if x >= 0 { return 1 / (1 + expf(-x)) }
        let e = expf(x)
        return e / (1 + e)
    }

    @inline(__always) static func sigmoid(_ x: Double) -> Double {
        if x >= 0 { return 1 / (1 + exp(-x)) }
        let e = exp(x)
        return e / (1 + e)
    }

    /// Gelu (opset 20): exact 0.5·x·(1 + erf(x/√2)), or the tanh approximation
    /// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
    static func gelu(_ x: Tensor, approximate: String) throws(KernelError) -> Tensor {
        switch approximate {
        case "none":
            return try floating("Gelu", x,
                                { 0.5 * $0 * (1 + erff($0 * 0.70710678118654752)) },
                                { 0.5 * $0 * (1 + erf($0 * 0.70710678118654752)) })
        case "tanh":
            return try floating("Gelu", x,
                                { 0.5 * $0 * (1 + tanhf(0.79788456080286536 * ($0 + 0.044715 * $0 * $0 * $0))) },
                                { 0.5 * $0 * (1 + tanh(0.79788456080286536 * ($0 + 0.044715 * $0 * $0 * $0))) })
        default:
            throw KernelError("Gelu: approximate must be \"none\" or \"tanh\", got \"\(approximate)\"")
        }
    }
}
