import Foundation
import Graph
import Testing
import TensorCore
import TestSupport
@testable import Runtime

private typealias H = ElementwiseHarness

/// Unary math. Transcendentals are checked against double-precision libm at atol 1e-6,
/// rtol 1e-6; everything else is exact.
@Suite("Elementwise unary")
struct ElementwiseUnaryTests {
    private func check(_ op: String, _ input: [Float], _ reference: (Double) -> Double,
                       _ attributes: [String: AttributeValue] = [:], opset: Int = 18) throws {
        let y = try H.run(op, [H.f32(input)], opset: opset, attributes)
        let expected = H.f64(input.map { reference(Double($0)) })
        let report = closeness(y, expected, atol: 1e-6, rtol: 1e-6)
        #expect(y.dtype == .float32 && report.isClose, "\(op): \(report)")
    }

    @Test func transcendentalsMatchDoublePrecision() throws {
        let xs: [Float] = [-7, -2.5, -1, -0.3, 0, 1e-6, 0.5, 1, 3, 6.9]
        try check("Exp", xs, { exp($0) })
        try check("Tanh", xs, { tanh($0) })
        try check("Erf", xs, { erf($0) })
        try check("Cos", xs + [100, 1000.5, -4096.25], { cos($0) })
        try check("Sin", xs + [100, 1000.5, -4096.25], { sin($0) })
        try check("Sigmoid", xs, { 1 / (1 + exp(-$0)) })
        try check("Log", [1e-30, 0.01, 1, 2.718281828, 1e30], { log($0) })
        try check("Sqrt", [0, 1e-30, 2, 1e30], { $0.squareRoot() })
        try check("Reciprocal", [2, -4, 0.5, -0.1], { 1 / $0 })
        try check("Gelu", xs, { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) }, opset: 20)
        try check("Gelu", xs, { 0.5 * $0 * (1 + tanh((2 / Double.pi).squareRoot() * ($0 + 0.044715 * $0 * $0 * $0))) },
                  ["approximate": .string("tanh")], opset: 20)
    }

    @Test func sigmoidIsStableAtExtremes() throws {
        let y = try H.run("Sigmoid", [H.f32([-1000, -100, -20, 0, 20, 100, 1000, -.infinity, .infinity])]).array(Float.self)
        #expect(y.allSatisfy { !$0.isNaN })
        #expect(y[0] == 0 && y[1] > 0 && y[1] < 1e-40 && y[3] == 0.5 && y[5] == 1 && y[6] == 1)
        #expect(y[7] == 0 && y[8] == 1)
        let d = try H.run("Sigmoid", [H.f64([-800, 800])]).array(Double.self)
        #expect(d[0] >= 0 && d[0] < 1e-300 && d[1] == 1)
    }

    @Test func specialValues() throws {
        let sqrt = try H.run("Sqrt", [H.f32([-1, .infinity])]).array(Float.self)
        #expect(sqrt[0].isNaN && sqrt[1] == .infinity)
        let log = try H.run("Log", [H.f32([0, -1])]).array(Float.self)
        #expect(log[0] == -.infinity && log[1].isNaN)
        #expect(try H.run("Reciprocal", [H.f32([0])]).array(Float.self) == [.infinity])
        #expect(try H.run("Exp", [H.f32([-100, 100])]).array(Float.self)[1] == .infinity)
        #expect(try H.run("Tanh", [H.f32([-50, 50])]).array(Float.self) == [-1, 1])
        #expect(try H.run("Erf", [H.f32([-10, 10])]).array(Float.self) == [-1, 1])
    }

    @Test func roundingAndSigns() throws {
        #expect(try H.run("Floor", [H.f32([-2.5, -1, -0.2, 0, 0.7, 3.999])]).array(Float.self) == [-3, -1, -1, 0, 0, 3])
        #expect(try H.run("Ceil", [H.f32([-2.5, -1, -0.2, 0, 0.7, 3.001])]).array(Float.self) == [-2, -1, -0, 0, 1, 4])
        #expect(try H.run("Neg", [H.f32([1.5, -2, 0])]).array(Float.self) == [-1.5, 2, -0])
        #expect(try H.run("Abs", [H.f32([-2.5, 0, 3, -.infinity])]).array(Float.self) == [2.5, 0, 3, .infinity])
        #expect(try H.run("Relu", [H.f32([-1, 0, 2.5])]).array(Float.self) == [0, 0, 2.5])
        #expect(try H.run("Relu", [H.f32([.nan])]).array(Float.self)[0].isNaN)
    }

    @Test func integerSignOps() throws {
        #expect(try H.run("Neg", [H.i64([3, -4, 0, Int64.max, Int64.min])]).array(Int64.self) == [-3, 4, 0, -Int64.max, Int64.min])
        #expect(try H.run("Neg", [H.i32([3, -4])]).array(Int32.self) == [-3, 4])
        #expect(try H.run("Abs", [H.i64([-5, 0, 7, Int64.min])]).array(Int64.self) == [5, 0, 7, Int64.min])
        #expect(try H.run("Relu", [H.i32([-5, 0, 7])]).array(Int32.self) == [0, 0, 7])
        #expect(try H.run("Abs", [Tensor([UInt8(200)], shape: [1])]).array(UInt8.self) == [200])
        #expect(throws: KernelError.self) { try H.run("Neg", [Tensor([UInt8(1)], shape: [1])]) }
        #expect(throws: KernelError.self) { try H.run("Neg", [H.bools([true])]) }
    }

    @Test func floatOnlyOpsRejectIntegers() {
        for op in ["Sqrt", "Exp", "Log", "Sigmoid", "Tanh", "Erf", "Cos", "Sin", "Floor", "Ceil", "Reciprocal", "IsNaN", "IsInf"] {
            #expect(throws: KernelError.self, "\(op)") { try H.run(op, [H.i64([1])]) }
        }
        #expect(throws: KernelError.self) { try H.run("Gelu", [H.f32([1])], opset: 20, ["approximate": .string("fast")]) }
    }

    @Test func nanAndInfPredicates() throws {
        let x = H.f32([.nan, .infinity, -.infinity, 0, 1e38])
        #expect(try H.run("IsNaN", [x]).array(Bool.self) == [true, false, false, false, false])
        #expect(try H.run("IsInf", [x]).array(Bool.self) == [false, true, true, false, false])
        #expect(try H.run("IsInf", [x], ["detect_negative": .int(0)]).array(Bool.self) == [false, true, false, false, false])
        #expect(try H.run("IsInf", [x], ["detect_positive": .int(0)]).array(Bool.self) == [false, false, true, false, false])
        #expect(try H.run("IsNaN", [H.f16([.nan, 1])]).array(Bool.self) == [true, false])
        #expect(try H.run("IsNaN", [H.f64([.nan])]).array(Bool.self) == [true])
    }

    @Test func otherPrecisionsAndEmpty() throws {
        let half = try H.run("Sqrt", [H.f16([4, 2])])
        #expect(half.dtype == .float16 && half.array(Float16.self) == [2, Float16(Float(2).squareRoot())])
        let bf = try H.run("Exp", [Tensor([BFloat16(0)], shape: [1])])
        #expect(bf.dtype == .bfloat16 && bf.doubles() == [1])
        let double = try H.run("Exp", [H.f64([1])])
        #expect(abs(double.array(Double.self)[0] - M_E) < 1e-15)
        let empty = try H.run("Sigmoid", [Tensor(zeros: .float32, shape: [0, 2])])
        #expect(empty.shape == [0, 2])
    }
}
