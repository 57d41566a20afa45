@testable import Runtime
import TensorCore
import Testing
import TestSupport

/// The pooled sgemm (N cut into panels run as single-threaded sgemms on our pool) against one
/// plain sgemm, on prefill shapes, ragged panel counts and transposed weights.
@Suite("Pooled sgemm vs one sgemm")
struct MatMulPooledTests {
    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix(seed: seed)
        return (0..<count).map { _ in rng.normal() }
    }

    @Test(arguments: [1, 2, 3])
    func pooledMatchesPlainSgemm(threads: Int) {
        RuntimeThreads.setThreadCount(threads)
        defer { RuntimeThreads.setThreadCount(2) }
        // (m, n, k): SmolLM2's prefill products, odd N (ragged last panel), N just above the panel
        // minimum, tall-thin, and one below the pooling threshold (plain path).
        let shapes = [(128, 576, 576), (128, 192, 576), (128, 1536, 576), (128, 576, 1536), (130, 1001, 97),
                      (64, 129, 1024), (300, 100, 300), (9, 64, 64)]
        for (m, n, k) in shapes {
            let a = Self.random(m * k, seed: 1), b = Self.random(k * n, seed: 2)
            for transB in [false, true] {
                let ldb = transB ? k : n
                var pooled = [Float](repeating: .nan, count: m * n), plain = pooled
                MatMulBLAS.sgemmPooled(transB: transB, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: ldb, c: &pooled, ldc: n)
                MatMulBLAS.sgemm(transB: transB, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: ldb, c: &plain, ldc: n)
                // Tolerance atol 1e-4, rtol 1e-5 (sums of up to 1536 products of unit normals, values up to
                // ~100, rounded in another order by another kernel: ~2e-5 seen): OpenBLAS may give a narrow panel
                // another kernel (measured: bit-identical for the SmolLM2 shapes at M = 128, not
                // for 300×100×300); a wrong panel offset or stride is off by O(1).
                let report = closeness(Tensor(pooled, shape: [m, n]), Tensor(plain, shape: [m, n]), atol: 1e-4, rtol: 1e-5)
                #expect(report.isClose, "m \(m) n \(n) k \(k) transB \(transB) threads \(threads): \(report)")
            }
        }
    }
}
