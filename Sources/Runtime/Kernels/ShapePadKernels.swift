import Graph
import TensorCore

/// Pad, in constant, edge, reflect and wrap modes. Negative pads crop. Each axis gets a map from
/// output coordinate to input coordinate (-1 for the constant), applied row by row on raw bytes;
/// in constant mode the interior of each row is one memcpy.
enum ShapePadKernels {
    static func register(into table: inout [String: Kernel]) {
        table["Pad"] = pad
    }

    enum Mode: String { case constant, edge, reflect, wrap }

    /// data: [d…], pads: [2n] (begins, then ends, for n axes; opset 11+ input, attribute before),
    /// constant_value: optional scalar (attribute `value` before 11), axes: optional [n] (opset 18)
    /// → [d_i + begin_i + end_i …].
    @Sendable static func pad(_ ctx: KernelContext) throws -> [Tensor] {
        let input = try ctx.input(0)
        let rank = input.rank
        let modeName = ctx.node.string("mode") ?? "constant"
        guard let mode = Mode(rawValue: modeName) else {
            throw KernelError("Pad mode '\(modeName)' is not one of constant, edge, reflect, wrap")
        }
        let pads: [Int], value: Tensor, axes: [Int]
        if ctx.opset >= 11 {
            pads = try ShapeSupport.integerList(try ctx.input(1), "Pad pads")
            if let constant = ctx.optionalInput(2) {
                guard constant.dtype == input.dtype, constant.count == 1 else {
                    throw KernelError("Pad constant_value must be one \(input.dtype) value, got \(constant.dtype) \(constant.shape)")
                }
                value = constant
            } else {
                value = ShapeSupport.scalar(0, dtype: input.dtype)
            }
            if ctx.opset >= 18, let axesInput = ctx.optionalInput(3) {
                axes = try ShapeSupport.axes(try ShapeSupport.integerList(axesInput, "Pad axes"), rank: rank, what: "Pad axes")
            } else {
                axes = Array(0..<rank)
            }
        } else {
            guard let attribute = ctx.node.ints("pads") else { throw KernelError("Pad needs the pads attribute") }
            pads = attribute
            value = ShapeSupport.scalar(Double(ctx.node.float("value") ?? 0), dtype: input.dtype)
            axes = Array(0..<rank)
        }
        guard pads.count == 2 * axes.count else {
            throw KernelError("Pad pads \(pads) must have 2 × \(axes.count) entries for input \(input.shape)")
        }
        var begins = [Int](repeating: 0, count: rank), ends = begins
        for (i, axis) in axes.enumerated() {
            begins[axis] = pads[i]
            ends[axis] = pads[i + axes.count]
        }
        var shape: [Int] = []
        var maps: [[Int]] = []
        for axis in 0..<rank {
            let dim = input.shape[axis]
            let size = ShapeSupport.clampedAdd(ShapeSupport.clampedAdd(dim, begins[axis]), ends[axis])
            guard size >= 0 else {
                throw KernelError("Pad pads \(pads) crop axis \(axis) of \(input.shape) below size 0")
            }
            shape.append(size)
        }
        let result = try ShapeSupport.output(input.dtype, shape)
        for axis in 0..<rank {
            maps.append(try map(dim: input.shape[axis], begin: begins[axis], end: ends[axis], size: shape[axis],
                                mode: mode, axis: axis))
        }
        fillRows(input, into: result, maps: maps, value: value)
        return [result]
    }

    /// Output coordinate → input coordinate along one axis (-1: the constant). Negative pads
    /// crop first; the positive pads then extend the cropped range, as onnxruntime does.
    static func map(dim: Int, begin: Int, end: Int, size: Int, mode: Mode, axis: Int) throws(KernelError) -> [Int] {
        let low = max(0, -begin), high = dim - max(0, -end)  // the cropped input range
        let kept = high - low
        let lead = max(begin, 0)
        if size > 0 && kept <= 0 && mode != .constant {
            throw KernelError("Pad mode \(mode) needs a non-empty input along axis \(axis)")
        }
        return (0..<size).map { o in
            let i = o - lead  // coordinate in the cropped range
            switch mode {
            case .constant:
                return i >= 0 && i < kept ? low + i : -1
            case .edge:
                return low + min(max(i, 0), kept - 1)
            case .wrap:
                return low + ((i % kept) + kept) % kept
            case .reflect:
                guard kept > 1 else { return low }
                let period = 2 * (kept - 1)
                let m = ((i % period) + period) % period
                return low + (m < kept ? m : period - m)
            }
        }
    }

    /// Writes every output row: outer coordinates through their maps, the last axis through its
    /// map (or as one memcpy run between constant edges).
    private static func fillRows(_ input: Tensor, into result: Tensor, maps: [[Int]], value: Tensor) {
        let elementSize = input.dtype.size
        guard result.count > 0 else { return }
        guard let lastMap = maps.last else {
            result.raw.copyMemory(from: input.raw, byteCount: elementSize)
            return
        }
        let rank = maps.count
        let rowLength = lastMap.count
        let inputStrides = input.strides
        let rows = result.count / rowLength
        // The last axis's interior as one run, when the map is a contiguous ascending range.
        let interior = lastMap.indices.filter { lastMap[$0] >= 0 }
        let contiguous = interior.isEmpty || zip(interior, interior.dropFirst()).allSatisfy { $1 == $0 + 1 && lastMap[$1] == lastMap[$0] + 1 }
        var position = [Int](repeating: 0, count: rank - 1)
        let source = UnsafeRawPointer(input.raw)
        for r in 0..<rows {
            let row = result.raw + r * rowLength * elementSize
            var rowOffset = 0
            var constantRow = false
            for axis in 0..<(rank - 1) {
                let i = maps[axis][position[axis]]
                if i < 0 { constantRow = true; break }
                rowOffset += i * inputStrides[axis]
            }
            if constantRow {
                ShapeSupport.fill(row, count: rowLength, pattern: value.raw, elementSize: elementSize)
            } else if contiguous, let first = interior.first, let last = interior.last {
                ShapeSupport.fill(row, count: first, pattern: value.raw, elementSize: elementSize)
                (row + first * elementSize).copyMemory(from: source + (rowOffset + lastMap[first]) * elementSize,
                                                       byteCount: (last - first + 1) * elementSize)
                ShapeSupport.fill(row + (last + 1) * elementSize, count: rowLength - last - 1, pattern: value.raw,
                                  elementSize: elementSize)
            } else {
                for (o, i) in lastMap.enumerated() {
                    let from = i < 0 ? UnsafeRawPointer(value.raw) : source + (rowOffset + i) * elementSize
                    (row + o * elementSize).copyMemory(from: from, byteCount: elementSize)
                }
            }
            var axis = rank - 2
            while axis >= 0 {
                position[axis] += 1
                if position[axis] < maps[axis].count { break }
                position[axis] = 0
                axis -= 1
            }
        }
    }
}
