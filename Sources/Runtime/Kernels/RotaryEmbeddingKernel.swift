import TensorCore

/// RotaryEmbedding (opset 23). X is [batch, heads, seq, head] (4-D) or [batch, seq, heads·head]
/// (3-D, `num_heads` required). With position_ids [batch, seq] the caches are [max_pos, rot/2]
/// and are gathered by position; without, they are [batch, seq, rot/2]. The first
/// `rotary_embedding_dim` (0 = all) features of each head rotate, as halves (x[i], x[i+rot/2])
/// or, with `interleaved`, as pairs (x[2i], x[2i+1]); the rest pass through.
enum RotaryEmbeddingKernel {
    /// Where each (batch, seq, head) vector lives in X, and how much of it rotates.
    struct Layout: Equatable {
        var batch: Int, seq: Int, heads: Int, headSize: Int, rotaryDim: Int
        var batchStride: Int, seqStride: Int, headStride: Int
    }

    static func run(_ ctx: KernelContext) throws(KernelError) -> [Tensor] {
        let x = try ctx.input(0), cos = try ctx.input(1), sin = try ctx.input(2)
        let positions = ctx.optionalInput(3)
        let node = ctx.node
        let layout = try layout(x.shape, numHeads: node.int("num_heads") ?? 0,
                                rotaryDim: node.int("rotary_embedding_dim") ?? 0)
        guard cos.dtype == x.dtype, sin.dtype == x.dtype else {
            throw KernelError("cos_cache (\(cos.dtype)) and sin_cache (\(sin.dtype)) must have X's dtype \(x.dtype)")
        }
        guard cos.shape == sin.shape else {
            throw KernelError("cos_cache \(cos.shape) and sin_cache \(sin.shape) must have the same shape")
        }
        let half = layout.rotaryDim / 2
        // The cache row of every (batch, seq) position.
        var rows = [Int](repeating: 0, count: layout.batch * layout.seq)
        if let positions {
            guard positions.dtype == .int64 || positions.dtype == .int32 else {
                throw KernelError("position_ids has dtype \(positions.dtype); expected int64")
            }
            guard positions.shape == [layout.batch, layout.seq] else {
                throw KernelError("position_ids has shape \(positions.shape); expected [batch, seq] = [\(layout.batch), \(layout.seq)]")
            }
            guard cos.rank == 2, cos.shape[1] == half else {
                throw KernelError("with position_ids, cos_cache/sin_cache must be [max_position, \(half)] (rotary dim / 2); got \(cos.shape)")
            }
            let maxPosition = cos.shape[0]
            let ids = positions.ints()
            for (index, id) in ids.enumerated() {
                guard id >= 0 && id < maxPosition else {
                    throw KernelError("position_ids[\(index / max(layout.seq, 1))][\(index % max(layout.seq, 1))] = \(id) is outside the cache's \(maxPosition) positions")
                }
                rows[index] = id
            }
        } else {
            guard cos.shape == [layout.batch, layout.seq, half] else {
                throw KernelError("without position_ids, cos_cache/sin_cache must be [batch, seq, rotary dim / 2] = [\(layout.batch), \(layout.seq), \(half)]; got \(cos.shape)")
            }
            for index in rows.indices { rows[index] = index }
        }

        let xf = try Float32Staging.load(x, name: "X")
        let cf = try Float32Staging.load(cos, name: "cos_cache")
        let sf = try Float32Staging.load(sin, name: "sin_cache")
        let y = Tensor(uninitialized: .float32, shape: x.shape)
        withExtendedLifetime((xf, cf, sf)) {
            apply(layout, interleaved: (node.int("interleaved") ?? 0) != 0, cacheRows: rows,
                  x: xf.pointer(Float.self), cos: cf.pointer(Float.self), sin: sf.pointer(Float.self),
                  y: y.pointer(Float.self))
        }
        return [Float32Staging.store(y, as: x.dtype)]
    }

    /// Validates X's shape and the attributes, returning the vector layout.
    static func layout(_ shape: [Int], numHeads: Int, rotaryDim: Int) throws(KernelError) -> Layout {
        let heads: Int, seq: Int, headSize: Int
        let batchStride: Int, seqStride: Int, headStride: Int
        switch shape.count {
        case 4:
            (heads, seq, headSize) = (shape[1], shape[2], shape[3])
            if numHeads > 0 && numHeads != heads {
                throw KernelError("num_heads = \(numHeads) differs from X's head dimension \(heads)")
            }
            (batchStride, headStride, seqStride) = (heads * seq * headSize, seq * headSize, headSize)
        case 3:
            guard numHeads > 0 else {
                throw KernelError("3-D input [batch, seq, hidden] needs the num_heads attribute")
            }
            guard shape[2] % numHeads == 0 else {
                throw KernelError("hidden size \(shape[2]) is not a multiple of num_heads = \(numHeads)")
            }
            (heads, seq, headSize) = (numHeads, shape[1], shape[2] / numHeads)
            (batchStride, seqStride, headStride) = (seq * shape[2], shape[2], headSize)
        default:
            throw KernelError("X must be 3-D [batch, seq, hidden] or 4-D [batch, heads, seq, head]; got \(shape)")
        }
        let rotary = rotaryDim == 0 ? headSize : rotaryDim
        guard rotary >= 0, rotary <= headSize, rotary % 2 == 0 else {
            throw KernelError("rotary_embedding_dim = \(rotary) must be even and at most the head size \(headSize)")
        }
        return Layout(batch: shape[0], seq: seq, heads: heads, headSize: headSize, rotaryDim: rotary,
                      batchStride: batchStride, seqStride: seqStride, headStride: headStride)
    }

    /// Rotates every head vector of x into y. `cacheRows[b·seq + s]` is the cos/sin row to use.
    static func apply(_ layout: Layout, interleaved: Bool, cacheRows: [Int],
                      x: UnsafePointer<Float>, cos: UnsafePointer<Float>, sin: UnsafePointer<Float>,
                      y: UnsafeMutablePointer<Float>) {
        let half = layout.rotaryDim / 2
        let rest = layout.headSize - layout.rotaryDim
        for b in 0..<layout.batch {
            for s in 0..<layout.seq {
                let cacheOffset = cacheRows[b * layout.seq + s] * half
                let c = cos + cacheOffset, sn = sin + cacheOffset
                for h in 0..<layout.heads {
                    let offset = b * layout.batchStride + s * layout.seqStride + h * layout.headStride
                    let input = x + offset, output = y + offset
                    if interleaved {
                        for i in 0..<half {
                            let x1 = input[2 * i], x2 = input[2 * i + 1]
                            output[2 * i] = c[i] * x1 - sn[i] * x2
                            output[2 * i + 1] = sn[i] * x1 + c[i] * x2
                        }
                    } else {
                        for i in 0..<half {
                            let x1 = input[i], x2 = input[i + half]
                            output[i] = c[i] * x1 - sn[i] * x2
                            output[i + half] = sn[i] * x1 + c[i] * x2
                        }
                    }
                    if rest > 0 {
                        (output + layout.rotaryDim).update(from: input + layout.rotaryDim, count: rest)
                    }
                }
            }
        }
    }
}
