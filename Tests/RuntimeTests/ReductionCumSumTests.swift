import Graph
import Testing
import TensorCore
@testable import Runtime

private typealias H = ElementwiseHarness

/// CumSum with exclusive and reverse, on every axis. Exact.
@Suite("CumSum")
struct ReductionCumSumTests {
    @Test func inclusiveExclusiveReverse() throws {
        let x = H.i64([1, 2, 3, 4])
        let axis = Tensor(scalar: Int64(0))
        #expect(try H.run("CumSum", [x, axis], opset: 14).array(Int64.self) == [1, 3, 6, 10])
        #expect(try H.run("CumSum", [x, axis], opset: 14, ["exclusive": .int(1)]).array(Int64.self) == [0, 1, 3, 6])
        #expect(try H.run("CumSum", [x, axis], opset: 14, ["reverse": .int(1)]).array(Int64.self) == [10, 9, 7, 4])
        #expect(try H.run("CumSum", [x, axis], opset: 14, ["exclusive": .int(1), "reverse": .int(1)]).array(Int64.self) == [9, 7, 4, 0])
    }

    @Test func alongEachAxis() throws {
        let x = H.arange([2, 3])  // [[0,1,2],[3,4,5]]
        let rows = try H.run("CumSum", [x, Tensor(scalar: Int64(1))], opset: 11)
        #expect(rows.shape == [2, 3] && rows.array(Float.self) == [0, 1, 3, 3, 7, 12])
        let columns = try H.run("CumSum", [x, Tensor(scalar: Int32(0))], opset: 14)
        #expect(columns.array(Float.self) == [0, 1, 2, 3, 5, 7])
        let negative = try H.run("CumSum", [x, H.i64([-1])], opset: 14, ["exclusive": .int(1), "reverse": .int(1)])
        #expect(negative.array(Float.self) == [3, 2, 0, 9, 5, 0])
        let middle = try H.run("CumSum", [H.arange([2, 2, 2]), Tensor(scalar: Int64(1))], opset: 14, ["reverse": .int(1)])
        #expect(middle.array(Float.self) == [2, 4, 2, 3, 10, 12, 6, 7])
    }

    @Test func positionIdsFromAttentionMask() throws {
        let mask = H.i64([1, 1, 1, 1, 1, 0, 0, 1, 1, 1], [2, 5])
        let y = try H.run("CumSum", [mask, Tensor(scalar: Int64(1))], opset: 14)
        #expect(y.array(Int64.self) == [1, 2, 3, 4, 5, 0, 0, 1, 2, 3])
    }

    @Test func typesEmptyAndErrors() throws {
        #expect(try H.run("CumSum", [H.i32([Int32.max, 1]), Tensor(scalar: Int64(0))], opset: 14).array(Int32.self) == [Int32.max, Int32.min])
        #expect(try H.run("CumSum", [H.f64([0.5, 0.25]), Tensor(scalar: Int64(0))], opset: 14).array(Double.self) == [0.5, 0.75])
        #expect(try H.run("CumSum", [H.f16([1, 2]), Tensor(scalar: Int64(0))], opset: 14).array(Float16.self) == [1, 3])
        #expect(try H.run("CumSum", [Tensor(zeros: .float32, shape: [0, 3]), Tensor(scalar: Int64(0))], opset: 14).shape == [0, 3])
        #expect(try H.run("CumSum", [Tensor(zeros: .float32, shape: [2, 0]), Tensor(scalar: Int64(0))], opset: 14).shape == [2, 0])
        #expect(throws: KernelError.self) { try H.run("CumSum", [H.f32([1]), Tensor(scalar: Int64(1))], opset: 14) }
        #expect(throws: KernelError.self) { try H.run("CumSum", [H.f32([1]), H.i64([0, 0])], opset: 14) }
        #expect(throws: KernelError.self) { try H.run("CumSum", [H.f32([1]), Tensor(scalar: Float(0))], opset: 14) }
        #expect(throws: KernelError.self) { try H.run("CumSum", [H.f32([1])], opset: 14) }
        #expect(throws: KernelError.self) { try H.run("CumSum", [H.bools([true]), Tensor(scalar: Int64(0))], opset: 14) }
    }
}
