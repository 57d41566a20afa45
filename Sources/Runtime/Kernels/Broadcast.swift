import TensorCore

/// NumPy-style multidirectional broadcasting (ONNX "Broadcasting in ONNX").
enum Broadcast {
    /// The broadcast shape of several shapes, or an error naming them.
    static func shape(_ shapes: [[Int]]) throws(KernelError) -> [Int] {
        let rank = shapes.map(\.count).max() ?? 0
        var result = [Int](repeating: 1, count: rank)
        for shape in shapes {
            let offset = rank - shape.count
            for (axis, dim) in shape.enumerated() {
                let current = result[offset + axis]
                if current == dim || dim == 1 { continue }
                if current == 1 { result[offset + axis] = dim; continue }
                throw KernelError("shapes \(shapes.map { "\($0)" }.joined(separator: " and ")) cannot be broadcast together")
            }
        }
        return result
    }

    /// Element strides of `shape` seen as broadcast to `target` (0 on broadcast axes).
    static func strides(of shape: [Int], to target: [Int]) -> [Int] {
        let own = Tensor.strides(of: shape)
        let offset = target.count - shape.count
        return (0..<target.count).map { axis in
            axis < offset ? 0 : (shape[axis - offset] == 1 && target[axis] != 1 ? 0 : own[axis - offset])
        }
    }

    /// Calls `body(outputIndex, sourceIndices)` for every element of `target`, where each source
    /// index is the flat element index in that source. Iterates innermost axis fastest.
    static func forEach(target: [Int], sources: [[Int]], _ body: (Int, UnsafeBufferPointer<Int>) -> Void) {
        let count = Tensor.elementCount(target)
        guard count > 0 else { return }
        let rank = target.count
        let sourceStrides = sources.map { strides(of: $0, to: target) }
        var position = [Int](repeating: 0, count: rank)
        var offsets = [Int](repeating: 0, count: sources.count)
        offsets.withUnsafeMutableBufferPointer { offsets in
            for index in 0..<count {
                body(index, UnsafeBufferPointer(offsets))
                // Advance the multi-index and every source offset.
                var axis = rank - 1
                while axis >= 0 {
                    position[axis] += 1
                    for s in 0..<sourceStrides.count { offsets[s] += sourceStrides[s][axis] }
                    if position[axis] < target[axis] { break }
                    for s in 0..<sourceStrides.count { offsets[s] -= sourceStrides[s][axis] * target[axis] }
                    position[axis] = 0
                    axis -= 1
                }
            }
        }
    }
}
