import TensorCore

/// Helpers shared by the data-movement kernels (shape, gather, slice, transpose, concat, scatter).
/// They treat elements as opaque `dtype.size`-byte blocks, so every kernel works for every dtype.
enum ShapeSupport {
    /// Largest output a shape kernel will allocate from a user-controlled shape (1 TiB): beyond
    /// this an allocation would fail and crash, so we throw instead.
    static let maxOutputBytes = 1 << 40

    /// The element count of a user-supplied shape, with negative dims and overflow reported.
    static func checkedCount(_ shape: [Int], elementSize: Int = 1, what: String = "shape") throws(KernelError) -> Int {
        var count = 1
        for dim in shape {
            guard dim >= 0 else { throw KernelError("\(what) \(shape) has a negative dimension") }
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow else { throw KernelError("\(what) \(shape) has too many elements") }
            count = product
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: max(elementSize, 1))
        guard !overflow, bytes <= maxOutputBytes else {
            throw KernelError("\(what) \(shape) is too large to allocate")
        }
        return count
    }

    /// A fresh tensor for an output whose shape came from user data (checked before allocating).
    static func output(_ dtype: DType, _ shape: [Int]) throws(KernelError) -> Tensor {
        _ = try checkedCount(shape, elementSize: dtype.size, what: "output shape")
        return Tensor(uninitialized: dtype, shape: shape)
    }

    /// The values of an int32 or int64 tensor (indices, axes, shapes, pads), as Int.
    static func integers(_ tensor: Tensor, _ what: String) throws(KernelError) -> [Int] {
        switch tensor.dtype {
        case .int64: return tensor.buffer(Int64.self).map { Int($0) }
        case .int32: return tensor.buffer(Int32.self).map { Int($0) }
        default: throw KernelError("\(what) must be int64 or int32, got \(tensor.dtype)")
        }
    }

    /// A 1-D (or scalar) integer list such as a shape, axes or repeats input.
    static func integerList(_ tensor: Tensor, _ what: String) throws(KernelError) -> [Int] {
        guard tensor.rank <= 1 else { throw KernelError("\(what) must be 1-D, got shape \(tensor.shape)") }
        return try integers(tensor, what)
    }

    /// A single integer from a rank-0 or one-element tensor (Trilu's k, Range bounds).
    static func integerScalar(_ tensor: Tensor, _ what: String) throws(KernelError) -> Int {
        let values = try integers(tensor, what)
        guard values.count == 1 else { throw KernelError("\(what) must hold one value, got shape \(tensor.shape)") }
        return values[0]
    }

    /// Normalises a list of possibly negative axes against `rank`, rejecting duplicates.
    static func axes(_ axes: [Int], rank: Int, what: String = "axes") throws(KernelError) -> [Int] {
        var seen = [Bool](repeating: false, count: rank)
        var result: [Int] = []
        result.reserveCapacity(axes.count)
        for axis in axes {
            let normal = axis < 0 ? axis + rank : axis
            guard normal >= 0 && normal < rank else {
                throw KernelError("\(what) value \(axis) is out of range for rank \(rank)")
            }
            guard !seen[normal] else { throw KernelError("\(what) \(axes) repeat axis \(normal)") }
            seen[normal] = true
            result.append(normal)
        }
        return result
    }

    /// Wraps a possibly negative index into [0, dim), or throws naming the axis.
    @inline(__always)
    static func wrapIndex(_ index: Int, dim: Int, axis: Int) throws(KernelError) -> Int {
        let wrapped = index < 0 ? index + dim : index
        guard wrapped >= 0 && wrapped < dim else {
            throw KernelError("index \(index) is out of range for axis \(axis) of size \(dim)")
        }
        return wrapped
    }

    /// Fills `count` elements at `destination` with the `elementSize` bytes at `pattern`.
    static func fill(_ destination: UnsafeMutableRawPointer, count: Int, pattern: UnsafeRawPointer, elementSize: Int) {
        guard count > 0 else { return }
        let bytes = UnsafeRawBufferPointer(start: pattern, count: elementSize)
        if bytes.allSatisfy({ $0 == 0 }) {
            destination.initializeMemory(as: UInt8.self, repeating: 0, count: count * elementSize)
            return
        }
        // Write one element, then double the filled prefix with memcpy.
        destination.copyMemory(from: pattern, byteCount: elementSize)
        var filled = 1
        while filled < count {
            let chunk = min(filled, count - filled)
            (destination + filled * elementSize).copyMemory(from: destination, byteCount: chunk * elementSize)
            filled += chunk
        }
    }

    /// A rank-0 tensor of `dtype` holding `value` (Pad's float `value` attribute, defaults).
    static func scalar(_ value: Double, dtype: DType) -> Tensor {
        switch dtype {
        case .float32: return Tensor(scalar: Float(value))
        case .float64: return Tensor(scalar: value)
        case .float16: return Tensor(scalar: Float16(Float(value)))
        case .bfloat16: return Tensor(scalar: BFloat16(Float(value)))
        case .float24: return Tensor(scalar: Float24(truncating: Float(value)))
        case .int64: return Tensor(scalar: Int64(clamping: saturatingInt(value)))
        case .int32: return Tensor(scalar: Int32(clamping: saturatingInt(value)))
        case .int8: return Tensor(scalar: Int8(clamping: saturatingInt(value)))
        case .int16: return Tensor(scalar: Int16(clamping: saturatingInt(value)))
        case .uint8: return Tensor(scalar: UInt8(clamping: saturatingInt(value)))
        case .bool: return Tensor(scalar: value != 0)
        }
    }

    private static func saturatingInt(_ value: Double) -> Int {
        guard value.isFinite else { return value.isNaN ? 0 : (value > 0 ? Int.max : Int.min) }
        if value >= 9.2e18 { return Int.max }
        if value <= -9.2e18 { return Int.min }
        return Int(value)
    }

    /// `a + b`, saturating at the Int range (index arithmetic on INT64_MAX-style sentinels).
    @inline(__always)
    static func clampedAdd(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? Int.max : Int.min) : sum
    }
}
