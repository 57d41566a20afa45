import Graph
import TensorCore

/// Grouped-query attention for prefill (many query rows), on sgemm:
/// for every batch row and KV head g, the query heads sharing g (`rep` of them, adjacent in Q
/// [b, h, s, d]) form one contiguous [rep·s, d] block, so
///   S[rep·s, t] = scale · Q_g · K_gᵀ      (one sgemm; K/V never repeated)
///   P = softmax_rows(S + M)              (vectorisable exp)
///   O_g[rep·s, dv] = P · V_g              (one sgemm, written in place in O [b, h, s, dv])
/// in blocks of rows so S stays small. The mask M is added as given (causal, padding, sliding
/// window: whatever the export built), so results match `GQAttentionKernel.compute` (its
/// reference twin) up to summation order. Decode (few rows) stays on the row kernel.
/// K and V heads start `kHeadStride` / `vHeadStride` apart (t·d, or a KV-store buffer's capacity·d).
enum PrefillAttention {
    /// Fewer query rows than this go to the row-at-a-time kernel.
    static let minRows = 8

    static func canRun(_ p: GQAttentionKernel.Plan) -> Bool {
        p.s >= minRows && p.t > 0 && p.d > 0 && p.dv > 0
            && p.kHeads * p.kRep == p.h && p.vHeads * p.vRep == p.h && p.kHeads == p.vHeads
    }

    static func compute(_ p: GQAttentionKernel.Plan, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>,
                        _ v: UnsafePointer<Float>, _ mask: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>,
                        scale: Float, nanToZero: Bool) {
        computeBlocked(p, q, k, v, mask, out, scale: scale, nanToZero: nanToZero, maxScoreElements: 1 << 19)
    }

    /// `compute` with the scores block bounded by `maxScoreElements` (tests make it small).
    static func computeBlocked(_ p: GQAttentionKernel.Plan, _ q: UnsafePointer<Float>, _ k: UnsafePointer<Float>,
                               _ v: UnsafePointer<Float>, _ mask: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>,
                               scale: Float, nanToZero: Bool, maxScoreElements: Int) {
        let rep = p.kRep
        let rows = rep * p.s
        // Rows per block: S of at most ~2 MB (L2-sized), and at least 16 rows for sgemm.
        let block = min(rows, max(16, maxScoreElements / p.t))
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: block * p.t)
        defer { scores.deallocate() }
        for bi in 0..<p.b {
            for g in 0..<p.kHeads {
                let qg = q + (bi * p.h + g * rep) * p.s * p.d                     // [rep·s, d]
                let kg = k + ((p.kBatch == 1 ? 0 : bi) * p.kHeads + g) * p.kHeadStride  // [t, d]
                let vg = v + ((p.vBatch == 1 ? 0 : bi) * p.vHeads + g) * p.vHeadStride // [t, dv]
                let og = out + (bi * p.h + g * rep) * p.s * p.dv                  // [rep·s, dv]
                var r0 = 0
                while r0 < rows {
                    let count = min(block, rows - r0)
                    MatMulBLAS.sgemm(transB: true, m: count, n: p.t, k: p.d, alpha: scale,
                                     a: qg + r0 * p.d, lda: p.d, b: kg, ldb: p.d, c: scores, ldc: p.t)
                    // Softmax on this thread: the sgemms around it run on OpenBLAS's threads, and
                    // waking our pool in between makes the two spin against each other.
                    for r in 0..<count {
                        let row = r0 + r
                        let head = g * rep + row / p.s, si = row % p.s
                        let maskRow = mask.map { $0 + bi * p.maskStrides[0] + head * p.maskStrides[1] + si * p.maskStrides[2] }
                        softmaxRow(scores + r * p.t, p.t, mask: maskRow, maskStride: p.maskStrides[3], nanToZero: nanToZero)
                    }
                    MatMulBLAS.sgemm(m: count, n: p.dv, k: p.t, a: scores, lda: p.t, b: vg, ldb: p.dv,
                                     c: og + r0 * p.dv, ldc: p.dv)
                    r0 += count
                }
            }
        }
    }

    /// row[t] ← softmax(row + mask) in place, as the reference: the max ignores NaN; a row whose
    /// scores are all -inf becomes NaN (0 with `nanToZero`, which also zeroes NaN weights).
    @inline(__always)
    static func softmaxRow(_ row: UnsafeMutablePointer<Float>, _ t: Int, mask: UnsafePointer<Float>?, maskStride: Int,
                           nanToZero: Bool) {
        var maxScore = -Float.infinity
        for i in 0..<t {
            var score = row[i]
            if let mask { score += mask[i * maskStride]; row[i] = score }
            if score > maxScore { maxScore = score }
        }
        if maxScore == -.infinity {
            row.update(repeating: nanToZero ? 0 : .nan, count: t)
            return
        }
        let sum = VectorMath.expShifted(row, t, by: maxScore)
        let inverse = 1 / sum
        var i = 0
        let inv16 = SIMD16<Float>(repeating: inverse)
        let raw = UnsafeMutableRawPointer(row)
        while i + 16 <= t {
            let x = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            raw.storeBytes(of: x * inv16, toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < t { row[i] *= inverse; i += 1 }
        if nanToZero { for j in 0..<t where row[j].isNaN { row[j] = 0 } }
    }
}
