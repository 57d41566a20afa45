import Graph
import TensorCore

/// ScatterND: a copy of data with slices replaced by (or, opset 16+, reduced with) updates.
enum ScatterKernels {
    static func register(into table: inout [String: Kernel]) {
        table["ScatterND"] = scatterND
    }

    private enum Reduction: String { case none, add, mul, max, min }

    /// data: [r…], indices: [q…, k], updates: [q…, r(k)…] → [r…]. Updates apply in index order,
    /// so with reduction none a duplicated index keeps the last update.
    @Sendable static func scatterND(_ ctx: KernelContext) throws -> [Tensor] {
        let data = try ctx.input(0), indicesTensor = try ctx.input(1), updates = try ctx.input(2)
        let reductionName = ctx.node.string("reduction") ?? "none"
        guard let reduction = Reduction(rawValue: reductionName) else {
            throw KernelError("ScatterND reduction '\(reductionName)' is not one of none, add, mul, max, min")
        }
        guard updates.dtype == data.dtype else {
            throw KernelError("ScatterND updates are \(updates.dtype) but data is \(data.dtype)")
        }
        guard indicesTensor.rank >= 1 else { throw KernelError("ScatterND indices must have rank >= 1") }
        let k = indicesTensor.shape[indicesTensor.rank - 1]
        guard k <= data.rank else {
            throw KernelError("ScatterND indices last dim \(k) exceeds the data rank \(data.rank)")
        }
        let expected = Array(indicesTensor.shape.dropLast()) + Array(data.shape[k...])
        guard updates.shape == expected else {
            throw KernelError("ScatterND updates have shape \(updates.shape); data \(data.shape) and indices \(indicesTensor.shape) need \(expected)")
        }
        let indices = try ShapeSupport.integers(indicesTensor, "ScatterND indices")
        let tupleCount = indicesTensor.shape.dropLast().reduce(1, *)
        let sliceElements = data.shape[k...].reduce(1, *)
        let strides = Tensor.strides(of: data.shape)
        var offsets = [Int](repeating: 0, count: tupleCount)
        for t in 0..<tupleCount {
            var offset = 0
            for j in 0..<k {
                offset += try ShapeSupport.wrapIndex(indices[t * k + j], dim: data.shape[j], axis: j) * strides[j]
            }
            offsets[t] = offset
        }

        let result = data.copy()
        guard sliceElements > 0, tupleCount > 0 else { return [result] }
        let elementSize = data.dtype.size
        if reduction == .none {
            let sliceBytes = sliceElements * elementSize
            for (t, offset) in offsets.enumerated() {
                (result.raw + offset * elementSize).copyMemory(from: updates.raw + t * sliceBytes, byteCount: sliceBytes)
            }
            return [result]
        }
        switch data.dtype {
        case .float32: reduceFloat(Float.self, result, updates, offsets, sliceElements, reduction)
        case .float64: reduceFloat(Double.self, result, updates, offsets, sliceElements, reduction)
        case .float16: reduceFloat(Float16.self, result, updates, offsets, sliceElements, reduction)
        case .int64: reduceInteger(Int64.self, result, updates, offsets, sliceElements, reduction)
        case .int32: reduceInteger(Int32.self, result, updates, offsets, sliceElements, reduction)
        case .int8: reduceInteger(Int8.self, result, updates, offsets, sliceElements, reduction)
        case .int16: reduceInteger(Int16.self, result, updates, offsets, sliceElements, reduction)
        case .uint8: reduceInteger(UInt8.self, result, updates, offsets, sliceElements, reduction)
        case .bfloat16, .float24, .bool:
            throw KernelError("ScatterND reduction '\(reductionName)' does not support dtype \(data.dtype)")
        }
        return [result]
    }

    private static func reduceFloat<T: BinaryFloatingPoint & TensorElement>(
        _: T.Type, _ result: Tensor, _ updates: Tensor, _ offsets: [Int], _ sliceElements: Int, _ reduction: Reduction
    ) {
        let out = result.pointer(T.self), update = updates.pointer(T.self)
        for (t, offset) in offsets.enumerated() {
            for e in 0..<sliceElements {
                let u = update[t * sliceElements + e]
                let o = out + offset + e
                switch reduction {
                case .add: o.pointee += u
                case .mul: o.pointee *= u
                case .max: o.pointee = Swift.max(o.pointee, u)
                case .min: o.pointee = Swift.min(o.pointee, u)
                case .none: o.pointee = u
                }
            }
        }
    }

    private static func reduceInteger<T: FixedWidthInteger & TensorElement>(
        _: T.Type, _ result: Tensor, _ updates: Tensor, _ offsets: [Int], _ sliceElements: Int, _ reduction: Reduction
    ) {
        let out = result.pointer(T.self), update = updates.pointer(T.self)
        for (t, offset) in offsets.enumerated() {
            for e in 0..<sliceElements {
                let u = update[t * sliceElements + e]
                let o = out + offset + e
                switch reduction {
                case .add: o.pointee &+= u
                case .mul: o.pointee &*= u
                case .max: o.pointee = Swift.max(o.pointee, u)
                case .min: o.pointee = Swift.min(o.pointee, u)
                case .none: o.pointee = u
                }
            }
        }
    }
}
