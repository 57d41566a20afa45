import CKernels
import Foundation
@testable import Runtime
import TensorCore
import Testing
import TestSupport

/// Prefill products over bfloat16 weights (`MatMulBLAS.sgemmHalfB` / `sgemmHalfNT` with the bf16 widening: widen in slices, then sgemm) against a
/// Double reference on the widened weights, on swept and odd shapes, whole-depth and sliced; and
/// the `lpc:MatMulKN` / `lpc:MatMulNT` kernels with bf16 weights against the same kernels on the
/// widened float32 weights, for decode rows (gemv) and prefill rows (sgemm). Tolerance: atol 1e-5
/// + rtol 1e-4 (float32 sums in another order).
@Suite("Products with bf16 weights")
struct BF16WeightsTests {
    static func bf16(_ values: [Float]) -> [UInt16] {
        var bits = [UInt16](repeating: 0, count: values.count)
        lpc_f32_to_bf16_n(values, &bits, Int64(values.count))
        return bits
    }

    static func widened(_ bits: [UInt16]) -> [Float] { bits.map { Float(bitPattern: UInt32($0) << 16) } }

    @Test func sgemmMatchesReferenceOnSweptShapes() {
        var rng = Xoshiro256(seed: 15)
        for (m, n, k) in [(1, 1, 1), (9, 7, 5), (16, 33, 64), (128, 40, 576), (3, 1, 17), (1, 100, 31), (20, 12, 0), (300, 5, 3)] {
            let a = (0..<m * k).map { _ in Float.random(in: -1...1, using: &rng) }
            let b = Self.bf16((0..<k * n).map { _ in Float.random(in: -1...1, using: &rng) })
            let wide = Self.widened(b)
            for maxScratch in [1 << 22, 37] { // 37: slices of a few rows of B; the kernel path: 48-column blocks
              for mode in [MatMulBLAS.Threading.pool, .kernel] {
                var c = [Float](repeating: .nan, count: m * n)
                MatMulBLAS.sgemmHalfB(m: m, n: n, k: k, a: a, lda: max(k, 1), b: b, c: &c, ldc: n, widen: lpc_bf16_to_f32_n, maxScratch: maxScratch,
                                      mode: mode, kernelScratch: maxScratch)
                var worst = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var sum = 0.0
                        for p in 0..<k { sum += Double(a[i * k + p]) * Double(wide[p * n + j]) }
                        worst = max(worst, abs(Double(c[i * n + j]) - sum) / (1e-5 + 1e-4 * abs(sum)))
                    }
                }
                #expect(worst <= 1, "KN m \(m) n \(n) k \(k) scratch \(maxScratch) \(mode): worst \(worst)× tolerance")
              }
            }
            // NT: the same numbers read as w [n, k] (blocks of 256 rows: n = 300 takes two).
            var y = [Float](repeating: .nan, count: m * n)
            MatMulBLAS.sgemmHalfNT(a, b, &y, m: m, n: n, k: k, widen: lpc_bf16_to_f32_n)
            var worst = 0.0
            for i in 0..<m {
                for r in 0..<n {
                    var sum = 0.0
                    for p in 0..<k { sum += Double(a[i * k + p]) * Double(wide[r * k + p]) }
                    worst = max(worst, abs(Double(y[i * n + r]) - sum) / (1e-5 + 1e-4 * abs(sum)))
                }
            }
            #expect(worst <= 1, "NT m \(m) n \(n) k \(k): worst \(worst)× tolerance")
        }
    }

    @Test(arguments: [1, 5, 24]) // 1 and 5 rows: gemv kernels; 24: sgemm
    func kernelsMatchFloat32OnWidenedWeights(rows: Int) throws {
        var rng = Xoshiro256(seed: UInt64(20 + rows))
        let (k, n) = (48, 20)
        let x = Tensor((0..<rows * k).map { _ in Float.random(in: -1...1, using: &rng) }, shape: [rows, k])
        let bits = Self.bf16((0..<k * n).map { _ in Float.random(in: -1...1, using: &rng) })
        let w16 = Tensor(dtype: .bfloat16, shape: [k, n], storage: TensorStorage(weightByteCount: bits.count * 2))
        bits.withUnsafeBytes { w16.raw.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        let w32 = Tensor(Self.widened(bits), shape: [k, n])
        let kn = try FusedKernels.matMulKN(x, w16), kn32 = try FusedKernels.matMulKN(x, w32)
        #expect(closeness(kn, kn32, atol: 1e-5, rtol: 1e-4).isClose, "MatMulKN rows \(rows)")
        // The same 960 values read as W [24, 40] for MatMulNT (y = x · Wᵀ).
        let nt16 = Tensor(dtype: .bfloat16, shape: [24, 40], storage: w16.storage)
        let nt32 = Tensor(Self.widened(bits), shape: [24, 40])
        let x2 = Tensor((0..<rows * 40).map { _ in Float.random(in: -1...1, using: &rng) }, shape: [rows, 40])
        let nt = try FusedKernels.matMulNT(x2, nt16), ntRef = try FusedKernels.matMulNT(x2, nt32)
        #expect(closeness(nt, ntRef, atol: 1e-5, rtol: 1e-4).isClose, "MatMulNT rows \(rows)")
    }
}
