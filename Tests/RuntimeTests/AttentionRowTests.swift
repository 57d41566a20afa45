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
