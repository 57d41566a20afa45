import TensorCore

/// Comparisons (→ bool), boolean logic, and Where, all with multidirectional broadcasting.
enum Logic {
    enum Comparison: String, Sendable {
        case equal = "Equal", greater = "Greater", less = "Less"
        case lessOrEqual = "LessOrEqual", greaterOrEqual = "GreaterOrEqual"
    }

    /// - Parameters:
    ///   - a: any shape, numeric (or bool for Equal).
    ///   - b: any shape broadcastable with `a`, same dtype.
    /// - Returns: bool, the broadcast shape.
    static func compare(_ op: Comparison, _ a: Tensor, _ b: Tensor) throws(KernelError) -> Tensor {
        guard a.dtype == b.dtype else {
            throw KernelError("\(op.rawValue) needs inputs of one dtype; got \(a.dtype) and \(b.dtype)")
        }
        switch a.dtype {
        case .float32: return try compare(op, a, b, Float.self)
        case .float64: return try compare(op, a, b, Double.self)
        // Half values are exact in float32, so comparing there is exact.
        case .float16, .bfloat16, .float24:
            return try compare(op, Conversion.convert(a, to: .float32), Conversion.convert(b, to: .float32), Float.self)
        case .int64: return try compare(op, a, b, Int64.self)
        case .int32: return try compare(op, a, b, Int32.self)
        case .int8: return try compare(op, a, b, Int8.self)
        case .int16: return try compare(op, a, b, Int16.self)
        case .uint8: return try compare(op, a, b, UInt8.self)
        case .bool:
            guard op == .equal else { throw KernelError("\(op.rawValue) does not take bool inputs") }
            return try ElementwiseLoops.binary(a, b, Bool.self, Bool.self) { $0 == $1 }
        }
    }

    @inline(__always)
    private static func compare<T: Comparable & TensorElement>(
        _ op: Comparison, _ a: Tensor, _ b: Tensor, _: T.Type
    ) throws(KernelError) -> Tensor {
        // IEEE semantics: every comparison with NaN is false.
        switch op {
        case .equal: return try ElementwiseLoops.binary(a, b, T.self, Bool.self) { $0 == $1 }
        case .greater: return try ElementwiseLoops.binary(a, b, T.self, Bool.self) { $0 > $1 }
        case .less: return try ElementwiseLoops.binary(a, b, T.self, Bool.self) { $0 < $1 }
        case .lessOrEqual: return try ElementwiseLoops.binary(a, b, T.self, Bool.self) { $0 <= $1 }
        case .greaterOrEqual: return try ElementwiseLoops.binary(a, b, T.self, Bool.self) { $0 >= $1 }
        }
    }

    enum Connective: String, Sendable { case and = "And", or = "Or", xor = "Xor" }

    /// - Parameters:
    ///   - a: bool, any shape.
    ///   - b: bool, broadcastable with `a`.
    static func logical(_ op: Connective, _ a: Tensor, _ b: Tensor) throws(KernelError) -> Tensor {
        guard a.dtype == .bool, b.dtype == .bool else {
            throw KernelError("\(op.rawValue) needs bool inputs; got \(a.dtype) and \(b.dtype)")
        }
        switch op {
        case .and: return try ElementwiseLoops.binary(a, b, Bool.self, Bool.self) { $0 && $1 }
        case .or: return try ElementwiseLoops.binary(a, b, Bool.self, Bool.self) { $0 || $1 }
        case .xor: return try ElementwiseLoops.binary(a, b, Bool.self, Bool.self) { $0 != $1 }
        }
    }

    /// Where(condition, X, Y): X where the condition holds, else Y; three-way broadcast.
    /// - Parameters:
    ///   - condition: bool, any shape.
    ///   - x: any dtype, broadcastable.
    ///   - y: same dtype as `x`, broadcastable.
    static func select(_ condition: Tensor, _ x: Tensor, _ y: Tensor) throws(KernelError) -> Tensor {
        guard condition.dtype == .bool else { throw KernelError("Where: condition must be bool, got \(condition.dtype)") }
        guard x.dtype == y.dtype else { throw KernelError("Where: X and Y must have one dtype; got \(x.dtype) and \(y.dtype)") }
        let shape = try Broadcast.shape([condition.shape, x.shape, y.shape])
        let out = Tensor(uninitialized: x.dtype, shape: shape)
        // Elements are copied as bits, so one loop per element size serves every dtype.
        switch x.dtype.size {
        case 1: select(condition, x, y, out, UInt8.self)
        case 2: select(condition, x, y, out, UInt16.self)
        case 4: select(condition, x, y, out, UInt32.self)
        default: select(condition, x, y, out, UInt64.self)
        }
        return out
    }

    private static func select<W: FixedWidthInteger>(_ c: Tensor, _ x: Tensor, _ y: Tensor, _ out: Tensor, _: W.Type) {
        guard out.count > 0 else { return }
        let pc = c.pointer(Bool.self)
        let px = UnsafeRawPointer(x.raw), py = UnsafeRawPointer(y.raw), po = out.raw
        let size = MemoryLayout<W>.stride
        if c.shape == out.shape && x.shape == out.shape && y.shape == out.shape {
            for i in 0..<out.count {
                let offset = i * size
                po.storeBytes(of: (pc[i] ? px : py).loadUnaligned(fromByteOffset: offset, as: W.self), toByteOffset: offset, as: W.self)
            }
            return
        }
        let runs = BroadcastRuns(target: out.shape, sources: [c.shape, x.shape, y.shape])
        let n = runs.runLength, sc = runs.runSteps[0], sx = runs.runSteps[1] * size, sy = runs.runSteps[2] * size
        runs.forEachRun { offsets, o in
            let cc = pc + offsets[0], xx = px + offsets[1] * size, yy = py + offsets[2] * size
            let oo = po + o * size
            for i in 0..<n {
                let value = cc[i * sc] ? xx.loadUnaligned(fromByteOffset: i * sx, as: W.self) : yy.loadUnaligned(fromByteOffset: i * sy, as: W.self)
                oo.storeBytes(of: value, toByteOffset: i * size, as: W.self)
            }
        }
    }
}
