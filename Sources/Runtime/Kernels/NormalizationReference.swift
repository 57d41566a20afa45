import TensorCore

/// Reference twin of `NormalizationKernels.normalize`, in Double, as the ONNX reference computes
/// it: reduce over the trailing dims from `axis`, then multiply by the scale (and add the bias)
/// broadcast numpy-style against the whole input.
enum NormalizationReference {
    static func normalize(_ x: [Double], shape: [Int], scale: [Double], scaleShape: [Int],
                          bias: [Double]? = nil, biasShape: [Int]? = nil, axis rawAxis: Int,
                          epsilon: Double, centered: Bool) -> (y: [Double], mean: [Double], invStdDev: [Double]) {
        let axis = rawAxis < 0 ? rawAxis + shape.count : rawAxis
        let rows = shape[..<axis].reduce(1, *), cols = shape[axis...].reduce(1, *)
        var y = [Double](repeating: 0, count: x.count)
        var means: [Double] = [], inverses: [Double] = []
        for r in 0..<rows {
            let slice = x[(r * cols)..<((r + 1) * cols)]
            let mean = centered ? slice.reduce(0, +) / Double(cols) : 0
            let variance = slice.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(cols)
            let inverse = 1 / (variance + epsilon).squareRoot()
            means.append(mean)
            inverses.append(inverse)
            for c in 0..<cols {
                let index = r * cols + c
                var value = (x[index] - mean) * inverse * scale[broadcastIndex(index, shape, scaleShape)]
                if let bias, let biasShape { value += bias[broadcastIndex(index, shape, biasShape)] }
                y[index] = value
            }
        }
        return (y, means, inverses)
    }

    /// The flat index in a tensor of shape `own` broadcast to `shape` for flat index `index` there.
    static func broadcastIndex(_ index: Int, _ shape: [Int], _ own: [Int]) -> Int {
        var rest = index, result = 0, multiplier = 1
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            let coordinate = rest % shape[axis]
            rest /= shape[axis]
            let ownAxis = axis - (shape.count - own.count)
            if ownAxis >= 0 {
                if own[ownAxis] != 1 { result += coordinate * multiplier }
                multiplier *= own[ownAxis]
            }
        }
        return result
    }
}
