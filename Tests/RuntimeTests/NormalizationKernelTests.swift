import Graph
import TensorCore
import Testing
import TestSupport
@testable import Runtime

@Suite("LayerNormalization, RMSNormalization and SimplifiedLayerNormalization")
struct NormalizationKernelTests {
    typealias H = KernelHarness

    @Test func layerNormHandComputed() throws {
        // mean 2.5, variance 1.25 → (x − 2.5) / √(1.25 + 1e-5), then ·scale + bias.
        let x = H.f32([1, 2, 3, 4], [1, 4])
        let outputs = try H.run("LayerNormalization", [x, H.f32([1, 1, 2, 2], [4]), H.f32([0, 1, 0, 1], [4])], outputs: 3)
        let inv = 1 / (1.25 + 1e-5).squareRoot()
        H.expectClose(outputs[0], [-1.5 * inv, -0.5 * inv + 1, 1.0 * inv, 3.0 * inv + 1], shape: [1, 4], atol: 1e-6)
        H.expectClose(outputs[1], [2.5], shape: [1, 1], atol: 1e-7)
        H.expectClose(outputs[2], [inv], shape: [1, 1], atol: 1e-6)
    }

    @Test func layerNormStatisticsShapeFollowsAxis() throws {
        var r = H.Random(seed: 3)
        let x = r.tensor([2, 3, 4])
        let outputs = try H.run("LayerNormalization", [x, r.tensor([3, 4]), nil], outputs: 3, ["axis": .int(1)])
        #expect(outputs.map(\.shape) == [[2, 3, 4], [2, 1, 1], [2, 1, 1]])
        #expect(outputs[1].dtype == .float32 && outputs[2].dtype == .float32)
        let only = try H.run("LayerNormalization", [x, r.tensor([4]), nil], outputs: 1)
        #expect(only.count == 1)
    }

    @Test func rmsNormHandComputed() throws {
        // mean square of [3, 4] is 12.5.
        let y = try H.run1("RMSNormalization", [H.f32([3, 4], [1, 2]), H.f32([1, 2], [2])])
        let inv = 1 / (12.5 + 1e-5).squareRoot()
        H.expectClose(y, [3 * inv, 8 * inv], shape: [1, 2], atol: 1e-6)
        let bigEpsilon = try H.run1("RMSNormalization", [H.f32([3, 4], [1, 2]), H.f32([1, 1], [2])], ["epsilon": .float(0.5)])
        H.expectClose(bigEpsilon, [3 / 13.0.squareRoot(), 4 / 13.0.squareRoot()], shape: [1, 2], atol: 1e-6)
    }

    @Test func rmsNormOverSeveralAxesWithBroadcastScale() throws {
        var r = H.Random(seed: 5)
        let x = r.tensor([2, 3, 4])
        for (scaleShape, axis) in [([3, 4], 1), ([4], 1), ([1, 4], -2), ([2, 3, 4], 0), ([1], -1)] {
            let scale = r.tensor(scaleShape)
            let y = try H.run1("RMSNormalization", [x, scale], ["axis": .int(axis)])
            let ref = NormalizationReference.normalize(x.doubles(), shape: x.shape, scale: scale.doubles(),
                                                       scaleShape: scaleShape, axis: axis, epsilon: 1e-5, centered: false)
            H.expectClose(y, ref.y, shape: x.shape, atol: 1e-5, rtol: 1e-5, "scale \(scaleShape) axis \(axis)")
        }
    }

    /// Scale and bias that vary along the un-normalised dims are expanded over the whole input.
    @Test func parametersVaryingPerRow() throws {
        var r = H.Random(seed: 9)
        let x = r.tensor([2, 3, 4]), scale = r.tensor([2, 1, 4]), bias = r.tensor([3, 1])
        let y = try H.run1("LayerNormalization", [x, scale, bias])
        let ref = NormalizationReference.normalize(x.doubles(), shape: x.shape, scale: scale.doubles(), scaleShape: scale.shape,
                                                   bias: bias.doubles(), biasShape: bias.shape, axis: -1,
                                                   epsilon: 1e-5, centered: true)
        H.expectClose(y, ref.y, shape: x.shape, atol: 1e-5, rtol: 1e-5)
    }

    @Test(arguments: [1, 3, 17, 64])
    func matchesReferenceOnSweptShapes(_ cols: Int) throws {
        var r = H.Random(seed: UInt64(cols) + 100)
        for rows in [1, 3, 17] {
            let x = r.tensor([rows, cols], scale: 3), scale = r.tensor([cols]), bias = r.tensor([cols])
            let ln = try H.run("LayerNormalization", [x, scale, bias], outputs: 3, ["epsilon": .float(1e-6)])
            let lnRef = NormalizationReference.normalize(x.doubles(), shape: x.shape, scale: scale.doubles(), scaleShape: [cols],
                                                         bias: bias.doubles(), biasShape: [cols], axis: -1,
                                                         epsilon: 1e-6, centered: true)
            // A single column normalises to 0 with variance 0: 1/√ε amplifies rounding, so allow more.
            H.expectClose(ln[0], lnRef.y, shape: x.shape, atol: 1e-4, rtol: 1e-4, "LayerNorm [\(rows), \(cols)]")
            H.expectClose(ln[1], lnRef.mean, shape: [rows, 1], atol: 1e-5, "mean")
            H.expectClose(ln[2], lnRef.invStdDev, shape: [rows, 1], atol: 1e-3, rtol: 1e-4, "inv std")
            let rms = try H.run1("RMSNormalization", [x, scale])
            let rmsRef = NormalizationReference.normalize(x.doubles(), shape: x.shape, scale: scale.doubles(), scaleShape: [cols],
                                                          axis: -1, epsilon: 1e-5, centered: false)
            H.expectClose(rms, rmsRef.y, shape: x.shape, atol: 1e-5, rtol: 1e-5, "RMSNorm [\(rows), \(cols)]")
        }
    }

    @Test func halfPrecisionComputesInFloat32() throws {
        let x = Tensor([Float16(3), Float16(4)], shape: [1, 2])
        let y = try H.run1("RMSNormalization", [x, Tensor([Float16(1), Float16(1)], shape: [2])])
        #expect(y.dtype == .float16)
        H.expectClose(y, [0.8485, 1.1314], shape: [1, 2], atol: 2e-3)
    }

    @Test func emptyRowsAndColumns() throws {
        let y = try H.run1("RMSNormalization", [Tensor(zeros: .float32, shape: [0, 4]), H.f32([1, 1, 1, 1], [4])])
        #expect(y.shape == [0, 4])
        let outputs = try H.run("LayerNormalization", [Tensor(zeros: .float32, shape: [2, 0]), Tensor(zeros: .float32, shape: [0]), nil], outputs: 3)
        #expect(outputs.map(\.shape) == [[2, 0], [2, 1], [2, 1]])
    }

    @Test func simplifiedLayerNormalizationReturnsInverseRms() throws {
        let outputs = try H.run("SimplifiedLayerNormalization", [H.f32([3, 4], [1, 2]), H.f32([1, 1], [2])], outputs: 2)
        H.expectClose(outputs[1], [1 / (12.5 + 1e-5).squareRoot()], shape: [1, 1], atol: 1e-7)
    }

    @Test func badInputsThrow() {
        let x = Tensor(zeros: .float32, shape: [2, 3])
        #expect(throws: KernelError.self) { try H.run1("RMSNormalization", [x, Tensor(zeros: .float32, shape: [3])], ["axis": .int(2)]) }
        #expect(throws: KernelError.self) { try H.run1("RMSNormalization", [x, Tensor(zeros: .float32, shape: [2])]) }
        #expect(throws: KernelError.self) { try H.run1("RMSNormalization", [x, Tensor(zeros: .float32, shape: [1, 2, 3])]) }
        #expect(throws: KernelError.self) { try H.run1("LayerNormalization", [Tensor(zeros: .int64, shape: [2, 3]), Tensor(zeros: .int64, shape: [3]), nil]) }
        #expect(throws: KernelError.self) { try H.run1("LayerNormalization", [x, Tensor(zeros: .float32, shape: [3]), Tensor(zeros: .float32, shape: [4])]) }
    }
}
