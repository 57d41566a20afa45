import Graph
import Testing
import TensorCore
@testable import Runtime

private typealias H = ElementwiseHarness

/// Comparisons, boolean logic and Where. All exact.
@Suite("Elementwise logic and Where")
struct ElementwiseLogicTests {
    @Test func comparisonsGiveBoolAndBroadcast() throws {
        let x = H.f32([1, 2, 3, 4, 5, 6], [2, 3]), y = H.f32([2, 2, 7])
        #expect(try H.run("Equal", [x, y]).array(Bool.self) == [false, true, false, false, false, false])
        #expect(try H.run("Greater", [x, y]).array(Bool.self) == [false, false, false, true, true, false])
        #expect(try H.run("Less", [x, y]).array(Bool.self) == [true, false, true, false, false, true])
        #expect(try H.run("LessOrEqual", [x, y]).array(Bool.self) == [true, true, true, false, false, true])
        let ge = try H.run("GreaterOrEqual", [x, y])
        #expect(ge.dtype == .bool && ge.shape == [2, 3] && ge.array(Bool.self) == [false, true, false, true, true, false])
    }

    @Test func comparisonsWithNaNAreFalse() throws {
        let nan = H.f32([.nan]), one = H.f32([1])
        for op in ["Equal", "Greater", "Less", "LessOrEqual", "GreaterOrEqual"] {
            #expect(try H.run(op, [nan, one]).array(Bool.self) == [false], "\(op)")
            #expect(try H.run(op, [nan, nan]).array(Bool.self) == [false], "\(op)")
        }
    }

    @Test func comparisonsOnOtherTypes() throws {
        #expect(try H.run("Equal", [H.i64([Int64.max, 0]), H.i64([Int64.max])]).array(Bool.self) == [true, false])
        #expect(try H.run("Greater", [H.i32([-1, 3]), H.i32([0])]).array(Bool.self) == [false, true])
        #expect(try H.run("Equal", [H.bools([true, false]), H.bools([true])]).array(Bool.self) == [true, false])
        #expect(try H.run("Less", [H.f16([0.5, 2]), H.f16([1])]).array(Bool.self) == [true, false])
        #expect(throws: KernelError.self) { try H.run("Greater", [H.bools([true]), H.bools([false])]) }
        #expect(throws: KernelError.self) { try H.run("Equal", [H.f32([1]), H.f64([1])]) }
        let empty = try H.run("Greater", [Tensor(zeros: .float32, shape: [0, 2]), H.f32([1, 2])])
        #expect(empty.dtype == .bool && empty.shape == [0, 2])
    }

    @Test func booleanLogic() throws {
        let a = H.bools([true, true, false, false], [2, 2]), b = H.bools([true, false])
        #expect(try H.run("And", [a, b]).array(Bool.self) == [true, false, false, false])
        #expect(try H.run("Or", [a, b]).array(Bool.self) == [true, true, true, false])
        #expect(try H.run("Xor", [a, b]).array(Bool.self) == [false, true, true, false])
        #expect(try H.run("Not", [a]).array(Bool.self) == [false, false, true, true])
        #expect(try H.run("Not", [Tensor(zeros: .bool, shape: [0])]).shape == [0])
        #expect(throws: KernelError.self) { try H.run("And", [a, H.f32([1])]) }
        #expect(throws: KernelError.self) { try H.run("Not", [H.i64([1])]) }
    }

    @Test func whereBroadcastsThreeWays() throws {
        // cond [2,1,4], x [3,1], y [4] -> [2,3,4]
        let cond = H.bools([true, false, true, false, false, false, true, true], [2, 1, 4])
        let x = H.f32([10, 20, 30], [3, 1]), y = H.f32([-1, -2, -3, -4])
        let z = try H.run("Where", [cond, x, y])
        #expect(z.shape == [2, 3, 4])
        var expected: [Float] = []
        for i in 0..<2 { for j in 0..<3 { for k in 0..<4 {
            expected.append(cond.array(Bool.self)[i * 4 + k] ? x.array(Float.self)[j] : y.array(Float.self)[k])
        } } }
        #expect(z.array(Float.self) == expected)
    }

    @Test func whereOnEveryElementSize() throws {
        let cond = H.bools([true, false, true])
        #expect(try H.run("Where", [cond, H.i64([1, 2, 3]), H.i64([-1])]).array(Int64.self) == [1, -1, 3])
        #expect(try H.run("Where", [cond, H.f16([1, 2, 3]), H.f16([0, 0, 0])]).array(Float16.self) == [1, 0, 3])
        #expect(try H.run("Where", [cond, H.bools([true]), H.bools([false])]).array(Bool.self) == [true, false, true])
        #expect(try H.run("Where", [cond, H.i32([7]), H.i32([8])]).array(Int32.self) == [7, 8, 7])
        let lowest = try H.run("Where", [cond, Tensor(scalar: -Float.greatestFiniteMagnitude), Tensor(scalar: Float(0))])
        #expect(lowest.array(Float.self) == [-Float.greatestFiniteMagnitude, 0, -Float.greatestFiniteMagnitude])
        let same = try H.run("Where", [H.bools([false, true], [1, 2]), H.f64([1, 2], [1, 2]), H.f64([3, 4], [1, 2])])
        #expect(same.array(Double.self) == [3, 2])
    }

    @Test func whereEdgeCases() throws {
        let empty = try H.run("Where", [Tensor(zeros: .bool, shape: [0, 3]), H.f32([1, 2, 3]), H.f32([0])])
        #expect(empty.shape == [0, 3])
        #expect(throws: KernelError.self) { try H.run("Where", [H.f32([1]), H.f32([1]), H.f32([1])]) }
        #expect(throws: KernelError.self) { try H.run("Where", [H.bools([true]), H.f32([1]), H.i64([1])]) }
        #expect(throws: KernelError.self) { try H.run("Where", [H.bools([true, false]), H.f32([1, 2, 3]), H.f32([1])]) }
    }
}
