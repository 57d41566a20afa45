import Graph
import TensorCore

/// Gather, GatherND and GatherElements: copy whole `dtype.size`-byte elements (or contiguous
/// slices of them) selected by int32/int64 indices. Negative indices count from the end; an
/// out-of-range index throws before anything is written.
enum GatherKernels {
    static func register(into table: inout [String: Kernel]) {
        table["Gather"] = gather
        table["GatherND"] = gatherND
        table["GatherElements"] = gatherElements
    }

    /// data: [d0, …, d(axis), …], indices: [i…] → [d0 … d(axis-1), i…, d(axis+1) …].
    /// The embedding lookup is the axis-0 case: one memcpy of a row per index.
    @Sendable static func gather(_ ctx: KernelContext) throws -> [Tensor] {
        let data = try ctx.input(0), indicesTensor = try ctx.input(1)
        guard data.rank >= 1 else { throw KernelError("Gather data must have rank >= 1, got a scalar") }
        let axis = try normalizedAxis(ctx.node.int("axis") ?? 0, rank: data.rank)
        let dim = data.shape[axis]
        var indices = try ShapeSupport.integers(indicesTensor, "Gather indices")
        for i in indices.indices { indices[i] = try ShapeSupport.wrapIndex(indices[i], dim: dim, axis: axis) }

        let shape = Array(data.shape[..<axis]) + indicesTensor.shape + Array(data.shape[(axis + 1)...])
        let result = try ShapeSupport.output(data.dtype, shape)
        let outer = data.shape[..<axis].reduce(1, *)
        let rowBytes = data.shape[(axis + 1)...].reduce(1, *) * data.dtype.size
        guard result.count > 0 else { return [result] }
        let source = UnsafeRawPointer(data.raw)
        var out = result.raw
        for o in 0..<outer {
            let block = source + o * dim * rowBytes
            for index in indices {
                out.copyMemory(from: block + index * rowBytes, byteCount: rowBytes)
                out += rowBytes
            }
        }
        return [result]
    }

    /// data: [b…, r…] (batch_dims b), indices: [b…, q…, k] → [b…, q…, data.shape[b+k…]].
    @Sendable static func gatherND(_ ctx: KernelContext) throws -> [Tensor] {
        let data = try ctx.input(0), indicesTensor = try ctx.input(1)
        let batchDims = ctx.node.int("batch_dims") ?? 0
        guard data.rank >= 1, indicesTensor.rank >= 1 else {
            throw KernelError("GatherND needs data and indices of rank >= 1, got \(data.shape) and \(indicesTensor.shape)")
        }
        guard batchDims >= 0, batchDims < min(data.rank, indicesTensor.rank) else {
            throw KernelError("GatherND batch_dims \(batchDims) must be less than both ranks (\(data.rank), \(indicesTensor.rank))")
        }
        guard data.shape[..<batchDims] == indicesTensor.shape[..<batchDims] else {
            throw KernelError("GatherND batch dims differ: data \(data.shape), indices \(indicesTensor.shape), batch_dims \(batchDims)")
        }
        let k = indicesTensor.shape[indicesTensor.rank - 1]
        guard k >= 1, k <= data.rank - batchDims else {
            throw KernelError("GatherND indices last dim \(k) must be in 1...\(data.rank - batchDims) for data \(data.shape) with batch_dims \(batchDims)")
        }
        let indices = try ShapeSupport.integers(indicesTensor, "GatherND indices")
        let shape = Array(indicesTensor.shape.dropLast()) + Array(data.shape[(batchDims + k)...])
        let result = try ShapeSupport.output(data.dtype, shape)

        let batchCount = data.shape[..<batchDims].reduce(1, *)
        let tuplesPerBatch = indicesTensor.shape[batchDims..<(indicesTensor.rank - 1)].reduce(1, *)
        let sliceElements = data.shape[(batchDims + k)...].reduce(1, *)
        let sliceBytes = sliceElements * data.dtype.size
        let batchElements = data.shape[batchDims...].reduce(1, *)
        let strides = Tensor.strides(of: data.shape)
        // Resolve every tuple to an element offset first, so a bad index throws before writing.
        var offsets = [Int](repeating: 0, count: batchCount * tuplesPerBatch)
        for t in offsets.indices {
            var offset = (t / max(tuplesPerBatch, 1)) * batchElements
            for j in 0..<k {
                let axis = batchDims + j
                let index = try ShapeSupport.wrapIndex(indices[t * k + j], dim: data.shape[axis], axis: axis)
                offset += index * strides[axis]
            }
            offsets[t] = offset
        }
        guard result.count > 0 else { return [result] }
        let source = UnsafeRawPointer(data.raw), elementSize = data.dtype.size
        for (t, offset) in offsets.enumerated() {
            (result.raw + t * sliceBytes).copyMemory(from: source + offset * elementSize, byteCount: sliceBytes)
        }
        return [result]
    }

    /// data: [d…], indices: [i…] of the same rank (i_j <= d_j off the axis) → [i…];
    /// out[p] = data[p with p[axis] replaced by indices[p]].
    @Sendable static func gatherElements(_ ctx: KernelContext) throws -> [Tensor] {
        let data = try ctx.input(0), indicesTensor = try ctx.input(1)
        guard data.rank >= 1, indicesTensor.rank == data.rank else {
            throw KernelError("GatherElements needs indices \(indicesTensor.shape) of the same rank as data \(data.shape), rank >= 1")
        }
        let axis = try normalizedAxis(ctx.node.int("axis") ?? 0, rank: data.rank)
        for d in 0..<data.rank where d != axis && indicesTensor.shape[d] > data.shape[d] {
            throw KernelError("GatherElements indices \(indicesTensor.shape) exceed data \(data.shape) on axis \(d)")
        }
        let indices = try ShapeSupport.integers(indicesTensor, "GatherElements indices")
        let result = try ShapeSupport.output(data.dtype, indicesTensor.shape)
        guard result.count > 0 else { return [result] }
        let dataStrides = Tensor.strides(of: data.shape)
        let shape = indicesTensor.shape, rank = shape.count
        let dim = data.shape[axis], axisStride = dataStrides[axis]
        // Resolve source offsets first (throwing on bad indices), then copy.
        var offsets = [Int](repeating: 0, count: result.count)
        var position = [Int](repeating: 0, count: rank)
        var base = 0  // data offset of `position` with the axis coordinate taken as 0
        for i in 0..<result.count {
            let index = try ShapeSupport.wrapIndex(indices[i], dim: dim, axis: axis)
            offsets[i] = base + index * axisStride
            var d = rank - 1
            while d >= 0 {
                position[d] += 1
                if d != axis { base += dataStrides[d] }
                if position[d] < shape[d] { break }
                if d != axis { base -= dataStrides[d] * shape[d] }
                position[d] = 0
                d -= 1
            }
        }
        copyElements(offsets: offsets, from: UnsafeRawPointer(data.raw), elementSize: data.dtype.size, to: result.raw)
        return [result]
    }

    /// destination[i] = source[offsets[i]] for whole elements.
    static func copyElements(offsets: [Int], from source: UnsafeRawPointer, elementSize: Int,
                             to destination: UnsafeMutableRawPointer) {
        func typed<T>(_: T.Type) {
            let out = destination.assumingMemoryBound(to: T.self)
            for (i, offset) in offsets.enumerated() {
                out[i] = source.loadUnaligned(fromByteOffset: offset * elementSize, as: T.self)
            }
        }
        switch elementSize {
        case 1: typed(UInt8.self)
        case 2: typed(UInt16.self)
        case 4: typed(UInt32.self)
        case 8: typed(UInt64.self)
        default:
            for (i, offset) in offsets.enumerated() {
                (destination + i * elementSize).copyMemory(from: source + offset * elementSize, byteCount: elementSize)
            }
        }
    }
}
