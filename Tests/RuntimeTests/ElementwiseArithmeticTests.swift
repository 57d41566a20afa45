import Graph
import Testing
import TensorCore
@testable import Runtime

private typealias H = ElementwiseHarness

/// Binary arithmetic: broadcasting, integer semantics, Pow's mixed types, variadic Max/Min/Sum.
/// Exact comparisons unless a tolerance is stated.
@Suite("Elementwise arithmetic")
struct ElementwiseArithmeticTests {
    // MARK: broadcasting

    @Test func addBroadcastsRowColumnAndScalar() throws {
        let x = H.arange([2, 3])
        let row = try H.run("Add", [x, H.f32([10, 20, 30])])
        #expect(row.shape == [2, 3] && row.array(Float.self) == [10, 21, 32, 13, 24, 35])
        let left = try H.run("Add", [H.f32([10, 20, 30]), x])
        #expect(left.shape == [2, 3] && left.array(Float.self) == [10, 21, 32, 13, 24, 35])
        let column = try H.run("Add", [x, H.f32([100, 200], [2, 1])])
        #expect(column.array(Float.self) == [100, 101, 102, 203, 204, 205])
        let outer = try H.run("Add", [H.f32([1, 2], [2, 1]), H.f32([10, 20, 30], [1, 3])])
        #expect(outer.shape == [2, 3] && outer.array(Float.self) == [11, 21, 31, 12, 22, 32])
        let scalar = try H.run("Add", [Tensor(scalar: Float(0.5)), x])
        #expect(scalar.array(Float.self) == [0.5, 1.5, 2.5, 3.5, 4.5, 5.5])
        let rank0 = try H.run("Mul", [Tensor(scalar: Float(3)), Tensor(scalar: Float(4))])
        #expect(rank0.shape == [] && rank0.array(Float.self) == [12])
    }

    @Test func emptyAndIncompatibleShapes() throws {
        let empty = try H.run("Add", [Tensor(zeros: .float32, shape: [0, 3]), H.f32([1, 2, 3])])
        #expect(empty.shape == [0, 3] && empty.count == 0)
        // A 0 dim broadcasts against 1, not against 3.
        let zeroVsOne = try H.run("Sub", [Tensor(zeros: .float32, shape: [2, 0]), Tensor(zeros: .float32, shape: [1, 1])])
        #expect(zeroVsOne.shape == [2, 0])
        #expect(throws: KernelError.self) { try H.run("Add", [H.arange([2, 3]), H.f32([1, 2])]) }
        #expect(throws: KernelError.self) { try H.run("Add", [Tensor(zeros: .float32, shape: [0]), H.f32([1, 2])]) }
        #expect(throws: KernelError.self) { try H.run("Add", [H.f32([1]), H.i64([1])]) }
        #expect(throws: KernelError.self) { try H.run("Add", [H.bools([true]), H.bools([true])]) }
    }

    @Test func floatDivisionFollowsIEEE() throws {
        let y = try H.run("Div", [H.f32([1, -1, 0, 6]), H.f32([0, 0, 0, 4])])
        let v = y.array(Float.self)
        #expect(v[0] == .infinity && v[1] == -.infinity && v[2].isNaN && v[3] == 1.5)
    }

    // MARK: integers

    @Test func integerDivisionTruncatesTowardZero() throws {
        let y = try H.run("Div", [H.i64([7, -7, 7, -7, 0]), H.i64([2, 2, -2, -2, 5])])
        #expect(y.dtype == .int64 && y.array(Int64.self) == [3, -3, -3, 3, 0])
        let y32 = try H.run("Div", [H.i32([9, -9]), H.i32([4])])
        #expect(y32.array(Int32.self) == [2, -2])
        // The one overflowing quotient wraps instead of trapping.
        let overflow = try H.run("Div", [H.i64([Int64.min]), H.i64([-1])])
        #expect(overflow.array(Int64.self) == [Int64.min])
    }

    @Test func integerDivisionByZeroThrows() throws {
        #expect(throws: KernelError.self) { try H.run("Div", [H.i64([1, 2]), H.i64([1, 0])]) }
        #expect(throws: KernelError.self) { try H.run("Div", [H.i32([1, 2]), Tensor(scalar: Int32(0))]) }
        #expect(throws: KernelError.self) { try H.run("Mod", [H.i64([1, 2]), H.i64([0])]) }
        // An empty output divides nothing.
        let empty = try H.run("Div", [Tensor(zeros: .int64, shape: [0, 1]), H.i64([0])])
        #expect(empty.shape == [0, 1])
    }

    @Test func integerArithmeticWraps() throws {
        #expect(try H.run("Add", [H.i64([Int64.max]), H.i64([1])]).array(Int64.self) == [Int64.min])
        #expect(try H.run("Sub", [H.i32([Int32.min]), H.i32([1])]).array(Int32.self) == [Int32.max])
        #expect(try H.run("Mul", [H.i64([1 << 62]), H.i64([4])]).array(Int64.self) == [0])
        let u8 = try H.run("Add", [Tensor([UInt8(250)], shape: [1]), Tensor([UInt8(10)], shape: [1])])
        #expect(u8.array(UInt8.self) == [4])
    }

    @Test func modSignConventions() throws {
        let python = try H.run("Mod", [H.i64([7, -7, 7, -7, 0, 5]), H.i64([3, 3, -3, -3, 3, 5])])
        #expect(python.array(Int64.self) == [1, 2, -2, -1, 0, 0])
        let c = try H.run("Mod", [H.i64([7, -7, 7, -7]), H.i64([3, 3, -3, -3])], ["fmod": .int(1)])
        #expect(c.array(Int64.self) == [1, -1, 1, -1])
        let f = try H.run("Mod", [H.f32([5.5, -5.5, 5.5, -5.5]), H.f32([2, 2, -2, -2])], ["fmod": .int(1)])
        #expect(f.array(Float.self) == [1.5, -1.5, 1.5, -1.5])
        let broadcast = try H.run("Mod", [H.i32([-10, -1, 9], [3, 1]), H.i32([4, -4])])
        #expect(broadcast.shape == [3, 2] && broadcast.array(Int32.self) == [2, -2, 3, -1, 1, -3])
        #expect(throws: KernelError.self) { try H.run("Mod", [H.f32([1]), H.f32([2])]) }
        #expect(try H.run("Mod", [H.i64([Int64.min]), H.i64([-1])]).array(Int64.self) == [0])
    }

    // MARK: Pow

    @Test func powFloatAndSquare() throws {
        let square = try H.run("Pow", [H.f32([-3, 0.5, 0]), Tensor(scalar: Float(2))])
        #expect(square.array(Float.self) == [9, 0.25, 0])
        let general = try H.run("Pow", [H.f32([4, 2, -8]), H.f32([0.5, -1, 1.0 / 3])])
        let g = general.array(Float.self)
        #expect(g[0] == 2 && g[1] == 0.5 && g[2].isNaN)  // negative base, fractional exponent
        let negative = try H.run("Pow", [H.f32([-2, -1.5]), H.f32([3, 2])])
        #expect(negative.array(Float.self) == [-8, 2.25])
    }

    @Test func powMixedTypesKeepTheBaseType() throws {
        let floatInt = try H.run("Pow", [H.f32([1.5, -2, 3]), H.i64([2])])
        #expect(floatInt.dtype == .float32 && floatInt.array(Float.self) == [2.25, 4, 9])
        let floatInt32 = try H.run("Pow", [H.f64([2]), H.i32([-2])])
        #expect(floatInt32.dtype == .float64 && floatInt32.array(Double.self) == [0.25])
        let ints = try H.run("Pow", [H.i64([2, -3, 5, 0, 1, -1, 2]), H.i64([10, 3, 0, 0, -5, -3, -1])])
        #expect(ints.dtype == .int64 && ints.array(Int64.self) == [1024, -27, 1, 1, 1, -1, 0])
        let intFloat = try H.run("Pow", [H.i32([4, 10, -8]), H.f32([0.5, -1, 2])])
        #expect(intFloat.dtype == .int32 && intFloat.array(Int32.self) == [2, 0, 64])
        let wraps = try H.run("Pow", [H.i64([3]), H.i64([41])])
        var expected: Int64 = 1
        for _ in 0..<41 { expected = expected &* 3 }
        #expect(wraps.array(Int64.self) == [expected])
        #expect(throws: KernelError.self) { try H.run("Pow", [H.i64([0]), H.i64([-1])]) }
        let half = try H.run("Pow", [H.f16([1.5, 4]), H.f32([2, 0.5])])
        #expect(half.dtype == .float16 && half.array(Float16.self) == [2.25, 2])
    }

    // MARK: Max, Min, Sum

    @Test func variadicMaxMinSum() throws {
        let a = H.f32([1, 5, 3, 4, 2, 6], [2, 3]), b = H.f32([2, 2, 2]), c = H.f32([0, 5], [2, 1])
        let max = try H.run("Max", [a, b, c])
        #expect(max.shape == [2, 3] && max.array(Float.self) == [2, 5, 3, 5, 5, 6])
        let min = try H.run("Min", [a, b, c])
        #expect(min.array(Float.self) == [0, 0, 0, 2, 2, 2])
        let sum = try H.run("Sum", [a, b, c])
        #expect(sum.array(Float.self) == [3, 7, 5, 11, 9, 13])
        let single = try H.run("Max", [a])
        #expect(single.shape == [2, 3] && single.array(Float.self) == a.array(Float.self))
        let ints = try H.run("Min", [H.i64([-3, 0, 5]), H.i64([1]), Tensor(scalar: Int64(0))])
        #expect(ints.array(Int64.self) == [-3, 0, 0])
        #expect(throws: KernelError.self) { try H.run("Max", []) }
        #expect(throws: KernelError.self) { try H.run("Max", [H.bools([true])]) }
        #expect(throws: KernelError.self) { try H.run("Max", [a, H.f32([1, 2])]) }
    }

    @Test func maxMinPropagateNaN() throws {
        let max = try H.run("Max", [H.f32([.nan, 1, 2]), H.f32([1, .nan, 3])]).array(Float.self)
        #expect(max[0].isNaN && max[1].isNaN && max[2] == 3)
        let min = try H.run("Min", [H.f32([.nan, 1, 2]), H.f32([1, .nan, 3])]).array(Float.self)
        #expect(min[0].isNaN && min[1].isNaN && min[2] == 2)
    }

    // MARK: other float types

    @Test func halfAndDoublePrecision() throws {
        let half = try H.run("Add", [H.f16([1, 2.5]), H.f16([0.5])])
        #expect(half.dtype == .float16 && half.array(Float16.self) == [1.5, 3])
        // 2048 + 1 is not representable in float16: round to nearest even.
        #expect(try H.run("Add", [H.f16([2048]), H.f16([1])]).array(Float16.self) == [2048])
        let bf = Tensor([BFloat16(1), BFloat16(3)], shape: [2])
        let bfOut = try H.run("Mul", [bf, Tensor([BFloat16(0.5)], shape: [1])])
        #expect(bfOut.dtype == .bfloat16 && bfOut.doubles() == [0.5, 1.5])
        let double = try H.run("Div", [H.f64([1]), H.f64([3])])
        #expect(double.array(Double.self) == [1.0 / 3.0])
    }
}
