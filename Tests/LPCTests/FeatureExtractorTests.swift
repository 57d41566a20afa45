import Foundation
import Graph
import ONNXImport
import Runtime
import TensorCore
import Testing
import Tokenizers
import TestSupport
@testable import LPC

/// Batched feature extraction on the tiny Llama fixtures: batches, padding sides and single runs
/// agree; hidden · head reproduces the logits; the reference log-probs are the log-softmax of the
/// real logits at the predicting positions; the cache round-trips and is keyed by model and data.
@Suite("Feature extraction")
struct FeatureExtractorTests {
    static let sequences: [[Int]] = [
        [5, 9, 17, 33, 2, 64, 100, 7],
        [5, 9, 17, 40, 41],
        [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21],
        [3, 4],
    ]
    static let promptLengths = [4, 3, 6, 1]

    func run(_ extractor: FeatureExtractor, _ options: FeatureOptions) throws -> [SequenceOutput] {
        var outputs = [SequenceOutput?](repeating: nil, count: Self.sequences.count)
        try extractor.run(Self.sequences, promptLengths: Self.promptLengths, options: options) { outputs[$0] = $1 }
        return outputs.map { $0! }
    }

    /// Each sequence alone through LanguageModel-style single-sequence feeds, as the reference.
    func reference(_ graph: Graph, _ tap: LMHeadTap) throws -> [(hidden: Tensor, logits: Tensor)] {
        let session = try Session(graph: graph)
        return try Self.sequences.map { seq in
            var feeds: [String: Tensor] = [
                "input_ids": Tensor(seq.map(Int64.init), shape: [1, seq.count]),
                "attention_mask": Tensor([Int64](repeating: 1, count: seq.count), shape: [1, seq.count]),
                "position_ids": Tensor((0..<seq.count).map(Int64.init), shape: [1, seq.count]),
            ]
            for layer in 0..<2 { for kind in ["key", "value"] {
                feeds["past_key_values.\(layer).\(kind)"] = Tensor(zeros: .float32, shape: [1, 2, 0, 8])
            } }
            let r = try session.run(feeds, outputs: [tap.hiddenValue, "logits"])
            return (r[tap.hiddenValue]!.reshaped([seq.count, 32]), r["logits"]!.reshaped([seq.count, 128]))
        }
    }

    @Test(arguments: ["llama-optimum", "mistral-dynamo23"])
    func batchedMatchesSingleRunsOnBothPaddingSides(_ model: String) throws {
        let graph = try ONNXLoader.load(path: Fixtures.path("models/\(model)/model.onnx")).graph
        let extractor = try FeatureExtractor(graph: graph)
        let singles = try reference(graph, extractor.tap)
        for padding in [FeatureOptions.Padding.right, .left] {
            let outputs = try run(extractor, FeatureOptions(batchSize: 3, padding: padding, progress: false))
            for (i, (output, single)) in zip(outputs, singles).enumerated() {
                let report = closeness(output.hidden, single.hidden, atol: 1e-4, rtol: 1e-4)
                #expect(report.isClose, "\(model) \(padding) sequence \(i) hidden: \(report)")
                // log-softmax of the single run's logits at t−1 for every response token t.
                let z = single.logits.doubles()
                var expected: [Double] = []
                for t in Self.promptLengths[i]..<Self.sequences[i].count {
                    let row: [Double] = Array(z[(t - 1) * 128..<t * 128])
                    let m: Double = row.max()!
                    var sum = 0.0
                    for x in row { sum += exp(x - m) }
                    let target: Double = row[Self.sequences[i][t]]
                    expected.append(target - m - log(sum))
                }
                #expect(output.responseLogps.count == expected.count)
                for (a, e) in zip(output.responseLogps, expected) {
                    #expect(abs(Double(a) - e) <= 1e-4, "\(model) \(padding) sequence \(i): log-prob \(a) vs \(e)")
                }
                #expect(abs(output.responseLogp - expected.reduce(0, +)) <= 1e-3)
            }
        }
    }

    @Test func batchesRespectSizeAndTokenBudget() {
        let lengths = [10, 3, 7, 7, 2, 30]
        let batches = FeatureExtractor.batches(lengths: lengths, options: FeatureOptions(batchSize: 2, tokenBudget: 20))
        #expect(batches == [[5], [0, 2], [3, 1], [4]])   // longest first; 30 alone exceeds the budget; 10×2 fits it
        #expect(Set(batches.flatMap { $0 }) == Set(lengths.indices))
    }

    @Test func promptLengthMustLeaveAPromptToken() throws {
        let extractor = try FeatureExtractor(graph: ONNXLoader.load(path: Fixtures.path("models/llama-optimum/model.onnx")).graph)
        #expect(throws: FeatureError.self) {
            try extractor.run([[1, 2, 3]], promptLengths: [0]) { _, _ in }
        }
    }

    /// The whole path: JSONL → template → tokens → features → cache folder → reload.
    @Test func featureSetCachesAndReloads() throws {
        let folder = Fixtures.path("chat_model")
        let renderer = PairRenderer(template: try ChatTemplateConfig.load(modelDirectory: folder))
        let tokenizer = try Tokenizer(contentsOfFile: folder + "/tokenizer.json")
        let dataset = try PreferenceDataset.load(file: Fixtures.path("lpc_data/pairs.jsonl"), renderer: renderer,
                                                 tokenizer: tokenizer, lengths: .default)
        let extractor = try FeatureExtractor(modelFile: folder + "/model.onnx")
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("lpc-cache-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let options = FeatureOptions(batchSize: 3, progress: false)

        let first = try FeatureSet.load(dataset: dataset, extractor: extractor, cacheRoot: cache, options: options)
        #expect(!first.fromCache && first.pairs.count == 4 && first.hiddenSize == 32)
        let second = try FeatureSet.load(dataset: dataset, extractor: extractor, cacheRoot: cache, options: options)
        #expect(second.fromCache && second.key == first.key)
        #expect(try FileManager.default.contentsOfDirectory(atPath: cache) == [first.key])  // no temporary left

        // The stored rows are the single-run features at positions P−1 … P+n−1.
        var outputs = [SequenceOutput?](repeating: nil, count: 2)
        let pair = dataset.pairs[1]
        try extractor.run([pair.prompt + pair.chosen, pair.prompt + pair.rejected], promptLengths: [pair.prompt.count, pair.prompt.count],
                          options: FeatureOptions(batchSize: 1, progress: false)) { outputs[$0] = $1 }
        for (stored, fresh, ids) in [(second.pairs[1].chosen, outputs[0]!, pair.chosen), (second.pairs[1].rejected, outputs[1]!, pair.rejected)] {
            #expect(stored.tokens == ids.map(Int32.init))
            #expect(stored.hidden.shape == [ids.count + 1, 32])
            let p = pair.prompt.count
            let expected = Tensor(Array(fresh.hidden.array(Float.self)[((p - 1) * 32)...]), shape: [ids.count + 1, 32])
            #expect(closeness(stored.hidden, expected, atol: 1e-4, rtol: 1e-4).isClose)
            #expect(zip(stored.refLogps, fresh.responseLogps).allSatisfy { abs($0 - $1) <= 1e-4 })
        }
        #expect(second.pairs[0].source == "science" && second.pairs[1].line == 3)

        // Into the trainer's batch: rows 0..<n predict the tokens, row n is the posterior's input.
        let batch = try second.batch(pairs: [0, 2])
        #expect(batch.pairCount == 2 && batch.rowCount == second.pairs[0].chosen.count + second.pairs[0].rejected.count
                + second.pairs[2].chosen.count + second.pairs[2].rejected.count)
        #expect(abs(Double(batch.referenceLogProbs[1]) - second.pairs[0].rejected.refLogp) < 1e-4)

        // Other data → another key; float16 storage → another key, values within fp16 rounding.
        var shorter = dataset
        shorter.pairs.removeLast()
        let third = try FeatureSet.load(dataset: shorter, extractor: extractor, cacheRoot: cache, options: options)
        #expect(third.key != first.key && !third.fromCache)
        var half = options
        half.storage = .float16
        let fp16 = try FeatureSet.load(dataset: dataset, extractor: extractor, cacheRoot: cache, options: half)
        #expect(fp16.key != first.key)
        #expect(closeness(fp16.pairs[2].chosen.hidden, first.pairs[2].chosen.hidden, atol: 1e-2, rtol: 1e-3).isClose)
    }
}
