import Graph
import TensorCore

/// Range: start, start+delta, … up to (excluding) limit; max(ceil((limit-start)/delta), 0) values.
enum ShapeRangeKernels {
    static func register(into table: inout [String: Kernel]) {
        table["Range"] = range
    }

    /// start, limit, delta: scalars of one dtype (int64, int32, float32, float64) → [count].
    @Sendable static func range(_ ctx: KernelContext) throws -> [Tensor] {
        let start = try ctx.input(0), limit = try ctx.input(1), delta = try ctx.input(2)
        guard start.dtype == limit.dtype, start.dtype == delta.dtype else {
            throw KernelError("Range start, limit and delta must share a dtype, got \(start.dtype), \(limit.dtype), \(delta.dtype)")
        }
        for (name, t) in [("start", start), ("limit", limit), ("delta", delta)] where t.count != 1 {
            throw KernelError("Range \(name) must be a scalar, got shape \(t.shape)")
        }
        switch start.dtype {
        case .int64: return [try integerRange(Int64.self, start, limit, delta)]
        case .int32: return [try integerRange(Int32.self, start, limit, delta)]
        case .float32: return [try floatRange(Float.self, start, limit, delta)]
        case .float64: return [try floatRange(Double.self, start, limit, delta)]
        default: throw KernelError("Range does not support dtype \(start.dtype); use int32, int64, float or double")
        }
    }

    private static func integerRange<T: FixedWidthInteger & TensorElement>(
        _: T.Type, _ startT: Tensor, _ limitT: Tensor, _ deltaT: Tensor
    ) throws(KernelError) -> Tensor {
        let start = Int(startT.pointer(T.self)[0]), limit = Int(limitT.pointer(T.self)[0])
        let delta = Int(deltaT.pointer(T.self)[0])
        guard delta != 0 else { throw KernelError("Range delta is 0") }
        let (difference, overflow) = limit.subtractingReportingOverflow(start)
        guard !overflow else { throw KernelError("Range from \(start) to \(limit) overflows") }
        // Integer ceil((limit - start) / delta) without overflow; 0 when the signs disagree.
        let count: Int
        if delta > 0 { count = difference > 0 ? (difference - 1) / delta + 1 : 0 }
        else { count = difference < 0 ? (difference + 1) / delta + 1 : 0 }
        let result = try ShapeSupport.output(T.dtype, [count])
        let out = result.pointer(T.self)
        var value = T(truncatingIfNeeded: start)
        let step = T(truncatingIfNeeded: delta)
        for i in 0..<count {
            out[i] = value
            value &+= step  // the last increment may pass the type's range; never stored
        }
        return result
    }

    private static func floatRange<T: BinaryFloatingPoint & TensorElement>(
        _: T.Type, _ startT: Tensor, _ limitT: Tensor, _ deltaT: Tensor
    ) throws(KernelError) -> Tensor {
        let start = startT.pointer(T.self)[0], limit = limitT.pointer(T.self)[0], delta = deltaT.pointer(T.self)[0]
        guard delta != 0 else { throw KernelError("Range delta is 0") }
        // As onnxruntime: the difference in T, the division in double.
        let steps = (Double(limit - start) / Double(delta)).rounded(.up)
        guard !steps.isNaN, steps != .infinity else {
            throw KernelError("Range from \(start) to \(limit) by \(delta) has no finite length")
        }
        let count = steps > 0 ? (steps < 1e15 ? Int(steps) : Int.max) : 0
        let result = try ShapeSupport.output(T.dtype, [count])
        let out = result.pointer(T.self)
        // Accumulate as the spec's reference loop (and onnxruntime) do, not start + i·delta.
        var value = start
        for i in 0..<count {
            out[i] = value
            value += delta
        }
        return result
    }
}
