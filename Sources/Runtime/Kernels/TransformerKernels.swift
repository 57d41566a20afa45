import TensorCore

/// The transformer-block ops: normalisations (LayerNormalization, RMSNormalization and
/// onnxruntime's default-domain SimplifiedLayerNormalization), RotaryEmbedding and Attention
/// (opset 23). Each computes in float32 whatever its floating input type.
enum TransformerKernels {
    static func register(into table: inout [String: Kernel]) {
        table["LayerNormalization"] = { ctx in try NormalizationKernels.layerNormalization(ctx) }
        table["RMSNormalization"] = { ctx in try NormalizationKernels.rmsNormalization(ctx) }
        table["SimplifiedLayerNormalization"] = { ctx in try NormalizationKernels.simplifiedLayerNormalization(ctx) }
        table["RotaryEmbedding"] = { ctx in try RotaryEmbeddingKernel.run(ctx) }
        table["Attention"] = { ctx in try AttentionKernel.run(ctx) }
    }
}

/// Moves floating tensors into float32 for computing and back: float32 passes through without a
/// copy; float16, bfloat16 and float64 are converted element by element.
enum Float32Staging {
    static let floatTypes: Set<DType> = [.float32, .float16, .bfloat16, .float64]

    /// The tensor as float32 (the same tensor when it already is). Throws for non-float dtypes.
    static func load(_ tensor: Tensor, name: String) throws(KernelError) -> Tensor {
        switch tensor.dtype {
        case .float32:
            return tensor
        case .float16:
            return convert(tensor.pointer(Float16.self), count: tensor.count, shape: tensor.shape) { Float($0) }
        case .bfloat16:
            return convert(tensor.pointer(BFloat16.self), count: tensor.count, shape: tensor.shape) { $0.float }
        case .float64:
            return convert(tensor.pointer(Double.self), count: tensor.count, shape: tensor.shape) { Float($0) }
        default:
            throw KernelError("\(name) has dtype \(tensor.dtype); expected a floating type (float32, float16, bfloat16, float64)")
        }
    }

    /// A float32 result converted to `dtype` (the same tensor when `dtype` is float32).
    static func store(_ tensor: Tensor, as dtype: DType) -> Tensor {
        let source = tensor.pointer(Float.self)
        let count = tensor.count
        switch dtype {
        case .float16:
            let result = Tensor(uninitialized: .float16, shape: tensor.shape)
            let out = result.pointer(Float16.self)
            for i in 0..<count { out[i] = Float16(source[i]) }
            return result
        case .bfloat16:
            let result = Tensor(uninitialized: .bfloat16, shape: tensor.shape)
            let out = result.pointer(BFloat16.self)
            for i in 0..<count { out[i] = BFloat16(source[i]) }
            return result
        case .float64:
            let result = Tensor(uninitialized: .float64, shape: tensor.shape)
            let out = result.pointer(Double.self)
            for i in 0..<count { out[i] = Double(source[i]) }
            return result
        default:
            return tensor
        }
    }

    private static func convert<T>(_ source: UnsafeMutablePointer<T>, count: Int, shape: [Int],
                                   _ transform: (T) -> Float) -> Tensor {
        let result = Tensor(uninitialized: .float32, shape: shape)
        let out = result.pointer(Float.self)
        for i in 0..<count { out[i] = transform(source[i]) }
        return result
    }
}
