import CKernels
import Foundation
@testable import Runtime
import TensorCore
import Testing
import TestSupport

/// The AVX-512 decode attention row (`lpc_attention_row`) against its scalar twin, swept over
/// lengths (vector tails), head sizes and masks (some -inf, all -inf), both NaN policies.
/// Tolerance: atol 1e-5 + rtol 1e-4 (the polynomial exp is within ~2e-7 relative).
@Suite("Decode attention row and SwiGLU vs reference")
struct AttentionRowTests {
    @Test func matchesReference() {
        for d in [16, 64, 128, 8, 24] {
            for t in [1, 3, 4, 5, 15, 16, 17, 100, 1025] {
                let q = FusedKernelTests.random(d, seed: UInt64(d * 7 + t)), k = FusedKernelTests.random(t * d, seed: UInt64(t))
                let v = FusedKernelTests.random(t * d, seed: UInt64(t + 1000))
                for maskKind in 0..<3 {
                    // 0: no mask; 1: every third position -inf, others small offsets; 2: all -inf.
                    let mask: [Float] = (0..<t).map { i in maskKind == 2 || (maskKind == 1 && i % 3 == 1) ? -.infinity : Float(i % 5) * 0.1 }
                    for nanToZero: Int32 in [0, 1] {
                        var fast = [Float](repeating: 7, count: d), reference = fast
                        var scratch = [Float](repeating: 0, count: max(t, 16))
                        mask.withUnsafeBufferPointer { m in
                            let mp = maskKind == 0 ? nil : m.baseAddress
                            lpc_attention_row(q, k, v, Int64(t), Int64(d), Int64(d), mp, 1, 0.125, &fast, &scratch, nanToZero)
                            lpc_attention_row_reference(q, k, v, Int64(t), Int64(d), Int64(d), mp, 1, 0.125, &reference, &scratch, nanToZero)
                        }
                        for j in 0..<d {
                            let (a, b) = (fast[j], reference[j])
                            let ok = (a.isNaN && b.isNaN) || abs(a - b) <= 1e-5 + 1e-4 * abs(b)
                            #expect(ok, "d \(d) t \(t) mask \(maskKind) nanToZero \(nanToZero) [\(j)]: \(a) vs \(b)")
                            if !ok { return }
                        }
                        if maskKind == 2 { #expect(nanToZero == 1 ? fast.allSatisfy { $0 == 0 } : fast.allSatisfy(\.isNaN)) }
                    }
                }
            }
        }
    }

    /// `lpc_attention_partial` (AVX-512, query rows sharing K/V) against its scalar twin, and the
    /// blocks merged by `lpc_attention_merge` against the single-row reference, swept over lengths
    /// (16-position tails), head sizes (every V accumulator count 1–8), rows per group (one and two V passes) and block counts.
    /// Tolerance as above.
    @Test func groupedPartialsMatchReference() {
        for d in [16, 32, 48, 64, 80, 96, 112, 128, 24] {
            for t in [1, 15, 16, 17, 100, 515] {
                for rows in [1, 3, 6] {
                    let q = FusedKernelTests.random(rows * d, seed: UInt64(d + t)), k = FusedKernelTests.random(t * d, seed: UInt64(t))
                    let v = FusedKernelTests.random(t * d, seed: UInt64(t + 7))
                    for maskKind in 0..<3 {
                        // 0: none; 1: positions ≡ 1 (mod 3) -inf, a strided mask (stride 2); 2: the first half -inf.
                        let stride = maskKind == 1 ? 2 : 1
                        let mask: [Float] = (0..<(t * stride)).map { j in
                            let i = j / stride
                            return (maskKind == 1 && i % 3 == 1) || (maskKind == 2 && i < t / 2) ? -.infinity : Float(i % 5) * 0.1
                        }
                        for blocks in [1, 3] where blocks <= t {
                            let length = (t + blocks - 1) / blocks
                            var fastAcc = [Float](repeating: 0, count: rows * blocks * d), slowAcc = fastAcc
                            var scratch = [Float](repeating: 0, count: rows * length)
                            var fastParts: [lpc_attention_partial_row] = [], slowParts: [lpc_attention_partial_row] = []
                            mask.withUnsafeBufferPointer { m in
                                fastAcc.withUnsafeMutableBufferPointer { fa in
                                    slowAcc.withUnsafeMutableBufferPointer { sa in
                                        q.withUnsafeBufferPointer { qp in
                                            for block in 0..<blocks {
                                                let t0 = block * length, n = min(t, t0 + length) - t0
                                                func rowsFor(_ acc: UnsafeMutableBufferPointer<Float>) -> [lpc_attention_partial_row] {
                                                    (0..<rows).map { r in
                                                        lpc_attention_partial_row(q: qp.baseAddress! + r * d, mask: maskKind == 0 ? nil : m.baseAddress! + t0 * stride,
                                                                                  acc: acc.baseAddress! + (r * blocks + block) * d, max: 0, sum: 0)
                                                    }
                                                }
                                                var fast = rowsFor(fa), slow = rowsFor(sa)
                                                lpc_attention_partial(&fast, Int64(rows), k.withUnsafeBufferPointer { $0.baseAddress! } + t0 * d,
                                                                      v.withUnsafeBufferPointer { $0.baseAddress! } + t0 * d, Int64(n), Int64(d), Int64(d),
                                                                      Int64(stride), 0.125, &scratch)
                                                lpc_attention_partial_reference(&slow, Int64(rows), k.withUnsafeBufferPointer { $0.baseAddress! } + t0 * d,
                                                                                v.withUnsafeBufferPointer { $0.baseAddress! } + t0 * d, Int64(n), Int64(d), Int64(d),
                                                                                Int64(stride), 0.125, &scratch)
                                                fastParts += fast
                                                slowParts += slow
                                            }
                                        }
                                    }
                                }
                            }
                            for (a, b) in zip(fastParts, slowParts) {
                                let sameMax = a.max == b.max || abs(a.max - b.max) <= 1e-5 + 1e-5 * abs(b.max) // summation order differs
                                #expect(sameMax && abs(a.sum - b.sum) <= 1e-5 + 1e-4 * abs(b.sum), "d \(d) t \(t) rows \(rows) mask \(maskKind) blocks \(blocks): max/sum \(a.max)/\(a.sum) vs \(b.max)/\(b.sum)")
                            }
                            for j in fastAcc.indices where abs(fastAcc[j] - slowAcc[j]) > 1e-5 + 1e-4 * abs(slowAcc[j]) {
                                Issue.record("d \(d) t \(t) rows \(rows) mask \(maskKind) blocks \(blocks): acc[\(j)] \(fastAcc[j]) vs \(slowAcc[j])")
                                return
                            }
                            // Merged blocks of each row = the single-row reference over all t positions.
                            for r in 0..<rows {
                                var parts = (0..<blocks).map { fastParts[$0 * rows + r] }
                                var merged = [Float](repeating: 7, count: d), reference = merged
                                var rowScratch = [Float](repeating: 0, count: max(t, 16))
                                lpc_attention_merge(&parts, Int64(blocks), Int64(d), &merged, 0)
                                mask.withUnsafeBufferPointer { m in
                                    lpc_attention_row_reference(Array(q[(r * d)..<((r + 1) * d)]), k, v, Int64(t), Int64(d), Int64(d),
                                                                maskKind == 0 ? nil : m.baseAddress, Int64(stride), 0.125, &reference, &rowScratch, 0)
                                }
                                for j in 0..<d where abs(merged[j] - reference[j]) > 1e-5 + 1e-4 * abs(reference[j]) {
                                    Issue.record("merge d \(d) t \(t) rows \(rows) mask \(maskKind) blocks \(blocks) row \(r) [\(j)]: \(merged[j]) vs \(reference[j])")
                                    return
                                }
                            }
                        }
                    }
                }
            }
        }
        // Every position masked: NaN, or 0 with nan_to_zero, as the row kernel gives.
        var empty = [lpc_attention_partial_row(q: nil, mask: nil, acc: nil, max: -.infinity, sum: 0)]
        var out = [Float](repeating: 7, count: 4)
        lpc_attention_merge(&empty, 1, 4, &out, 0)
        let allNaN = out.allSatisfy(\.isNaN)
        #expect(allNaN)
        lpc_attention_merge(&empty, 1, 4, &out, 1)
        let allZero = out.allSatisfy { $0 == 0 }
        #expect(allZero)
    }

    /// `lpc_swiglu` (AVX-512, polynomial exp) against its scalar twin over odd lengths and a wide
    /// range of gates (saturation both ways). Tolerance atol 1e-7 + rtol 6e-7 (exp ~2 ulp, then a
    /// division and a product): a looser one let a truncated exp polynomial through.
    @Test func swiGLUMatchesReference() {
        for n in [1, 15, 16, 17, 100, 1536, 4099] {
            var g = FusedKernelTests.random(n, seed: UInt64(n)).map { $0 * 8 }
            if n > 10 { g[0] = 95; g[1] = -95; g[2] = 0; g[3] = -200 }
            let u = FusedKernelTests.random(n, seed: UInt64(n + 1))
            var fast = [Float](repeating: .nan, count: n), reference = fast
            lpc_swiglu(g, u, &fast, Int64(n))
            lpc_swiglu_reference(g, u, &reference, Int64(n))
            for i in 0..<n {
                let ok = abs(fast[i] - reference[i]) <= 1e-7 + 6e-7 * abs(reference[i])
                #expect(ok, "n \(n) [\(i)] g \(g[i]): \(fast[i]) vs \(reference[i])")
                if !ok { return }
            }
        }
    }
}
