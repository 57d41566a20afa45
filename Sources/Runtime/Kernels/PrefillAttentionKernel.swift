import CKernels
import Graph
import TensorCore

/// Grouped-query attention for prefill (many query rows): tasks of `rowsPerTask` query rows of
/// one head run `lpc_attention_rows` on our pool (AVX-512 register tiles: scores 4 rows × 32 keys
/// against K transposed once per K head, vector-exp softmax, weighted sum 4 rows × 64 values;
/// K/V heads never repeated; dynamic scheduling evens out the causal triangle). Each row reads
/// only its *live* key range, the span between its first and last key whose mask entry is
/// above `maskedBelow`: with a causal mask row i reads i + 1 keys, not t, half the work of a
/// full Q·Kᵀ, which the sgemm version (one sgemm per KV group for Q·Kᵀ and one for P·V) had
/// to compute and then mask away.
///
/// Skipped keys change nothing: a -inf mask entry gives exp(…) = 0 exactly, and so does one at
/// or below -1e30 (exporters write float32's lowest value) beside any real score; a row with no
/// live key (fully masked) runs over all t keys, as the reference does (NaN, 0 with `nanToZero`,
/// or the uniform average a finite mask gives). `GQAttentionKernel.compute` is the reference twin.
/// K and V heads start `kHeadStride` / `vHeadStride` apart (t·d, or a KV-store buffer's capacity·d).
enum PrefillAttention {
    /// Fewer query rows than this go to the decode path.
    static let minRows = 8
    /// Query rows per pool task: 8 tasks per head at s = 128.
    static let rowsPerTask = 16
    /// Mask entries at or below this mark keys a row does not attend to.
    static let maskedBelow: Float = -1e30

    static func canRun(_ p: GQAttentionKernel.Plan) -> Bool {
        p.s >= minRows && p.t > 0 && p.d > 0 && p.dv > 0
            && p.kHeads * p.kRep == p.h && p.vHeads * p.vRep == p.h && p.kHeads == p.vHeads
    }

    static func compute(_ p: GQAttentionKernel.Plan, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>,
                        _ v: UnsafePointer<Float>, _ mask: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>,
                        scale: Float, nanToZero: Bool) {
        computeChunked(p, q, k, v, mask, out, scale: scale, nanToZero: nanToZero, rowsPerTask: rowsPerTask)
    }

    /// `compute` with `rowsPerTask` query rows per task (tests vary it).
    /// Q [b, h, s, d]; K/V heads [t, d] / [t, dv] at their head strides; out [b, h, s, dv]; Q and
    /// out rows at the plan's strides (a split Q / merged output: rows h·d apart, gathered into and
    /// scattered from task scratch here, since `lpc_attention_rows` takes rows d / dv apart).
    static func computeChunked(_ p: GQAttentionKernel.Plan, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>,
                               _ v: UnsafePointer<Float>, _ mask: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>,
                               scale: Float, nanToZero: Bool, rowsPerTask: Int) {
        let chunks = (p.s + rowsPerTask - 1) / rowsPerTask
        let maskStride = p.maskStrides[3]
        // Every K head transposed once, [d, ldkt] zero-padded, shared by its query heads' tasks.
        let ldkt = (p.t + 31) / 32 * 32
        let kHeadCount = p.kBatch * p.kHeads
        let kt = UnsafeMutablePointer<Float>.allocate(capacity: kHeadCount * p.d * ldkt)
        defer { kt.deallocate() }
        RuntimeThreads.parallelFor(kHeadCount) { head in
            lpc_transpose_keys(k + head * p.kHeadStride, Int64(p.t), Int64(p.d), kt + head * p.d * ldkt, Int64(ldkt))
        }
        RuntimeThreads.parallelFor(p.b * p.h * chunks) { task in
            let bi = task / (p.h * chunks), hi = (task / chunks) % p.h, chunk = task % chunks
            let kHead = (p.kBatch == 1 ? 0 : bi) * p.kHeads + hi / p.kRep
            let kBase = k + kHead * p.kHeadStride                                               // [t, d]
            let vBase = v + ((p.vBatch == 1 ? 0 : bi) * p.vHeads + hi / p.vRep) * p.vHeadStride // [t, dv]
            let first = chunk * rowsPerTask, rows = min(p.s, first + rowsPerTask) - first
            let maskRows = mask.map { $0 + bi * p.maskStrides[0] + hi * p.maskStrides[1] + first * p.maskStrides[2] }
            // Live key range of each row.
            var lo = [Int64](repeating: 0, count: rows), end = [Int64](repeating: Int64(p.t), count: rows)
            if let maskRows {
                for r in 0..<rows {
                    let (a, b) = liveRange(maskRows + r * p.maskStrides[2], p.t, stride: maskStride)
                    (lo[r], end[r]) = (Int64(a), Int64(b))
                }
            }
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(rows * ldkt, p.t, 16))
            defer { scratch.deallocate() }
            let qRows = p.qOffset(bi, hi, first), outRows = p.outOffset(bi, hi, first)
            let qPacked = p.qStrides.seq == p.d, outPacked = p.outStrides.seq == p.dv
            // Strided rows go through [rows, d] / [rows, dv] copies.
            let rowBuffer = qPacked && outPacked ? nil : UnsafeMutablePointer<Float>.allocate(capacity: rows * (p.d + p.dv))
            defer { rowBuffer?.deallocate() }
            var qBase = UnsafePointer(q + qRows)
            if !qPacked, let rowBuffer {
                for r in 0..<rows { (rowBuffer + r * p.d).update(from: q + qRows + r * p.qStrides.seq, count: p.d) }
                qBase = UnsafePointer(rowBuffer)
            }
            let outBase = outPacked ? out + outRows : rowBuffer! + rows * p.d
            lpc_attention_rows(qBase, Int64(rows), kBase, kt + kHead * p.d * ldkt, Int64(ldkt), vBase,
                               Int64(p.t), Int64(p.d), Int64(p.dv), maskRows, Int64(p.maskStrides[2]), Int64(maskStride),
                               lo, end, scale, outBase, scratch, nanToZero ? 1 : 0)
            if !outPacked {
                for r in 0..<rows { (out + outRows + r * p.outStrides.seq).update(from: outBase + r * p.dv, count: p.dv) }
            }
        }
    }

    /// [first, last + 1) over the keys whose mask entry is above `maskedBelow` (NaN counts as
    /// live); all t keys when none is.
    @inline(__always)
    static func liveRange(_ mask: UnsafePointer<Float>, _ t: Int, stride: Int) -> (Int, Int) {
        var end = t
        while end > 0 && mask[(end - 1) * stride] <= maskedBelow { end -= 1 }
        if end == 0 { return (0, t) }
        var lo = 0
        while mask[lo * stride] <= maskedBelow { lo += 1 }
        return (lo, end)
    }
}
