import CKernels
import Graph
import TensorCore

/// Grouped-query attention for prefill (many query rows): every query row runs the AVX-512 row
/// kernel `lpc_attention_row` (scores, vector-exp softmax and the weighted sum of V in one pass,
/// K/V heads never repeated) over only its *live* key range, the span between its first and
/// last key whose mask entry is above `maskedBelow`. With a causal mask row i reads i + 1 keys,
/// not t: half the work of a full Q·Kᵀ, which the sgemm version (one sgemm per KV group for
/// Q·Kᵀ and one for P·V) had to compute and then mask away. Tasks of `rowsPerTask` rows of one
/// head run on our pool (dynamic scheduling evens out the causal triangle).
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
    /// Q [b, h, s, d]; K/V heads [t, d] / [t, dv] at their head strides; out [b, h, s, dv].
    static func computeChunked(_ p: GQAttentionKernel.Plan, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>,
                               _ v: UnsafePointer<Float>, _ mask: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>,
                               scale: Float, nanToZero: Bool, rowsPerTask: Int) {
        let chunks = (p.s + rowsPerTask - 1) / rowsPerTask
        let maskStride = p.maskStrides[3]
        RuntimeThreads.parallelFor(p.b * p.h * chunks) { task in
            let bi = task / (p.h * chunks), hi = (task / chunks) % p.h, chunk = task % chunks
            let kBase = k + ((p.kBatch == 1 ? 0 : bi) * p.kHeads + hi / p.kRep) * p.kHeadStride // [t, d]
            let vBase = v + ((p.vBatch == 1 ? 0 : bi) * p.vHeads + hi / p.vRep) * p.vHeadStride // [t, dv]
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(p.t, 16))
            defer { scratch.deallocate() }
            for si in (chunk * rowsPerTask)..<min(p.s, (chunk + 1) * rowsPerTask) {
                let qRow = q + ((bi * p.h + hi) * p.s + si) * p.d
                let outRow = out + ((bi * p.h + hi) * p.s + si) * p.dv
                let maskRow = mask.map { $0 + bi * p.maskStrides[0] + hi * p.maskStrides[1] + si * p.maskStrides[2] }
                let (lo, end) = maskRow.map { liveRange($0, p.t, stride: maskStride) } ?? (0, p.t)
                lpc_attention_row(qRow, kBase + lo * p.d, vBase + lo * p.dv, Int64(end - lo), Int64(p.d), Int64(p.dv),
                                  maskRow.map { $0 + lo * maskStride }, Int64(maskStride), scale, outRow, scratch,
                                  nanToZero ? 1 : 0)
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
