import CKernels
import Foundation
import Graph
@testable import Runtime
import TensorCore
import Testing
import TestSupport

/// Fast kernels against their reference twins on swept and odd shapes. Tolerances are stated per
/// test: float32 sums in a different order agree to ~1e-5 relative.
@Suite("Fused kernels vs reference twins")
struct FusedKernelTests {
    static func random(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix(seed: seed)
        return (0..<count).map { _ in rng.normal() }
    }

    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (1, 3, 5), (1, 16, 16), (1, 17, 33), (1, 64, 576), (2, 100, 17), (3, 193, 64),
        (1, 1536, 576), (4, 31, 130), (8, 48, 7), (9, 40, 40), (1, 576, 1536), (5, 1000, 15),
    ]

    /// An LM-head-like NT product (18.9 MB: split into ~1 MiB tasks, more than four per thread):
    /// close to the reference, and the same bits for every thread count (each row is one task's).
    @Test func largeGemvSplitsWithoutChangingBits() {
        let (m, n, k) = (2, 8195, 576)
        let x = Self.random(m * k, seed: 3), w = Self.random(n * k, seed: 4)
        var reference = [Float](repeating: .nan, count: m * n)
        lpc_gemv_f32_reference(x, w, &reference, Int64(m), Int64(n), Int64(k))
        var outputs: [[Float]] = []
        defer { RuntimeThreads.setThreadCount(2) }
        for threads in [1, 2, 3] {
            RuntimeThreads.setThreadCount(threads)
            var fast = [Float](repeating: .nan, count: m * n)
            lpc_gemv_f32(x, w, &fast, Int64(m), Int64(n), Int64(k))
            let report = closeness(Tensor(fast, shape: [m, n]), Tensor(reference, shape: [m, n]), atol: 1e-4, rtol: 1e-4)
            #expect(report.isClose, "gemv NT f32 m=\(m) n=\(n) k=\(k) threads=\(threads): \(report)")
            outputs.append(fast)
        }
        #expect(outputs[1] == outputs[0] && outputs[2] == outputs[0], "the split changed the bits")
    }

    @Test(arguments: [1, 2, 3])
    func gemvF32MatchesReference(threads: Int) {
        RuntimeThreads.setThreadCount(threads)
        defer { RuntimeThreads.setThreadCount(2) }
        for (m, n, k) in Self.shapes {
            let x = Self.random(m * k, seed: 1), w = Self.random(n * k, seed: 2)
            var fast = [Float](repeating: .nan, count: m * n), reference = fast
            lpc_gemv_f32(x, w, &fast, Int64(m), Int64(n), Int64(k))
            lpc_gemv_f32_reference(x, w, &reference, Int64(m), Int64(n), Int64(k))
            let report = closeness(Tensor(fast, shape: [m, n]), Tensor(reference, shape: [m, n]), atol: 1e-4, rtol: 1e-4)
            #expect(report.isClose, "gemv NT f32 m=\(m) n=\(n) k=\(k) threads=\(threads): \(report)")
            var fastKN = [Float](repeating: .nan, count: m * n), referenceKN = fastKN
            lpc_gemv_kn_f32(x, w, &fastKN, Int64(m), Int64(n), Int64(k))
            lpc_gemv_kn_f32_reference(x, w, &referenceKN, Int64(m), Int64(n), Int64(k))
            let reportKN = closeness(Tensor(fastKN, shape: [m, n]), Tensor(referenceKN, shape: [m, n]), atol: 1e-4, rtol: 1e-4)
            #expect(reportKN.isClose, "gemv KN f32 m=\(m) n=\(n) k=\(k) threads=\(threads): \(reportKN)")
        }
    }

    @Test(arguments: [1, 2])
    func gemvF16MatchesReference(threads: Int) {
        RuntimeThreads.setThreadCount(threads)
        defer { RuntimeThreads.setThreadCount(2) }
        for (m, n, k) in Self.shapes {
            let x = Self.random(m * k, seed: 3), wf = Self.random(n * k, seed: 4)
            var w = [UInt16](repeating: 0, count: n * k)
            lpc_f32_to_f16(wf, &w, Int64(n * k))
            var fast = [Float](repeating: .nan, count: m * n), reference = fast
            lpc_gemv_f16(x, w, &fast, Int64(m), Int64(n), Int64(k))
            lpc_gemv_f16_reference(x, w, &reference, Int64(m), Int64(n), Int64(k))
            #expect(closeness(Tensor(fast, shape: [m, n]), Tensor(reference, shape: [m, n]), atol: 1e-4, rtol: 1e-4).isClose,
                    "gemv NT f16 m=\(m) n=\(n) k=\(k)")
            lpc_gemv_kn_f16(x, w, &fast, Int64(m), Int64(n), Int64(k))
            lpc_gemv_kn_f16_reference(x, w, &reference, Int64(m), Int64(n), Int64(k))
            #expect(closeness(Tensor(fast, shape: [m, n]), Tensor(reference, shape: [m, n]), atol: 1e-4, rtol: 1e-4).isClose,
                    "gemv KN f16 m=\(m) n=\(n) k=\(k)")
        }
    }

    @Test func halfConversionRoundsLikeSwift() {
        var values: [Float] = [0, -0, 1, -1, 0.1, 65504, 65519, 65520, 1e-8, 6e-8, 3e-5, 6.1e-5, -2.5e-7, .infinity, -.infinity]
        values += Self.random(2000, seed: 5).map { $0 * 1000 }
        values += Self.random(2000, seed: 6).map { $0 * 1e-5 }
        var half = [UInt16](repeating: 0, count: values.count)
        lpc_f32_to_f16(values, &half, Int64(values.count))
        var back = [Float](repeating: 0, count: values.count)
        lpc_f16_to_f32(half, &back, Int64(values.count))
        for (i, value) in values.enumerated() {
            let swift = Float16(value)
            #expect(half[i] == swift.bitPattern, "f32→f16 of \(value): \(half[i]) vs Swift \(swift.bitPattern)")
            #expect(back[i] == Float(swift) || (back[i].isNaN && swift.isNaN), "f16→f32 of \(value)")
        }
        var nan = [UInt16](repeating: 0, count: 1)
        lpc_f32_to_f16([Float.nan], &nan, 1)
        #expect(Float16(bitPattern: nan[0]).isNaN)
    }

    /// Every float16 bit pattern widens to Swift's Float(Float16) (NaNs to NaNs), at every tail length.
    @Test func halfWideningIsExactForEveryValue() {
        let all = (0...UInt16.max).map { $0 }
        var wide = [Float](repeating: 0, count: all.count)
        lpc_f16_to_f32(all, &wide, Int64(all.count))
        let wrong = zip(all, wide).filter { bits, value in
            let swift = Float(Float16(bitPattern: bits))
            return !(value.bitPattern == swift.bitPattern || (value.isNaN && swift.isNaN))
        }
        #expect(wrong.isEmpty, "\(wrong.count) wrong, first: \(wrong.prefix(4).map { "\($0.0) → \($0.1)" })")
        for count in 0...33 { // tails: nothing past `count` is written
            var out = [Float](repeating: -7, count: 40)
            lpc_f16_to_f32(Array(all[1000..<(1000 + count)]), &out, Int64(count))
            #expect(out[..<count].elementsEqual(all[1000..<(1000 + count)].map { Float(Float16(bitPattern: $0)) }), "count \(count)")
            #expect(out[count...].allSatisfy { $0 == -7 }, "count \(count)")
        }
    }

    @Test func matMulKernelsMatchMatMul() throws {
        // lpc:MatMulKN and lpc:MatMulNT against the MatMul kernel, for few rows (gemv) and many (sgemm), f32 and f16.
        for rows in [1, 3, 8, 9, 20] {
            for (k, n) in [(7, 5), (64, 33), (130, 257)] {
                let x = Tensor(Self.random(rows * k, seed: 7), shape: [1, rows, k])
                let w = Tensor(Self.random(k * n, seed: 8), shape: [k, n])
                let expected = try MatMulKernels.matMul(x, w)
                let kn = try FusedKernels.matMulKN(x, w)
                #expect(closeness(kn, expected, atol: 1e-4, rtol: 1e-4).isClose, "MatMulKN rows \(rows) k \(k) n \(n)")
                let wt = TransposeKernels.permuted(w, [1, 0])
                let nt = try FusedKernels.matMulNT(x, wt)
                #expect(closeness(nt, expected, atol: 1e-4, rtol: 1e-4).isClose, "MatMulNT rows \(rows) k \(k) n \(n)")
                // f16 weights: exact against the float32 product of the rounded weights.
                let rounded = Tensor(w.array(Float.self).map { Float(Float16($0)) }, shape: w.shape)
                let expectedHalf = try MatMulKernels.matMul(x, rounded)
                let half = Tensor(w.array(Float.self).map { Float16($0) }, shape: w.shape)
                #expect(closeness(try FusedKernels.matMulKN(x, half), expectedHalf, atol: 1e-4, rtol: 1e-4).isClose, "MatMulKN f16 rows \(rows)")
                let halfT = Tensor(wt.array(Float.self).map { Float16($0) }, shape: wt.shape)
                #expect(closeness(try FusedKernels.matMulNT(x, halfT), expectedHalf, atol: 1e-4, rtol: 1e-4).isClose, "MatMulNT f16 rows \(rows)")
            }
        }
    }

    @Test func rmsNormAndSwiGLUMatchReference() throws {
        for (rows, d) in [(1, 1), (3, 7), (2, 64), (5, 576), (1, 33)] {
            let x = Self.random(rows * d, seed: 9), w = Self.random(d, seed: 10)
            let y = try FusedKernels.rmsNorm(Tensor(x, shape: [rows, d]), Tensor(w, shape: [d]), epsilon: 1e-5)
            var expected: [Float] = []
            for r in 0..<rows {
                let row = x[r * d..<(r + 1) * d]
                let mean = row.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(d)
                let inv = 1 / (mean + 1e-5).squareRoot()
                expected += row.enumerated().map { Float(Double(w[$0.offset]) * Double($0.element) * inv) }
            }
            #expect(closeness(y, Tensor(expected, shape: [rows, d]), atol: 1e-5, rtol: 1e-5).isClose, "RMSNorm \(rows)×\(d)")
            let g = Self.random(rows * d, seed: 11), u = Self.random(rows * d, seed: 12)
            let s = try FusedKernels.swiGLU(Tensor(g, shape: [rows, d]), Tensor(u, shape: [rows, d]))
            let reference = zip(g, u).map { Float(Double($0) / (1 + exp(-Double($0))) * Double($1)) }
            #expect(closeness(s, Tensor(reference, shape: [rows, d]), atol: 1e-5, rtol: 1e-5).isClose, "SwiGLU \(rows)×\(d)")
            // Broadcasting operand: falls back to Mul's broadcasting.
            let b = try FusedKernels.swiGLU(Tensor(g, shape: [rows, d]), Tensor([Float(2)], shape: [1]))
            let bReference = g.map { Float(Double($0) / (1 + exp(-Double($0))) * 2) }
            #expect(closeness(b, Tensor(bReference, shape: [rows, d]), atol: 1e-5, rtol: 1e-5).isClose)
        }
    }

    /// Reference twin: repeat K/V heads explicitly, then softmax(scale·QKᵀ + M)·V in Double.
    static func referenceAttention(q: [Float], k: [Float], v: [Float], mask: [Float]?, b: Int, h: Int, kvh: Int,
                                   s: Int, t: Int, d: Int, scale: Float, maskShape: [Int], nanToZero: Bool) -> [Float] {
        let rep = h / kvh
        var out = [Float](repeating: 0, count: b * h * s * d)
        let padded = [Int](repeating: 1, count: 4 - maskShape.count) + maskShape
        for bi in 0..<b {
            for hi in 0..<h {
                let kv = hi / rep
                for si in 0..<s {
                    var scores = [Double](repeating: 0, count: t)
                    for ti in 0..<t {
                        var dot = 0.0
                        for di in 0..<d { dot += Double(q[((bi * h + hi) * s + si) * d + di]) * Double(k[((bi * kvh + kv) * t + ti) * d + di]) }
                        scores[ti] = dot * Double(scale)
                        if let mask {
                            let idx = [bi, hi, si, ti].enumerated().map { padded[$0.offset] == 1 ? 0 : $0.element }
                            let flat = ((idx[0] * padded[1] + idx[1]) * padded[2] + idx[2]) * padded[3] + idx[3]
                            scores[ti] += Double(mask[flat])
                        }
                    }
                    let maxScore = scores.max() ?? 0
                    let exps = scores.map { exp($0 - maxScore) }
                    let sum = exps.reduce(0, +)
                    for di in 0..<d {
                        var acc = 0.0
                        for ti in 0..<t { acc += exps[ti] / sum * Double(v[((bi * kvh + kv) * t + ti) * d + di]) }
                        if maxScore == -.infinity { acc = nanToZero ? 0 : .nan }
                        out[((bi * h + hi) * s + si) * d + di] = Float(acc)
                    }
                }
            }
        }
        return out
    }

    @Test func gqAttentionMatchesReference() throws {
        let configs: [(b: Int, h: Int, kvh: Int, s: Int, t: Int, d: Int)] = [
            (1, 1, 1, 1, 1, 1), (1, 4, 2, 1, 7, 8), (2, 4, 2, 3, 7, 8), (1, 9, 3, 5, 5, 64), (2, 6, 1, 4, 9, 17), (1, 2, 2, 40, 40, 16),
            // Decode rows through the AVX-512 row kernel: long pasts, odd lengths (tails).
            (1, 9, 3, 1, 1029, 64), (2, 4, 2, 2, 300, 32), (1, 2, 1, 1, 17, 16),
            // Grouped decode: 6 heads per K/V head (two V passes of the grouped kernel), d 128; 4 heads × 2 rows, split blocks.
            (1, 12, 2, 1, 600, 128), (1, 8, 2, 2, 520, 64),
        ]
        for (b, h, kvh, s, t, d) in configs {
            let q = Self.random(b * h * s * d, seed: 13), k = Self.random(b * kvh * t * d, seed: 14), v = Self.random(b * kvh * t * d, seed: 15)
            // Causal + left padding in batch 1, with -inf; batch 1 row 0 fully masked when padding covers it.
            var mask = [Float](repeating: 0, count: b * s * t)
            for bi in 0..<b {
                for si in 0..<s {
                    for ti in 0..<t where ti > t - s + si || (bi == 1 && ti < 2) { mask[(bi * s + si) * t + ti] = -.infinity }
                }
            }
            for nanToZero in [true, false] {
                let rep = h / kvh
                var node = Node(name: "attn", opType: "GQAttention", domain: "lpc", inputs: [], outputs: ["o"],
                                attributes: ["scale": .float(0.3), "nan_to_zero": .int(nanToZero ? 1 : 0)])
                node.inputs = ["q", "k", "v", "m", "ek", "rk", "ev", "rv"]
                let expandShape = Tensor([Int64(b), Int64(kvh), Int64(rep), Int64(t), Int64(d)], shape: [5])
                let reshapeShape = Tensor([Int64(0), Int64(h), Int64(-1), Int64(d)], shape: [4])
                let inputs: [Tensor?] = [Tensor(q, shape: [b, h, s, d]), Tensor(k, shape: [b, kvh, t, d]), Tensor(v, shape: [b, kvh, t, d]),
                                         Tensor(mask, shape: [b, 1, s, t]), expandShape, reshapeShape, expandShape, reshapeShape]
                let result = try GQAttentionKernel.run(KernelContext(node: node, inputs: inputs, opset: 1))
                let expected = Self.referenceAttention(q: q, k: k, v: v, mask: mask, b: b, h: h, kvh: kvh, s: s, t: t, d: d,
                                                       scale: 0.3, maskShape: [b, 1, s, t], nanToZero: nanToZero)
                let a = result.array(Float.self)
                var ok = true
                for i in 0..<a.count where !(a[i].isNaN && expected[i].isNaN) && abs(a[i] - expected[i]) > 1e-4 + 1e-4 * abs(expected[i]) { ok = false }
                #expect(ok, "GQAttention b\(b) h\(h) kvh\(kvh) s\(s) t\(t) d\(d) nanToZero \(nanToZero)")
            }
            // A wrong repeat shape is refused, not misread.
            var node = Node(name: "attn", opType: "GQAttention", domain: "lpc", inputs: [], outputs: ["o"])
            node.inputs = ["q", "k", "v", "", "ek", "rk"]
            let bad: [Tensor?] = [Tensor(q, shape: [b, h, s, d]), Tensor(k, shape: [b, kvh, t, d]), Tensor(v, shape: [b, kvh, t, d]), nil,
                                  Tensor([Int64(b), Int64(kvh), Int64(h / kvh), Int64(t), Int64(d)], shape: [5]),
                                  Tensor([Int64(b), Int64(h), Int64(d), Int64(t)], shape: [4])]
            if t != d {
                #expect(throws: KernelError.self) { try GQAttentionKernel.run(KernelContext(node: node, inputs: bad, opset: 1)) }
            }
        }
    }
}
