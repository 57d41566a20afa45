import Foundation
@testable import Runtime
import TensorCore
import Testing
import TestSupport

/// `MatMulBLAS.sgemmHalfB` (prefill with f16 weights) against a Double reference on the widened
/// weights, on swept and odd shapes, whole-depth and sliced. Tolerance: atol 1e-5 + rtol 1e-4.
@Suite("sgemm with f16 weights")
struct MatMulHalfTests {
    @Test func matchesReferenceOnSweptShapes() {
        var rng = Xoshiro256(seed: 5)
        for (m, n, k) in [(1, 1, 1), (9, 7, 5), (16, 33, 64), (128, 40, 576), (3, 1, 17), (1, 100, 31), (20, 12, 0)] {
            for maxScratch in [1 << 22, 37] { // 37: slices of a few rows of B; the kernel path: 48-column blocks
              for mode in [MatMulBLAS.Threading.pool, .kernel] {
                let a = (0..<m * k).map { _ in Float.random(in: -1...1, using: &rng) }
                let b = (0..<k * n).map { _ in Float16(Float.random(in: -1...1, using: &rng)) }
                var c = [Float](repeating: .nan, count: m * n)
                b.withUnsafeBufferPointer { bp in
                    bp.withMemoryRebound(to: UInt16.self) { bits in
                        MatMulBLAS.sgemmHalfB(m: m, n: n, k: k, a: a, lda: max(k, 1), b: bits.baseAddress!, c: &c,
                                              ldc: n, maxScratch: maxScratch, mode: mode, kernelScratch: maxScratch)
                    }
                }
                var worst = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var sum = 0.0
                        for p in 0..<k { sum += Double(a[i * k + p]) * Double(Float(b[p * n + j])) }
                        worst = max(worst, abs(Double(c[i * n + j]) - sum) / (1e-5 + 1e-4 * abs(sum)))
                    }
                }
                #expect(worst <= 1, "m \(m) n \(n) k \(k) scratch \(maxScratch) \(mode): worst \(worst)× tolerance")
              }
            }
        }
    }

    @Test func f16MatMulKNPrefillMatchesF32OnWidenedWeights() throws {
        var rng = Xoshiro256(seed: 6)
        let (rows, k, n) = (24, 48, 20) // more rows than the gemv kernel takes: the sgemm path
        let x = (0..<rows * k).map { _ in Float.random(in: -1...1, using: &rng) }
        let half = (0..<k * n).map { _ in Float16(Float.random(in: -1...1, using: &rng)) }
        let y16 = try FusedKernels.matMulKN(Tensor(x, shape: [rows, k]), Tensor(half, shape: [k, n]))
        let y32 = try FusedKernels.matMulKN(Tensor(x, shape: [rows, k]), Tensor(half.map { Float($0) }, shape: [k, n]))
        #expect(closeness(y16, y32, atol: 1e-5, rtol: 1e-5).isClose)
    }
}
