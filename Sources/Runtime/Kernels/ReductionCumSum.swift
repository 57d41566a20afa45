import TensorCore

/// CumSum(x, axis) with `exclusive` (each output leaves out its own element, so the first is 0)
/// and `reverse` (sum from the end). The axis is an int32/int64 scalar (a 1-element 1-D tensor is
/// accepted too). Sums accumulate in the element type (float16/bfloat16 in float32); integer
/// sums wrap.
enum CumulativeSum {
    static func run(_ ctx: KernelContext) throws(KernelError) -> Tensor {
        let x = try ctx.input(0)
        let axisTensor = try ctx.input(1)
        guard axisTensor.dtype == .int64 || axisTensor.dtype == .int32, axisTensor.count == 1, axisTensor.rank <= 1 else {
            throw KernelError("CumSum: axis must be an int32 or int64 scalar, got \(axisTensor.dtype) \(axisTensor.shape)")
        }
        guard x.rank >= 1 else { throw KernelError("CumSum needs an input of rank ≥ 1, got a scalar") }
        let axis = try normalizedAxis(axisTensor.ints()[0], rank: x.rank)
        let exclusive = (ctx.node.int("exclusive") ?? 0) != 0
        let reverse = (ctx.node.int("reverse") ?? 0) != 0
        let outer = Tensor.elementCount(Array(x.shape[..<axis]))
        let length = x.shape[axis]
        let inner = Tensor.elementCount(Array(x.shape[(axis + 1)...]))
        let layout = Layout(outer: outer, length: length, inner: inner, exclusive: exclusive, reverse: reverse)
        switch x.dtype {
        case .float32: return layout.scan(x, Float.self, +)
        case .float64: return layout.scan(x, Double.self, +)
        case .float16, .bfloat16, .float24:
            return Conversion.convert(layout.scan(Conversion.convert(x, to: .float32), Float.self, +), to: x.dtype)
        case .int64: return layout.scan(x, Int64.self, &+)
        case .int32: return layout.scan(x, Int32.self, &+)
        case .int8: return layout.scan(x, Int8.self, &+)
        case .int16: return layout.scan(x, Int16.self, &+)
        case .uint8: return layout.scan(x, UInt8.self, &+)
        case .bool: throw KernelError("CumSum does not take bool inputs")
        }
    }

    /// The input viewed as [outer, length, inner], scanned along `length`.
    struct Layout {
        let outer: Int, length: Int, inner: Int
        let exclusive: Bool, reverse: Bool

        /// - Parameters:
        ///   - x: element type `T`, `outer·length·inner` elements.
        /// - Returns: same shape and dtype.
        @inline(__always)
        func scan<T: TensorElement & AdditiveArithmetic>(_ x: Tensor, _: T.Type, _ add: (T, T) -> T) -> Tensor {
            let out = Tensor(uninitialized: T.dtype, shape: x.shape)
            guard length > 0 else { return out }
            let px = x.pointer(T.self), py = out.pointer(T.self)
            // Each step along the axis adds a whole inner row, so the inner loop is contiguous.
            for o in 0..<outer {
                let base = o * length * inner
                for step in 0..<length {
                    let k = reverse ? length - 1 - step : step
                    let previous = reverse ? k + 1 : k - 1
                    let row = py + base + k * inner
                    if step == 0 {
                        for j in 0..<inner { row[j] = exclusive ? .zero : px[base + k * inner + j] }
                    } else {
                        let before = py + base + previous * inner
                        let source = px + base + (exclusive ? previous : k) * inner
                        for j in 0..<inner { row[j] = add(before[j], source[j]) }
                    }
                }
            }
            return out
        }
    }
}
