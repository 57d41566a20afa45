import Foundation
import TensorCore

/// Attention (opset 23): softmax(softcap(scale · Q·Kᵀ) + bias) · V per (batch, query head), with
/// grouped KV heads read in place (query head h uses KV head h / (q_heads / kv_heads)).
///
/// Semantics, following onnxruntime's CPU kernel and the ONNX reference implementation:
/// - Pipeline order is QK·scale → softcap → + mask/causal bias → softmax (softcap before the mask,
///   so masked scores stay masked); qk_matmul_output_mode 0/1/2/3 returns the scores after each
///   of those four stages (the numbering of onnx/onnx#7913, which onnxruntime follows).
/// - Masked positions (bool `false`, causal, or past a mask shorter than the total sequence) get
///   float32's lowest value added, as onnxruntime does; float masks are added as given.
/// - A fully masked query row (its largest biased score is ≤ float32 lowest, i.e. every key is
///   masked by lowest or -inf) gets all-zero probabilities, so its output row is 0: the ONNX
///   opset-23 errata (onnx/onnx#8068) that onnxruntime 1.32 implements, and PyTorch's SDPA
///   behaviour. Before it, the ONNX reference gave NaN and older onnxruntime the mean of V.
///   qk_matmul_output mode 3 shows the same zero row.
/// - Causal masking is aligned to the cache: query i (absolute position past + i) sees keys
///   j ≤ past + i, where past = past_key's sequence length. With a mask as well, the causal
///   pattern is laid over it.
/// - A mask's last dim may be shorter than past + kv_seq; the missing keys are masked (ONNX
///   reference padding).
/// - Everything is computed in float32 (softmax_precision is accepted and ignored).
enum AttentionKernel {
    /// Dimensions of one call.
    struct Shape: Equatable {
        var batch = 0, qHeads = 0, kvHeads = 0, qSeq = 0, kvSeq = 0, past = 0, headSize = 0, vHeadSize = 0
        /// Q, K, V and Y are [batch, seq, heads·head] instead of [batch, heads, seq, head].
        var packed = false
        var total: Int { past + kvSeq }
    }

    struct Options {
        var scale: Float
        var softcap: Float = 0
        var isCausal = false
        /// -1: no qk_matmul_output; else the stage to return (see the type's comment).
        var qkMode = -1
    }

    /// The float value added at masked positions (onnxruntime's mask_filter_value).
    static let maskedValue = -Float.greatestFiniteMagnitude

    static func run(_ ctx: KernelContext) throws(KernelError) -> [Tensor] {
        let q = try ctx.input(0), k = try ctx.input(1), v = try ctx.input(2)
        let mask = ctx.optionalInput(3)
        let pastKey = ctx.optionalInput(4), pastValue = ctx.optionalInput(5)
        if ctx.optionalInput(6) != nil {
            throw KernelError("the opset-24 nonpad_kv_seqlen input is not supported")
        }
        let node = ctx.node
        let shape = try resolveShape(q: q.shape, k: k.shape, v: v.shape,
                                     pastKey: pastKey?.shape, pastValue: pastValue?.shape,
                                     qNumHeads: node.int("q_num_heads") ?? 0,
                                     kvNumHeads: node.int("kv_num_heads") ?? 0)
        for (name, tensor) in [("K", k), ("V", v), ("past_key", pastKey), ("past_value", pastValue)] {
            if let tensor, tensor.dtype != q.dtype {
                throw KernelError("\(name) has dtype \(tensor.dtype) but Q has \(q.dtype)")
            }
        }
        if let mask, mask.dtype != .bool && mask.dtype != q.dtype {
            throw KernelError("attn_mask has dtype \(mask.dtype); expected bool or Q's dtype \(q.dtype)")
        }
        let outputCount = max(1, min(4, node.outputs.count))
        let wantQK = outputCount == 4 && !node.outputs[3].isEmpty
        let mode = node.int("qk_matmul_output_mode") ?? 0
        guard (0...3).contains(mode) else {
            throw KernelError("qk_matmul_output_mode = \(mode) must be 0, 1, 2 or 3")
        }
        let scale = node.float("scale") ?? (shape.headSize > 0 ? 1 / Float(shape.headSize).squareRoot() : 1)
        let options = Options(scale: scale, softcap: node.float("softcap") ?? 0,
                              isCausal: (node.int("is_causal") ?? 0) != 0, qkMode: wantQK ? mode : -1)

        let qf = try Float32Staging.load(q, name: "Q")
        let kf = try Float32Staging.load(k, name: "K")
        let vf = try Float32Staging.load(v, name: "V")
        let maskBias = try mask.map { m throws(KernelError) in try MaskView(m, shape: shape) }
        // present = concat(past, new) as contiguous [batch, kv_heads, total, head]; the new K/V
        // serve directly when they already are that.
        let presentKey: Tensor, presentValue: Tensor
        if pastKey == nil && !shape.packed {
            (presentKey, presentValue) = (kf, vf)
        } else {
            let pk = try pastKey.map { t throws(KernelError) in try Float32Staging.load(t, name: "past_key") }
            let pv = try pastValue.map { t throws(KernelError) in try Float32Staging.load(t, name: "past_value") }
            presentKey = concatenate(past: pk, new: kf, shape: shape, headSize: shape.headSize)
            presentValue = concatenate(past: pv, new: vf, shape: shape, headSize: shape.vHeadSize)
        }
        let yShape = shape.packed ? [shape.batch, shape.qSeq, shape.qHeads * shape.vHeadSize]
                                  : [shape.batch, shape.qHeads, shape.qSeq, shape.vHeadSize]
        let y = Tensor(uninitialized: .float32, shape: yShape)
        let qk = Tensor(uninitialized: .float32,
                        shape: wantQK ? [shape.batch, shape.qHeads, shape.qSeq, shape.total] : [0])
        withExtendedLifetime((qf, presentKey, presentValue, maskBias)) {
            compute(shape, options, q: qf.pointer(Float.self), key: presentKey.pointer(Float.self),
                    value: presentValue.pointer(Float.self), mask: maskBias,
                    y: y.pointer(Float.self), qk: wantQK ? qk.pointer(Float.self) : nil)
        }
        let outputs = [Float32Staging.store(y, as: q.dtype),
                       Float32Staging.store(presentKey, as: q.dtype),
                       Float32Staging.store(presentValue, as: q.dtype),
                       Float32Staging.store(qk, as: q.dtype)]
        return Array(outputs.prefix(outputCount))
    }

    /// Checks the input shapes against each other and the head attributes.
    static func resolveShape(q: [Int], k: [Int], v: [Int], pastKey: [Int]?, pastValue: [Int]?,
                             qNumHeads: Int, kvNumHeads: Int) throws(KernelError) -> Shape {
        guard q.count == k.count, q.count == v.count, q.count == 3 || q.count == 4 else {
            throw KernelError("Q, K and V must all be 3-D or all 4-D; got \(q), \(k), \(v)")
        }
        var s = Shape()
        if q.count == 4 {
            s.batch = q[0]
            (s.qHeads, s.qSeq, s.headSize) = (q[1], q[2], q[3])
            (s.kvHeads, s.kvSeq) = (k[1], k[2])
            s.vHeadSize = v[3]
            guard qNumHeads <= 0 || qNumHeads == s.qHeads, kvNumHeads <= 0 || kvNumHeads == s.kvHeads else {
                throw KernelError("q_num_heads = \(qNumHeads) / kv_num_heads = \(kvNumHeads) differ from Q's \(s.qHeads) and K's \(s.kvHeads) heads")
            }
            guard k[3] == s.headSize else {
                throw KernelError("K's head size \(k[3]) differs from Q's \(s.headSize)")
            }
            guard v[1] == s.kvHeads, v[2] == s.kvSeq else {
                throw KernelError("V \(v) must have K's heads and sequence length (K is \(k))")
            }
        } else {
            guard qNumHeads > 0, kvNumHeads > 0 else {
                throw KernelError("3-D Q/K/V need the q_num_heads and kv_num_heads attributes")
            }
            s.packed = true
            s.batch = q[0]
            (s.qHeads, s.kvHeads, s.qSeq, s.kvSeq) = (qNumHeads, kvNumHeads, q[1], k[1])
            guard q[2] % qNumHeads == 0, k[2] % kvNumHeads == 0, v[2] % kvNumHeads == 0 else {
                throw KernelError("hidden sizes of Q \(q[2]), K \(k[2]), V \(v[2]) must be multiples of q_num_heads = \(qNumHeads) / kv_num_heads = \(kvNumHeads)")
            }
            s.headSize = q[2] / qNumHeads
            s.vHeadSize = v[2] / kvNumHeads
            guard k[2] / kvNumHeads == s.headSize else {
                throw KernelError("K's head size \(k[2] / kvNumHeads) differs from Q's \(s.headSize)")
            }
            guard v[1] == s.kvSeq else {
                throw KernelError("V's sequence length \(v[1]) differs from K's \(s.kvSeq)")
            }
        }
        guard k[0] == s.batch, v[0] == s.batch else {
            throw KernelError("batch sizes differ: Q \(q), K \(k), V \(v)")
        }
        if s.kvHeads == 0 ? s.qHeads != 0 : s.qHeads % s.kvHeads != 0 {
            throw KernelError("q heads (\(s.qHeads)) must be a multiple of kv heads (\(s.kvHeads))")
        }
        switch (pastKey, pastValue) {
        case (nil, nil):
            break
        case let (pk?, pv?):
            guard pk.count == 4, pv.count == 4, pk[0] == s.batch, pv[0] == s.batch,
                  pk[1] == s.kvHeads, pv[1] == s.kvHeads, pk[2] == pv[2],
                  pk[3] == s.headSize, pv[3] == s.vHeadSize else {
                throw KernelError("past_key \(pk) / past_value \(pv) must be [batch, kv_heads, past, head] = [\(s.batch), \(s.kvHeads), past, \(s.headSize) / \(s.vHeadSize)]")
            }
            s.past = pk[2]
        default:
            throw KernelError("past_key and past_value must be given together")
        }
        return s
    }

    /// concat(past [b, kvh, past, d], new) along the sequence as [b, kvh, total, d]; `new` is
    /// [b, kvh, seq, d] or, packed, [b, seq, kvh·d].
    static func concatenate(past: Tensor?, new: Tensor, shape s: Shape, headSize d: Int) -> Tensor {
        let result = Tensor(uninitialized: .float32, shape: [s.batch, s.kvHeads, s.total, d])
        let out = result.pointer(Float.self), source = new.pointer(Float.self)
        let pastPointer = past?.pointer(Float.self)
        for b in 0..<s.batch {
            for h in 0..<s.kvHeads {
                var destination = out + ((b * s.kvHeads + h) * s.total) * d
                if let pastPointer, s.past > 0 {
                    destination.update(from: pastPointer + ((b * s.kvHeads + h) * s.past) * d, count: s.past * d)
                    destination += s.past * d
                }
                if s.packed {
                    for t in 0..<s.kvSeq {
                        (destination + t * d).update(from: source + (b * s.kvSeq + t) * s.kvHeads * d + h * d, count: d)
                    }
                } else {
                    destination.update(from: source + ((b * s.kvHeads + h) * s.kvSeq) * d, count: s.kvSeq * d)
                }
            }
        }
        withExtendedLifetime(past) {}
        return result
    }

    /// An attn_mask seen as broadcast to [batch, q_heads, q_seq, mask_len] with mask_len ≤ total.
    final class MaskView {
        let tensor: Tensor  // bool, or float32
        let strides: [Int]  // element strides for batch, head, query, key (0 where broadcast)
        let length: Int     // keys the mask covers; later keys are masked

        init(_ mask: Tensor, shape s: Shape) throws(KernelError) {
            guard (1...4).contains(mask.rank) else {
                throw KernelError("attn_mask must have rank 1 to 4; got \(mask.shape)")
            }
            let padded = [Int](repeating: 1, count: 4 - mask.rank) + mask.shape
            let target = [s.batch, s.qHeads, s.qSeq]
            for axis in 0..<3 where padded[axis] != 1 && padded[axis] != target[axis] {
                throw KernelError("attn_mask \(mask.shape) cannot be broadcast to [batch, q_heads, q_seq, total] = [\(s.batch), \(s.qHeads), \(s.qSeq), \(s.total)]")
            }
            guard padded[3] <= s.total else {
                throw KernelError("attn_mask's last dim \(padded[3]) exceeds the total sequence length \(s.total) (past \(s.past) + kv \(s.kvSeq))")
            }
            tensor = mask.dtype == .bool ? mask : try Float32Staging.load(mask, name: "attn_mask")
            let own = Tensor.strides(of: padded)
            strides = (0..<4).map { padded[$0] == 1 ? 0 : own[$0] }
            length = padded[3]
        }

        /// Adds this mask's bias for query row (b, h, i) to `row[0..<count]`.
        func addBias(to row: UnsafeMutablePointer<Float>, count: Int, b: Int, h: Int, i: Int) {
            let offset = b * strides[0] + h * strides[1] + i * strides[2]
            let covered = min(count, length)
            if tensor.dtype == .bool {
                let m = tensor.pointer(Bool.self) + offset
                for j in 0..<covered where !m[j * strides[3]] { row[j] += AttentionKernel.maskedValue }
            } else {
                let m = tensor.pointer(Float.self) + offset
                for j in 0..<covered { row[j] += m[j * strides[3]] }
            }
            for j in covered..<max(covered, count) { row[j] += AttentionKernel.maskedValue }
        }
    }

    /// Rows of scores handled per sgemm: enough to amortise BLAS calls, few enough that the
    /// scores block stays around 256 KB whatever the sequence length.
    static func rowBlock(total: Int, qSeq: Int) -> Int {
        max(1, min(qSeq, 65_536 / max(total, 1)))
    }

    /// The fast path. `q` is laid out per `s.packed`; `key`/`value` are contiguous
    /// [batch, kv_heads, total, head]; `y` has Q's layout with the V head size; `qk` (optional) is
    /// [batch, q_heads, q_seq, total].
    static func compute(_ s: Shape, _ o: Options, q: UnsafePointer<Float>, key: UnsafePointer<Float>,
                        value: UnsafePointer<Float>, mask: MaskView?, y: UnsafeMutablePointer<Float>,
                        qk: UnsafeMutablePointer<Float>?) {
        guard s.batch > 0, s.qHeads > 0, s.qSeq > 0 else { return }
        let (d, dv, total) = (s.headSize, s.vHeadSize, s.total)
        let group = s.qHeads / s.kvHeads
        let block = rowBlock(total: total, qSeq: s.qSeq)
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: max(block * total, 1))
        defer { scores.deallocate() }
        // Causal-only rows never see keys past past + i, so a block's trailing columns are skipped.
        let canTrimColumns = o.isCausal && mask == nil && qk == nil
        let qRowStride = s.packed ? s.qHeads * d : d
        let yRowStride = s.packed ? s.qHeads * dv : dv
        for b in 0..<s.batch {
            for h in 0..<s.qHeads {
                let kvHead = h / group
                let keys = key + (b * s.kvHeads + kvHead) * total * d
                let values = value + (b * s.kvHeads + kvHead) * total * dv
                let qHead = s.packed ? q + b * s.qSeq * s.qHeads * d + h * d : q + (b * s.qHeads + h) * s.qSeq * d
                let yHead = s.packed ? y + b * s.qSeq * s.qHeads * dv + h * dv : y + (b * s.qHeads + h) * s.qSeq * dv
                var start = 0
                while start < s.qSeq {
                    let rows = min(block, s.qSeq - start)
                    let columns = canTrimColumns ? min(total, s.past + start + rows) : total
                    MatMulBLAS.sgemm(transB: true, m: rows, n: columns, k: d, alpha: o.scale,
                                     a: qHead + start * qRowStride, lda: max(qRowStride, 1),
                                     b: keys, ldb: max(d, 1), c: scores, ldc: max(columns, 1))
                    for r in 0..<rows {
                        let i = start + r
                        let row = scores + r * columns
                        let qkRow = qk.map { $0 + ((b * s.qHeads + h) * s.qSeq + i) * total }
                        if o.qkMode == 0, let qkRow { qkRow.update(from: row, count: columns) }
                        if o.softcap > 0 {
                            for j in 0..<columns { row[j] = o.softcap * tanh(row[j] / o.softcap) }
                        }
                        if o.qkMode == 1, let qkRow { qkRow.update(from: row, count: columns) }
                        // Causal positions take the masked value instead of the mask's own.
                        let visible = o.isCausal ? min(columns, s.past + i + 1) : columns
                        if let mask { mask.addBias(to: row, count: visible, b: b, h: h, i: i) }
                        for j in visible..<columns { row[j] += maskedValue }
                        if o.qkMode == 2, let qkRow { qkRow.update(from: row, count: columns) }
                        softmax(row, columns)
                        if o.qkMode == 3, let qkRow { qkRow.update(from: row, count: columns) }
                    }
                    MatMulBLAS.sgemm(m: rows, n: dv, k: columns, a: scores, lda: max(columns, 1),
                                     b: values, ldb: max(dv, 1), c: yHead + start * yRowStride,
                                     ldc: max(yRowStride, 1))
                    start += rows
                }
            }
        }
    }

    /// In-place softmax of x[0..<count] with max subtraction; a fully masked row (max ≤ lowest)
    /// becomes all zeros.
    static func softmax(_ x: UnsafeMutablePointer<Float>, _ count: Int) {
        guard count > 0 else { return }
        var maximum = x[0]
        for j in 1..<count where x[j] > maximum { maximum = x[j] }
        if maximum <= maskedValue {
            x.update(repeating: 0, count: count)
            return
        }
        var sum: Float = 0
        for j in 0..<count {
            let e = exp(x[j] - maximum)
            x[j] = e
            sum += e
        }
        let inverse = 1 / sum
        for j in 0..<count { x[j] *= inverse }
    }
}
