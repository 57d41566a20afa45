import Graph
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

    /// Both pooled paths: OpenBLAS panels (`pool`) and our AVX-512 kernel (`kernel`; transposed
    /// weights fall back to panels).
    @Test(arguments: [1, 2, 3], [MatMulBLAS.Threading.pool, .kernel])
    func pooledMatchesPlainSgemm(threads: Int, mode: MatMulBLAS.Threading) {
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
                MatMulBLAS.sgemmPooled(transB: transB, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: ldb, c: &pooled, ldc: n, mode: mode)
                MatMulBLAS.sgemm(transB: transB, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: ldb, c: &plain, ldc: n)
                // Tolerance atol 1e-4, rtol 1e-5 (sums of up to 1536 products of unit normals, values up to
                // ~100, rounded in another order by another kernel: ~2e-5 seen): OpenBLAS may give a narrow panel
                // another kernel (measured: bit-identical for the SmolLM2 shapes at M = 128, not
                // for 300×100×300), and our kernel sums k in order where OpenBLAS blocks it; a wrong
                // panel offset or stride is off by O(1).
                // Our kernel's in-order sums of k = 1536 terms differ from OpenBLAS's blocked ones by up to
                // ~2.6e-4 (seen): atol 5e-4 there (SgemmKernelTests bounds it against a float64 sum).
                let atol = mode == .kernel && !transB ? 5e-4 : 1e-4
                let report = closeness(Tensor(pooled, shape: [m, n]), Tensor(plain, shape: [m, n]), atol: atol, rtol: 1e-5)
                #expect(report.isClose, "m \(m) n \(n) k \(k) transB \(transB) threads \(threads) \(mode): \(report)")
            }
        }
    }

    /// lpc:MatMulKNGroup on prefill rows (all products' panels in one pool run) against MatMul
    /// of each weight, with products too small to split mixed in.
    @Test(arguments: [1, 2])
    func groupMatchesMatMulPerWeight(threads: Int) throws {
        RuntimeThreads.setThreadCount(threads)
        defer { RuntimeThreads.setThreadCount(2) }
        for (rows, k, widths) in [(128, 576, [576, 192, 192]), (130, 97, [1001, 5, 700]), (20, 64, [64, 33])] {
            let x = Tensor(Self.random(rows * k, seed: 3), shape: [1, rows, k])
            let weights = widths.enumerated().map { Tensor(Self.random(k * $1, seed: UInt64(10 + $0)), shape: [k, $1]) }
            var node = Node(name: "g", opType: "MatMulKNGroup", domain: "lpc", inputs: [], outputs: widths.indices.map { "y\($0)" })
            node.inputs = ["x"] + widths.indices.map { "w\($0)" }
            let outputs = try FusedKernels.matMulKNGroup(KernelContext(node: node, inputs: [x] + weights, opset: 1))
            #expect(outputs.count == widths.count)
            for (w, y) in zip(weights, outputs) {
                let expected = try MatMulKernels.matMul(x, w)
                #expect(y.shape == expected.shape)
                // Tolerance as above.
                let report = closeness(y, expected, atol: 1e-4, rtol: 1e-5)
                #expect(report.isClose, "rows \(rows) k \(k) n \(w.shape[1]) threads \(threads): \(report)")
            }
        }
    }
}
