import CKernels
import TensorCore

/// Cast and CastLike, and the dtype conversions other kernels reuse (half precision is computed
/// in float32 by converting in and out).
enum CastKernels {
    static func register(into table: inout [String: Kernel]) {
        // Cast (opsets 6–23): `to` is an ONNX data type code. `saturate` (19+) only concerns
        // float8 types, which we do not support, so it is ignored.
        table["Cast"] = { ctx in
            let x = try ctx.input(0)
            guard let code = ctx.node.int("to") else { throw KernelError("Cast needs the 'to' attribute") }
            guard let to = DType(onnx: Int32(truncatingIfNeeded: code)), Int(to.rawValue) == code else {
                throw KernelError("Cast to \(DType.onnxName(Int32(truncatingIfNeeded: code))) is not supported")
            }
            return [Conversion.convert(x, to: to)]
        }
        // CastLike (15+): the target type is the second input's.
        table["CastLike"] = { ctx in
            let x = try ctx.input(0)
            let like = try ctx.input(1)
            return [Conversion.convert(x, to: like.dtype)]
        }
    }
}

/// An element type Cast can read and write. A value travels as a Double (from floating types,
/// exact for all of ours), an Int64 (from integer types, exact) or a Bool, so every pair of types
/// converts with one correctly rounded step, except double→bfloat16, which rounds via float as
/// onnxruntime does.
protocol CastElement: TensorElement {
    static func make(double: Double) -> Self
    static func make(int: Int64) -> Self
    static func make(bool: Bool) -> Self
    func cast<D: CastElement>(to: D.Type) -> D
}

extension Float: CastElement {
    static func make(double: Double) -> Float { Float(double) }
    static func make(int: Int64) -> Float { Float(int) }
    static func make(bool: Bool) -> Float { bool ? 1 : 0 }
    @inline(__always) func cast<D: CastElement>(to: D.Type) -> D { D.make(double: Double(self)) }
}

extension Double: CastElement {
    static func make(double: Double) -> Double { double }
    static func make(int: Int64) -> Double { Double(int) }
    static func make(bool: Bool) -> Double { bool ? 1 : 0 }
    @inline(__always) func cast<D: CastElement>(to: D.Type) -> D { D.make(double: self) }
}

extension Float16: CastElement {
    static func make(double: Double) -> Float16 { Float16(double) }
    static func make(int: Int64) -> Float16 { Float16(int) }
    static func make(bool: Bool) -> Float16 { bool ? 1 : 0 }
    @inline(__always) func cast<D: CastElement>(to: D.Type) -> D { D.make(double: Double(self)) }
}

/// Only weight storage is ever float24; a cast to it truncates (exact when the low byte is zero).
extension Float24: CastElement {
    static func make(double: Double) -> Float24 { Float24(truncating: Float(double)) }
    static func make(int: Int64) -> Float24 { Float24(truncating: Float(int)) }
    static func make(bool: Bool) -> Float24 { Float24(truncating: bool ? 1 : 0) }
    @inline(__always) func cast<D: CastElement>(to: D.Type) -> D { D.make(double: Double(float)) }
}

extension BFloat16: CastElement {
    static func make(double: Double) -> BFloat16 { BFloat16(Float(double)) }
    static func make(int: Int64) -> BFloat16 { BFloat16(Float(int)) }
    static func make(bool: Bool) -> BFloat16 { BFloat16(bool ? Float(1) : 0) }
    @inline(__always) func cast<D: CastElement>(to: D.Type) -> D { D.make(double: Double(float)) }
}

/// Float→integer conversion truncates toward zero. Out-of-range values and NaN are undefined in
/// C; we give what x86 `cvttsd2si` (and so onnxruntime there) gives: the minimum of the 32-bit
/// (int8, uint8, int32) or 64-bit (int64) result, narrowed by dropping high bits.
@inline(__always)
private func truncatedInt32(_ value: Double) -> Int32 {
    value > -2_147_483_649.0 && value < 2_147_483_648.0 ? Int32(value) : Int32.min
}

extension Int64: CastElement {
    static func make(double: Double) -> Int64 {
        double >= -9_223_372_036_854_775_808.0 && double < 9_223_372_036_854_775_808.0 ? Int64(double) : Int64.min
    }
    static func make(int: Int64) -> Int64 { int }
    static func make(bool: Bool) -> Int64 { bool ? 1 : 0 }
    @inline(__always) func cast<D: CastElement>(to: D.Type) -> D { D.make(int: self) }
}

extension Int32: CastElement {
    static func make(double: Double) -> Int32 { truncatedInt32(double) }
    static func make(int: Int64) -> Int32 { Int32(truncatingIfNeeded: int) }
    static func make(bool: Bool) -> Int32 { bool ? 1 : 0 }
    @inline(__always) func cast<D: CastElement>(to: D.Type) -> D { D.make(int: Int64(self)) }
}

extension Int8: CastElement {
    static func make(double: Double) -> Int8 { Int8(truncatingIfNeeded: truncatedInt32(double)) }
    static func make(int: Int64) -> Int8 { Int8(truncatingIfNeeded: int) }
    static func make(bool: Bool) -> Int8 { bool ? 1 : 0 }
    @inline(__always) func cast<D: CastElement>(to: D.Type) -> D { D.make(int: Int64(self)) }
}

extension Int16: CastElement {
    static func make(double: Double) -> Int16 { Int16(truncatingIfNeeded: truncatedInt32(double)) }
    static func make(int: Int64) -> Int16 { Int16(truncatingIfNeeded: int) }
    static func make(bool: Bool) -> Int16 { bool ? 1 : 0 }
    @inline(__always) func cast<D: CastElement>(to: D.Type) -> D { D.make(int: Int64(self)) }
}

extension UInt8: CastElement {
    static func make(double: Double) -> UInt8 { UInt8(truncatingIfNeeded: truncatedInt32(double)) }
    static func make(int: Int64) -> UInt8 { UInt8(truncatingIfNeeded: int) }
    static func make(bool: Bool) -> UInt8 { bool ? 1 : 0 }
    @inline(__always) func cast<D: CastElement>(to: D.Type) -> D { D.make(int: Int64(self)) }
}

extension Bool: CastElement {
    /// Non-zero is true; NaN is non-zero; -0.0 is zero.
    static func make(double: Double) -> Bool { double != 0 }
    static func make(int: Int64) -> Bool { int != 0 }
    static func make(bool: Bool) -> Bool { bool }
    @inline(__always) func cast<D: CastElement>(to: D.Type) -> D { D.make(bool: self) }
}

/// Elementwise dtype conversion with Cast semantics.
enum Conversion {
    /// `x` converted to `dtype`; `x` itself when it already has that dtype (a zero-copy view).
    static func convert(_ x: Tensor, to dtype: DType) -> Tensor {
        if x.dtype == dtype { return x }
        // The half-precision round trips every half kernel makes, without the Double detour.
        switch (x.dtype, dtype) {
        case (.float16, .float32): return ElementwiseLoops.unary(x, Float16.self, Float.self) { Float($0) }
        case (.float32, .float16): return ElementwiseLoops.unary(x, Float.self, Float16.self) { Float16($0) }
        case (.bfloat16, .float32): return ElementwiseLoops.unary(x, BFloat16.self, Float.self) { $0.float }
        case (.float32, .bfloat16): return ElementwiseLoops.unary(x, Float.self, BFloat16.self) { BFloat16($0) }
        // f24 is weight storage: a matrix [K, N] (K the product of the leading dimensions) in the
        // kernels' tiles (lpc_f24.h). Every cast to or from it goes through float32 and the tiles
        // (the same order as row-major for a single row or at most 48 columns).
        case (.float24, .float32):
            let wide = Tensor(uninitialized: .float32, shape: x.shape)
            let (k, n) = matrixShape(x)
            lpc_f24_tiles_to_f32(x.raw.assumingMemoryBound(to: lpc_f24.self), wide.pointer(Float.self), Int64(k), Int64(n), 0, Int64(k))
            return wide
        case (.float32, .float24):
            let packed = Tensor(uninitialized: .float24, shape: x.shape)
            let (k, n) = matrixShape(x)
            _ = lpc_f32_to_f24_tiles(x.pointer(Float.self), packed.raw.assumingMemoryBound(to: lpc_f24.self), Int64(k), Int64(n), 0, Int64(k)) // truncates
            return packed
        case (.float24, _): return convert(convert(x, to: .float32), to: dtype)
        case (_, .float24): return convert(convert(x, to: .float32), to: .float24)
        default: break
        }
        switch x.dtype {
        case .float32: return convert(x, from: Float.self, to: dtype)
        case .float64: return convert(x, from: Double.self, to: dtype)
        case .float16: return convert(x, from: Float16.self, to: dtype)
        case .bfloat16: return convert(x, from: BFloat16.self, to: dtype)
        case .float24: return convert(x, from: Float24.self, to: dtype)
        case .int64: return convert(x, from: Int64.self, to: dtype)
        case .int32: return convert(x, from: Int32.self, to: dtype)
        case .int8: return convert(x, from: Int8.self, to: dtype)
        case .int16: return convert(x, from: Int16.self, to: dtype)
        case .uint8: return convert(x, from: UInt8.self, to: dtype)
        case .bool: return convert(x, from: Bool.self, to: dtype)
        }
    }

    /// [K, N] of a tensor seen as a matrix of its last dimension's rows.
    private static func matrixShape(_ x: Tensor) -> (k: Int, n: Int) {
        let n = x.shape.last ?? 1
        return (n == 0 ? 0 : x.count / n, n)
    }

    private static func convert<S: CastElement>(_ x: Tensor, from: S.Type, to dtype: DType) -> Tensor {
        switch dtype {
        case .float32: return loop(x, S.self, Float.self)
        case .float64: return loop(x, S.self, Double.self)
        case .float16: return loop(x, S.self, Float16.self)
        case .bfloat16: return loop(x, S.self, BFloat16.self)
        case .float24: return loop(x, S.self, Float24.self)
        case .int64: return loop(x, S.self, Int64.self)
        case .int32: return loop(x, S.self, Int32.self)
        case .int8: return loop(x, S.self, Int8.self)
        case .int16: return loop(x, S.self, Int16.self)
        case .uint8: return loop(x, S.self, UInt8.self)
        case .bool: return loop(x, S.self, Bool.self)
        }
    }

    @inline(__always)
    private static func loop<S: CastElement, D: CastElement>(_ x: Tensor, _: S.Type, _: D.Type) -> Tensor {
        ElementwiseLoops.unary(x, S.self, D.self) { $0.cast(to: D.self) }
    }

    /// Half-precision tensors widened to float32; others unchanged.
    static func widenHalf(_ x: Tensor) -> Tensor {
        x.dtype == .float16 || x.dtype == .bfloat16 ? convert(x, to: .float32) : x
    }
}
