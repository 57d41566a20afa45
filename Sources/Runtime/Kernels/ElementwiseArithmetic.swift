#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernels
import TensorCore

/// Binary arithmetic with multidirectional broadcasting: Add, Sub, Mul, Div, Mod, Max, Min, Pow.
/// float16 and bfloat16 are computed in float32 and rounded back.
enum Arithmetic {
    enum Op: Sendable {
        case add, sub, mul, div, max, min
        /// `fmod` false: the sign of the divisor (Python); true: the sign of the dividend (C fmod).
        case mod(fmod: Bool)

        var name: String {
            switch self {
            case .add: "Add"
            case .sub: "Sub"
            case .mul: "Mul"
            case .div: "Div"
            case .max: "Max"
            case .min: "Min"
            case .mod: "Mod"
            }
        }
    }

    /// `a op b`, broadcast. Both operands must have the same dtype.
    /// - Parameters:
    ///   - a: any shape.
    ///   - b: any shape broadcastable with `a`.
    /// - Returns: the broadcast shape, dtype of `a`.
    static func apply(_ op: Op, _ a: Tensor, _ b: Tensor) throws(KernelError) -> Tensor {
        guard a.dtype == b.dtype else {
            throw KernelError("\(op.name) needs inputs of one dtype; got \(a.dtype) and \(b.dtype)")
        }
        switch a.dtype {
        case .float32:
            if case .add = op, a.shape == b.shape { return addSameShape(a, b) }
            return try floating(op, a, b, Float.self)
        case .float64: return try floating(op, a, b, Double.self)
        case .float16, .bfloat16, .float24:
            let wide = try floating(op, Conversion.convert(a, to: .float32), Conversion.convert(b, to: .float32), Float.self)
            return Conversion.convert(wide, to: a.dtype)
        case .int64: return try integer(op, a, b, Int64.self)
        case .int32: return try integer(op, a, b, Int32.self)
        case .int8: return try integer(op, a, b, Int8.self)
        case .int16: return try integer(op, a, b, Int16.self)
        case .uint8: return try integer(op, a, b, UInt8.self)
        case .bool: throw KernelError("\(op.name) does not take bool inputs")
        }
    }

    /// float32 `a + b` of one shape (residual adds): AVX-512, in chunks over the pool when large.
    /// Bit-identical to the generic loop (one rounding per element either way).
    static func addSameShape(_ a: Tensor, _ b: Tensor) -> Tensor {
        let out = Tensor(uninitialized: .float32, shape: a.shape)
        let pa = a.pointer(Float.self), pb = b.pointer(Float.self), po = out.pointer(Float.self)
        let count = out.count, chunk = 1 << 15
        RuntimeThreads.parallelFor((count + chunk - 1) / chunk) { t in
            let start = t * chunk
            lpc_add_f32(pa + start, pb + start, po + start, Int64(min(chunk, count - start)))
        }
        return out
    }

    @inline(__always)
    private static func floating<T: BinaryFloatingPoint & TensorElement>(
        _ op: Op, _ a: Tensor, _ b: Tensor, _: T.Type
    ) throws(KernelError) -> Tensor {
        switch op {
        case .add: return try ElementwiseLoops.binary(a, b, T.self, T.self) { $0 + $1 }
        case .sub: return try ElementwiseLoops.binary(a, b, T.self, T.self) { $0 - $1 }
        case .mul: return try ElementwiseLoops.binary(a, b, T.self, T.self) { $0 * $1 }
        case .div: return try ElementwiseLoops.binary(a, b, T.self, T.self) { $0 / $1 }
        // NaN propagates, as in numpy and PyTorch.
        case .max: return try ElementwiseLoops.binary(a, b, T.self, T.self) { x, y in x.isNaN || x >= y ? x : y }
        case .min: return try ElementwiseLoops.binary(a, b, T.self, T.self) { x, y in x.isNaN || x <= y ? x : y }
        case .mod(let fmod):
            guard fmod else {
                throw KernelError("Mod on floating-point inputs needs fmod=1 (the ONNX spec requires it)")
            }
            return try ElementwiseLoops.binary(a, b, T.self, T.self) { $0.truncatingRemainder(dividingBy: $1) }
        }
    }

    @inline(__always)
    private static func integer<T: FixedWidthInteger & TensorElement>(
        _ op: Op, _ a: Tensor, _ b: Tensor, _: T.Type
    ) throws(KernelError) -> Tensor {
        // Integer overflow wraps, as it does in onnxruntime's C++.
        switch op {
        case .add: return try ElementwiseLoops.binary(a, b, T.self, T.self) { $0 &+ $1 }
        case .sub: return try ElementwiseLoops.binary(a, b, T.self, T.self) { $0 &- $1 }
        case .mul: return try ElementwiseLoops.binary(a, b, T.self, T.self) { $0 &* $1 }
        case .max: return try ElementwiseLoops.binary(a, b, T.self, T.self) { Swift.max($0, $1) }
        case .min: return try ElementwiseLoops.binary(a, b, T.self, T.self) { Swift.min($0, $1) }
        case .div:
            try checkNoZeroDivisor(a, b, T.self, op: "Div")
            // Truncates toward zero; min / -1 wraps to min instead of trapping.
            return try ElementwiseLoops.binary(a, b, T.self, T.self) { $0.dividedReportingOverflow(by: $1).partialValue }
        case .mod(let fmod):
            try checkNoZeroDivisor(a, b, T.self, op: "Mod")
            if fmod {
                return try ElementwiseLoops.binary(a, b, T.self, T.self) { $0.remainderReportingOverflow(dividingBy: $1).partialValue }
            }
            return try ElementwiseLoops.binary(a, b, T.self, T.self) { x, y in
                let r = x.remainderReportingOverflow(dividingBy: y).partialValue
                return r != 0 && (r < 0) != (y < 0) ? r &+ y : r
            }
        }
    }

    /// Integer division by zero has no value: refuse it instead of producing garbage. Every
    /// divisor element is used when the output is non-empty, so a scan of `b` is exact.
    private static func checkNoZeroDivisor<T: FixedWidthInteger & TensorElement>(
        _ a: Tensor, _ b: Tensor, _: T.Type, op: String
    ) throws(KernelError) {
        guard Tensor.elementCount(try Broadcast.shape([a.shape, b.shape])) > 0 else { return }
        if b.buffer(T.self).contains(0) {
            throw KernelError("\(op): integer division by zero (divisor \(b.dtype) \(b.shape) contains 0)")
        }
    }

    /// Max, Min or Sum of one or more inputs, folded pairwise (pairwise broadcasting composes to
    /// the multidirectional broadcast of all inputs).
    static func variadic(_ op: Op, _ ctx: KernelContext) throws(KernelError) -> Tensor {
        let inputs = ctx.inputs.compactMap { $0 }
        guard var result = inputs.first, inputs.count == ctx.inputs.count else {
            throw KernelError("\(ctx.node.opType) needs one or more inputs, none omitted")
        }
        guard result.dtype != .bool else { throw KernelError("\(ctx.node.opType) does not take bool inputs") }
        for next in inputs.dropFirst() { result = try apply(op, result, next) }
        return result
    }
}

/// Pow(X, Y): the output has X's dtype. Float bases take any numeric exponent (converted to the
/// base's type); integer bases with integer exponents use exact wrapping integer powers; integer
/// bases with float exponents are computed in double and truncated toward zero.
enum Power {
    /// - Parameters:
    ///   - base: any shape, float or integer.
    ///   - exponent: any shape broadcastable with `base`, float or integer.
    static func apply(_ base: Tensor, _ exponent: Tensor) throws(KernelError) -> Tensor {
        guard base.dtype != .bool, exponent.dtype != .bool else { throw KernelError("Pow does not take bool inputs") }
        switch base.dtype {
        case .float32:
            let e = Conversion.convert(exponent, to: .float32)
            // x^2 is the RMSNorm variance: one multiply instead of powf (same result, exactly).
            if e.count == 1, e.pointer(Float.self)[0] == 2 {
                return try ElementwiseLoops.binary(base, e, Float.self, Float.self) { x, _ in x * x }
            }
            return try ElementwiseLoops.binary(base, e, Float.self, Float.self) { powf($0, $1) }
        case .float64:
            return try ElementwiseLoops.binary(base, Conversion.convert(exponent, to: .float64), Double.self, Double.self) { pow($0, $1) }
        case .float16, .bfloat16:
            let wide = try apply(Conversion.convert(base, to: .float32), Conversion.convert(exponent, to: .float32))
            return Conversion.convert(wide, to: base.dtype)
        default:
            if exponent.dtype.isFloatingPoint {
                let wide = try ElementwiseLoops.binary(Conversion.convert(base, to: .float64),
                                                       Conversion.convert(exponent, to: .float64),
                                                       Double.self, Double.self) { pow($0, $1) }
                return Conversion.convert(wide, to: base.dtype)
            }
            var zeroToNegative = false
            let wide = try ElementwiseLoops.binary(Conversion.convert(base, to: .int64),
                                                   Conversion.convert(exponent, to: .int64),
                                                   Int64.self, Int64.self) { x, n in
                if n < 0 && x == 0 { zeroToNegative = true }
                return integerPower(x, n)
            }
            if zeroToNegative { throw KernelError("Pow: integer 0 raised to a negative power") }
            return Conversion.convert(wide, to: base.dtype)
        }
    }

    /// base^exponent with wrapping multiplication. Negative exponents give 1/base^|n| truncated
    /// toward zero: ±1 for base ±1, else 0.
    @inline(__always)
    static func integerPower(_ base: Int64, _ exponent: Int64) -> Int64 {
        if exponent < 0 {
            switch base {
            case 1: return 1
            case -1: return exponent & 1 == 0 ? 1 : -1
            default: return 0
            }
        }
        var result: Int64 = 1, square = base, n = exponent
        while n > 0 {
            if n & 1 == 1 { result = result &* square }
            n >>= 1
            if n > 0 { square = square &* square }
        }
        return result
    }
}
