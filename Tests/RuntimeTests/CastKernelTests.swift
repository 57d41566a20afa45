import Graph
import Testing
import TensorCore
@testable import Runtime

private typealias H = ElementwiseHarness

/// Cast and CastLike. All exact.
@Suite("Cast")
struct CastKernelTests {
    private func cast(_ x: Tensor, _ to: DType, opset: Int = 19) throws -> Tensor {
        try H.run("Cast", [x], opset: opset, ["to": .int(Int(to.rawValue))])
    }

    @Test func floatToIntegerTruncatesTowardZero() throws {
        let x = H.f32([-2.7, -0.5, 0, 0.5, 2.7, 1e6])
        #expect(try cast(x, .int64).array(Int64.self) == [-2, 0, 0, 0, 2, 1_000_000])
        #expect(try cast(x, .int32).array(Int32.self) == [-2, 0, 0, 0, 2, 1_000_000])
        #expect(try cast(H.f64([-3.99, 3.99]), .int8).array(Int8.self) == [-3, 3])
        #expect(try cast(H.f16([-1.5, 255]), .uint8).array(UInt8.self) == [255, 255])  // -1 wraps to 255
    }

    @Test func outOfRangeFloatToIntegerFollowsX86() throws {
        // C leaves these undefined; x86 (and so onnxruntime there) gives the 32/64-bit minimum.
        let x = H.f32([.nan, .infinity, 0x1p35, -0x1p35, 0x1p63])
        #expect(try cast(x, .int64).array(Int64.self) == [Int64.min, Int64.min, 1 << 35, -(1 << 35), Int64.min])
        #expect(try cast(x, .int32).array(Int32.self) == [Int32.min, Int32.min, Int32.min, Int32.min, Int32.min])
        #expect(try cast(H.f32([300, -129]), .int8).array(Int8.self) == [44, 127])
    }

    @Test func toBoolIsNonZero() throws {
        #expect(try cast(H.f32([0, -0.0, 0.1, -2, .nan, .infinity]), .bool).array(Bool.self) == [false, false, true, true, true, true])
        #expect(try cast(H.i64([0, 1, -1, 5]), .bool).array(Bool.self) == [false, true, true, true])
        #expect(try cast(Tensor([UInt8(0), 2], shape: [2]), .bool).array(Bool.self) == [false, true])
    }

    @Test func boolToNumbers() throws {
        let b = H.bools([true, false, true, false], [2, 2])
        let f = try cast(b, .float32)
        #expect(f.shape == [2, 2] && f.array(Float.self) == [1, 0, 1, 0])
        #expect(try cast(b, .int64).array(Int64.self) == [1, 0, 1, 0])
        #expect(try cast(b, .float16).array(Float16.self) == [1, 0, 1, 0])
        #expect(try cast(b, .bfloat16).doubles() == [1, 0, 1, 0])
    }

    @Test func integerNarrowingWraps() throws {
        #expect(try cast(H.i64([-5, 0, 123456, 1 << 32, (1 << 31)]), .int32).array(Int32.self) == [-5, 0, 123456, 0, Int32.min])
        #expect(try cast(H.i32([-5, 0, 123456]), .int64).array(Int64.self) == [-5, 0, 123456])
        #expect(try cast(Tensor([UInt8(200), 5], shape: [2]), .int8).array(Int8.self) == [-56, 5])
        #expect(try cast(Tensor([Int8(-1)], shape: [1]), .uint8).array(UInt8.self) == [255])
        #expect(try cast(H.i64([Int64.max]), .float32).array(Float.self) == [9.223372e18])
    }

    @Test func halfPrecisionRounding() throws {
        // float16: round to nearest even; overflow to inf; tiny values to subnormals or 0.
        let h = try cast(H.f32([1, 1 + 1.0 / 2048, 1 + 3.0 / 2048, 65504, 65520, 1e-8, 6e-8, -2.5]), .float16)
        #expect(h.array(Float16.self) == [1, 1, 1 + 2.0 / 1024, 65504, .infinity, 0, Float16(bitPattern: 1), -2.5])
        // bfloat16: top 16 bits with round to nearest even.
        let bf = try cast(H.f32([1, Float(bitPattern: 0x3F80_8000), Float(bitPattern: 0x3F81_8000), .nan]), .bfloat16)
        #expect(bf.array(BFloat16.self).map(\.bits)[0..<3] == [0x3F80, 0x3F80, 0x3F82])
        #expect(bf.array(BFloat16.self)[3].float.isNaN)
        // Back up is exact.
        #expect(try cast(h, .float32).array(Float.self)[7] == -2.5)
        #expect(try cast(bf, .float64).array(Double.self)[0] == 1)
        let roundTrip = try cast(try cast(H.f32([0.1]), .float16), .float32).array(Float.self)[0]
        #expect(roundTrip == Float(Float16(0.1)) && roundTrip != 0.1)
        #expect(try cast(H.f16([-3.75]), .int64).array(Int64.self) == [-3])
        #expect(try cast(H.f64([1e300]), .float32).array(Float.self) == [.infinity])
    }

    @Test func everyPairConverts() throws {
        let all: [DType] = [.float32, .float64, .float16, .bfloat16, .int64, .int32, .int8, .uint8, .bool]
        let sources: [DType: Tensor] = [
            .float32: H.f32([0, 1, 2]), .float64: H.f64([0, 1, 2]), .float16: H.f16([0, 1, 2]),
            .bfloat16: Tensor([BFloat16(0), BFloat16(1), BFloat16(2)], shape: [3]),
            .int64: H.i64([0, 1, 2]), .int32: H.i32([0, 1, 2]), .int8: Tensor([Int8(0), 1, 2], shape: [3]),
            .uint8: Tensor([UInt8(0), 1, 2], shape: [3]), .bool: H.bools([false, true, true]),
        ]
        for from in all {
            for to in all {
                let x = try #require(sources[from])
                let y = try cast(x, to)
                let expected: [Double] = from == .bool ? [0, 1, 1] : (to == .bool ? [0, 1, 1] : [0, 1, 2])
                #expect(y.dtype == to && y.shape == [3] && y.doubles() == expected, "\(from) -> \(to)")
            }
        }
    }

    @Test func emptyIdentityAndErrors() throws {
        let empty = try cast(Tensor(zeros: .float32, shape: [0, 2]), .int64)
        #expect(empty.dtype == .int64 && empty.shape == [0, 2])
        let x = H.f32([1.5, 2.5], [1, 2])
        let same = try cast(x, .float32, opset: 13)
        #expect(same.shape == [1, 2] && same.array(Float.self) == [1.5, 2.5])
        #expect(throws: KernelError.self) { try H.run("Cast", [x], ["to": .int(8)]) }  // string
        #expect(throws: KernelError.self) { try H.run("Cast", [x], ["to": .int(17)]) }  // float8
        #expect(throws: KernelError.self) { try H.run("Cast", [x], ["to": .int(1 << 40)]) }
        #expect(throws: KernelError.self) { try H.run("Cast", [x]) }
        // saturate only concerns float8 and is ignored.
        #expect(try H.run("Cast", [x], opset: 21, ["to": .int(7), "saturate": .int(0)]).array(Int64.self) == [1, 2])
    }

    @Test func castLikeTakesTheSecondInputsType() throws {
        let y = try H.run("CastLike", [H.f32([1.9, -1.9]), Tensor(zeros: .int32, shape: [0])], opset: 15)
        #expect(y.dtype == .int32 && y.array(Int32.self) == [1, -1])
        let h = try H.run("CastLike", [H.i64([3]), H.f16([0])], opset: 19)
        #expect(h.dtype == .float16 && h.array(Float16.self) == [3])
    }
}
