import Foundation
import Graph
import Testing
import TensorCore
import TestSupport
@testable import Runtime

private typealias H = ElementwiseHarness

/// Softmax and LogSoftmax against a double-precision reference, atol 1e-6 / rtol 1e-5.
@Suite("Softmax and LogSoftmax")
struct ReductionSoftmaxTests {
    /// Softmax (or log-softmax) of `x` viewed as [outer, length, inner], in double.
    private func reference(_ x: Tensor, outer: Int, length: Int, inner: Int, log: Bool) -> Tensor {
        let v = x.doubles()
        var y = [Double](repeating: 0, count: v.count)
        for o in 0..<outer {
            for j in 0..<inner {
                let at = { (i: Int) in (o * length + i) * inner + j }
                let m = (0..<length).map { v[at($0)] }.max() ?? 0
                let s = (0..<length).map { Foundation.exp(v[at($0)] - m) }.reduce(0, +)
                for i in 0..<length {
                    y[at(i)] = log ? v[at(i)] - m - Foundation.log(s) : Foundation.exp(v[at(i)] - m) / s
                }
            }
        }
        return Tensor(y, shape: x.shape)
    }

    private func expectClose(_ actual: Tensor, _ expected: Tensor, _ label: String) {
        let report = closeness(actual, expected, atol: 1e-6, rtol: 1e-5)
        #expect(report.isClose, "\(label): \(report)")
    }

    @Test func opset11CoercesTo2D() throws {
        let x = H.random([2, 3, 4], seed: 1, lo: -3, hi: 3)
        for op in ["Softmax", "LogSoftmax"] {
            let log = op == "LogSoftmax"
            // axis 1 (also the default): each of the 2 rows of 12 is normalised as a whole.
            let ref12 = reference(x, outer: 2, length: 12, inner: 1, log: log)
            expectClose(try H.run(op, [x], opset: 11, ["axis": .int(1)]), ref12, "\(op) op11 axis 1")
            expectClose(try H.run(op, [x], opset: 11), ref12, "\(op) op11 default")
            expectClose(try H.run(op, [x], opset: 11, ["axis": .int(-1)]), reference(x, outer: 6, length: 4, inner: 1, log: log), "\(op) op11 axis -1")
            expectClose(try H.run(op, [x], opset: 1, ["axis": .int(0)]), reference(x, outer: 1, length: 24, inner: 1, log: log), "\(op) op1 axis 0")
        }
        let y = try H.run("Softmax", [x], opset: 11).array(Float.self)
        #expect(abs(y[0..<12].reduce(0, +) - 1) < 1e-5)
    }

    @Test func opset13NormalisesOneAxis() throws {
        let x = H.random([2, 3, 4], seed: 2, lo: -3, hi: 3)
        for op in ["Softmax", "LogSoftmax"] {
            let log = op == "LogSoftmax"
            expectClose(try H.run(op, [x], opset: 13, ["axis": .int(1)]), reference(x, outer: 2, length: 3, inner: 4, log: log), "\(op) axis 1")
            expectClose(try H.run(op, [x], opset: 13), reference(x, outer: 6, length: 4, inner: 1, log: log), "\(op) default")
            expectClose(try H.run(op, [x], opset: 13, ["axis": .int(0)]), reference(x, outer: 1, length: 2, inner: 12, log: log), "\(op) axis 0")
            let scores = H.random([1, 2, 3, 5], seed: 3, lo: -4, hi: 4)
            expectClose(try H.run(op, [scores], opset: 13, ["axis": .int(-1)]), reference(scores, outer: 6, length: 5, inner: 1, log: log), "\(op) 4-D")
        }
    }

    @Test func largeAndMaskedValues() throws {
        let x = H.f32([1000, 1001, 1002, 1003, -1000, 0, 1000, 50], [2, 4])
        expectClose(try H.run("Softmax", [x], opset: 13), reference(x, outer: 2, length: 4, inner: 1, log: false), "large")
        expectClose(try H.run("LogSoftmax", [x], opset: 13), reference(x, outer: 2, length: 4, inner: 1, log: true), "large log")
        let lowest = -Float.greatestFiniteMagnitude
        let masked = try H.run("Softmax", [H.f32([1, 2, lowest, lowest, 0, 0, 0, -.infinity], [2, 4])], opset: 13).array(Float.self)
        #expect(masked[2] == 0 && masked[3] == 0 && masked[7] == 0)
        #expect(abs(masked[4] - 1.0 / 3) < 1e-6)
        let logMasked = try H.run("LogSoftmax", [H.f32([0, -.infinity])], opset: 13).array(Float.self)
        #expect(logMasked == [0, -.infinity])
    }

    @Test func fullyMaskedRowIsNaNLikeOnnxRuntime() throws {
        let x = H.f32([-.infinity, -.infinity, 1, 2], [2, 2])
        for op in ["Softmax", "LogSoftmax"] {
            let y = try H.run(op, [x], opset: 13).array(Float.self)
            #expect(y[0].isNaN && y[1].isNaN, "\(op)")
            #expect(!y[2].isNaN && !y[3].isNaN, "\(op)")
        }
    }

    @Test func otherTypesEmptyAndErrors() throws {
        let half = try H.run("Softmax", [H.f16([0, 0])], opset: 13)
        #expect(half.dtype == .float16 && half.array(Float16.self) == [0.5, 0.5])
        let double = try H.run("Softmax", [H.f64([0, Foundation.log(3.0)])], opset: 13).array(Double.self)
        #expect(abs(double[0] - 0.25) < 1e-15 && abs(double[1] - 0.75) < 1e-15)
        #expect(try H.run("Softmax", [Tensor(zeros: .float32, shape: [0, 4])], opset: 13).shape == [0, 4])
        #expect(try H.run("Softmax", [Tensor(zeros: .float32, shape: [3, 0])], opset: 13).shape == [3, 0])
        #expect(try H.run("Softmax", [Tensor(zeros: .float32, shape: [2, 0, 3])], opset: 11).shape == [2, 0, 3])
        #expect(throws: KernelError.self) { try H.run("Softmax", [H.i64([1, 2])], opset: 13) }
        #expect(throws: KernelError.self) { try H.run("Softmax", [Tensor(scalar: Float(1))], opset: 13) }
        #expect(throws: KernelError.self) { try H.run("Softmax", [H.f32([1, 2])], opset: 13, ["axis": .int(1)]) }
        #expect(throws: KernelError.self) { try H.run("LogSoftmax", [H.f32([1, 2], [1, 2])], opset: 11, ["axis": .int(-3)]) }
    }
}
