import Foundation
import Graph
import Testing
import TensorCore
import TestSupport
@testable import Runtime

private typealias H = ElementwiseHarness

/// The fast broadcast loops (contiguous runs after merging axes) against their reference twin
/// (one element at a time), on swept and odd shapes. Same operations in the same order, so the
/// results must agree bit for bit (NaN matching NaN).
@Suite("Elementwise fast path vs reference")
struct ElementwiseBroadcastTests {
    /// Shape pairs covering: same shape, scalar either side, rank-0, row, column, outer product,
    /// middle-axis broadcast, leading axes missing, size-1 axes everywhere, odd and prime
    /// extents, and empty outputs.
    static let shapePairs: [([Int], [Int])] = [
        ([7], [7]), ([3, 5], [3, 5]), ([2, 3, 4], [2, 3, 4]),
        ([5], [1]), ([1], [5]), ([], [4, 3]), ([4, 3], []), ([], []),
        ([4, 3], [3]), ([3], [4, 3]), ([4, 3], [4, 1]), ([4, 1], [4, 3]),
        ([4, 1], [1, 3]), ([1, 3], [4, 1]), ([2, 3, 4], [3, 1]), ([2, 3, 4], [2, 1, 4]),
        ([2, 1, 4], [1, 3, 1]), ([2, 3, 4, 5], [3, 1, 5]), ([1, 1, 5, 7], [3, 1, 1, 7]),
        ([2, 9, 5, 7], [2, 1, 5, 7]), ([2, 9, 5, 7], [2, 9, 5, 1]), ([1, 2, 1, 3, 1], [2, 1, 5, 1, 4]),
        ([17, 1], [1, 1031]), ([1, 1031], [17, 1]), ([3, 1, 1, 1], [1, 2, 1, 2]),
        ([0, 3], [3]), ([2, 0], [1, 1]), ([0], []), ([1, 0, 2], [3, 1, 1]),
    ]

    /// Random broadcast-compatible pairs of rank 0…5 with extents from {0, 1, 2, 3, 5, 8}.
    static func sweptPairs(count: Int) -> [([Int], [Int])] {
        var state: UInt64 = 0x9E3779B97F4A7C15
        func next(_ bound: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int(state >> 33) % bound
        }
        let extents = [1, 2, 3, 5, 8, 0]
        return (0..<count).map { _ in
            let rank = next(6)
            let target = (0..<rank).map { _ in extents[next(next(8) == 0 ? 6 : 5)] }
            func operand() -> [Int] {
                let dropped = rank == 0 ? 0 : next(rank + 1)
                return target.dropFirst(dropped).map { next(3) == 0 ? 1 : $0 }
            }
            return (operand(), operand())
        }
    }

    static let allPairs = shapePairs + sweptPairs(count: 300)

    @Test func fastPathMatchesReferenceForEveryFloatOp() throws {
        var checked = 0
        for (index, (shapeA, shapeB)) in Self.allPairs.enumerated() {
            let a = H.random(shapeA, seed: UInt64(2 * index + 1), lo: 0.1, hi: 3)
            let b = H.random(shapeB, seed: UInt64(2 * index + 2), lo: -3, hi: 3)
            let ops: [(String, (Float, Float) -> Float)] = [
                ("add", { $0 + $1 }), ("sub", { $0 - $1 }), ("mul", { $0 * $1 }), ("div", { $0 / $1 }),
                ("pow", { powf($0, $1) }),
            ]
            for (name, f) in ops {
                let fast = try ElementwiseLoops.binary(a, b, Float.self, Float.self, f)
                let reference = try ElementwiseLoops.binaryReference(a, b, Float.self, Float.self, f)
                #expect(fast.shape == reference.shape, "\(name) \(shapeA) \(shapeB)")
                #expect(H.same(fast.doubles(), reference.doubles()), "\(name) \(shapeA) \(shapeB)")
            }
            checked += 1
        }
        #expect(checked == Self.allPairs.count)
    }

    @Test func registeredKernelsMatchReference() throws {
        for (index, (shapeA, shapeB)) in Self.allPairs.enumerated() {
            let a = H.random(shapeA, seed: UInt64(index + 1000))
            let b = H.random(shapeB, seed: UInt64(index + 5000))
            let cases: [(String, (Float, Float) -> Float)] = [
                ("Add", { $0 + $1 }), ("Sub", { $0 - $1 }), ("Mul", { $0 * $1 }), ("Div", { $0 / $1 }),
                ("Max", { Swift.max($0, $1) }), ("Min", { Swift.min($0, $1) }),
            ]
            for (op, f) in cases {
                let fast = try H.run(op, [a, b])
                let reference = try ElementwiseLoops.binaryReference(a, b, Float.self, Float.self, f)
                #expect(fast.shape == reference.shape && H.same(fast.doubles(), reference.doubles()),
                        "\(op) \(shapeA) \(shapeB)")
            }
            let greater = try H.run("Greater", [a, b])
            let greaterReference = try ElementwiseLoops.binaryReference(a, b, Float.self, Bool.self) { $0 > $1 }
            #expect(greater.array(Bool.self) == greaterReference.array(Bool.self), "Greater \(shapeA) \(shapeB)")
        }
    }

    @Test func integerFastPathMatchesReference() throws {
        for (index, (shapeA, shapeB)) in Self.allPairs.enumerated() {
            let a = Tensor(H.random(shapeA, seed: UInt64(index + 7)).array(Float.self).map { Int64($0 * 1000) }, shape: shapeA)
            let b = Tensor(H.random(shapeB, seed: UInt64(index + 9)).array(Float.self).map { Int64($0 * 1000) }, shape: shapeB)
            let fast = try H.run("Sub", [a, b])
            let reference = try ElementwiseLoops.binaryReference(a, b, Int64.self, Int64.self) { $0 &- $1 }
            #expect(fast.shape == reference.shape && fast.array(Int64.self) == reference.array(Int64.self))
        }
    }

    @Test func whereMatchesPerElementSelection() throws {
        let triples: [([Int], [Int], [Int])] = [
            ([2, 1, 4], [3, 1], [4]), ([5], [5], [5]), ([], [2, 3], [3]), ([1, 1, 7], [2, 1, 1], [1, 3, 7]),
            ([4, 1], [1], [1, 6]), ([0, 2], [2], []), ([3, 1, 2], [1, 4, 1], [3, 4, 2]),
        ] + Self.sweptPairs(count: 100).enumerated().map { i, pair in (pair.0, pair.1, i % 2 == 0 ? pair.0 : []) }
        for (index, (shapeC, shapeX, shapeY)) in triples.enumerated() {
            let c = Tensor(H.random(shapeC, seed: UInt64(index + 3)).array(Float.self).map { $0 > 0 }, shape: shapeC)
            let x = H.random(shapeX, seed: UInt64(index + 4)), y = H.random(shapeY, seed: UInt64(index + 5))
            guard let shape = try? Broadcast.shape([shapeC, shapeX, shapeY]) else { continue }
            let z = try H.run("Where", [c, x, y])
            let pc = c.array(Bool.self), px = x.array(Float.self), py = y.array(Float.self)
            var expected = [Float](repeating: 0, count: Tensor.elementCount(shape))
            Broadcast.forEach(target: shape, sources: [shapeC, shapeX, shapeY]) { i, s in
                expected[i] = pc[s[0]] ? px[s[1]] : py[s[2]]
            }
            #expect(z.shape == shape && z.array(Float.self) == expected, "Where \(shapeC) \(shapeX) \(shapeY)")
        }
    }

    @Test func runsMergeAxesAsExpected() {
        // [b,h,s,t] + [b,1,s,t]: b·h runs of s·t.
        let mask = BroadcastRuns(target: [2, 4, 3, 5], sources: [[2, 4, 3, 5], [2, 1, 3, 5]])
        #expect(mask.runLength == 15 && mask.runCount == 8 && mask.runSteps == [1, 1])
        // RMSNorm-style [n, d] * [n, 1]: runs of d with the scale held.
        let column = BroadcastRuns(target: [6, 576], sources: [[6, 576], [6, 1]])
        #expect(column.runLength == 576 && column.runCount == 6 && column.runSteps == [1, 0])
        let scalar = BroadcastRuns(target: [], sources: [[], []])
        #expect(scalar.runLength == 1 && scalar.runCount == 1)
        let empty = BroadcastRuns(target: [3, 0], sources: [[3, 1], [0]])
        #expect(empty.runCount == 0)
    }
}
