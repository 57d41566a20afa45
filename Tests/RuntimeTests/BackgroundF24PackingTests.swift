import CKernels
import Foundation
import Graph
import ONNXImport
@testable import Runtime
import TensorCore
import Testing
import TestSupport

/// `--weights auto`: the session is ready with float32 weights; a thread packs the exact ones to
/// f24 (`BackgroundF24Packing`) and runs adopt them as they come. The claim: the logits never
/// differ from `f32`'s (before, during or after packing), and once packing is done the session
/// holds what `--weights f24` packs at load.
@Suite("Background f24 packing")
struct BackgroundF24PackingTests {
    /// The fixture decoders with every float32 initializer's low bytes cleared.
    static func exactFixtures() throws -> [(ModelFixtureCase, Graph)] {
        try ModelGoldenTests.cases().filter { $0.model.hasSuffix("optimum") }.map { testCase in
            var graph = try ONNXLoader.load(path: Fixtures.path("models/\(testCase.model)/model.onnx")).graph
            for (name, tensor) in graph.initializers where tensor.dtype == .float32 {
                graph.initializers[name] = Tensor(tensor.array(Float.self).map { Float(bitPattern: $0.bitPattern & ~0xff) }, shape: tensor.shape)
            }
            return (testCase, graph)
        }
    }

    static func f24Names(_ graph: Graph) -> Set<String> {
        Set(graph.initializers.filter { $0.value.dtype == .float24 }.map(\.key))
    }

    @Test func adoptsPackedWeightsWithSameLogits() throws {
        for (testCase, graph) in try Self.exactFixtures() {
            let f32 = try Session(graph: graph, options: SessionOptions(weightStorage: .f32))
            let atLoad = try Session(graph: graph, options: SessionOptions(weightStorage: .f24))
            // A session dropped while its weights are being packed: the thread stops on its own.
            _ = try Session(graph: graph, options: SessionOptions(weightStorage: .auto))
            let auto = try Session(graph: graph, options: SessionOptions(weightStorage: .auto))
            let (reference, early, seconds, late) = try F24WeightsTests.withStableThreads {
                () throws -> (Tensor, Tensor, Double?, Tensor) in
                let reference = try #require(try f32.run(testCase.feeds(), outputs: ["logits"])["logits"])
                let early = try #require(try auto.run(testCase.feeds(), outputs: ["logits"])["logits"]) // packing may be under way
                let seconds = auto.waitForBackgroundPacking()
                let late = try #require(try auto.run(testCase.feeds(), outputs: ["logits"])["logits"])
                return (reference, early, seconds, late)
            }
            #expect(F24WeightsTests.bitDifference(early.array(Float.self), reference.array(Float.self)) == nil, "\(testCase.model): first run")
            #expect(F24WeightsTests.bitDifference(late.array(Float.self), reference.array(Float.self)) == nil, "\(testCase.model): packed")
            guard lpc_f24_supported() != 0 else {
                #expect(seconds == nil && Self.f24Names(auto.graph).isEmpty, "\(testCase.model): packing without the f24 kernel")
                continue
            }
            let packed = Self.f24Names(auto.graph)
            #expect(seconds != nil)
            #expect(!packed.isEmpty && packed == Self.f24Names(atLoad.graph), "\(testCase.model): \(packed.count) f24 weights, \(Self.f24Names(atLoad.graph).count) at load")
            #expect(auto.weightBytes < f32.weightBytes)
        }
    }

    /// A product's weights change dtype together: in a gate/up-like group (two [16, 512] weights,
    /// wide enough to stay two inputs) whose second weight has a non-zero low byte in its last
    /// element (past the sample check), both stay float32, at load and in the background, while
    /// the other product's weight is packed; every session gives f32's outputs bit for bit.
    /// (Before this, the background path could feed a group f24 and float32 weights at once.)
    @Test func keepsAGroupWithOneInexactWeightFloat32() throws {
        guard lpc_f24_supported() != 0 else { return } // nothing is packed without the kernel (tested above)
        let k = 16, n = 512
        var last = F24WeightsTests.exactWeights(k * n, seed: 902)
        last[k * n - 1] = Float(bitPattern: last[k * n - 1].bitPattern | 1)
        let graph = Graph(
            inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(k)]),
                     ValueInfo(name: "x2", dtype: .float32, shape: [.fixed(1), .fixed(k)])],
            outputs: ["ya", "yb", "yc"].map { ValueInfo(name: $0, dtype: .float32, shape: nil) },
            initializers: ["a": Tensor(F24WeightsTests.exactWeights(k * n, seed: 901), shape: [k, n]),
                           "b": Tensor(last, shape: [k, n]),
                           "c": Tensor(F24WeightsTests.exactWeights(k * n, seed: 903), shape: [k, n])],
            nodes: [Node(name: "group", opType: "MatMulKNGroup", domain: "lpc", inputs: ["x", "a", "b"], outputs: ["ya", "yb"]),
                    Node(name: "single", opType: "MatMulKN", domain: "lpc", inputs: ["x2", "c"], outputs: ["yc"])],
            opsets: ["": 17, "lpc": 1])
        let feeds = ["x": Tensor(FusedKernelTests.random(k, seed: 904), shape: [1, k]),
                     "x2": Tensor(FusedKernelTests.random(k, seed: 905), shape: [1, k])]
        let f32 = try Session(graph: graph, options: SessionOptions(weightStorage: .f32))
        let atLoad = try Session(graph: graph, options: SessionOptions(weightStorage: .f24))
        let auto = try Session(graph: graph, options: SessionOptions(weightStorage: .auto))
        auto.waitForBackgroundPacking()
        let expected = try f32.run(feeds)
        for (mode, session) in [("f24", atLoad), ("auto", auto)] {
            let group = try #require(session.graph.nodes.first { $0.opType == "MatMulKNGroup" }, "\(mode): \(session.graph.nodes.map(\.opType))")
            #expect(group.inputs == ["x", "a", "b"], "\(mode): the group was rewritten: \(group.inputs)")
            #expect(session.graph.initializers["a"]?.dtype == .float32 && session.graph.initializers["b"]?.dtype == .float32, "\(mode)")
            #expect(session.graph.initializers["c"]?.dtype == .float24, "\(mode): the single product's exact weight")
            let outputs = try session.run(feeds)
            for name in ["ya", "yb", "yc"] {
                #expect(F24WeightsTests.bitDifference(try #require(outputs[name]).array(Float.self),
                                                      try #require(expected[name]).array(Float.self)) == nil, "\(mode) \(name)")
            }
        }
    }

    /// The fixtures' own weights use all of float32's bits: nothing is packed, packing still ends.
    @Test func keepsFullPrecisionWeights() throws {
        let testCase = try #require(try ModelGoldenTests.cases().first { $0.model == "llama-optimum" })
        let graph = try ONNXLoader.load(path: Fixtures.path("models/\(testCase.model)/model.onnx")).graph
        let auto = try Session(graph: graph, options: SessionOptions(weightStorage: .auto))
        let seconds = auto.waitForBackgroundPacking()
        #expect((seconds != nil) == (lpc_f24_supported() != 0))
        #expect(Self.f24Names(auto.graph).isEmpty)
        #expect(auto.weightBytes == (try Session(graph: graph)).weightBytes)
    }
}
