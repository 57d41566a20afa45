import CKernels
import Graph
import TensorCore

/// `lpc:GQAttention(Q, K, V, M?, eK?, rK?, eV?, rV?)`: softmax(scale · Q Kᵀ + M) V with K/V heads
/// shared by groups of query heads, exactly as the fused subgraph computed it:
///   Q [b, h, s, d]; K [bk, kvh, t, d]; V [bk, kvh, t, dv] (bk = b or 1);
///   M additive float mask broadcastable to [b, h, s, t];
///   eK/rK (eV/rV): the Expand and Reshape shapes of the exporter's `repeat_kv`, checked here.
/// Output [b, h, s, dv]. Rows whose scores are all -inf give NaN, or 0 with `nan_to_zero`.
/// Absorbed head layouts (`HeadLayoutAbsorption`, see `HeadLayout`): with `q_split_heads` Q's
/// memory is [b, s, h, d] (input 8: the absorbed Reshape's shape); with `merge_heads` the output
/// is written [b, s, h, dv] and shaped by the absorbed Reshape (input 9).
enum GQAttentionKernel {
    struct Plan {
        var b = 0, h = 0, s = 0, d = 0, t = 0, dv = 0
        var kBatch = 0, kHeads = 0, kRep = 1, vBatch = 0, vHeads = 0, vRep = 1
        var maskStrides = [0, 0, 0, 0] // per [b, h, s, t]; 0 = broadcast
        /// Elements between consecutive K (V) heads: t·d, or capacity·d for a KV-store handle.
        var kHeadStride = 0, vHeadStride = 0
        /// Element strides of Q rows (per batch, head, position) and output rows; nil: [b, h, s, ·]
        /// contiguous. A split Q / merged output has [b, s, h, ·] strides (`HeadLayout`).
        var qSplitStrides: (batch: Int, head: Int, seq: Int)?, outSplitStrides: (batch: Int, head: Int, seq: Int)?

        var qStrides: (batch: Int, head: Int, seq: Int) { qSplitStrides ?? (h * s * d, s * d, d) }
        var outStrides: (batch: Int, head: Int, seq: Int) { outSplitStrides ?? (h * s * dv, s * dv, dv) }
        /// Offset of Q row (bi, hi, si) and of its output row.
        @inline(__always) func qOffset(_ bi: Int, _ hi: Int, _ si: Int) -> Int {
            let st = qStrides
            return bi * st.batch + hi * st.head + si * st.seq
        }
        @inline(__always) func outOffset(_ bi: Int, _ hi: Int, _ si: Int) -> Int {
            let st = outStrides
            return bi * st.batch + hi * st.head + si * st.seq
        }
    }

    static func run(_ ctx: KernelContext) throws(KernelError) -> Tensor {
        let q = try ctx.input(0, dtype: .float32)
        let k = try ctx.input(1, dtype: .float32)
        let v = try ctx.input(2, dtype: .float32)
        let mask = ctx.optionalInput(3)
        let node = ctx.node
        let split = (node.int("q_split_heads") ?? 0) != 0
            ? try HeadLayout.split(q, shape: ctx.input(8), allowZero: (node.int("q_split_allowzero") ?? 0) != 0, name: "GQAttention Q") : nil
        let qShape = split.map { [$0.b, $0.h, $0.s, $0.d] } ?? q.shape
        guard qShape.count == 4, k.rank == 4, v.rank == 4 else {
            throw KernelError("GQAttention needs rank-4 Q, K, V; got \(qShape), \(k.shape), \(v.shape)")
        }
        var plan = Plan()
        (plan.b, plan.h, plan.s, plan.d) = (qShape[0], qShape[1], qShape[2], qShape[3])
        (plan.kBatch, plan.kHeads, plan.t) = (k.shape[0], k.shape[1], k.shape[2])
        (plan.vBatch, plan.vHeads, plan.dv) = (v.shape[0], v.shape[1], v.shape[3])
        guard k.shape[3] == plan.d, v.shape[2] == plan.t else {
            throw KernelError("GQAttention shapes disagree: Q \(qShape), K \(k.shape), V \(v.shape)")
        }
        if split != nil { plan.qSplitStrides = HeadLayout.splitStrides(plan.b, plan.s, plan.h, plan.d) }
        let merge = (node.int("merge_heads") ?? 0) != 0
        if merge { plan.outSplitStrides = HeadLayout.splitStrides(plan.b, plan.s, plan.h, plan.dv) }
        plan.kHeadStride = headStride(k, cache: ctx.node.string("k_cache"), ctx.state)
        plan.vHeadStride = headStride(v, cache: ctx.node.string("v_cache"), ctx.state)
        plan.kRep = try repeatFactor(k.shape, ctx.optionalInput(4), ctx.optionalInput(5), allowzero: ctx.node.int("k_allowzero") ?? 0, name: "K")
        plan.vRep = try repeatFactor(v.shape, ctx.optionalInput(6), ctx.optionalInput(7), allowzero: ctx.node.int("v_allowzero") ?? 0, name: "V")
        for (heads, rep, batch, name) in [(plan.kHeads, plan.kRep, plan.kBatch, "K"), (plan.vHeads, plan.vRep, plan.vBatch, "V")] {
            let effective = heads * rep
            guard effective == plan.h || effective == 1, batch == plan.b || batch == 1 else {
                throw KernelError("GQAttention: \(name) with \(batch) batch × \(effective) heads cannot broadcast to Q \(qShape)")
            }
        }
        if let mask {
            guard mask.dtype == .float32, mask.rank <= 4 else {
                throw KernelError("GQAttention mask must be float32 of rank ≤ 4, got \(mask.dtype)\(mask.shape)")
            }
            let padded = [Int](repeating: 1, count: 4 - mask.rank) + mask.shape
            let full = [plan.b, plan.h, plan.s, plan.t]
            let strides = Tensor.strides(of: padded)
            for axis in 0..<4 {
                guard padded[axis] == full[axis] || padded[axis] == 1 else {
                    throw KernelError("GQAttention mask \(mask.shape) cannot broadcast to \(full)")
                }
                plan.maskStrides[axis] = padded[axis] == 1 ? 0 : strides[axis]
            }
        }
        let outShape = merge
            ? try HeadLayout.merged(plan.b, plan.s, plan.h, plan.dv, shape: ctx.input(9), allowZero: (node.int("merge_allowzero") ?? 0) != 0)
            : [plan.b, plan.h, plan.s, plan.dv]
        let result = Tensor(uninitialized: .float32, shape: outShape)
        let scale = ctx.node.float("scale") ?? 1
        let nanToZero = (ctx.node.int("nan_to_zero") ?? 0) != 0
        // Prefill (many query rows): the sgemm-based kernel; `compute` is its reference twin.
        let run = PrefillAttention.canRun(plan) ? PrefillAttention.compute : compute
        run(plan, q.pointer(Float.self), k.pointer(Float.self), v.pointer(Float.self),
            mask?.pointer(Float.self), result.pointer(Float.self), scale, nanToZero)
        return result
    }

    /// t·d for a contiguous K/V; the buffer's head stride when `tensor` is a handle to the named
    /// KV-store buffer (`lpc:KVAppend` in a run with a store).
    static func headStride(_ tensor: Tensor, cache: String?, _ state: ExecutionState?) -> Int {
        if let cache, let buffer = state?.kvStore?.buffers[cache], buffer.storage === tensor.storage {
            return buffer.headStride
        }
        return tensor.shape[2] * tensor.shape[3]
    }

    /// The repeat factor of `Reshape(Expand(Unsqueeze(K, 2), e), r)` for K of `shape`, after checking
    /// that it yields [bk, kvh·rep, t, d] with kv head j / rep behind head j. 1 without a repeat.
    static func repeatFactor(_ shape: [Int], _ expand: Tensor?, _ reshape: Tensor?, allowzero: Int, name: String) throws(KernelError) -> Int {
        guard let expand, let reshape else { return 1 }
        let unsqueezed = [shape[0], shape[1], 1, shape[2], shape[3]]
        let target = expand.ints()
        // Expand: numpy broadcasting of the two shapes.
        let rank = max(unsqueezed.count, target.count)
        let a = [Int](repeating: 1, count: rank - unsqueezed.count) + unsqueezed
        let bShape = [Int](repeating: 1, count: rank - target.count) + target
        var expanded: [Int] = []
        for axis in 0..<rank {
            guard a[axis] == bShape[axis] || a[axis] == 1 || bShape[axis] == 1 else {
                throw KernelError("GQAttention: \(name) repeat cannot expand \(unsqueezed) to \(target)")
            }
            expanded.append(a[axis] == 1 ? bShape[axis] : a[axis])
        }
        guard rank == 5, expanded[0] == shape[0], expanded[1] == shape[1], expanded[3] == shape[2], expanded[4] == shape[3] else {
            throw KernelError("GQAttention: \(name) repeat expands \(shape) to \(expanded), not [b, kv_heads, n_rep, t, d]")
        }
        let rep = expanded[2]
        // Reshape with 0 (copy, unless allowzero) and one -1.
        var dims = reshape.ints()
        let total = Tensor.elementCount(expanded)
        for (i, dim) in dims.enumerated() where dim == 0 && allowzero == 0 {
            guard i < expanded.count else { throw KernelError("GQAttention: \(name) reshape \(dims) copies a missing dim") }
            dims[i] = expanded[i]
        }
        if let inferred = dims.firstIndex(of: -1) {
            let known = dims.enumerated().filter { $0.offset != inferred }.reduce(1) { $0 * $1.element }
            guard known > 0, total % known == 0 else { throw KernelError("GQAttention: \(name) reshape \(dims) does not fit \(expanded)") }
            dims[inferred] = total / known
        }
        guard dims == [shape[0], shape[1] * rep, shape[2], shape[3]] else {
            throw KernelError("GQAttention: \(name) repeat reshapes \(expanded) to \(dims), not [b, kv_heads·n_rep, t, d]")
        }
        return rep
    }

    /// `lpc:RepeatKVShape(K, e, r)`: Shape(Reshape(Expand(Unsqueeze(K, 2), e), r)) without building
    /// the repeat (start/end as Shape's).
    static func repeatShape(_ ctx: KernelContext) throws(KernelError) -> Tensor {
        let k = try ctx.input(0)
        let e = try ctx.input(1), r = try ctx.input(2)
        guard k.rank == 4 else { throw KernelError("RepeatKVShape needs a rank-4 input, got \(k.shape)") }
        let rep = try repeatFactor(k.shape, e, r, allowzero: ctx.node.int("allowzero") ?? 0, name: "K/V")
        let dims = [k.shape[0], k.shape[1] * rep, k.shape[2], k.shape[3]]
        var start = ctx.node.int("start") ?? 0, end = ctx.node.int("end") ?? 4
        if start < 0 { start += 4 }
        if end < 0 { end += 4 }
        start = min(max(start, 0), 4); end = min(max(end, start), 4)
        let slice = dims[start..<end].map { Int64($0) }
        return Tensor(slice, shape: [slice.count])
    }

    /// Query rows per head up to which the C decode kernel runs (prefill keeps the loop below).
    static let decodeRows = 8

    /// Decode (few query rows): the query heads that share a K/V head run together, so each cached
    /// K and V row is read once per group (`lpc_attention_partial`, AVX-512); long contexts are also
    /// split into blocks of positions (flash-decoding) so both threads have work, and the blocks of
    /// each row are merged (`lpc_attention_merge`). Tasks: batch × K/V group × block.
    static func decode(_ p: Plan, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                       _ mask: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>, scale: Float, nanToZero: Bool) {
        let kEffective = p.kHeads * p.kRep, vEffective = p.vHeads * p.vRep
        // Heads hi of one group share K head hi / kRep and V head hi / vRep.
        let groupHeads = p.kRep == p.vRep && kEffective == p.h && vEffective == p.h ? p.kRep : 1
        let groups = p.h / groupHeads
        let rowsPerGroup = groupHeads * p.s
        let blocks = decodeBlocks(t: p.t, groupTasks: p.b * groups)
        let blockLength = (p.t + blocks - 1) / max(blocks, 1)
        let tasks = p.b * groups * blocks
        let rowCount = p.b * p.h * p.s
        // parts[row · blocks + block]; acc [rowCount, blocks, dv]; scratch [tasks, rowsPerGroup, blockLength].
        let parts = UnsafeMutablePointer<lpc_attention_partial_row>.allocate(capacity: max(rowCount * blocks, 1))
        let acc = UnsafeMutablePointer<Float>.allocate(capacity: max(rowCount * blocks * p.dv, 1))
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(tasks * rowsPerGroup * blockLength, 1))
        defer { parts.deallocate(); acc.deallocate(); scratch.deallocate() }
        let body = { (task: Int) in
            let block = task % blocks, group = (task / blocks) % groups, bi = task / (blocks * groups)
            let t0 = block * blockLength, t1 = min(p.t, t0 + blockLength)
            let firstHead = group * groupHeads
            let kHead = (kEffective == 1 ? 0 : firstHead) / p.kRep, vHead = (vEffective == 1 ? 0 : firstHead) / p.vRep
            let kBase = k + ((p.kBatch == 1 ? 0 : bi) * p.kHeads + kHead) * p.kHeadStride + t0 * p.d
            let vBase = v + ((p.vBatch == 1 ? 0 : bi) * p.vHeads + vHead) * p.vHeadStride + t0 * p.dv
            withUnsafeTemporaryAllocation(of: lpc_attention_partial_row.self, capacity: rowsPerGroup) { local in
                for r in 0..<rowsPerGroup {
                    let hi = firstHead + r / p.s, si = r % p.s
                    let row = (bi * p.h + hi) * p.s + si
                    let maskRow = mask.map { $0 + bi * p.maskStrides[0] + hi * p.maskStrides[1] + si * p.maskStrides[2] + t0 * p.maskStrides[3] }
                    local[r] = lpc_attention_partial_row(q: q + p.qOffset(bi, hi, si), mask: maskRow, acc: acc + (row * blocks + block) * p.dv, max: 0, sum: 0)
                }
                if t1 > t0 {
                    lpc_attention_partial(local.baseAddress, Int64(rowsPerGroup), kBase, vBase, Int64(t1 - t0), Int64(p.d), Int64(p.dv),
                                          Int64(p.maskStrides[3]), scale, scratch + task * rowsPerGroup * blockLength)
                } else {
                    for r in 0..<rowsPerGroup { local[r].max = -.infinity; local[r].sum = 0 }
                }
                for r in 0..<rowsPerGroup {
                    let hi = firstHead + r / p.s, si = r % p.s
                    parts[((bi * p.h + hi) * p.s + si) * blocks + block] = local[r]
                }
            }
        }
        if tasks > 1 && p.b * p.h * p.s * p.t * (p.d + p.dv) >= 1 << 15 {
            RuntimeThreads.parallelFor(tasks, body)
        } else {
            for task in 0..<tasks { body(task) }
        }
        for row in 0..<rowCount {
            let si = row % p.s, hi = (row / p.s) % p.h, bi = row / (p.s * p.h)
            lpc_attention_merge(parts + row * blocks, Int64(blocks), Int64(p.dv), out + p.outOffset(bi, hi, si), nanToZero ? 1 : 0)
        }
    }

    /// Blocks of positions per K/V group: one for short contexts; for long ones enough that the
    /// tasks keep every thread busy (≥ 4 per thread), each block at least 128 positions.
    static func decodeBlocks(t: Int, groupTasks: Int) -> Int {
        guard t >= 256, groupTasks > 0 else { return 1 }
        let wanted = (4 * RuntimeThreads.threadCount + groupTasks - 1) / groupTasks
        return max(1, min(wanted, t / 128))
    }

    static func compute(_ p: Plan, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ v: UnsafePointer<Float>,
                        _ mask: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>, scale: Float, nanToZero: Bool) {
        let kEffective = p.kHeads * p.kRep, vEffective = p.vHeads * p.vRep
        let tasks = p.b * p.h
        let work = tasks * p.s * p.t * (p.d + p.dv)
        if p.s <= decodeRows {
            decode(p, q, k, v, mask, out, scale: scale, nanToZero: nanToZero)
            return
        }
        let body = { (task: Int) in
            let bi = task / p.h, hi = task % p.h
            let kHead = (kEffective == 1 ? 0 : hi) / p.kRep, vHead = (vEffective == 1 ? 0 : hi) / p.vRep
            let kBase = k + ((p.kBatch == 1 ? 0 : bi) * p.kHeads + kHead) * p.kHeadStride
            let vBase = v + ((p.vBatch == 1 ? 0 : bi) * p.vHeads + vHead) * p.vHeadStride
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: max(p.t, 1))
            defer { scores.deallocate() }
            for si in 0..<p.s {
                let qRow = q + p.qOffset(bi, hi, si)
                let outRow = out + p.outOffset(bi, hi, si)
                let maskRow = mask.map { $0 + bi * p.maskStrides[0] + hi * p.maskStrides[1] + si * p.maskStrides[2] }
                var maxScore = -Float.infinity
                for ti in 0..<p.t {
                    var score = SIMDMath.dot(qRow, kBase + ti * p.d, p.d) * scale
                    if let maskRow { score += maskRow[ti * p.maskStrides[3]] }
                    scores[ti] = score
                    if score > maxScore || score.isNaN { maxScore = score.isNaN ? maxScore : score }
                }
                outRow.update(repeating: 0, count: p.dv)
                if maxScore == -Float.infinity {
                    // exp(-inf - (-inf)) is NaN: the whole row is NaN, as Softmax gives.
                    if !nanToZero { outRow.update(repeating: .nan, count: p.dv) }
                    continue
                }
                var sum: Float = 0
                for ti in 0..<p.t {
                    let e = expf(scores[ti] - maxScore)
                    scores[ti] = e
                    sum += e
                }
                let inv = 1 / sum
                for ti in 0..<p.t {
                    var weight = scores[ti] * inv
                    if weight.isNaN && nanToZero { weight = 0 }
                    SIMDMath.axpy(weight, vBase + ti * p.dv, outRow, p.dv)
                }
            }
        }
        if work >= 1 << 16 {
            RuntimeThreads.parallelFor(tasks, body)
        } else {
            for task in 0..<tasks { body(task) }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
