/// A dense, contiguous, row-major tensor. Value semantics for shape and dtype; the bytes live in a
/// shared `TensorStorage`, so reshapes and views never copy. Kernels never write into their inputs:
/// storage may be a read-only memory map.
public struct Tensor: @unchecked Sendable {
    public let dtype: DType
    public let shape: [Int]
    public let storage: TensorStorage

    public init(dtype: DType, shape: [Int], storage: TensorStorage) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        precondition(storage.byteCount >= Tensor.elementCount(shape) * dtype.size,
                     "storage of \(storage.byteCount) bytes too small for \(dtype) \(shape)")
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
    }

    /// A zero-filled tensor.
    public init(zeros dtype: DType, shape: [Int]) {
        self.init(dtype: dtype, shape: shape,
                  storage: TensorStorage(zeroedByteCount: Tensor.elementCount(shape) * dtype.size))
    }

    /// A tensor whose bytes the caller fills completely before reading.
    public init(uninitialized dtype: DType, shape: [Int]) {
        self.init(dtype: dtype, shape: shape,
                  storage: TensorStorage(uninitializedByteCount: Tensor.elementCount(shape) * dtype.size))
    }

    /// A tensor holding a copy of `values`.
    public init<T: TensorElement>(_ values: [T], shape: [Int]) {
        precondition(values.count == Tensor.elementCount(shape), "\(values.count) values for shape \(shape)")
        self.init(uninitialized: T.dtype, shape: shape)
        values.withUnsafeBytes { source in
            if source.count > 0 { storage.pointer.copyMemory(from: source.baseAddress!, byteCount: source.count) }
        }
    }

    /// A rank-0 tensor.
    public init<T: TensorElement>(scalar: T) {
        self.init([scalar], shape: [])
    }

    public static func elementCount(_ shape: [Int]) -> Int {
        shape.reduce(1, *)
    }

    public var count: Int { Tensor.elementCount(shape) }
    public var rank: Int { shape.count }
    public var byteCount: Int { count * dtype.size }
    public var raw: UnsafeMutableRawPointer { storage.pointer }

    /// Typed access to the elements. `T` must match `dtype`.
    public func pointer<T: TensorElement>(_: T.Type = T.self) -> UnsafeMutablePointer<T> {
        precondition(T.dtype == dtype, "reading \(dtype) tensor as \(T.dtype)")
        return storage.pointer.assumingMemoryBound(to: T.self)
    }

    public func buffer<T: TensorElement>(_: T.Type = T.self) -> UnsafeMutableBufferPointer<T> {
        UnsafeMutableBufferPointer(start: pointer(T.self), count: count)
    }

    /// A copy of the elements. `T` must match `dtype`.
    public func array<T: TensorElement>(_: T.Type = T.self) -> [T] {
        Array(buffer(T.self))
    }

    /// The same bytes under another shape with the same element count (no copy).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        precondition(Tensor.elementCount(newShape) == count, "reshape \(shape) to \(newShape)")
        return Tensor(dtype: dtype, shape: newShape, storage: storage)
    }

    /// A deep copy into freshly allocated storage.
    public func copy() -> Tensor {
        let result = Tensor(uninitialized: dtype, shape: shape)
        if byteCount > 0 { result.raw.copyMemory(from: raw, byteCount: byteCount) }
        return result
    }

    /// Row-major strides in elements.
    public var strides: [Int] { Tensor.strides(of: shape) }

    public static func strides(of shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var running = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[axis] = running
            running *= shape[axis]
        }
        return strides
    }
}

extension Tensor {
    /// Every element converted to Double (for comparisons, printing and shape arithmetic).
    public func doubles() -> [Double] {
        switch dtype {
        case .float32: buffer(Float.self).map(Double.init)
        case .float64: array(Double.self)
        case .float16: buffer(Float16.self).map { Double(Float($0)) }
        case .bfloat16: buffer(BFloat16.self).map { Double($0.float) }
        case .int64: buffer(Int64.self).map(Double.init)
        case .int32: buffer(Int32.self).map(Double.init)
        case .int8: buffer(Int8.self).map(Double.init)
        case .int16: buffer(Int16.self).map(Double.init)
        case .uint8: buffer(UInt8.self).map(Double.init)
        case .bool: buffer(Bool.self).map { $0 ? 1 : 0 }
        case .float24: buffer(Float24.self).map { Double($0.float) } // storage order: the runtime tiles f24 matrices
        }
    }

    /// Every element of an integer or bool tensor as Int (shape arithmetic). Floats are truncated.
    public func ints() -> [Int] {
        switch dtype {
        case .int64: buffer(Int64.self).map { Int($0) }
        case .int32: buffer(Int32.self).map { Int($0) }
        case .int8: buffer(Int8.self).map { Int($0) }
        case .int16: buffer(Int16.self).map { Int($0) }
        case .uint8: buffer(UInt8.self).map { Int($0) }
        case .bool: buffer(Bool.self).map { $0 ? 1 : 0 }
        default: doubles().map { Int($0) }
        }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor<\(dtype)>\(shape)" }
}

/// The Swift types a tensor's elements can be read as.
public protocol TensorElement: Sendable {
    static var dtype: DType { get }
}

extension Float: TensorElement { public static var dtype: DType { .float32 } }
extension Double: TensorElement { public static var dtype: DType { .float64 } }
extension Float16: TensorElement { public static var dtype: DType { .float16 } }
extension BFloat16: TensorElement { public static var dtype: DType { .bfloat16 } }
extension Float24: TensorElement { public static var dtype: DType { .float24 } }
extension Int64: TensorElement { public static var dtype: DType { .int64 } }
extension Int32: TensorElement { public static var dtype: DType { .int32 } }
extension Int8: TensorElement { public static var dtype: DType { .int8 } }
extension Int16: TensorElement { public static var dtype: DType { .int16 } }
extension UInt8: TensorElement { public static var dtype: DType { .uint8 } }
extension Bool: TensorElement { public static var dtype: DType { .bool } }

/// bfloat16: the top 16 bits of a float32.
public struct BFloat16: Sendable, Equatable {
    public var bits: UInt16

    public init(bits: UInt16) { self.bits = bits }

    /// Rounds to nearest, ties to even, as PyTorch and onnxruntime do; NaN stays NaN.
    public init(_ value: Float) {
        let word = value.bitPattern
        if value.isNaN {
            bits = UInt16(truncatingIfNeeded: word >> 16) | 0x0040
        } else {
            let roundingBias: UInt32 = 0x7FFF + ((word >> 16) & 1)
            bits = UInt16(truncatingIfNeeded: (word &+ roundingBias) >> 16)
        }
    }

    public var float: Float { Float(bitPattern: UInt32(bits) << 16) }
}

/// A float32 without its low byte (bytes 1–3 of the little-endian float32; CKernels' lpc_f24):
/// exact for weights whose low 8 mantissa bits are zero.
public struct Float24: Sendable, Equatable {
    public var byte1: UInt8, byte2: UInt8, byte3: UInt8 // the float32's bytes 1–3 (byte 0 dropped)

    /// Drops the low byte (truncates: exact only when it is zero, which the caller checks).
    public init(truncating value: Float) {
        let word = value.bitPattern
        byte1 = UInt8(truncatingIfNeeded: word >> 8)
        byte2 = UInt8(truncatingIfNeeded: word >> 16)
        byte3 = UInt8(truncatingIfNeeded: word >> 24)
    }

    public var float: Float { Float(bitPattern: UInt32(byte1) << 8 | UInt32(byte2) << 16 | UInt32(byte3) << 24) }
}
