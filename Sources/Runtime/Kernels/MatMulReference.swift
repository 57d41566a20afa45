import TensorCore

/// Reference twins of the MatMul kernels: plain triple loops in Double over explicit indices,
/// written for clarity, against which the BLAS paths are tested.
enum MatMulReference {
    /// numpy matmul of row-major Double data; returns the output shape and values.
    static func matMul(_ a: [Double], _ aShape: [Int], _ b: [Double], _ bShape: [Int]) throws(KernelError) -> (shape: [Int], values: [Double]) {
        let plan = try MatMulKernels.plan(aShape, bShape)
        let (m, k, n) = (plan.m, plan.k, plan.n)
        let batchCount = plan.batchCount
        var out = [Double](repeating: 0, count: batchCount * m * n)
        // Decompose each batch index into coordinates and map them onto A's and B's batch shapes.
        let rank = plan.batch.count
        for batch in 0..<batchCount {
            var coordinate = [Int](repeating: 0, count: rank)
            var rest = batch
            for axis in stride(from: rank - 1, through: 0, by: -1) {
                coordinate[axis] = rest % plan.batch[axis]
                rest /= plan.batch[axis]
            }
            let aIndex = matrixIndex(coordinate, plan.aBatch)
            let bIndex = matrixIndex(coordinate, plan.bBatch)
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0
                    for p in 0..<k {
                        sum += a[aIndex * m * k + i * k + p] * b[bIndex * k * n + p * n + j]
                    }
                    out[batch * m * n + i * n + j] = sum
                }
            }
        }
        return (plan.outputShape, out)
    }

    /// The flat matrix index in an operand whose batch shape `own` broadcasts to `coordinate`'s shape.
    private static func matrixIndex(_ coordinate: [Int], _ own: [Int]) -> Int {
        let offset = coordinate.count - own.count
        var index = 0
        for axis in 0..<own.count {
            index = index * own[axis] + (own[axis] == 1 ? 0 : coordinate[offset + axis])
        }
        return index
    }

    /// Gemm in Double: alpha · op(A) · op(B) + beta · broadcast(C).
    static func gemm(_ a: [Double], _ aShape: [Int], _ b: [Double], _ bShape: [Int],
                     _ c: [Double]?, _ cShape: [Int]?, alpha: Double, beta: Double,
                     transA: Bool, transB: Bool) -> [Double] {
        let (m, k) = transA ? (aShape[1], aShape[0]) : (aShape[0], aShape[1])
        let n = transB ? bShape[0] : bShape[1]
        var out = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    let av = transA ? a[p * aShape[1] + i] : a[i * aShape[1] + p]
                    let bv = transB ? b[j * bShape[1] + p] : b[p * bShape[1] + j]
                    sum += av * bv
                }
                var value = alpha * sum
                if let c, let cShape {
                    let padded = [Int](repeating: 1, count: 2 - cShape.count) + cShape
                    let ci = padded[0] == 1 ? 0 : i
                    let cj = padded[1] == 1 ? 0 : j
                    value += beta * c[ci * padded[1] + cj]
                }
                out[i * n + j] = value
            }
        }
        return out
    }
}
