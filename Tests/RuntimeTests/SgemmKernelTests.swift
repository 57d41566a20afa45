import CKernels
import Foundation
@testable import Runtime
import Testing

/// `lpc_sgemm_f32` (AVX-512, 8 × 48 register tiles, K in chunks, B packed per chunk) against its
/// scalar twin `lpc_sgemm_f32_reference`. Both compute every element as one fused multiply-add
/// chain over k in order, so they must agree **bit for bit** (tolerance 0) on every shape, window
/// and stride; the twin itself is checked against a float64 sum. On a CPU without AVX-512 the
/// kernel runs the twin and these tests check only the twin.
@Suite("AVX-512 sgemm vs scalar twin")
struct SgemmKernelTests {
    /// One product: a [m, k] (row stride lda), b [k, ldb], c [m, ldc], window n0 ..< n1.
    struct Case: CustomStringConvertible {
        var m: Int, k: Int, n0: Int, n1: Int, lda: Int, ldb: Int, ldc: Int
        init(m: Int, k: Int, n: Int) { self.init(m: m, k: k, n0: 0, n1: n, lda: k, ldb: n, ldc: n) }
        init(m: Int, k: Int, n0: Int, n1: Int, lda: Int, ldb: Int, ldc: Int) {
            (self.m, self.k, self.n0, self.n1, self.lda, self.ldb, self.ldc) = (m, k, n0, n1, lda, ldb, ldc)
        }
        var description: String { "m \(m) k \(k) n \(n0)..<\(n1) lda \(lda) ldb \(ldb) ldc \(ldc)" }
    }

    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix(seed: seed)
        return (0..<count).map { _ in rng.normal() }
    }

    /// Runs kernel and twin on the same inputs (C pre-filled with `initial`) and returns both C's;
    /// the kernel with A packed beforehand (`lpc_sgemm_pack_a`, `lpc_sgemm_f32_packed`) must give
    /// the same bits as `lpc_sgemm_f32`.
    static func run(_ t: Case, a: [Float], b: [Float], initial: [Float], accumulate: Bool) -> (kernel: [Float], twin: [Float]) {
        var kernel = initial, twin = initial, packedKernel = initial
        lpc_sgemm_f32(Int64(t.m), Int64(t.n0), Int64(t.n1), Int64(t.k), a, Int64(t.lda), b, Int64(t.ldb), &kernel, Int64(t.ldc), accumulate ? 1 : 0)
        lpc_sgemm_f32_reference(Int64(t.m), Int64(t.n0), Int64(t.n1), Int64(t.k), a, Int64(t.lda), b, Int64(t.ldb), &twin, Int64(t.ldc), accumulate ? 1 : 0)
        var packed = [Float](repeating: .nan, count: max(Int(lpc_sgemm_packed_a_count(Int64(t.m), Int64(t.k))), 1))
        if t.m > 0 && t.k > 0 { lpc_sgemm_pack_a(Int64(t.m), Int64(t.k), a, Int64(t.lda), &packed) }
        lpc_sgemm_f32_packed(Int64(t.m), Int64(t.n0), Int64(t.n1), Int64(t.k), packed, b, Int64(t.ldb), &packedKernel, Int64(t.ldc), accumulate ? 1 : 0)
        let differ = zip(kernel, packedKernel).filter { $0.bitPattern != $1.bitPattern && !($0.isNaN && $1.isNaN) }.count
        #expect(differ == 0, "\(t): packed-A kernel differs from lpc_sgemm_f32 in \(differ) elements")
        return (kernel, twin)
    }

    /// Kernel equals twin bit for bit; the twin is within a float32 rounding bound of a float64 sum
    /// inside the window, and neither writes outside it (C's other cells keep their sentinel).
    static func check(_ t: Case, seed: UInt64, accumulate: Bool = false) {
        let a = random(max(t.m * t.lda, 1), seed: seed), b = random(max(t.k * t.ldb, 1), seed: seed + 1)
        let sentinel: Float = -12345.5
        var initial = [Float](repeating: sentinel, count: max(t.m * t.ldc, 1))
        if accumulate {
            let start = random(initial.count, seed: seed + 2)
            for i in 0..<t.m { for j in t.n0..<t.n1 { initial[i * t.ldc + j] = start[i * t.ldc + j] } }
        }
        let (kernel, twin) = run(t, a: a, b: b, initial: initial, accumulate: accumulate)
        let mismatches = zip(kernel, twin).filter { $0.bitPattern != $1.bitPattern }.count
        #expect(mismatches == 0, "\(t) accumulate \(accumulate): \(mismatches) elements differ from the twin")
        var worst = 0.0, outside = 0
        for i in 0..<t.m {
            for j in 0..<t.ldc {
                let cell = i * t.ldc + j
                guard j >= t.n0 && j < t.n1 else { outside += twin[cell] == sentinel ? 0 : 1; continue }
                var sum = accumulate ? Double(initial[cell]) : 0, magnitude = abs(sum)
                for p in 0..<t.k {
                    let term = Double(a[i * t.lda + p]) * Double(b[p * t.ldb + j])
                    sum += term; magnitude += abs(term)
                }
                // k + 1 roundings of at most 2^-24 relative each, on partial sums bounded by Σ|terms|.
                let bound = Double(t.k + 1) * 0x1p-24 * magnitude + 1e-30
                worst = max(worst, abs(Double(twin[cell]) - sum) / bound)
            }
        }
        #expect(worst <= 1, "\(t): twin off the float64 sum by \(worst) × its rounding bound")
        #expect(outside == 0, "\(t): \(outside) cells outside the window written")
    }

    @Test func rowsAndColumnTailsSwept() {
        var seed: UInt64 = 1
        for m in 1...20 {
            for n in [1, 15, 16, 17, 31, 47, 48, 49, 65] {
                for k in [1, 2, 5, 9] {
                    Self.check(Case(m: m, k: k, n: n), seed: seed); seed += 3
                }
            }
        }
        for n in 1...65 { Self.check(Case(m: 9, k: 7, n: n), seed: seed); seed += 3 }
    }

    @Test func prefillShapes() {
        // SmolLM2's products (k 576 and 1536; n 192 and 576 as tails of 48-column strips), rows
        // around 128 (full 8-row blocks and a remainder), and a k crossing chunk boundaries unevenly.
        for (index, t) in [Case(m: 128, k: 576, n: 192), Case(m: 127, k: 576, n: 191), Case(m: 129, k: 576, n: 192),
                           Case(m: 128, k: 1536, n: 96), Case(m: 17, k: 1537, n: 65), Case(m: 3, k: 129, n: 50)].enumerated() {
            Self.check(t, seed: 1000 + UInt64(index) * 7)
        }
    }

    @Test func stridedWindowsAndAccumulate() {
        // Windows not aligned to 16 or 48, rows of A, B and C longer than used (the side-by-side
        // Q/K/V weight read with its full row stride), with and without accumulation.
        let cases = [Case(m: 10, k: 33, n0: 3, n1: 100, lda: 40, ldb: 130, ldc: 105),
                     Case(m: 21, k: 200, n0: 576, n1: 768, lda: 201, ldb: 960, ldc: 800),
                     Case(m: 8, k: 5, n0: 47, n1: 49, lda: 5, ldb: 64, ldc: 64),
                     Case(m: 1, k: 1, n0: 17, n1: 18, lda: 3, ldb: 19, ldc: 18)]
        for (index, t) in cases.enumerated() {
            Self.check(t, seed: 2000 + UInt64(index) * 7)
            Self.check(t, seed: 3000 + UInt64(index) * 7, accumulate: true)
        }
    }

    @Test func nanAndInfinityPropagate() {
        let t = Case(m: 12, k: 20, n: 53)
        var a = Self.random(t.m * t.k, seed: 7), b = Self.random(t.k * t.n1, seed: 8)
        a[5 * t.k + 3] = .nan                   // row 5 of C: NaN everywhere
        b[11 * t.n1 + 50] = .infinity           // column 50: ±infinity (NaN in row 5)
        b[2 * t.n1 + 7] = .infinity; b[9 * t.n1 + 7] = .infinity // column 7: inf - inf = NaN, as
        for i in 0..<t.m { a[i * t.k + 9] = -a[i * t.k + 2] }       // a[i, 2] and a[i, 9] have opposite signs
        let initial = [Float](repeating: 0, count: t.m * t.ldc)
        let (kernel, twin) = Self.run(t, a: a, b: b, initial: initial, accumulate: false)
        #expect(zip(kernel, twin).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) })
        for j in 0..<t.n1 { #expect(kernel[5 * t.ldc + j].isNaN, "row 5 column \(j)") }
        for i in 0..<t.m {
            #expect(kernel[i * t.ldc + 7].isNaN, "row \(i) column 7")
            if i != 5 { #expect(kernel[i * t.ldc + 50].isInfinite, "row \(i) column 50: \(kernel[i * t.ldc + 50])") }
        }
        #expect(kernel[0].isFinite && kernel[4 * t.ldc + 49].isFinite)
    }

    @Test func zeroSizes() {
        let a = Self.random(4 * 6, seed: 9), b = Self.random(6 * 10, seed: 10)
        for accumulate in [false, true] {
            let initial = Self.random(4 * 10, seed: 11)
            var c = initial
            lpc_sgemm_f32(0, 0, 10, 6, a, 6, b, 10, &c, 10, accumulate ? 1 : 0)   // no rows
            lpc_sgemm_f32(4, 5, 5, 6, a, 6, b, 10, &c, 10, accumulate ? 1 : 0)   // empty window
            lpc_sgemm_f32(4, 6, 2, 6, a, 6, b, 10, &c, 10, accumulate ? 1 : 0)   // reversed window
            #expect(c == initial)
            lpc_sgemm_f32(4, 2, 7, 0, a, 6, b, 10, &c, 10, accumulate ? 1 : 0)   // k = 0: zeros, or C unchanged
            for i in 0..<4 {
                for j in 0..<10 {
                    let expected: Float = !accumulate && j >= 2 && j < 7 ? 0 : initial[i * 10 + j]
                    #expect(c[i * 10 + j].bitPattern == expected.bitPattern, "accumulate \(accumulate) [\(i), \(j)]")
                }
            }
        }
    }

    /// The `kernel` path of `MatMulBLAS.sgemmPooledGroup` (strips × row blocks on the pool) equals
    /// the twin over the whole product bit for bit on 1–3 threads: SmolLM2's side-by-side Q/K/V
    /// (column windows of one [576, 960] weight), a long prompt (two row blocks), odd sizes.
    @Test(arguments: [1, 2, 3])
    func pooledKernelGroupEqualsTwin(threads: Int) {
        RuntimeThreads.setThreadCount(threads)
        defer { RuntimeThreads.setThreadCount(2) }
        for (m, k, ldb, parts) in [(128, 576, 960, [(0, 576), (576, 192), (768, 192)]), (300, 64, 130, [(0, 130)]),
                                   (37, 97, 1001, [(5, 996), (0, 1)]), (9, 3, 20, [(0, 20), (4, 0)])] {
            let a = Self.random(m * k, seed: UInt64(m)), b = Self.random(k * ldb, seed: UInt64(k))
            let outputs = parts.map { UnsafeMutablePointer<Float>.allocate(capacity: max(m * $0.1, 1)) }
            defer { outputs.forEach { $0.deallocate() } }
            for (index, part) in parts.enumerated() { outputs[index].initialize(repeating: .nan, count: max(m * part.1, 1)) }
            b.withUnsafeBufferPointer { bp in
                let products = parts.enumerated().map { index, part in
                    MatMulBLAS.PooledProduct(b: bp.baseAddress! + part.0, ldb: ldb, n: part.1, c: outputs[index], ldc: max(part.1, 1))
                }
                MatMulBLAS.sgemmPooledGroup(m: m, k: k, a: a, lda: k, products: products, mode: .kernel)
            }
            for (index, part) in parts.enumerated() where part.1 > 0 {
                var twin = [Float](repeating: 0, count: m * part.1)
                b.withUnsafeBufferPointer { bp in
                    lpc_sgemm_f32_reference(Int64(m), 0, Int64(part.1), Int64(k), a, Int64(k), bp.baseAddress! + part.0, Int64(ldb), &twin, Int64(part.1), 0)
                }
                let got = Array(UnsafeBufferPointer(start: outputs[index], count: m * part.1))
                let mismatches = zip(got, twin).filter { $0.bitPattern != $1.bitPattern }.count
                #expect(mismatches == 0, "m \(m) k \(k) part \(part) threads \(threads): \(mismatches) differ")
            }
        }
    }
}
