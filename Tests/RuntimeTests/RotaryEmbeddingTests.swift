import Foundation
import Graph
import TensorCore
import Testing
import TestSupport
@testable import Runtime

@Suite("RotaryEmbedding kernel")
struct RotaryEmbeddingTests {
    typealias H = KernelHarness

    /// cos/sin caches [positions, half] for the standard RoPE frequencies.
    static func caches(positions: Int, rotaryDim: Int) -> (Tensor, Tensor) {
        let half = rotaryDim / 2
        var c: [Float] = [], s: [Float] = []
        for p in 0..<positions {
            for i in 0..<half {
                let angle = Double(p) / pow(10_000, Double(2 * i) / Double(rotaryDim))
                c.append(Float(Foundation.cos(angle)))
                s.append(Float(Foundation.sin(angle)))
            }
        }
        return (Tensor(c, shape: [positions, half]), Tensor(s, shape: [positions, half]))
    }

    /// A quarter turn (cos 0, sin 1) maps halves (x1, x2) to (−x2, x1) and pairs (a, b) to (−b, a).
    @Test func quarterTurnByHand() throws {
        let x = H.f32([1, 2, 3, 4], [1, 1, 1, 4])
        let cos = H.f32([0, 0], [1, 1, 2]), sin = H.f32([1, 1], [1, 1, 2])
        let halves = try H.run1("RotaryEmbedding", [x, cos, sin])
        #expect(halves.array(Float.self) == [-3, -4, 1, 2])
        let pairs = try H.run1("RotaryEmbedding", [x, cos, sin], ["interleaved": .int(1)])
        #expect(pairs.array(Float.self) == [-2, 1, -4, 3])
    }

    @Test func partialRotationLeavesTheRestUnchanged() throws {
        let x = H.f32([1, 2, 3, 4, 5, 6], [1, 1, 1, 6])
        let y = try H.run1("RotaryEmbedding", [x, H.f32([0], [1, 1]), H.f32([1], [1, 1]), Tensor([Int64(0)], shape: [1, 1])],
                           ["rotary_embedding_dim": .int(2)])
        #expect(y.array(Float.self) == [-2, 1, 3, 4, 5, 6])
    }

    /// 3-D [batch, seq, heads·head] with num_heads gives the 4-D result transposed.
    @Test func threeDimensionalMatchesFourDimensional() throws {
        var r = H.Random(seed: 21)
        let (batch, seq, heads, head) = (2, 3, 2, 8)
        let x4 = r.tensor([batch, heads, seq, head])
        var x3 = [Float](repeating: 0, count: x4.count)
        let v4 = x4.array(Float.self)
        for b in 0..<batch { for h in 0..<heads { for s in 0..<seq { for e in 0..<head {
            x3[((b * seq + s) * heads + h) * head + e] = v4[((b * heads + h) * seq + s) * head + e]
        } } } }
        let (cos, sin) = Self.caches(positions: 8, rotaryDim: head)
        let positions = Tensor([Int64(0), 1, 2, 5, 6, 7], shape: [batch, seq])
        let y4 = try H.run1("RotaryEmbedding", [x4, cos, sin, positions]).array(Float.self)
        let y3 = try H.run1("RotaryEmbedding", [Tensor(x3, shape: [batch, seq, heads * head]), cos, sin, positions],
                            ["num_heads": .int(heads)]).array(Float.self)
        for b in 0..<batch { for h in 0..<heads { for s in 0..<seq { for e in 0..<head {
            #expect(y3[((b * seq + s) * heads + h) * head + e] == y4[((b * heads + h) * seq + s) * head + e])
        } } } }
    }

    /// Gathering by position_ids equals passing the gathered [batch, seq, half] caches directly.
    @Test func positionIdsEqualPreGatheredCaches() throws {
        var r = H.Random(seed: 22)
        let x = r.tensor([2, 1, 3, 4])
        let (cos, sin) = Self.caches(positions: 10, rotaryDim: 4)
        let ids = [3, 4, 5, 0, 9, 2]
        let gather = { (t: Tensor) in Tensor(ids.flatMap { Array(t.array(Float.self)[($0 * 2)..<($0 * 2 + 2)]) }, shape: [2, 3, 2]) }
        let viaIds = try H.run1("RotaryEmbedding", [x, cos, sin, Tensor(ids.map(Int64.init), shape: [2, 3])])
        let direct = try H.run1("RotaryEmbedding", [x, gather(cos), gather(sin)])
        #expect(viaIds.array(Float.self) == direct.array(Float.self))
    }

    @Test(arguments: [1, 3, 17, 64])
    func matchesReferenceOnSweptShapes(_ seq: Int) throws {
        var r = H.Random(seed: UInt64(seq) + 40)
        for (shape, heads, rotary, interleaved) in [([2, 3, seq, 8], 0, 0, false), ([1, seq, 24], 3, 4, true),
                                                    ([1, 1, seq, 64], 0, 64, true), ([2, seq, 6], 1, 2, false)] {
            let head = shape.count == 4 ? shape[3] : shape[2] / heads
            let rot = rotary == 0 ? head : rotary
            let x = r.tensor(shape)
            let (cos, sin) = Self.caches(positions: seq + 5, rotaryDim: rot)
            let ids = (0..<(shape[0] * seq)).map { Int64(($0 * 7) % (seq + 5)) }
            var attrs: [String: AttributeValue] = ["interleaved": .int(interleaved ? 1 : 0), "rotary_embedding_dim": .int(rotary)]
            if heads > 0 { attrs["num_heads"] = .int(heads) }
            let y = try H.run1("RotaryEmbedding", [x, cos, sin, Tensor(ids, shape: [shape[0], seq])], attrs)
            let ref = RotaryEmbeddingReference.run(x.doubles(), shape: shape, cos: cos.doubles(), sin: sin.doubles(),
                                                   cacheShape: cos.shape, positions: ids.map(Int.init), numHeads: heads,
                                                   rotaryDim: rotary, interleaved: interleaved)
            H.expectClose(y, ref, shape: shape, atol: 1e-5, "\(shape) rot \(rotary) interleaved \(interleaved)")
        }
    }

    @Test func emptySequence() throws {
        let (cos, sin) = Self.caches(positions: 4, rotaryDim: 4)
        let y = try H.run1("RotaryEmbedding", [Tensor(zeros: .float32, shape: [1, 2, 0, 4]), cos, sin, Tensor(zeros: .int64, shape: [1, 0])])
        #expect(y.shape == [1, 2, 0, 4])
    }

    @Test func float16RoundTrips() throws {
        let x = Tensor([Float16(1), 2, 3, 4], shape: [1, 1, 1, 4])
        let y = try H.run1("RotaryEmbedding", [x, Tensor([Float16(0), 0], shape: [1, 1, 2]), Tensor([Float16(1), 1], shape: [1, 1, 2])])
        #expect(y.dtype == .float16 && y.array(Float16.self) == [-3, -4, 1, 2])
    }

    @Test func badInputsThrow() {
        let (cos, sin) = Self.caches(positions: 4, rotaryDim: 4)
        let x = Tensor(zeros: .float32, shape: [1, 2, 3, 4])
        let ids = { (v: [Int64]) in Tensor(v, shape: [1, 3]) }
        #expect(throws: KernelError.self) { try H.run1("RotaryEmbedding", [x, cos, sin, ids([0, 1, 4])]) }      // past the cache
        #expect(throws: KernelError.self) { try H.run1("RotaryEmbedding", [x, cos, sin, ids([0, -1, 2])]) }     // negative
        #expect(throws: KernelError.self) { try H.run1("RotaryEmbedding", [x, cos, sin, Tensor([Int64(0), 1], shape: [1, 2])]) }
        #expect(throws: KernelError.self) { try H.run1("RotaryEmbedding", [x, cos, sin]) }                       // 2-D caches need ids
        #expect(throws: KernelError.self) { try H.run1("RotaryEmbedding", [Tensor(zeros: .float32, shape: [1, 3, 8]), cos, sin, ids([0, 1, 2])]) }
        #expect(throws: KernelError.self) {
            try H.run1("RotaryEmbedding", [x, cos, sin, ids([0, 1, 2])], ["rotary_embedding_dim": .int(3)])
        }
        #expect(throws: KernelError.self) {
            try H.run1("RotaryEmbedding", [x, cos, sin, ids([0, 1, 2])], ["rotary_embedding_dim": .int(6)])
        }
        #expect(throws: KernelError.self) { try H.run1("RotaryEmbedding", [Tensor(zeros: .float32, shape: [3, 4]), cos, sin]) }
    }
}
