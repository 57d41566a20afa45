import TensorCore

/// Copies a strided view of a source buffer into a contiguous destination: the engine behind
/// Transpose, Slice, Expand and Tile. Each output axis has a source stride in elements (0 to
/// repeat, negative to walk backwards). Axes are coalesced first, so a slice of whole rows or a
/// transpose that keeps the last axis becomes a loop of `memcpy`s over contiguous runs.
enum StridedCopy {
    /// - Parameters:
    ///   - source: the source tensor's bytes; element `offset` is output element 0.
    ///   - strides: [rank] source element stride per output axis.
    ///   - shape: [rank] output shape; the destination holds `shape` contiguously.
    static func copy(from source: UnsafeRawPointer, offset: Int, strides: [Int], shape: [Int],
                     elementSize: Int, to destination: UnsafeMutableRawPointer) {
        precondition(strides.count == shape.count, "strides \(strides) for shape \(shape)")
        if shape.contains(0) { return }
        let dims = coalesce(shape: shape, strides: strides)
        let base = source + offset * elementSize
        guard let inner = dims.last else {
            destination.copyMemory(from: base, byteCount: elementSize)
            return
        }
        let outer = dims.dropLast()
        let outerCount = outer.reduce(1) { $0 * $1.size }
        let outerSizes = outer.map(\.size), outerStrides = outer.map(\.stride)
        var position = [Int](repeating: 0, count: outer.count)
        var sourceOffset = 0  // in elements, relative to `base`
        var out = destination
        let runBytes = inner.size * elementSize
        for _ in 0..<outerCount {
            let from = base + sourceOffset * elementSize
            if inner.stride == 1 {
                out.copyMemory(from: from, byteCount: runBytes)
            } else {
                copyRun(from: from, stride: inner.stride, count: inner.size, elementSize: elementSize, to: out)
            }
            out += runBytes
            // Advance the outer multi-index (innermost outer axis fastest).
            var axis = outer.count - 1
            while axis >= 0 {
                position[axis] += 1
                sourceOffset += outerStrides[axis]
                if position[axis] < outerSizes[axis] { break }
                sourceOffset -= outerStrides[axis] * outerSizes[axis]
                position[axis] = 0
                axis -= 1
            }
        }
    }

    /// Drops size-1 axes and merges neighbours that are contiguous with each other in the source.
    static func coalesce(shape: [Int], strides: [Int]) -> [(size: Int, stride: Int)] {
        var dims: [(size: Int, stride: Int)] = []
        for (size, stride) in zip(shape, strides) where size != 1 {
            if let last = dims.last, last.stride == stride * size {
                dims[dims.count - 1] = (last.size * size, stride)
            } else {
                dims.append((size, stride))
            }
        }
        return dims
    }

    /// One run of `count` elements read `stride` elements apart.
    @inline(__always)
    private static func copyRun(from source: UnsafeRawPointer, stride: Int, count: Int, elementSize: Int,
                                to destination: UnsafeMutableRawPointer) {
        switch elementSize {
        case 1: gather(UInt8.self, source, stride, count, destination)
        case 2: gather(UInt16.self, source, stride, count, destination)
        case 4: gather(UInt32.self, source, stride, count, destination)
        case 8: gather(UInt64.self, source, stride, count, destination)
        default:
            for i in 0..<count {
                (destination + i * elementSize).copyMemory(from: source + i * stride * elementSize, byteCount: elementSize)
            }
        }
    }

    @inline(__always)
    private static func gather<T: FixedWidthInteger>(_: T.Type, _ source: UnsafeRawPointer, _ stride: Int, _ count: Int,
                                                     _ destination: UnsafeMutableRawPointer) {
        // Unaligned loads: mmap'd initializers need not be aligned to the element size.
        let out = destination.assumingMemoryBound(to: T.self)
        var index = 0
        for i in 0..<count {
            out[i] = source.loadUnaligned(fromByteOffset: index * MemoryLayout<T>.size, as: T.self)
            index += stride
        }
    }
}
