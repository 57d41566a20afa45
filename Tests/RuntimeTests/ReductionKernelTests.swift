import Graph
import Testing
import TensorCore
import TestSupport
@testable import Runtime

private typealias H = ElementwiseHarness

/// Reduce{Sum,Mean,Max,Min}: axes as attribute vs input by opset, keepdims, noop_with_empty_axes,
/// negative and duplicate axes, empty reductions; and the grouped loop against a naive twin.
@Suite("Reductions")
struct ReductionKernelTests {
    /// [2,3,4] holding 0…23.
    let x = H.arange([2, 3, 4])

    @Test func axesAttributeBeforeTheInputOpset() throws {
        let sum = try H.run("ReduceSum", [x], opset: 11, ["axes": .ints([1]), "keepdims": .int(0)])
        #expect(sum.shape == [2, 4] && sum.array(Float.self) == [12, 15, 18, 21, 48, 51, 54, 57])
        let mean = try H.run("ReduceMean", [x], opset: 13, ["axes": .ints([-1])])
        #expect(mean.shape == [2, 3, 1] && mean.array(Float.self) == [1.5, 5.5, 9.5, 13.5, 17.5, 21.5])
        let multi = try H.run("ReduceMean", [x], opset: 13, ["axes": .ints([0, 2]), "keepdims": .int(0)])
        #expect(multi.shape == [3] && multi.array(Float.self) == [7.5, 11.5, 15.5])
        let all = try H.run("ReduceMax", [x], opset: 17)
        #expect(all.shape == [1, 1, 1] && all.array(Float.self) == [23])
        let min = try H.run("ReduceMin", [x], opset: 13, ["axes": .ints([0]), "keepdims": .int(0)])
        #expect(min.shape == [3, 4] && min.array(Float.self) == Array((0..<12).map(Float.init)))
    }

    @Test func axesInputFromOpset13ForSumAnd18ForOthers() throws {
        let sum = try H.run("ReduceSum", [x, H.i64([-1])], opset: 13)
        #expect(sum.shape == [2, 3, 1] && sum.array(Float.self) == [6, 22, 38, 54, 70, 86])
        let mean = try H.run("ReduceMean", [x, H.i64([-1, -3])], opset: 18, ["keepdims": .int(0)])
        #expect(mean.shape == [3] && mean.array(Float.self) == [7.5, 11.5, 15.5])
        let max = try H.run("ReduceMax", [x, H.i64([0, 1])], opset: 18, ["keepdims": .int(0)])
        #expect(max.shape == [4] && max.array(Float.self) == [20, 21, 22, 23])
        // No axes input: reduce everything.
        let all = try H.run("ReduceMean", [x], opset: 18, ["keepdims": .int(0)])
        #expect(all.shape == [] && all.array(Float.self) == [11.5])
        // An empty axes tensor is "no axes" too.
        let emptyAxes = try H.run("ReduceSum", [x, H.i64([])], opset: 13)
        #expect(emptyAxes.shape == [1, 1, 1] && emptyAxes.array(Float.self) == [276])
        // The attribute is ignored once axes is an input.
        let ignored = try H.run("ReduceSum", [x], opset: 13, ["axes": .ints([0]), "keepdims": .int(0)])
        #expect(ignored.shape == [] && ignored.array(Float.self) == [276])
    }

    @Test func noopWithEmptyAxesIsIdentity() throws {
        for (op, opset) in [("ReduceSum", 13), ("ReduceMean", 18), ("ReduceMax", 18), ("ReduceMin", 20)] {
            let y = try H.run(op, [x], opset: opset, ["noop_with_empty_axes": .int(1)])
            #expect(y.shape == x.shape && y.array(Float.self) == x.array(Float.self), "\(op)")
            let z = try H.run(op, [x, H.i64([])], opset: opset, ["noop_with_empty_axes": .int(1)])
            #expect(z.shape == x.shape, "\(op)")
        }
        // With axes given, noop has no effect.
        let y = try H.run("ReduceSum", [x, H.i64([2])], opset: 13, ["noop_with_empty_axes": .int(1), "keepdims": .int(0)])
        #expect(y.shape == [2, 3])
    }

    @Test func badAxesThrow() {
        #expect(throws: KernelError.self) { try H.run("ReduceSum", [x, H.i64([1, -2])], opset: 13) }
        #expect(throws: KernelError.self) { try H.run("ReduceMean", [x], opset: 13, ["axes": .ints([0, 0])]) }
        #expect(throws: KernelError.self) { try H.run("ReduceMean", [x], opset: 13, ["axes": .ints([3])]) }
        #expect(throws: KernelError.self) { try H.run("ReduceMax", [x, H.i64([-4])], opset: 18) }
        #expect(throws: KernelError.self) { try H.run("ReduceMax", [x, H.f32([0])], opset: 18) }
        #expect(throws: KernelError.self) { try H.run("ReduceSum", [H.bools([true])], opset: 13) }
    }

    @Test func emptyReductions() throws {
        let empty = Tensor(zeros: .float32, shape: [0, 3])
        let sum = try H.run("ReduceSum", [empty, H.i64([0])], opset: 13)
        #expect(sum.shape == [1, 3] && sum.array(Float.self) == [0, 0, 0])
        let mean = try H.run("ReduceMean", [empty, H.i64([0])], opset: 18, ["keepdims": .int(0)])
        #expect(mean.shape == [3] && mean.array(Float.self).allSatisfy(\.isNaN))
        let max = try H.run("ReduceMax", [empty, H.i64([0])], opset: 18)
        #expect(max.array(Float.self) == [-.infinity, -.infinity, -.infinity])
        let min = try H.run("ReduceMin", [empty], opset: 18, ["keepdims": .int(0)])
        #expect(min.shape == [] && min.array(Float.self) == [.infinity])
        let intMax = try H.run("ReduceMax", [Tensor(zeros: .int64, shape: [2, 0]), H.i64([1])], opset: 18)
        #expect(intMax.shape == [2, 1] && intMax.array(Int64.self) == [Int64.min, Int64.min])
        // Reducing the non-empty axis of an empty tensor gives an empty result.
        let kept = try H.run("ReduceSum", [empty, H.i64([1])], opset: 13)
        #expect(kept.shape == [0, 1])
        #expect(throws: KernelError.self) {
            try H.run("ReduceMean", [Tensor(zeros: .int64, shape: [0]), H.i64([0])], opset: 18)
        }
    }

    @Test func integerBoolAndHalfReductions() throws {
        let ints = H.i64([1, -2, 3, 4, Int64.max, 1], [2, 3])
        let sum = try H.run("ReduceSum", [ints, H.i64([1])], opset: 13, ["keepdims": .int(0)])
        #expect(sum.array(Int64.self) == [2, Int64.min &+ 4])  // wraps
        #expect(try H.run("ReduceMean", [H.i32([1, 2, -7], [1, 3]), H.i64([1])], opset: 18).array(Int32.self) == [-1])
        #expect(try H.run("ReduceMax", [ints, H.i64([0])], opset: 18, ["keepdims": .int(0)]).array(Int64.self) == [4, Int64.max, 3])
        let flags = H.bools([true, false, false, false], [2, 2])
        #expect(try H.run("ReduceMax", [flags, H.i64([1])], opset: 20).array(Bool.self) == [true, false])
        #expect(try H.run("ReduceMin", [flags, H.i64([0])], opset: 20).array(Bool.self) == [false, false])
        let half = try H.run("ReduceMean", [H.f16([1, 2, 3, 4], [2, 2]), H.i64([1])], opset: 18)
        #expect(half.dtype == .float16 && half.array(Float16.self) == [1.5, 3.5])
    }

    @Test func maxAndMinPropagateNaN() throws {
        let x = H.f32([1, .nan, 3, 4], [2, 2])
        let max = try H.run("ReduceMax", [x, H.i64([1])], opset: 18).array(Float.self)
        #expect(max[0].isNaN && max[1] == 4)
        let min = try H.run("ReduceMin", [x, H.i64([0])], opset: 18).array(Float.self)
        #expect(min[0] == 1 && min[1].isNaN)
    }

    /// Sum every element into its output slot with the plain multi-index loop.
    private func naiveSum(_ x: Tensor, _ mask: [Bool]) -> [Double] {
        let keptShape = zip(x.shape, mask).filter { !$1 }.map(\.0)
        var out = [Double](repeating: 0, count: Tensor.elementCount(keptShape))
        let values = x.doubles()
        let keptStrides = Tensor.strides(of: keptShape)
        var index = [Int](repeating: 0, count: x.rank)
        for flat in 0..<x.count {
            var o = 0, k = 0
            for axis in 0..<x.rank where !mask[axis] { o += index[axis] * keptStrides[k]; k += 1 }
            out[o] += values[flat]
            var axis = x.rank - 1
            while axis >= 0 { index[axis] += 1; if index[axis] < x.shape[axis] { break }; index[axis] = 0; axis -= 1 }
        }
        return out
    }

    @Test func groupedLoopMatchesNaiveTwin() throws {
        let shapes: [[Int]] = [[7], [3, 5], [2, 3, 4], [1, 5, 1, 3], [2, 1, 3, 1, 2], [4, 0, 3], [3, 7, 1, 5], [2, 3, 2, 3, 2]]
        for (index, shape) in shapes.enumerated() {
            let x = H.random(shape, seed: UInt64(index + 11))
            for maskBits in 0..<(1 << shape.count) {
                let mask = (0..<shape.count).map { maskBits & (1 << $0) != 0 }
                let axes = (0..<shape.count).filter { mask[$0] }
                guard !axes.isEmpty else { continue }
                let y = try H.run("ReduceSum", [x, H.i64(axes.map { Int64($0) })], opset: 13, ["keepdims": .int(0)])
                let expected = naiveSum(x, mask)
                let report = closeness(y, H.f64(expected, y.shape), atol: 1e-5, rtol: 1e-5)
                #expect(report.isClose, "\(shape) axes \(axes): \(report)")
            }
        }
    }
}
