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
        if inner.stride != 1, let tiled = tiledAxis(dims) {
            copyTiled(from: base, dims: dims, tiledAxis: tiled, elementSize: elementSize, to: destination)
            return
        }
        let outer = Array(dims.dropLast())
        let outerCount = outer.reduce(1) { $0 * $1.size }
        let runBytes = inner.size * elementSize
        // Large copies (prefill's head transposes: 1152 runs of 256 bytes) in chunks over the pool.
        let chunkRuns = max(1, (1 << 16) / max(runBytes, 1))
        let chunks = (outerCount + chunkRuns - 1) / chunkRuns
        RuntimeThreads.parallelFor(chunks) { chunk in
            let first = chunk * chunkRuns
            copyRuns(from: base, outer: outer, inner: inner, first: first, count: min(chunkRuns, outerCount - first),
                     elementSize: elementSize, to: destination + first * runBytes)
        }
    }

    /// Runs `first ..< first + count` (in output order) of a copy whose innermost coalesced axis
    /// is `inner` and whose other axes are `outer`.
    private static func copyRuns(from base: UnsafeRawPointer, outer: [(size: Int, stride: Int)], inner: (size: Int, stride: Int),
                                 first: Int, count: Int, elementSize: Int, to destination: UnsafeMutableRawPointer) {
        let outerSizes = outer.map(\.size), outerStrides = outer.map(\.stride)
        // The multi-index and source offset of run `first`.
        var position = [Int](repeating: 0, count: outer.count)
        var sourceOffset = 0  // in elements, relative to `base`
        var rest = first
        for axis in stride(from: outer.count - 1, through: 0, by: -1) {
            position[axis] = rest % outerSizes[axis]
            rest /= outerSizes[axis]
            sourceOffset += position[axis] * outerStrides[axis]
        }
        var out = destination
        let runBytes = inner.size * elementSize
        for _ in 0..<count {
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

    /// Tiling pays when the source-contiguous axis is not the output's last one and both axes
    /// are long enough: reading `tile` × `tile` blocks keeps source cache lines in use.
    static let tile = 16

    private static func tiledAxis(_ dims: [(size: Int, stride: Int)]) -> Int? {
        guard let last = dims.last, last.size >= tile else { return nil }
        guard let axis = dims.indices.dropLast().first(where: { dims[$0].stride == 1 }) else { return nil }
        return dims[axis].size >= tile ? axis : nil
    }

    /// A blocked transpose of output axes (`tiledAxis`, last) for every combination of the others.
    private static func copyTiled(from base: UnsafeRawPointer, dims: [(size: Int, stride: Int)], tiledAxis: Int,
                                  elementSize: Int, to destination: UnsafeMutableRawPointer) {
        let rank = dims.count
        var outputStrides = [Int](repeating: 1, count: rank)
        for axis in stride(from: rank - 2, through: 0, by: -1) { outputStrides[axis] = outputStrides[axis + 1] * dims[axis + 1].size }
        let rest = (0..<(rank - 1)).filter { $0 != tiledAxis }
        let restCount = rest.reduce(1) { $0 * dims[$1].size }
        let rows = dims[tiledAxis].size, columns = dims[rank - 1].size
        let columnStride = dims[rank - 1].stride, rowOutputStride = outputStrides[tiledAxis]
        var position = [Int](repeating: 0, count: rest.count)
        var sourceOffset = 0, outputOffset = 0
        for _ in 0..<restCount {
            let from = base + sourceOffset * elementSize, to = destination + outputOffset * elementSize
            switch elementSize {
            case 1: block(UInt8.self, from, to, rows, columns, columnStride, rowOutputStride)
            case 2: block(UInt16.self, from, to, rows, columns, columnStride, rowOutputStride)
            case 4: block(UInt32.self, from, to, rows, columns, columnStride, rowOutputStride)
            case 8: block(UInt64.self, from, to, rows, columns, columnStride, rowOutputStride)
            default:
                for r in 0..<rows {
                    for c in 0..<columns {
                        (to + (r * rowOutputStride + c) * elementSize)
                            .copyMemory(from: from + (r + c * columnStride) * elementSize, byteCount: elementSize)
                    }
                }
            }
            var i = rest.count - 1
            while i >= 0 {
                let axis = rest[i]
                position[i] += 1
                sourceOffset += dims[axis].stride
                outputOffset += outputStrides[axis]
                if position[i] < dims[axis].size { break }
                sourceOffset -= dims[axis].stride * dims[axis].size
                outputOffset -= outputStrides[axis] * dims[axis].size
                position[i] = 0
                i -= 1
            }
        }
    }

    /// out[r·rowOutputStride + c] = source[r + c·columnStride], in tile × tile blocks.
    @inline(__always)
    private static func block<T: FixedWidthInteger>(_: T.Type, _ source: UnsafeRawPointer, _ destination: UnsafeMutableRawPointer,
                                                    _ rows: Int, _ columns: Int, _ columnStride: Int, _ rowOutputStride: Int) {
        let out = destination.assumingMemoryBound(to: T.self)
        let size = MemoryLayout<T>.size
        for r0 in stride(from: 0, to: rows, by: tile) {
            let r1 = min(r0 + tile, rows)
            for c0 in stride(from: 0, to: columns, by: tile) {
                let c1 = min(c0 + tile, columns)
                for c in c0..<c1 {
                    for r in r0..<r1 {
                        out[r * rowOutputStride + c] = source.loadUnaligned(fromByteOffset: (r + c * columnStride) * size, as: T.self)
                    }
                }
            }
        }
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
