import Foundation
import Graph
import TensorCore
import Testing
import TestSupport
@testable import Runtime

@Suite("Attention kernel (opset 23)")
struct AttentionKernelTests {
    typealias H = KernelHarness

    /// Runs Attention with Q, K, V and the optional inputs, returning `outputs` results.
    func attention(_ q: Tensor, _ k: Tensor, _ v: Tensor, mask: Tensor? = nil, pastKey: Tensor? = nil,
                   pastValue: Tensor? = nil, outputs: Int = 1, _ attributes: [String: AttributeValue] = [:]) throws -> [Tensor] {
        var inputs: [Tensor?] = [q, k, v, mask, pastKey, pastValue]
        while let last = inputs.last, last == nil { inputs.removeLast() }
        return try H.run("Attention", inputs, outputs: outputs, attributes)
    }

    @Test func singleQueryByHand() throws {
        // scores q·k = [1, 0] (scale 1) → p = [e, 1] / (e + 1); y = p0·v0 + p1·v1.
        let q = H.f32([1, 0], [1, 1, 1, 2]), k = H.f32([1, 0, 0, 1], [1, 1, 2, 2]), v = H.f32([10, 0, 0, 10], [1, 1, 2, 2])
        let y = try attention(q, k, v, ["scale": .float(1)])[0]
        let p0 = M_E / (M_E + 1)
        H.expectClose(y, [10 * p0, 10 * (1 - p0)], shape: [1, 1, 1, 2], atol: 1e-5)
        // Default scale 1/√2.
        let d = try attention(q, k, v)[0]
        let e = Foundation.exp(1 / 2.0.squareRoot())
        H.expectClose(d, [10 * e / (e + 1), 10 / (e + 1)], shape: [1, 1, 1, 2], atol: 1e-5)
    }

    @Test func causalSquareFirstRowSeesOnlyItself() throws {
        var r = H.Random(seed: 1)
        let q = r.tensor([1, 1, 3, 4]), k = r.tensor([1, 1, 3, 4]), v = r.tensor([1, 1, 3, 4])
        let y = try attention(q, k, v, ["is_causal": .int(1)])[0].array(Float.self)
        #expect(Array(y[0..<4]) == Array(v.array(Float.self)[0..<4]))
    }

    /// With a cache, query i sits at position past + i and sees keys ≤ past + i: changing a later
    /// key changes nothing for it, and a one-token decode step sees every key.
    @Test func causalWithPastIsAlignedToTheCache() throws {
        var r = H.Random(seed: 2)
        let (past, q, d) = (3, 2, 4)
        let pk = r.tensor([1, 1, past, d]), pv = r.tensor([1, 1, past, d])
        let qt = r.tensor([1, 1, q, d]), k = r.tensor([1, 1, q, d]), v = r.tensor([1, 1, q, d])
        let base = try attention(qt, k, v, pastKey: pk, pastValue: pv, outputs: 3, ["is_causal": .int(1)])
        var changed = v.array(Float.self)
        for e in 0..<d { changed[d + e] += 5 }  // the key/value at absolute position past + 1
        let other = try attention(qt, k, Tensor(changed, shape: v.shape), pastKey: pk, pastValue: pv, outputs: 3, ["is_causal": .int(1)])
        #expect(Array(base[0].array(Float.self)[0..<d]) == Array(other[0].array(Float.self)[0..<d]))   // row 0 sees ≤ past
        #expect(Array(base[0].array(Float.self)[d...]) != Array(other[0].array(Float.self)[d...]))     // row 1 sees past + 1
        let ref = try AttentionReference.run(q: qt, k: k, v: v, pastKey: pk, pastValue: pv, isCausal: true)
        H.expectClose(base[0], ref.y, shape: ref.yShape, atol: 1e-5)
        // Decode: one query after the cache attends to everything, as with no mask at all.
        let q1 = r.tensor([1, 1, 1, d]), k1 = r.tensor([1, 1, 1, d]), v1 = r.tensor([1, 1, 1, d])
        let causal = try attention(q1, k1, v1, pastKey: pk, pastValue: pv, outputs: 3, ["is_causal": .int(1)])[0]
        let open = try attention(q1, k1, v1, pastKey: pk, pastValue: pv, outputs: 3)[0]
        #expect(causal.array(Float.self) == open.array(Float.self))
    }

    /// Without a cache and fewer queries than keys, the diagonal starts at the top left
    /// (query i sees keys ≤ i), as the ONNX reference and onnxruntime do.
    @Test func causalShortQueryIsTopLeftWithoutCache() throws {
        var r = H.Random(seed: 3)
        let q = r.tensor([1, 1, 2, 4]), k = r.tensor([1, 1, 5, 4]), v = r.tensor([1, 1, 5, 4])
        let y = try attention(q, k, v, ["is_causal": .int(1)])[0].array(Float.self)
        #expect(Array(y[0..<4]) == Array(v.array(Float.self)[0..<4]))
    }

    @Test func presentIsPastConcatenatedWithNew() throws {
        let pk = H.f32([1, 2, 3, 4], [1, 1, 2, 2]), pv = H.f32([5, 6, 7, 8], [1, 1, 2, 2])
        let k = H.f32([9, 10], [1, 1, 1, 2]), v = H.f32([11, 12], [1, 1, 1, 2])
        let out = try attention(H.f32([0, 0], [1, 1, 1, 2]), k, v, pastKey: pk, pastValue: pv, outputs: 3)
        #expect(out[1].shape == [1, 1, 3, 2] && out[1].array(Float.self) == [1, 2, 3, 4, 9, 10])
        #expect(out[2].array(Float.self) == [5, 6, 7, 8, 11, 12])
        // Zero query → uniform weights → mean of the values.
        H.expectClose(out[0], [23.0 / 3, 26.0 / 3], shape: [1, 1, 1, 2], atol: 1e-5)
    }

    /// Grouped heads read KV head h / group in place; the result equals MHA on repeated K/V.
    @Test func groupedQueryEqualsRepeatedHeads() throws {
        var r = H.Random(seed: 4)
        let q = r.tensor([2, 6, 3, 4]), k = r.tensor([2, 2, 5, 4]), v = r.tensor([2, 2, 5, 3])
        let gqa = try attention(q, k, v)[0]
        func repeated(_ t: Tensor) -> Tensor {
            let (b, h, s, d) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
            let values = t.array(Float.self)
            var out: [Float] = []
            for bi in 0..<b {
                for head in 0..<(h * 3) {
                    let start: Int = (bi * h + head / 3) * s * d
                    out += values[start..<(start + s * d)]
                }
            }
            return Tensor(out, shape: [b, h * 3, s, d])
        }
        let mha = try attention(q, repeated(k), repeated(v))[0]
        H.expectClose(gqa, mha.doubles(), shape: mha.shape, atol: 1e-6)
    }

    @Test func threeDimensionalInputsMatchFourDimensional() throws {
        var r = H.Random(seed: 5)
        let (b, sq, skv, hq, hkv, d) = (2, 3, 4, 4, 2, 3)
        let q = r.tensor([b, sq, hq * d]), k = r.tensor([b, skv, hkv * d]), v = r.tensor([b, skv, hkv * d])
        let pk = r.tensor([b, hkv, 2, d]), pv = r.tensor([b, hkv, 2, d])
        let heads: [String: AttributeValue] = ["q_num_heads": .int(hq), "kv_num_heads": .int(hkv), "is_causal": .int(1)]
        let out = try attention(q, k, v, pastKey: pk, pastValue: pv, outputs: 3, heads)
        #expect(out[0].shape == [b, sq, hq * d] && out[1].shape == [b, hkv, 6, d])
        let ref = try AttentionReference.run(q: q, k: k, v: v, pastKey: pk, pastValue: pv, qNumHeads: hq, kvNumHeads: hkv, isCausal: true)
        H.expectClose(out[0], ref.y, shape: ref.yShape, atol: 1e-5)
        H.expectClose(out[1], ref.presentKey, shape: [b, hkv, 6, d], atol: 0)
        H.expectClose(out[2], ref.presentValue, shape: [b, hkv, 6, d], atol: 0)
    }

    @Test func boolMaskEqualsMinusInfinityFloatMask() throws {
        var r = H.Random(seed: 6)
        let q = r.tensor([2, 2, 3, 4]), k = r.tensor([2, 2, 5, 4]), v = r.tensor([2, 2, 5, 4])
        let allowed = (0..<15).map { $0 % 4 != 1 }
        let boolMask = Tensor(allowed, shape: [3, 5])
        let floatMask = Tensor(allowed.map { $0 ? Float(0) : -.infinity }, shape: [3, 5])
        let a = try attention(q, k, v, mask: boolMask)[0], b = try attention(q, k, v, mask: floatMask)[0]
        H.expectClose(a, b.doubles(), shape: b.shape, atol: 1e-6)
    }

    /// A fully masked query row gives a zero output row (opset-23 errata, onnxruntime 1.32),
    /// whether masked by bool, -inf, float lowest, or causal over a bool mask.
    @Test func fullyMaskedRowsGiveZeros() throws {
        var r = H.Random(seed: 7)
        let q = r.tensor([1, 1, 2, 4]), k = r.tensor([1, 1, 3, 4]), v = r.tensor([1, 1, 3, 4])
        let lowest = -Float.greatestFiniteMagnitude
        for mask in [Tensor([true, true, false, false, false, false], shape: [2, 3]),
                     Tensor([Float(0), 0, 0, -.infinity, -.infinity, -.infinity], shape: [2, 3]),
                     Tensor([Float(0), 0, 0, lowest, -.infinity, lowest], shape: [2, 3])] {
            let out = try attention(q, k, v, mask: mask, outputs: 4, ["qk_matmul_output_mode": .int(3)])
            let y = out[0].array(Float.self)
            #expect(Array(y[4...]) == [0, 0, 0, 0], "mask \(mask.dtype)")
            #expect(y[0..<4].allSatisfy { $0.isFinite && $0 != 0 })
            #expect(Array(out[3].array(Float.self)[3...]) == [0, 0, 0])
        }
        // Causal hides keys 3, 4 from row 0 (past 2) and the mask hides 0–2.
        let pk = r.tensor([1, 1, 2, 4]), pv = r.tensor([1, 1, 2, 4])
        let composed = Tensor([false, false, false, true, true] + [Bool](repeating: true, count: 5), shape: [2, 5])
        let y = try attention(q, k, v, mask: composed, pastKey: pk, pastValue: pv, outputs: 3,
                              ["is_causal": .int(1)])[0].array(Float.self)
        #expect(Array(y[0..<4]) == [0, 0, 0, 0])
        #expect(y[4..<8].allSatisfy { $0 != 0 })
    }

    /// A mask shorter than past + kv masks the keys it does not cover (ONNX reference padding).
    @Test func shortMaskIsPaddedAsMasked() throws {
        var r = H.Random(seed: 8)
        let q = r.tensor([1, 1, 1, 4]), k = r.tensor([1, 1, 4, 4]), v = r.tensor([1, 1, 4, 4])
        let short = try attention(q, k, v, mask: Tensor([true, true], shape: [1, 2]))[0]
        let full = try attention(q, k, v, mask: Tensor([true, true, false, false], shape: [1, 4]))[0]
        #expect(short.array(Float.self) == full.array(Float.self))
    }

    @Test func qkOutputModesReturnEachStage() throws {
        var r = H.Random(seed: 9)
        let q = r.tensor([1, 2, 3, 4], scale: 3), k = r.tensor([1, 2, 4, 4], scale: 3), v = r.tensor([1, 2, 4, 4])
        let mask = r.tensor([3, 4])
        let ref = try AttentionReference.run(q: q, k: k, v: v, mask: mask, softcap: 2, isCausal: true)
        for mode in 0...3 {
            let out = try attention(q, k, v, mask: mask, outputs: 4,
                                    ["qk_matmul_output_mode": .int(mode), "softcap": .float(2), "is_causal": .int(1)])
            #expect(out[3].shape == [1, 2, 3, 4])
            H.expectClose(out[3], ref.stages[mode], shape: [1, 2, 3, 4], atol: 1e-5, rtol: 1e-6, "mode \(mode)")
            H.expectClose(out[0], ref.y, shape: ref.yShape, atol: 1e-5)
        }
    }

    /// The fast path against the Double reference over swept and odd shapes, GQA, caches,
    /// masks of several broadcast shapes, causal, softcap and custom scales.
    @Test(arguments: [1, 3, 17, 64])
    func matchesReferenceOnSweptShapes(_ d: Int) throws {
        var r = H.Random(seed: UInt64(d) + 500)
        let configurations: [(b: Int, hq: Int, hkv: Int, sq: Int, skv: Int, past: Int)] = [
            (1, 1, 1, 1, 1, 0), (2, 4, 2, 3, 3, 0), (1, 3, 1, 17, 17, 0), (2, 2, 2, 1, 1, 5), (1, 6, 3, 3, 2, 4),
        ]
        for c in configurations {
            let total = c.past + c.skv
            let q = r.tensor([c.b, c.hq, c.sq, d], scale: 2), k = r.tensor([c.b, c.hkv, c.skv, d], scale: 2)
            let v = r.tensor([c.b, c.hkv, c.skv, d + 1])
            let pk = c.past > 0 ? r.tensor([c.b, c.hkv, c.past, d]) : nil
            let pv = c.past > 0 ? r.tensor([c.b, c.hkv, c.past, d + 1]) : nil
            let masks: [Tensor?] = [nil, r.tensor([c.sq, total], scale: 3),
                                    Tensor((0..<(c.b * total)).map { $0 % 3 != 2 }, shape: [c.b, 1, 1, total]),
                                    r.tensor([c.b, c.hq, c.sq, total])]
            for (index, mask) in masks.enumerated() {
                for causal in [false, true] {
                    let softcap: Double = index == 3 ? 1.5 : 0
                    let scale: Double? = index == 2 ? 0.3 : nil
                    var attrs: [String: AttributeValue] = ["is_causal": .int(causal ? 1 : 0), "softcap": .float(Float(softcap))]
                    if let scale { attrs["scale"] = .float(Float(scale)) }
                    let out = try attention(q, k, v, mask: mask, pastKey: pk, pastValue: pv, outputs: 3, attrs)
                    let ref = try AttentionReference.run(q: q, k: k, v: v, mask: mask, pastKey: pk, pastValue: pv,
                                                         scale: scale.map { Double(Float($0)) }, softcap: softcap, isCausal: causal)
                    H.expectClose(out[0], ref.y, shape: ref.yShape, atol: 2e-5, rtol: 1e-4, "\(c) d \(d) mask \(index) causal \(causal)")
                    H.expectClose(out[1], ref.presentKey, shape: [c.b, c.hkv, total, d], atol: 0)
                }
            }
        }
    }

    /// Long key sequences split the queries into several score blocks.
    @Test func longSequencesUseSeveralRowBlocks() throws {
        var r = H.Random(seed: 10)
        let (sq, skv) = (40, 5000)
        #expect(AttentionKernel.rowBlock(total: skv, qSeq: sq) < sq)
        let q = r.tensor([1, 1, sq, 2]), k = r.tensor([1, 1, skv, 2]), v = r.tensor([1, 1, skv, 2])
        let mask = Tensor((0..<skv).map { $0 % 7 != 0 }, shape: [skv])
        for (attrs, m) in [([String: AttributeValue](), nil), (["is_causal": .int(1)], nil), (["is_causal": .int(1)], mask)] as [([String: AttributeValue], Tensor?)] {
            let y = try attention(q, k, v, mask: m, attrs)[0]
            let ref = try AttentionReference.run(q: q, k: k, v: v, mask: m, isCausal: attrs["is_causal"] != nil)
            H.expectClose(y, ref.y, shape: ref.yShape, atol: 1e-5, rtol: 1e-4)
        }
    }

    @Test func emptyShapes() throws {
        let noQueries = try attention(Tensor(zeros: .float32, shape: [1, 2, 0, 4]), Tensor(zeros: .float32, shape: [1, 2, 3, 4]),
                                      Tensor(zeros: .float32, shape: [1, 2, 3, 4]))[0]
        #expect(noQueries.shape == [1, 2, 0, 4])
        let noKeys = try attention(H.f32([1, 1, 1, 1], [1, 1, 1, 4]), Tensor(zeros: .float32, shape: [1, 1, 0, 4]),
                                   Tensor(zeros: .float32, shape: [1, 1, 0, 3]), outputs: 3)
        #expect(noKeys[0].shape == [1, 1, 1, 3] && noKeys[0].array(Float.self) == [0, 0, 0])
        let noBatch = try attention(Tensor(zeros: .float32, shape: [0, 3, 8]), Tensor(zeros: .float32, shape: [0, 2, 4]),
                                    Tensor(zeros: .float32, shape: [0, 2, 4]), ["q_num_heads": .int(2), "kv_num_heads": .int(1)])[0]
        #expect(noBatch.shape == [0, 3, 8])
    }

    @Test func float16ComputesInFloat32() throws {
        var r = H.Random(seed: 11)
        let q = r.tensor([1, 2, 3, 4]), k = r.tensor([1, 1, 3, 4]), v = r.tensor([1, 1, 3, 4])
        let half = { (t: Tensor) in Tensor(t.array(Float.self).map { Float16($0) }, shape: t.shape) }
        let y = try attention(half(q), half(k), half(v), ["is_causal": .int(1)])[0]
        #expect(y.dtype == .float16)
        let ref = try AttentionReference.run(q: half(q), k: half(k), v: half(v), isCausal: true)
        H.expectClose(y, ref.y, shape: ref.yShape, atol: 2e-3)
    }

    @Test func badInputsThrow() {
        let q = Tensor(zeros: .float32, shape: [1, 4, 2, 4]), k = Tensor(zeros: .float32, shape: [1, 3, 2, 4])
        let kv = Tensor(zeros: .float32, shape: [1, 2, 2, 4])
        #expect(throws: KernelError.self) { try attention(q, k, k) }                                     // 4 heads over 3
        #expect(throws: KernelError.self) { try attention(q, kv, Tensor(zeros: .float32, shape: [1, 2, 3, 4])) }
        #expect(throws: KernelError.self) { try attention(q, Tensor(zeros: .float32, shape: [1, 2, 2, 5]), kv) }
        #expect(throws: KernelError.self) { try attention(Tensor(zeros: .float32, shape: [1, 2, 8]), Tensor(zeros: .float32, shape: [1, 2, 8]),
                                                          Tensor(zeros: .float32, shape: [1, 2, 8])) }     // 3-D without heads
        #expect(throws: KernelError.self) { try attention(q, kv, kv, pastKey: kv) }                      // past_value missing
        #expect(throws: KernelError.self) { try attention(q, kv, kv, mask: Tensor(zeros: .float32, shape: [3, 2])) }
        #expect(throws: KernelError.self) { try attention(q, kv, kv, mask: Tensor(zeros: .float32, shape: [2, 3])) }  // longer than total
        #expect(throws: KernelError.self) { try attention(q, kv, kv, mask: Tensor(zeros: .int64, shape: [2, 2])) }
        #expect(throws: KernelError.self) { try attention(q, kv, Tensor(zeros: .float64, shape: [1, 2, 2, 4])) }
        #expect(throws: KernelError.self) { try attention(q, kv, kv, ["q_num_heads": .int(2)]) }
        #expect(throws: KernelError.self) { try attention(q, kv, kv, outputs: 4, ["qk_matmul_output_mode": .int(4)]) }
        #expect(throws: KernelError.self) {
            try H.run("Attention", [q, kv, kv, nil, nil, nil, Tensor([Int64(2)], shape: [1])])
        }
    }
}
