import Testing
import TensorCore
@testable import Runtime

@Suite("TransposeKernels: Transpose and its reference twin")
struct TransposeKernelTests {
    typealias H = ShapeHarness

    @Test func defaultReversesAxes() throws {
        let y = try H.run1("Transpose", [H.arange([2, 3, 4])])
        #expect(y.shape == [4, 3, 2])
        // y[k][j][i] = x[i][j][k] = 12i + 4j + k
        #expect(Array(y.array(Float.self).prefix(6)) == [0, 12, 4, 16, 8, 20])
    }

    @Test func explicit2D() throws {
        let y = try H.run1("Transpose", [H.arange([2, 3])], ["perm": .ints([1, 0])])
        #expect(y.shape == [3, 2] && y.array(Float.self) == [0, 3, 1, 4, 2, 5])
        let i = try H.run1("Transpose", [H.i64([1, 2, 3, 4, 5, 6], [2, 3])], ["perm": .ints([1, 0])])
        #expect(i.array(Int64.self) == [1, 4, 2, 5, 3, 6])
    }

    @Test func attentionHeadsPermutation() throws {
        // [batch 1, seq 2, heads 2, dim 2] → [1, heads, seq, dim]
        let y = try H.run1("Transpose", [H.arange([1, 2, 2, 2])], ["perm": .ints([0, 2, 1, 3])])
        #expect(y.shape == [1, 2, 2, 2] && y.array(Float.self) == [0, 1, 4, 5, 2, 3, 6, 7])
    }

    @Test func keyTransposePermutation() throws {
        let y = try H.run1("Transpose", [H.arange([1, 1, 2, 3])], ["perm": .ints([0, 1, 3, 2])])
        #expect(y.shape == [1, 1, 3, 2] && y.array(Float.self) == [0, 3, 1, 4, 2, 5])
    }

    @Test func movingOnlyUnitAxesIsZeroCopy() throws {
        let x = H.arange([1, 3, 1, 4])
        let y = try H.run1("Transpose", [x], ["perm": .ints([2, 1, 0, 3])])
        #expect(y.shape == [1, 3, 1, 4] && y.storage === x.storage)
        let z = try H.run1("Transpose", [x], ["perm": .ints([1, 0, 3, 2])])
        #expect(z.shape == [3, 1, 4, 1] && z.array(Float.self) == x.array(Float.self))
    }

    @Test func emptyAndScalar() throws {
        let e = try H.run1("Transpose", [Tensor(zeros: .float32, shape: [0, 3])], ["perm": .ints([1, 0])])
        #expect(e.shape == [3, 0])
        let s = try H.run1("Transpose", [Tensor(scalar: Float(4))])
        #expect(s.shape == [] && s.array(Float.self) == [4])
    }

    @Test func badPermThrows() {
        let x = H.arange([2, 3])
        #expect(throws: KernelError.self) { try H.run1("Transpose", [x], ["perm": .ints([0])]) }
        #expect(throws: KernelError.self) { try H.run1("Transpose", [x], ["perm": .ints([0, 0])]) }
        #expect(throws: KernelError.self) { try H.run1("Transpose", [x], ["perm": .ints([0, 2])]) }
    }

    // MARK: Reference twin

    /// out[p] = in[q] with q[perm[i]] = p[i], one element at a time.
    static func reference(_ input: Tensor, _ perm: [Int]) -> Tensor {
        let shape = perm.map { input.shape[$0] }
        let result = Tensor(zeros: input.dtype, shape: shape)
        let size = input.dtype.size, inStrides = input.strides
        for flat in 0..<result.count {
            var rem = flat, source = 0
            for axis in stride(from: shape.count - 1, through: 0, by: -1) {
                source += (rem % shape[axis]) * inStrides[perm[axis]]
                rem /= shape[axis]
            }
            (result.raw + flat * size).copyMemory(from: input.raw + source * size, byteCount: size)
        }
        return result
    }

    static func permutations(_ n: Int) -> [[Int]] {
        if n == 0 { return [[]] }
        return permutations(n - 1).flatMap { p in (0...p.count).map { i in var q = p; q.insert(n - 1, at: i); return q } }
    }

    @Test func matchesReferenceForEveryPermutationOnOddShapes() throws {
        let shapes: [[Int]] = [[5], [3, 7], [1, 5], [2, 3, 5], [3, 1, 4], [2, 3, 4, 5], [1, 3, 7, 2], [3, 2, 1, 5],
                               [2, 1, 3, 2, 3], [2, 0, 3]]
        var checked = 0
        for dtype in [DType.float32, .int64, .bfloat16, .bool] {
            for shape in shapes {
                let input = H.arange(dtype, shape)
                for perm in Self.permutations(shape.count) {
                    let actual = try H.run1("Transpose", [input], ["perm": .ints(perm)])
                    let expected = Self.reference(input, perm)
                    #expect(actual.shape == expected.shape)
                    #expect(H.bytes(actual) == H.bytes(expected), "\(dtype) \(shape) perm \(perm)")
                    checked += 1
                }
            }
        }
        #expect(checked > 500)
    }

    /// Shapes long enough (≥ 16 on both moved axes) to take the tiled path, with ragged tiles.
    @Test func matchesReferenceOnTiledShapes() throws {
        let cases: [([Int], [Int])] = [
            ([17, 33], [1, 0]), ([16, 16], [1, 0]), ([1, 3, 40, 64], [0, 1, 3, 2]), ([2, 19, 3, 18], [0, 2, 3, 1]),
            ([2, 19, 3, 18], [3, 1, 0, 2]), ([20, 2, 21], [2, 1, 0]), ([5, 31, 17], [0, 2, 1]), ([33, 16, 1, 2], [3, 1, 2, 0]),
        ]
        for dtype in [DType.float32, .int64, .float16, .int8] {
            for (shape, perm) in cases {
                let input = H.arange(dtype, shape)
                let actual = try H.run1("Transpose", [input], ["perm": .ints(perm)])
                #expect(H.bytes(actual) == H.bytes(Self.reference(input, perm)), "\(dtype) \(shape) perm \(perm)")
            }
        }
    }

    /// Copies large enough to run in chunks over the pool (≥ 64 KiB), with chunk boundaries inside
    /// an outer axis, on one thread and on two.
    @Test(arguments: [1, 2])
    func matchesReferenceOnPooledShapes(threads: Int) throws {
        RuntimeThreads.setThreadCount(threads)
        defer { RuntimeThreads.setThreadCount(2) }
        let cases: [([Int], [Int])] = [
            ([1, 128, 9, 64], [0, 2, 1, 3]), ([1, 9, 130, 64], [0, 2, 1, 3]), ([3, 70, 5, 33], [2, 0, 1, 3]),
            ([2, 300, 7, 3], [1, 2, 0, 3]), ([40, 50, 30], [1, 0, 2]),
        ]
        for dtype in [DType.float32, .int8] {
            for (shape, perm) in cases {
                let input = H.arange(dtype, shape)
                let actual = try H.run1("Transpose", [input], ["perm": .ints(perm)])
                #expect(H.bytes(actual) == H.bytes(Self.reference(input, perm)), "\(dtype) \(shape) perm \(perm) threads \(threads)")
            }
        }
    }
}
