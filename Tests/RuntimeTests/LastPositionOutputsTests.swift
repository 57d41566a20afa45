import Foundation
import Graph
import ONNXImport
@testable import Runtime
import TensorCore
import Testing
import TestSupport

/// `SessionOptions.lastPositionOutputs`: the LM head on the last position only gives exactly the
/// last row of the full logits (up to gemv vs sgemm summation order: atol 1e-5 + rtol 1e-5).
@Suite("Last-position outputs")
struct LastPositionOutputsTests {
    static let cases: [(model: String, caseName: String)] = [
        ("llama-optimum", "prefill"), ("llama-optimum", "batch2_leftpad_past"), ("mistral-optimum", "prefill"),
        ("llama-dynamo18", "prefill"), ("mistral-dynamo23", "batch2_leftpad_past"),
    ]

    static func feeds(model: String, caseName: String) throws -> [String: Tensor] {
        try ModelFixtureCase.named(model, caseName).feeds()
    }

    static func lastRows(_ logits: Tensor) -> Tensor {
        let (b, s, v) = (logits.shape[0], logits.shape[1], logits.shape[2])
        let all = logits.array(Float.self)
        var rows: [Float] = []
        for bi in 0..<b { rows += all[((bi * s + s - 1) * v)..<((bi * s + s) * v)] }
        return Tensor(rows, shape: [b, 1, v])
    }

    @Test(arguments: cases.map { "\($0.model)/\($0.caseName)" })
    func lastRowOfTheFullLogits(_ name: String) throws {
        let parts = name.split(separator: "/").map(String.init)
        let graph = try ONNXLoader.load(path: Fixtures.path("models/\(parts[0])/model.onnx")).graph
        let feeds = try Self.feeds(model: parts[0], caseName: parts[1])
        #expect(!feeds.isEmpty)
        let full = try #require(try Session(graph: graph).run(feeds)["logits"])
        let session = try Session(graph: graph, options: SessionOptions(lastPositionOutputs: ["logits"]))
        #expect(session.passReport.contains { $0.hasPrefix("last position only") }, "\(session.passReport)")
        let results = try session.run(feeds)
        let last = try #require(results["logits"])
        #expect(last.shape == [full.shape[0], 1, full.shape[2]])
        let report = closeness(last, Self.lastRows(full), atol: 1e-5, rtol: 1e-5)
        #expect(report.isClose, "\(name): \(report)")
        // The other outputs (the KV cache) are untouched.
        let fullPresent = try Session(graph: graph).run(feeds)
        for (key, value) in results where key != "logits" {
            #expect(closeness(value, try #require(fullPresent[key]), atol: 0, rtol: 0).isClose, "\(key)")
        }
    }

    @Test func appliesToGraphsWrittenByLpcOptimize() throws {
        let graph = try ONNXLoader.load(path: Fixtures.path("models/llama-optimum/model.onnx")).graph
        let optimized = try Session(graph: graph)
        let folder = FileManager.default.temporaryDirectory.path + "/lpc-last-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var options = ONNXWriteOptions()
        options.metadata = [GraphOptimizer.optimizedKey: GraphOptimizer.passVersion]
        try ONNXWriter.write(optimized.graph, to: folder + "/model.onnx", options: options)
        let reloaded = try ONNXLoader.load(path: folder + "/model.onnx").graph
        let session = try Session(graph: reloaded, options: SessionOptions(lastPositionOutputs: ["logits"]))
        let feeds = try Self.feeds(model: "llama-optimum", caseName: "prefill")
        let last = try #require(try session.run(feeds)["logits"])
        let full = try #require(try optimized.run(feeds)["logits"])
        #expect(last.shape[1] == 1)
        #expect(closeness(last, Self.lastRows(full), atol: 1e-5, rtol: 1e-5).isClose)
    }

    @Test func outputsNotMadeByARowWiseProductAreLeftAlone() throws {
        let graph = try ONNXLoader.load(path: Fixtures.path("models/llama-optimum/model.onnx")).graph
        // present.0.key comes from a Concat, not an LM-head product: nothing to rewrite.
        let session = try Session(graph: graph, options: SessionOptions(lastPositionOutputs: ["present.0.key"]))
        #expect(!session.passReport.contains { $0.hasPrefix("last position only") })
    }
}
