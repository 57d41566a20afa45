import Foundation
import Graph
import ONNXImport
import Runtime
import TensorCore
import Testing
import TestSupport

/// `ONNXWriter` round trips: what `lpc optimize` writes reloads without passes and computes what
/// the optimized session computed on the original file (bit for bit: same graph, same kernels),
/// which is within atol 1e-4 + rtol 1e-4 of onnxruntime's goldens.
@Suite("ONNX writer")
struct ONNXWriterTests {
    static func cases() throws -> [ModelFixtureCase] { try ModelFixtureCase.all() }

    static func temporaryFolder() throws -> String {
        let path = FileManager.default.temporaryDirectory.path + "/lpc-writer-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Optimizes `dir`'s model, writes it marked as optimized, and returns (original session, reloaded model).
    static func optimizeAndReload(_ dir: String, weights: WeightStorage = .f32) throws -> (Session, ONNXModel, String) {
        let model = try ONNXLoader.load(path: Fixtures.path(dir + "/model.onnx"))
        let session = try Session(graph: model.graph, options: SessionOptions(weightStorage: weights))
        let folder = try temporaryFolder()
        var options = ONNXWriteOptions()
        options.metadata = [GraphOptimizer.optimizedKey: GraphOptimizer.passVersion, "lpc.weights": weights.rawValue]
        try ONNXWriter.write(session.graph, to: folder + "/model.onnx", options: options)
        return (session, try ONNXLoader.load(path: folder + "/model.onnx"), folder)
    }

    @Test(arguments: try cases())
    func optimizedFileReloadsWithoutPassesAndSameOutputs(_ testCase: ModelFixtureCase) throws {
        let (original, reloaded, folder) = try Self.optimizeAndReload("models/\(testCase.model)")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect(GraphOptimizer.isOptimized(reloaded.graph))
        let session = try Session(graph: reloaded.graph)
        #expect(session.passReport.count == 1 && session.passReport[0].contains("passes skipped"), "\(session.passReport)")
        #expect(session.graph.nodes.map(\.qualifiedOpType) == original.graph.nodes.map(\.qualifiedOpType))

        let feeds = try testCase.feeds()
        let expected = try original.run(feeds)
        let actual = try session.run(feeds)
        for name in testCase.outputs.keys.sorted() {
            let mine = try #require(actual[name], "no output \(name)")
            let before = try #require(expected[name])
            let same = closeness(mine, before, atol: 0, rtol: 0)
            #expect(same.isClose, "\(testCase) \(name) vs the session on the original file: \(same)")
            let golden = try testCase.golden(name)
            let report = closeness(mine, golden, atol: 1e-4, rtol: 1e-4)
            #expect(report.isClose, "\(testCase) \(name) vs onnxruntime: \(report)")
        }
    }

    @Test func largeTensorsAreExternalAlignedAndMapped() throws {
        let (_, reloaded, folder) = try Self.optimizeAndReload("models/llama-optimum")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let large = reloaded.graph.initializers.filter { $0.value.byteCount >= 1024 }
        #expect(!large.isEmpty)
        for (name, tensor) in large {
            #expect(tensor.storage.isView, "\(name) was copied")
            // The map starts on a page, so a 64-byte aligned address is a 64-byte aligned file offset.
            #expect(Int(bitPattern: tensor.raw) % 64 == 0, "\(name) is not 64-byte aligned")
            if tensor.byteCount >= 1 << 16 { #expect(Int(bitPattern: tensor.raw) % 4096 == 0, "\(name) is not page aligned") }
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        #expect(files == ["model.onnx", "model.onnx_data"])
    }

    @Test func unoptimizedGraphRoundTripsWithEveryAttributeKind() throws {
        // The raw optimum export: Constant tensors, ints, floats, strings attributes and inline data.
        let model = try ONNXLoader.load(path: Fixtures.path("models/llama-optimum/model.onnx"))
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try ONNXWriter.write(model.graph, to: folder + "/model.onnx")
        let reloaded = try ONNXLoader.load(path: folder + "/model.onnx")
        #expect(!GraphOptimizer.isOptimized(reloaded.graph))
        #expect(reloaded.graph.opsets == model.graph.opsets)
        #expect(reloaded.graph.inputs.map(\.typeDescription) == model.graph.inputs.map(\.typeDescription))
        #expect(reloaded.graph.outputs.map(\.typeDescription) == model.graph.outputs.map(\.typeDescription))
        #expect(reloaded.graph.nodes.count == model.graph.nodes.count)
        for (a, b) in zip(reloaded.graph.nodes, model.graph.nodes) {
            #expect(a.qualifiedOpType == b.qualifiedOpType && a.inputs == b.inputs && a.outputs == b.outputs
                    && Set(a.attributes.keys) == Set(b.attributes.keys), "node \(b.displayName)")
        }
        let testCase = try ModelFixtureCase.named("llama-optimum", "prefill")
        let feeds = try testCase.feeds()
        let options = SessionOptions(optimize: false)
        let expected = try Session(graph: model.graph, options: options).run(feeds)
        let actual = try Session(graph: reloaded.graph, options: options).run(feeds)
        for (name, tensor) in expected {
            let report = closeness(try #require(actual[name]), tensor, atol: 0, rtol: 0)
            #expect(report.isClose, "\(name): \(report)")
        }
    }

    @Test(arguments: [WeightStorage.f16, .bf16])
    func halfWeightsAreWrittenAsConverted(weights: WeightStorage) throws {
        let (original, reloaded, folder) = try Self.optimizeAndReload("models/mistral-optimum", weights: weights)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let dtype: DType = weights == .f16 ? .float16 : .bfloat16
        #expect(reloaded.graph.initializers.values.contains { $0.dtype == dtype })
        let testCase = try ModelFixtureCase.named("mistral-optimum", "prefill")
        let feeds = try testCase.feeds()
        let expected = try original.run(feeds)
        let actual = try Session(graph: reloaded.graph).run(feeds)
        let report = closeness(try #require(actual["logits"]), try #require(expected["logits"]), atol: 0, rtol: 0)
        #expect(report.isClose, "logits: \(report)")
    }

    @Test func metadataRoundTrips() throws {
        let model = try ONNXLoader.load(path: Fixtures.path("models/llama-dynamo23/model.onnx"))
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var options = ONNXWriteOptions()
        options.metadata = ["a": "1", "lpc.weights": "f32", "empty": ""]
        try ONNXWriter.write(model.graph, to: folder + "/model.onnx", options: options)
        let reloaded = try ONNXLoader.load(path: folder + "/model.onnx")
        #expect(reloaded.graph.metadata == options.metadata)
        #expect(reloaded.producerName == "lpc")
    }

    @Test func unwritableAttributesAndDataNamesAreErrors() throws {
        let graph = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1)])],
                          outputs: [ValueInfo(name: "y", dtype: .float32, shape: [.fixed(1)])],
                          initializers: [:],
                          nodes: [Node(name: "loop", opType: "Loop", inputs: ["x"], outputs: ["y"],
                                       attributes: ["body": .unsupported(kind: "graph")])],
                          opsets: ["": 18])
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        #expect { try ONNXWriter.write(graph, to: folder + "/model.onnx") } throws: { "\($0)".contains("body") }
        var options = ONNXWriteOptions()
        options.dataFileName = "../escape.data"
        #expect { try ONNXWriter.write(graph, to: folder + "/model.onnx", options: options) } throws: {
            "\($0)".contains("plain file name")
        }
    }
}
