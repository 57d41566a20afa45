import Foundation
import Graph
import ONNXImport
import Runtime
import TensorCore
import Testing
import TestSupport
@testable import LPC

/// The LM head is found in every exported fixture, and logits == tapped hidden · head within
/// atol 1e-4 + rtol 1e-4 (both from the same run, so only the sgemm order differs).
@Suite("LM head tap")
struct FeatureLMHeadTests {
    static let fixtures = ["llama-optimum", "llama-dynamo18", "llama-dynamo23",
                           "mistral-optimum", "mistral-dynamo18", "mistral-dynamo23"]

    static func feeds(_ model: String, _ caseName: String) throws -> [String: Tensor] {
        try ModelFixtureCase.named(model, caseName).feeds()
    }

    @Test(arguments: fixtures)
    func logitsEqualHiddenTimesHead(_ model: String) throws {
        let graph = try ONNXLoader.load(path: Fixtures.path("models/\(model)/model.onnx")).graph
        let tap = try LMHeadTap.find(in: graph)
        #expect(tap.hiddenSize == 32 && tap.vocabularySize == 128)
        if model == "llama-optimum" {  // tied embeddings: Transpose of the embedding, no copy
            #expect(tap.layout == .vocabByHidden)
            #expect(tap.weightDescription == "Transpose(model.embed_tokens.weight)")
            #expect(tap.weight.raw == graph.initializers["model.embed_tokens.weight"]?.raw)
        } else {
            #expect(tap.layout == .hiddenByVocab)
        }
        let session = try Session(graph: graph)
        for caseName in ["prefill", "batch2_leftpad_past"] {
            let results = try session.run(Self.feeds(model, caseName), outputs: [tap.hiddenValue, "logits"])
            let hidden = try #require(results[tap.hiddenValue]), logits = try #require(results["logits"])
            let rows = hidden.count / tap.hiddenSize
            let ours = Tensor(uninitialized: .float32, shape: logits.shape)
            tap.logits(hidden: hidden.pointer(Float.self), rows: rows, into: ours.pointer(Float.self))
            let report = closeness(ours, logits, atol: 1e-4, rtol: 1e-4)
            #expect(report.isClose, "\(model)/\(caseName): \(report)")
        }
        // The [vocab, d] form the trainer's FrozenLMHead takes.
        let vd = tap.weightVocabByHidden()
        #expect(vd.shape == [128, 32])
        let w = tap.weight.pointer(Float.self), v = vd.pointer(Float.self)
        let (i, k) = (5, 77)
        #expect(v[k * 32 + i] == (tap.layout == .vocabByHidden ? w[k * 32 + i] : w[i * 128 + k]))
    }

    /// A head that shares the Gather's embedding table through Gemm(transB=1), behind Reshapes
    /// (the dynamo form of a tied head, flattened to 2-D).
    @Test func gemmSharingTheEmbeddingBehindReshapes() throws {
        let (vocab, d) = (7, 4)
        let embedding = Tensor((0..<(vocab * d)).map { Float(sin(Double($0) * 0.7)) }, shape: [vocab, d])
        let graph = Graph(
            inputs: [ValueInfo(name: "input_ids", dtype: .int64, shape: [.fixed(1), .symbolic("seq")])],
            outputs: [ValueInfo(name: "logits", dtype: .float32, shape: [.fixed(1), .symbolic("seq"), .fixed(vocab)])],
            initializers: ["embed": embedding, "flat": Tensor([Int64(-1), Int64(d)], shape: [2]),
                           "unflat": Tensor([Int64(1), Int64(-1), Int64(vocab)], shape: [3])],
            nodes: [
                Node(name: "gather", opType: "Gather", inputs: ["embed", "input_ids"], outputs: ["x"]),
                Node(name: "flatten", opType: "Reshape", inputs: ["x", "flat"], outputs: ["x2"]),
                Node(name: "head", opType: "Gemm", inputs: ["x2", "embed"], outputs: ["y"], attributes: ["transB": .int(1)]),
                Node(name: "unflatten", opType: "Reshape", inputs: ["y", "unflat"], outputs: ["logits"]),
            ],
            opsets: ["": 18])
        let tap = try LMHeadTap.find(in: graph)
        #expect(tap.hiddenValue == "x2" && tap.layout == .vocabByHidden && tap.weight.raw == embedding.raw)
        let results = try Session(graph: graph).run(["input_ids": Tensor([Int64(3), 0, 6], shape: [1, 3])], outputs: ["x2", "logits"])
        let ours = Tensor(uninitialized: .float32, shape: [1, 3, vocab])
        tap.logits(hidden: results["x2"]!.pointer(Float.self), rows: 3, into: ours.pointer(Float.self))
        #expect(closeness(ours, results["logits"]!, atol: 1e-6, rtol: 1e-6).isClose)
    }

    @Test func errorsSayWhatIsMissing() throws {
        let noLogits = Graph(inputs: [], outputs: [ValueInfo(name: "y", dtype: .float32, shape: nil)],
                             initializers: [:], nodes: [], opsets: ["": 18])
        #expect { try LMHeadTap.find(in: noLogits) } throws: { "\($0)".contains("no 'logits' output") }

        // logits computed by a Softmax: no MatMul to find.
        let softmax = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: nil)],
                            outputs: [ValueInfo(name: "logits", dtype: .float32, shape: nil)], initializers: [:],
                            nodes: [Node(name: "sm", opType: "Softmax", inputs: ["x"], outputs: ["logits"])], opsets: ["": 18])
        #expect { try LMHeadTap.find(in: softmax) } throws: { "\($0)".contains("not a MatMul/Gemm") }

        // MatMul of two activations: no constant weight.
        let dynamic = Graph(inputs: [ValueInfo(name: "a", dtype: .float32, shape: nil), ValueInfo(name: "b", dtype: .float32, shape: nil)],
                            outputs: [ValueInfo(name: "logits", dtype: .float32, shape: nil)], initializers: [:],
                            nodes: [Node(name: "mm", opType: "MatMul", inputs: ["a", "b"], outputs: ["logits"])], opsets: ["": 18])
        #expect { try LMHeadTap.find(in: dynamic) } throws: { "\($0)".contains("not a constant") }
    }
}

/// The real SmolLM2-135M-Instruct export when present (models/, not committed): tied head found as
/// the Transpose of the embedding, no copy. Structure only (a debug-build forward is too slow).
let smolLM2Folder = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("models/SmolLM2-135M-Instruct").path

@Suite("LM head tap on SmolLM2", .enabled(if: FileManager.default.fileExists(atPath: smolLM2Folder + "/model.onnx")))
struct FeatureSmolLM2 {
    static let model = smolLM2Folder

    @Test func tiedHeadIsTheEmbedding() throws {
        let graph = try ONNXLoader.load(path: Self.model + "/model.onnx").graph
        let tap = try LMHeadTap.find(in: graph)
        #expect(tap.hiddenSize == 576 && tap.vocabularySize == 49152)
        #expect(tap.layout == .vocabByHidden && tap.weightDescription == "Transpose(model.embed_tokens.weight)")
        #expect(tap.hiddenValue == "/model/norm/Mul_1_output_0")
        #expect(tap.weight.raw == graph.initializers["model.embed_tokens.weight"]?.raw)
    }
}
