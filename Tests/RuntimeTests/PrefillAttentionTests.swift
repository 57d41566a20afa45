import Foundation
import Graph
@testable import Runtime
import TensorCore
import Testing
import TestSupport

/// The prefill attention (row kernel over live key ranges) against its reference twin (`GQAttentionKernel.compute`, the
/// row-at-a-time kernel, itself checked against a Double reference in FusedKernelTests), and
/// the vectorisable exp against Foundation's.
@Suite("Prefill attention and vector exp")
struct PrefillAttentionTests {
    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var rng = Xoshiro256(seed: seed)
        return (0..<count).map { _ in Float.random(in: -1...1, using: &rng) }
    }

    enum MaskKind: CaseIterable { case none, causalInf, perHeadFloatMin, fullyMaskedRows }

    /// Mask [b, 1 or h, s, t] and its strides per [b, h, s, t].
    static func mask(_ kind: MaskKind, b: Int, h: Int, s: Int, t: Int) -> ([Float], [Int])? {
        let past = t - s
        switch kind {
        case .none: return nil
        case .causalInf, .fullyMaskedRows:
            var m = [Float](repeating: 0, count: b * s * t)
            for bi in 0..<b {
                for si in 0..<s {
                    for ti in 0..<t where ti > past + si || (kind == .fullyMaskedRows && bi == b - 1 && si < 2) {
                        m[(bi * s + si) * t + ti] = -.infinity
                    }
                }
            }
            return (m, [s * t, 0, t, 1])
        case .perHeadFloatMin:
            var m = [Float](repeating: 0, count: b * h * s * t)
            for bi in 0..<b {
                for hi in 0..<h {
                    for si in 0..<s {
                        for ti in 0..<t where ti > past + si || ti < (bi + hi) % 3 {
                            m[((bi * h + hi) * s + si) * t + ti] = -Float.greatestFiniteMagnitude
                        }
                    }
                }
            }
            return (m, [h * s * t, s * t, t, 1])
        }
    }

    @Test func matchesTheRowKernelOnSweptShapes() {
        let shapes: [(b: Int, h: Int, kvh: Int, s: Int, past: Int, d: Int, kBatch1: Bool)] = [
            (1, 1, 1, 8, 0, 1, false), (1, 4, 2, 9, 0, 8, false), (2, 4, 2, 13, 5, 17, false), (1, 9, 3, 40, 0, 64, false),
            (2, 6, 1, 16, 3, 16, false), (1, 3, 3, 130, 0, 8, false), (2, 4, 4, 11, 7, 5, true), (1, 2, 1, 33, 100, 64, false),
            // Register-tile paths: dv 48 (3 vectors), 80 (a second, 1-vector column block), 128 (two full blocks).
            (1, 4, 2, 19, 2, 48, false), (1, 2, 1, 12, 0, 80, false), (2, 2, 1, 37, 40, 128, true),
        ]
        for shape in shapes {
            let (b, h, kvh, s, d) = (shape.b, shape.h, shape.kvh, shape.s, shape.d)
            let t = s + shape.past
            let kb = shape.kBatch1 ? 1 : b
            // K/V heads `capacity` rows apart, as in a KV-store buffer (only the first t are read).
            let capacity = t + 5
            let q = Self.random(b * h * s * d, seed: 1), k = Self.random(kb * kvh * capacity * d, seed: 2)
            let v = Self.random(kb * kvh * capacity * d, seed: 3)
            for kind in MaskKind.allCases {
                let mask = Self.mask(kind, b: b, h: h, s: s, t: t)
                var plan = GQAttentionKernel.Plan()
                (plan.b, plan.h, plan.s, plan.d, plan.t, plan.dv) = (b, h, s, d, t, d)
                (plan.kBatch, plan.kHeads, plan.kRep, plan.vBatch, plan.vHeads, plan.vRep) = (kb, kvh, h / kvh, kb, kvh, h / kvh)
                plan.maskStrides = mask?.1 ?? [0, 0, 0, 0]
                (plan.kHeadStride, plan.vHeadStride) = (capacity * d, capacity * d)
                #expect(PrefillAttention.canRun(plan))
                for nanToZero in [false, true] {
                    for rowsPerTask in [PrefillAttention.rowsPerTask, 3] { // 3: ragged last task per head
                        var expected = [Float](repeating: 0, count: b * h * s * d)
                        var actual = [Float](repeating: 1, count: b * h * s * d)
                        let m = mask?.0 ?? []
                        m.withUnsafeBufferPointer { mp in
                            let mptr = mask == nil ? nil : mp.baseAddress
                            GQAttentionKernel.compute(plan, q, k, v, mptr, &expected, scale: 0.35, nanToZero: nanToZero)
                            PrefillAttention.computeChunked(plan, q, k, v, mptr, &actual, scale: 0.35, nanToZero: nanToZero,
                                                            rowsPerTask: rowsPerTask)
                        }
                        var worst: Float = 0
                        var nanMismatch = false
                        for i in 0..<actual.count {
                            if actual[i].isNaN || expected[i].isNaN { nanMismatch = nanMismatch || actual[i].isNaN != expected[i].isNaN; continue }
                            worst = max(worst, abs(actual[i] - expected[i]) / (1e-5 + 1e-4 * abs(expected[i])))
                        }
                        // Tolerance: atol 1e-5 + rtol 1e-4 (sums in another order; exp within ~2 ulp).
                        #expect(worst <= 1 && !nanMismatch,
                                "\(shape) \(kind) nanToZero \(nanToZero) rows/task \(rowsPerTask): worst \(worst)× tolerance, NaN mismatch \(nanMismatch)")
                    }
                }
            }
        }
    }

    @Test func decodeShapesStayOnTheRowKernel() {
        var plan = GQAttentionKernel.Plan()
        (plan.b, plan.h, plan.s, plan.d, plan.t, plan.dv) = (1, 9, 1, 64, 100, 64)
        (plan.kBatch, plan.kHeads, plan.kRep, plan.vBatch, plan.vHeads, plan.vRep) = (1, 3, 3, 1, 3, 3)
        #expect(!PrefillAttention.canRun(plan))
        plan.s = 8
        #expect(PrefillAttention.canRun(plan))
        plan.vHeads = 1; plan.vRep = 9 // K and V grouped differently: not one block per group
        #expect(!PrefillAttention.canRun(plan))
    }

    @Test func vectorExpMatchesFoundation() {
        var worst: Double = 0
        var x: Float = -87
        while x <= 88 {
            let mine = Double(VectorMath.exp(x)), reference = Foundation.exp(Double(x))
            worst = max(worst, abs(mine - reference) / reference)
            x += 0.0137
        }
        // About 2 ulp of float32 (ulp/2 = 6e-8).
        #expect(worst < 3e-7, "max relative error \(worst)")
        #expect(VectorMath.exp(0) == 1)
        for tiny in [-87.5, -100, -Float.greatestFiniteMagnitude, -.infinity] as [Float] { #expect(VectorMath.exp(tiny) == 0) }
        #expect(VectorMath.exp(1000).isFinite)
    }

    @Test func expShiftedSumsWhatItWrites() {
        for n in [0, 1, 15, 16, 17, 100] {
            var row = Self.random(n, seed: UInt64(n)).map { $0 * 10 }
            let original = row
            let sum = VectorMath.expShifted(&row, n, by: 3)
            // The shift is subtracted in float, as the kernel does; exp is then within ~2 ulp.
            let reference = original.map { Foundation.exp(Double($0 - Float(3))) }
            for i in 0..<n { #expect(abs(Double(row[i]) - reference[i]) <= 3e-7 * reference[i]) }
            #expect(abs(Double(sum) - reference.reduce(0, +)) <= 1e-6 * max(1, reference.reduce(0, +)))
        }
    }

    @Test func swiGLUOverManyChunks() throws {
        let count = 40_000 + 3 // several 16 Ki chunks and a ragged tail
        let g = Self.random(count, seed: 7).map { $0 * 20 }, u = Self.random(count, seed: 8)
        let y = try FusedKernels.swiGLU(Tensor(g, shape: [count]), Tensor(u, shape: [count]))
        let reference = zip(g, u).map { Float(Double($0) / (1 + Foundation.exp(-Double($0))) * Double($1)) }
        let report = closeness(y, Tensor(reference, shape: [count]), atol: 1e-6, rtol: 1e-5)
        #expect(report.isClose, "\(report)")
    }
}
