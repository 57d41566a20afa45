import Testing
import TensorCore
@testable import Runtime

@Suite("SliceKernels: Slice bounds, steps, opsets, and the reference twin")
struct SliceKernelTests {
    typealias H = ShapeHarness
    static let int64Max = Int(Int64.max), int64Min = Int(Int64.min)

    /// Slice through opset-10+ inputs (int64).
    func slice(_ x: Tensor, _ starts: [Int], _ ends: [Int], _ axes: [Int]? = nil, _ steps: [Int]? = nil) throws -> Tensor {
        var inputs: [Tensor?] = [x, H.i64(starts), H.i64(ends)]
        if axes != nil || steps != nil { inputs.append(axes.map { H.i64($0) }) }
        if let steps { inputs.append(H.i64(steps)) }
        return try H.run1("Slice", inputs, opset: 13)
    }

    // x = arange [4, 6]: row r holds 6r … 6r+5.
    let x = ShapeHarness.arange([4, 6])

    @Test func opset9Attributes() throws {
        let y = try H.run1("Slice", [x], opset: 9, ["starts": .ints([1, 2]), "ends": .ints([3, 5])])
        #expect(y.shape == [2, 3] && y.array(Float.self) == [8, 9, 10, 14, 15, 16])
        let z = try H.run1("Slice", [x], opset: 9, ["starts": .ints([-3]), "ends": .ints([Self.int64Max]), "axes": .ints([1])])
        #expect(z.shape == [4, 3] && z.array(Float.self) == [3, 4, 5, 9, 10, 11, 15, 16, 17, 21, 22, 23])
        #expect(throws: KernelError.self) { try H.run1("Slice", [x], opset: 9, ["starts": .ints([1])]) }
    }

    @Test func opset10InputsWithSteps() throws {
        let y = try H.run1("Slice", [x, H.i64([1]), H.i64([4]), H.i64([1]), H.i64([2])], opset: 10)
        #expect(y.shape == [4, 2] && y.array(Float.self) == [1, 3, 7, 9, 13, 15, 19, 21])
        let i32 = try H.run1("Slice", [x, H.i32([1]), H.i32([4]), H.i32([1]), H.i32([2])], opset: 13)
        #expect(i32.array(Float.self) == y.array(Float.self))
    }

    @Test func omittedAxesAndNegativeBounds() throws {
        let y = try slice(x, [1, 0], [3, 2])
        #expect(y.shape == [2, 2] && y.array(Float.self) == [6, 7, 12, 13])
        let z = try slice(x, [-3, -4], [-1, -1], [0, 1])
        #expect(z.shape == [2, 3] && z.array(Float.self) == [8, 9, 10, 14, 15, 16])
        let n = try slice(x, [0], [6], [-1], [3])
        #expect(n.shape == [4, 2] && n.array(Float.self) == [0, 3, 6, 9, 12, 15, 18, 21])
    }

    @Test func exporterSentinels() throws {
        let toEnd = try slice(x, [2], [Self.int64Max], [1])
        #expect(toEnd.shape == [4, 4] && Array(toEnd.array(Float.self).prefix(4)) == [2, 3, 4, 5])
        let reversed = try slice(x, [-1], [Self.int64Min], [1], [-1])
        #expect(reversed.shape == [4, 6] && Array(reversed.array(Float.self).prefix(6)) == [5, 4, 3, 2, 1, 0])
        let rows = try slice(x, [Self.int64Max], [Self.int64Min], [0], [-1])
        #expect(rows.shape == [4, 6] && rows.array(Float.self)[0] == 18)
        let big = try slice(x, [0], [Self.int64Max], [1], [Self.int64Max])
        #expect(big.shape == [4, 1] && big.array(Float.self) == [0, 6, 12, 18])
        let bigBack = try slice(x, [-1], [Self.int64Min], [1], [Self.int64Min])
        #expect(bigBack.shape == [4, 1] && bigBack.array(Float.self) == [5, 11, 17, 23])
        let negStart = try slice(x, [Self.int64Min], [Self.int64Max], [0])
        #expect(negStart.shape == [4, 6])
    }

    @Test func negativeStepClamping() throws {
        let y = try slice(x, [10], [-10], [1], [-2])
        #expect(y.shape == [4, 3] && Array(y.array(Float.self).prefix(3)) == [5, 3, 1])
        // Spec: a negative-step start below 0 clamps to 0 (one element), not to -1.
        let z = try slice(x, [-100], [Self.int64Min], [1], [-1])
        #expect(z.shape == [4, 1] && z.array(Float.self) == [0, 6, 12, 18])
        let empty = try slice(x, [0], [0], [1], [-1])
        #expect(empty.shape == [4, 0])
    }

    @Test func clampingAndEmptyResults() throws {
        let y = try slice(x, [-100, 2], [100, 1000], [0, 1])
        #expect(y.shape == [4, 4])
        #expect(try slice(x, [3], [1], [0]).shape == [0, 6])
        let e = try slice(Tensor(zeros: .float32, shape: [0, 6]), [1], [4], [1])
        #expect(e.shape == [0, 3])
        let r = try slice(Tensor(zeros: .float32, shape: [3, 0]), [-1], [Self.int64Min], [1], [-1])
        #expect(r.shape == [3, 0])
    }

    @Test func wholeSliceIsZeroCopy() throws {
        let y = try slice(x, [0], [Self.int64Max], [0])
        #expect(y.storage === x.storage && y.shape == x.shape)
    }

    @Test func ropeHalfOn4D() throws {
        let t = H.arange([1, 2, 3, 8])
        let y = try slice(t, [4], [Self.int64Max], [3], [1])
        #expect(y.shape == [1, 2, 3, 4])
        #expect(Array(y.array(Float.self).prefix(8)) == [4, 5, 6, 7, 12, 13, 14, 15])
    }

    @Test func errors() {
        #expect(throws: KernelError.self) { try slice(x, [0], [1], [0], [0]) }
        #expect(throws: KernelError.self) { try slice(x, [0, 0], [1], [0]) }
        #expect(throws: KernelError.self) { try slice(x, [0, 0], [1, 1], [0, 0]) }
        #expect(throws: KernelError.self) { try slice(x, [0], [1], [2]) }
        #expect(throws: KernelError.self) { try slice(x, [0], [1], [0], [1, 1]) }
        #expect(throws: KernelError.self) { try H.run1("Slice", [x, H.f32([0]), H.i64([1])], opset: 13) }
    }

    // MARK: Reference twin

    /// Per-axis element lists written straight from the spec's wording, then index-by-index copy.
    static func reference(_ input: Tensor, starts: [Int], ends: [Int], axes: [Int], steps: [Int]) -> Tensor {
        var picks = input.shape.map { Array(0..<$0) }
        for (i, rawAxis) in axes.enumerated() {
            let axis = rawAxis < 0 ? rawAxis + input.rank : rawAxis
            let dim = input.shape[axis], step = steps[i]
            var start = starts[i] < 0 ? starts[i] + dim : starts[i]
            var end = ends[i] < 0 ? ends[i] + dim : ends[i]
            if step > 0 {
                start = min(max(start, 0), dim); end = min(max(end, 0), dim)
            } else {
                start = min(max(start, 0), dim - 1); end = min(max(end, -1), dim - 1)
            }
            var list: [Int] = []
            var index = start
            while step > 0 ? index < end : index > end {
                list.append(index)
                let (next, overflow) = index.addingReportingOverflow(step)
                if overflow { break }
                index = next
            }
            picks[axis] = list
        }
        let shape = picks.map(\.count)
        let result = Tensor(zeros: input.dtype, shape: shape)
        let size = input.dtype.size, inStrides = input.strides
        for flat in 0..<result.count {
            var rem = flat, source = 0
            for axis in stride(from: shape.count - 1, through: 0, by: -1) {
                source += picks[axis][rem % shape[axis]] * inStrides[axis]
                rem /= shape[axis]
            }
            (result.raw + flat * size).copyMemory(from: input.raw + source * size, byteCount: size)
        }
        return result
    }

    @Test func matchesReferenceOnSweptShapes() throws {
        var rng = ShapeSweepRandom(seed: 7)
        let shapes: [[Int]] = [[7], [3, 5], [1, 4, 1], [2, 3, 5], [4, 1, 3, 7], [2, 3, 2, 3, 2], [5, 0, 3], [1, 2, 3, 8]]
        let bounds = [0, 1, 2, 3, -1, -2, -5, 100, -100, Self.int64Max, Self.int64Min]
        let stepChoices = [1, 1, 1, 2, 3, -1, -2, -3, Self.int64Max, Self.int64Min]
        var cases = 0
        for dtype in [DType.float32, .int64, .float16, .uint8] {
            for shape in shapes {
                let input = H.arange(dtype, shape)
                for _ in 0..<40 {
                    let n = Int(rng.next() % UInt64(shape.count)) + 1
                    var axes = Array(0..<shape.count)
                    for i in axes.indices.reversed() { axes.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
                    axes = Array(axes.prefix(n)).map { rng.next() % 2 == 0 ? $0 - shape.count : $0 }
                    let starts = (0..<n).map { _ in bounds[Int(rng.next() % UInt64(bounds.count))] }
                    let ends = (0..<n).map { _ in bounds[Int(rng.next() % UInt64(bounds.count))] }
                    let steps = (0..<n).map { _ in stepChoices[Int(rng.next() % UInt64(stepChoices.count))] }
                    let actual = try slice(input, starts, ends, axes, steps)
                    let expected = Self.reference(input, starts: starts, ends: ends, axes: axes, steps: steps)
                    #expect(actual.shape == expected.shape, "\(shape) starts \(starts) ends \(ends) axes \(axes) steps \(steps)")
                    #expect(H.bytes(actual) == H.bytes(expected), "\(dtype) \(shape) starts \(starts) ends \(ends) axes \(axes) steps \(steps)")
                    cases += 1
                }
            }
        }
        #expect(cases == 4 * 8 * 40)
    }
}

/// A tiny deterministic generator for swept tests.
struct ShapeSweepRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
