import TensorCore

/// LayerNormalization (opset 17), RMSNormalization (opset 23) and onnxruntime's default-domain
/// SimplifiedLayerNormalization (RMSNorm with an optional inv_std_var output). All normalise
/// over the dims from `axis` to the end, computing in float32 (stash_type 1, the only type
/// the ONNX reference implements; other stash types are computed in float32 as well).
enum NormalizationKernels {
    static func layerNormalization(_ ctx: KernelContext) throws(KernelError) -> [Tensor] {
        let x = try ctx.input(0), scale = try ctx.input(1)
        let bias = ctx.optionalInput(2)
        let parts = try normalize(x, scale: scale, bias: bias, axis: ctx.node.int("axis") ?? -1,
                                  epsilon: ctx.node.float("epsilon") ?? 1e-5, centered: true,
                                  wantStatistics: ctx.node.outputs.count > 1)
        return Array([parts.y, parts.mean, parts.invStdDev].prefix(max(1, min(3, ctx.node.outputs.count))))
    }

    static func rmsNormalization(_ ctx: KernelContext) throws(KernelError) -> [Tensor] {
        let parts = try normalize(try ctx.input(0), scale: try ctx.input(1), bias: nil,
                                  axis: ctx.node.int("axis") ?? -1,
                                  epsilon: ctx.node.float("epsilon") ?? 1e-5, centered: false,
                                  wantStatistics: false)
        return [parts.y]
    }

    /// onnxruntime's SimplifiedLayerNormalization: outputs Y and, optionally, inv_std_var.
    static func simplifiedLayerNormalization(_ ctx: KernelContext) throws(KernelError) -> [Tensor] {
        let wantStatistics = ctx.node.outputs.count > 1
        let parts = try normalize(try ctx.input(0), scale: try ctx.input(1), bias: nil,
                                  axis: ctx.node.int("axis") ?? -1,
                                  epsilon: ctx.node.float("epsilon") ?? 1e-5, centered: false,
                                  wantStatistics: wantStatistics)
        return wantStatistics ? [parts.y, parts.invStdDev] : [parts.y]
    }

    /// Normalises each row of x seen as [rows = ∏ shape[..<axis], cols = ∏ shape[axis...]].
    /// `centered` subtracts the mean (LayerNorm); otherwise it is RMSNorm.
    /// Returns Y (x's dtype, x's shape) and the float32 statistics shaped shape[..<axis] + [1, …].
    static func normalize(_ x: Tensor /* [..., normalized dims] */, scale: Tensor /* broadcastable to x */,
                          bias: Tensor?, axis rawAxis: Int, epsilon: Float, centered: Bool,
                          wantStatistics: Bool) throws(KernelError) -> (y: Tensor, mean: Tensor, invStdDev: Tensor) {
        let axis = try normalizedAxis(rawAxis, rank: x.rank)
        let xf = try Float32Staging.load(x, name: "input X")
        let scaleF = try Float32Staging.load(scale, name: "scale")
        let biasF = try bias.map { b throws(KernelError) in try Float32Staging.load(b, name: "bias") }
        let rows = Tensor.elementCount(Array(x.shape[..<axis]))
        let cols = Tensor.elementCount(Array(x.shape[axis...]))
        let scaleParameter = try NormalizationParameter(scaleF, xShape: x.shape, axis: axis, name: "scale")
        let biasParameter = try biasF.map { b throws(KernelError) in try NormalizationParameter(b, xShape: x.shape, axis: axis, name: "bias") }

        let statisticsShape = Array(x.shape[..<axis]) + [Int](repeating: 1, count: x.rank - axis)
        let y = Tensor(uninitialized: .float32, shape: x.shape)
        let mean = Tensor(uninitialized: .float32, shape: wantStatistics ? statisticsShape : [0])
        let invStd = Tensor(uninitialized: .float32, shape: wantStatistics ? statisticsShape : [0])
        let source = xf.pointer(Float.self), out = y.pointer(Float.self)
        let meanOut = mean.pointer(Float.self), invOut = invStd.pointer(Float.self)
        let count = Float(cols)
        for row in 0..<rows {
            let input = source + row * cols, output = out + row * cols
            let gamma = scaleParameter.row(row)
            var average: Float = 0
            if centered {
                average = TransformerMath.sum(input, cols) / count
            }
            let variance = TransformerMath.sumOfSquaredDifferences(input, cols, from: average) / count
            let inverse = 1 / (variance + epsilon).squareRoot()
            if let biasParameter {
                let beta = biasParameter.row(row)
                for i in 0..<cols { output[i] = (input[i] - average) * inverse * gamma[i] + beta[i] }
            } else {
                for i in 0..<cols { output[i] = (input[i] - average) * inverse * gamma[i] }
            }
            if wantStatistics {
                meanOut[row] = average
                invOut[row] = inverse
            }
        }
        withExtendedLifetime((xf, scaleParameter, biasParameter)) {}
        return (Float32Staging.store(y, as: x.dtype), mean, invStd)
    }
}

/// A scale or bias broadcast against x, read one normalised row at a time. When it varies only
/// over the normalised dims (the usual case) it is one [cols] vector shared by every row, used
/// in place when its shape already matches; otherwise it is expanded to x's full size.
struct NormalizationParameter {
    private let storage: Tensor
    private let rowStride: Int

    init(_ parameter: Tensor /* float32 */, xShape: [Int], axis: Int, name: String) throws(KernelError) {
        guard parameter.rank <= xShape.count,
              (try? Broadcast.shape([xShape, parameter.shape])) == xShape else {
            throw KernelError("\(name) of shape \(parameter.shape) cannot be broadcast to input shape \(xShape)")
        }
        let normalized = Array(xShape[axis...])
        let cols = Tensor.elementCount(normalized)
        let leading = parameter.rank - normalized.count  // > 0: dims aligned with the row axes
        let variesByRow = leading > 0 && parameter.shape[..<leading].contains { $0 != 1 }
        if variesByRow {
            storage = NormalizationParameter.expand(parameter, to: xShape)
            rowStride = cols
        } else {
            let trailing = Array(parameter.shape.suffix(min(parameter.rank, normalized.count)))
            if trailing == normalized {
                storage = parameter
            } else {
                storage = NormalizationParameter.expand(parameter.reshaped(trailing), to: normalized)
            }
            rowStride = 0
        }
    }

    func row(_ index: Int) -> UnsafePointer<Float> {
        UnsafePointer(storage.pointer(Float.self) + index * rowStride)
    }

    private static func expand(_ tensor: Tensor, to shape: [Int]) -> Tensor {
        let result = Tensor(uninitialized: .float32, shape: shape)
        let source = tensor.pointer(Float.self), out = result.pointer(Float.self)
        Broadcast.forEach(target: shape, sources: [tensor.shape]) { index, offsets in
            out[index] = source[offsets[0]]
        }
        return result
    }
}

/// Float reductions written with SIMD accumulators so release builds vectorise them.
enum TransformerMath {
    static func sum(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
        var accumulator = SIMD8<Float>()
        var i = 0
        while i + 8 <= count {
            accumulator += UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            i += 8
        }
        var total = accumulator.sum()
        while i < count { total += x[i]; i += 1 }
        return total
    }

    /// Σ (x − center)².
    static func sumOfSquaredDifferences(_ x: UnsafePointer<Float>, _ count: Int, from center: Float) -> Float {
        var accumulator = SIMD8<Float>()
        let c = SIMD8<Float>(repeating: center)
        var i = 0
        while i + 8 <= count {
            let d = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) - c
            accumulator = d * d + accumulator
            i += 8
        }
        var total = accumulator.sum()
        while i < count { let d = x[i] - center; total += d * d; i += 1 }
        return total
    }
}
