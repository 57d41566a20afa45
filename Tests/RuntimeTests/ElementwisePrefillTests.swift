import CKernels
@testable import Runtime
import TensorCore
import Testing
import TestSupport

/// The prefill-sized elementwise kernels (rotary, residual Add, RMSNorm scaling) against their
/// reference twins on swept and odd shapes, on one thread and on the pool. The AVX-512 paths
/// keep every product and sum a separate rounding, so they must match their scalar twins
/// bit for bit (tolerance 0).
@Suite("Prefill elementwise kernels vs reference twins")
struct ElementwisePrefillTests {
    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix(seed: seed)
        return (0..<count).map { _ in rng.normal() }
    }

    static func bits(_ values: [Float]) -> [UInt32] { values.map(\.bitPattern) }

    @Test func rotateHalfRowMatchesScalarTwin() {
        for d in [1, 2, 7, 16, 17, 31, 32, 33, 64, 100, 128] {
            for h in Set([0, 1, d / 2, d - 1, d].filter { $0 >= 0 && $0 <= d }) {
                let x = Self.random(d, seed: 1), c = Self.random(d, seed: 2), s = Self.random(d, seed: 3)
                var fast = [Float](repeating: .nan, count: d), reference = fast
                lpc_rotate_half_row(x, c, s, &fast, Int64(d), Int64(h))
                lpc_rotate_half_row_reference(x, c, s, &reference, Int64(d), Int64(h))
                #expect(Self.bits(fast) == Self.bits(reference), "rotate-half row d \(d) h \(h)")
            }
        }
    }

    @Test func addAndScaleMatchScalarTwins() {
        for n in [0, 1, 15, 16, 17, 63, 64, 65, 200, 576, 1000] {
            let a = Self.random(n, seed: 4), b = Self.random(n, seed: 5)
            var fast = [Float](repeating: .nan, count: n), reference = fast
            lpc_add_f32(a, b, &fast, Int64(n))
            lpc_add_f32_reference(a, b, &reference, Int64(n))
            #expect(Self.bits(fast) == Self.bits(reference), "add n \(n)")
            lpc_scale_by_weight_row(a, b, 0.37, &fast, Int64(n))
            lpc_scale_by_weight_row_reference(a, b, 0.37, &reference, Int64(n))
            #expect(Self.bits(fast) == Self.bits(reference), "scale by weight n \(n)")
        }
    }

    /// lpc:Rotary's fast path (contiguous rows through the C kernel, chunked over the pool) and its
    /// strided fallback against the element-at-a-time reference, with the broadcasts exporters use.
    @Test(arguments: [1, 2])
    func rotaryMatchesReference(threads: Int) throws {
        RuntimeThreads.setThreadCount(threads)
        defer { RuntimeThreads.setThreadCount(2) }
        let cases: [(x: [Int], cs: [Int], half: Int)] = [
            ([1, 9, 128, 64], [1, 1, 128, 64], 32),     // SmolLM2 prefill Q: cos per position
            ([1, 3, 130, 64], [1, 1, 130, 64], 32),     // K, ragged chunk
            ([2, 4, 5, 17], [2, 1, 5, 17], 8),          // odd head size, batch 2
            ([3, 6], [6], 3),                           // rank 2, one cos row for all
            ([2, 3, 4, 8], [1, 3, 1, 8], 4),            // cos per head, broadcast over positions
            ([2, 5, 6], [2, 5, 1], 3),                  // cos broadcast along the rotated axis: strided path
            ([4, 10], [4, 10], 0), ([4, 10], [4, 10], 10), ([4, 10], [4, 10], 99), // half clamped to [0, d]
            ([1, 2, 300, 64], [300, 64], 32),           // many chunks on the pool
            ([1, 9, 1, 64], [1, 1, 1, 64], 32),         // decode Q: the head-rows fast path
            ([1, 3, 1, 64], [1, 1, 64], 32),            // decode K, cos without its batch axis
            ([2, 4, 3, 16], [2, 1, 3, 16], 8), ([2, 4, 3, 16], [3, 16], 5), // batch 2: cos per batch, shared
            ([1, 2, 1, 1], [1, 1, 1, 1], 1),            // d = 1: the general path
        ]
        for (index, c) in cases.enumerated() {
            let count = Tensor.elementCount(c.x), cc = Tensor.elementCount(c.cs)
            let x = Tensor(Self.random(count, seed: UInt64(10 + index)), shape: c.x)
            let cos = Tensor(Self.random(cc, seed: UInt64(20 + index)), shape: c.cs)
            let sin = Tensor(Self.random(cc, seed: UInt64(30 + index)), shape: c.cs)
            let fast = try FusedKernels.rotary(x, cos, sin, half: c.half, axis: -1)
            let reference = try FusedKernels.rotaryReference(x, cos, sin, half: c.half)
            #expect(fast.shape == reference.shape, "rotary \(c.x) cos \(c.cs): shape \(fast.shape) vs \(reference.shape)")
            #expect(Self.bits(fast.array(Float.self)) == Self.bits(reference.array(Float.self)),
                    "rotary \(c.x) cos \(c.cs) half \(c.half) threads \(threads)")
        }
    }

    /// lpc:Rotary on a split-heads input (memory [B, S, H, D], read as its [B, H, S, D] transpose)
    /// equals the reference on that transpose: decode shapes (the head-rows fast path) and prefill.
    @Test func rotaryOnSplitHeadsMatchesReference() throws {
        for (b, s, h, d, cs) in [(1, 1, 9, 64, [1, 1, 1, 64]), (2, 3, 4, 16, [2, 1, 3, 16]), (1, 70, 9, 64, [1, 1, 70, 64])] {
            let memory = Self.random(b * s * h * d, seed: 50), cc = Tensor.elementCount(cs)
            var transposed = [Float](repeating: 0, count: memory.count) // [B, H, S, D]
            for bi in 0..<b { for si in 0..<s { for hi in 0..<h { for di in 0..<d {
                transposed[((bi * h + hi) * s + si) * d + di] = memory[((bi * s + si) * h + hi) * d + di]
            } } } }
            let cos = Tensor(Self.random(cc, seed: 51), shape: cs), sin = Tensor(Self.random(cc, seed: 52), shape: cs)
            let fast = try FusedKernels.rotary(Tensor(memory, shape: [b, s, h * d]), cos, sin, half: d / 2, axis: -1,
                                               split: (b, s, h, d))
            let reference = try FusedKernels.rotaryReference(Tensor(transposed, shape: [b, h, s, d]), cos, sin, half: d / 2)
            #expect(fast.shape == reference.shape)
            #expect(Self.bits(fast.array(Float.self)) == Self.bits(reference.array(Float.self)), "split rotary b \(b) s \(s) h \(h) d \(d)")
        }
    }

    @Test(arguments: [1, 2])
    func residualAddMatchesGenericLoop(threads: Int) throws {
        RuntimeThreads.setThreadCount(threads)
        defer { RuntimeThreads.setThreadCount(2) }
        for shape in [[0], [1], [3, 5], [1, 128, 576], [2, 33, 1000], [70_001]] {
            let n = Tensor.elementCount(shape)
            let a = Tensor(Self.random(n, seed: 40), shape: shape), b = Tensor(Self.random(n, seed: 41), shape: shape)
            let fast = try Arithmetic.apply(.add, a, b)
            let reference = try ElementwiseLoops.binaryReference(a, b, Float.self, Float.self) { $0 + $1 }
            #expect(fast.shape == shape)
            #expect(Self.bits(fast.array(Float.self)) == Self.bits(reference.array(Float.self)), "Add \(shape) threads \(threads)")
        }
    }

    @Test(arguments: [1, 2])
    func rmsNormOnThePoolMatchesDouble(threads: Int) throws {
        RuntimeThreads.setThreadCount(threads)
        defer { RuntimeThreads.setThreadCount(2) }
        for (rows, d) in [(128, 576), (33, 17), (300, 64), (1, 1000)] {
            let x = Self.random(rows * d, seed: 50), w = Self.random(d, seed: 51)
            let y = try FusedKernels.rmsNorm(Tensor(x, shape: [1, rows, d]), Tensor(w, shape: [d]), epsilon: 1e-5)
            var expected: [Float] = []
            for r in 0..<rows {
                let row = x[r * d..<(r + 1) * d]
                let inv = 1 / (row.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(d) + 1e-5).squareRoot()
                expected += row.enumerated().map { Float(Double(w[$0.offset]) * Double($0.element) * inv) }
            }
            // Tolerance: float32 sum of squares in another order, ~1e-6 relative.
            let report = closeness(y, Tensor(expected, shape: [1, rows, d]), atol: 1e-5, rtol: 1e-5)
            #expect(report.isClose, "RMSNorm \(rows)×\(d) threads \(threads): \(report)")
        }
    }
}
