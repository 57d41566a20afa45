import Graph
import Testing
import TensorCore
@testable import Runtime

/// Runs one registered kernel on hand-built tensors (nil = an omitted optional input), for the
/// elementwise, cast and reduction suites.
enum ElementwiseHarness {
    static func run(_ op: String, _ inputs: [Tensor?], opset: Int = 18,
                    _ attributes: [String: AttributeValue] = [:]) throws -> Tensor {
        let node = Node(name: "test_\(op)", opType: op,
                        inputs: inputs.enumerated().map { $0.element == nil ? "" : "in\($0.offset)" },
                        outputs: ["out0"], attributes: attributes)
        guard let kernel = OpRegistry.kernels[op] else { throw KernelError("no kernel registered for \(op)") }
        let results = try kernel(KernelContext(node: node, inputs: inputs, opset: opset))
        guard results.count == 1 else { throw KernelError("\(op) returned \(results.count) outputs") }
        return results[0]
    }

    static func f32(_ values: [Float], _ shape: [Int]? = nil) -> Tensor { Tensor(values, shape: shape ?? [values.count]) }
    static func f64(_ values: [Double], _ shape: [Int]? = nil) -> Tensor { Tensor(values, shape: shape ?? [values.count]) }
    static func f16(_ values: [Float], _ shape: [Int]? = nil) -> Tensor {
        Tensor(values.map { Float16($0) }, shape: shape ?? [values.count])
    }
    static func i64(_ values: [Int64], _ shape: [Int]? = nil) -> Tensor { Tensor(values, shape: shape ?? [values.count]) }
    static func i32(_ values: [Int32], _ shape: [Int]? = nil) -> Tensor { Tensor(values, shape: shape ?? [values.count]) }
    static func bools(_ values: [Bool], _ shape: [Int]? = nil) -> Tensor { Tensor(values, shape: shape ?? [values.count]) }

    /// 0, 1, 2, … as float32 in `shape`.
    static func arange(_ shape: [Int]) -> Tensor {
        Tensor((0..<Tensor.elementCount(shape)).map { Float($0) }, shape: shape)
    }

    /// Deterministic pseudo-random floats in [lo, hi) (a 64-bit LCG, so tests never flake).
    static func random(_ shape: [Int], seed: UInt64, lo: Float = -2, hi: Float = 2) -> Tensor {
        var state = seed &* 6364136223846793005 &+ 1442695040888963407
        let values = (0..<Tensor.elementCount(shape)).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return lo + (hi - lo) * Float(state >> 40) / Float(1 << 24)
        }
        return Tensor(values, shape: shape)
    }

    /// Element-wise equality where NaN equals NaN and the sign of zero is ignored.
    static func same(_ a: [Double], _ b: [Double]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
    }

    static func isNegativeZero(_ value: Double) -> Bool { value == 0 && value.sign == .minus }
}

@Suite("Elementwise harness")
struct ElementwiseHarnessTests {
    @Test func everyOpOfThisFamilyIsRegistered() {
        let ops = ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mod", "Equal", "Greater", "Less",
                   "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Not", "Where", "Sqrt", "Reciprocal",
                   "Neg", "Abs", "Exp", "Log", "Sigmoid", "Tanh", "Erf", "Cos", "Sin", "Floor", "Ceil", "IsNaN",
                   "IsInf", "Relu", "Gelu", "Cast", "CastLike", "ReduceMean", "ReduceSum", "ReduceMax",
                   "ReduceMin", "Softmax", "LogSoftmax", "CumSum"]
        for op in ops { #expect(OpRegistry.kernels[op] != nil, "\(op) is not registered") }
    }
}
