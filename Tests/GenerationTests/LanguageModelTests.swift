import Foundation
import Runtime
import ONNXImport
import TensorCore
import Testing
import TestSupport
@testable import Generation

/// The cached token loop against onnxruntime's own prefill + decode goldens (tiny Llama fixture).
@Suite("Language model loop")
struct LanguageModelTests {
    @Test func cachedStepsMatchOnnxRuntimeDecodeGoldens() throws {
        let dir = "models/llama-optimum/cases/"
        let model = try LanguageModel(path: Fixtures.path("models/llama-optimum/model.onnx"))
        #expect(model.layerCount == 2 && model.kvHeads == 2 && model.headDim == 8)
        // decode_1's past comes from an 8-token prefill; rebuild it from our own prefill instead.
        let decodeIDs = try NPY.read(path: Fixtures.path(dir + "decode_1/inputs/input_ids.npy")).ints()
        let pastKey = try NPY.read(path: Fixtures.path(dir + "decode_1/inputs/past_key_values.0.key.npy"))
        #expect(pastKey.shape[2] == 8)
        let expected = try NPY.read(path: Fixtures.path(dir + "decode_1/outputs/logits.npy"))
        var cache = model.emptyCache()
        // The fixture's prefill tokens are not stored for decode cases, so feed its past directly.
        for layer in 0..<model.layerCount {
            for kind in ["key", "value"] {
                cache.tensors["past_key_values.\(layer).\(kind)"] = try NPY.read(
                    path: Fixtures.path(dir + "decode_1/inputs/past_key_values.\(layer).\(kind).npy"))
            }
        }
        cache.length = 8
        let logits = try model.forward(decodeIDs, cache: &cache)
        let report = closeness(logits, expected, atol: 1e-4, rtol: 1e-4)
        #expect(report.isClose, "\(report)")
        #expect(cache.length == 9)
        #expect(cache.tensors["past_key_values.1.value"]?.shape == [1, 2, 9, 8])
    }

    @Test func greedyGenerationIsDeterministicAndStopsAtLimits() throws {
        let model = try LanguageModel(path: Fixtures.path("models/llama-optimum/model.onnx"))
        func run(_ eos: Set<Int>) throws -> ([Int], StopReason?) {
            var options = SamplingOptions()
            options.greedy = true
            let generator = try TokenGenerator(model: model, prompt: [1, 5, 9, 17], options: options, maxNewTokens: 6, eosIDs: eos)
            var ids: [Int] = []
            while let token = try generator.next() { ids.append(token.id) }
            return (ids, generator.stopReason)
        }
        let (first, reason) = try run([])
        #expect(first.count == 6 && reason == .maxTokens)
        #expect(try run([]).0 == first)
        let eos = first[2]
        let (stopped, stopReason) = try run([eos])
        let firstEOS = first.firstIndex(of: eos)!
        #expect(stopped == Array(first.prefix(firstEOS + 1)) && stopReason == .eos)
    }

    @Test func outOfRangePromptIdsAreRefused() throws {
        let model = try LanguageModel(path: Fixtures.path("models/llama-optimum/model.onnx"))
        #expect(throws: GenerationError.tokenOutOfRange(id: 100_000, vocabulary: 128)) {
            _ = try TokenGenerator(model: model, prompt: [1, 100_000])
        }
    }
}

@Suite("Token stream")
struct TokenStreamTests {
    func generator(maxNewTokens: Int = 5, stopStrings: [String] = [], decode: @escaping (Int) -> String = { "<\($0)>" }) throws -> TokenGenerator {
        let model = try LanguageModel(path: Fixtures.path("models/llama-optimum/model.onnx"))
        var options = SamplingOptions()
        options.greedy = true
        return try TokenGenerator(model: model, prompt: [1, 5, 9], options: options, maxNewTokens: maxNewTokens,
                                  stopStrings: stopStrings, decode: decode)
    }

    @Test func streamYieldsTheSameTokensAsTheIterator() async throws {
        var expected: [Int] = []
        let iterator = try generator()
        while let token = try iterator.next() { expected.append(token.id) }
        var streamed: [Int] = []
        var finished: GenerationStats?
        for try await event in try generator().stream() {
            switch event {
            case let .token(token): streamed.append(token.id)
            case let .finished(stats): finished = stats
            }
        }
        #expect(streamed == expected)
        #expect(finished?.generatedTokens == 5 && finished?.stopReason == "max_tokens")
    }

    @Test func cancellingTheConsumerStopsGeneration() async throws {
        let generator = try generator(maxNewTokens: 10_000)
        let box = UncheckedBox(generator)
        let task = Task {
            var count = 0
            // The stream lives only inside this loop: leaving it drops the stream, which cancels the producer.
            for try await event in box.value.stream() {
                if case .token = event { count += 1 }
                if count == 3 { break }  // dropping the stream cancels the producer
            }
            return count
        }
        #expect(try await task.value == 3)
        // The producer notices at its next token; give it a moment, then it must have stopped.
        for _ in 0..<200 where generator.stopReason == nil { try await Task.sleep(nanoseconds: 10_000_000) }
        #expect(generator.stopReason == .cancelled)
        #expect(generator.generatedCount < 10_000)
    }

    @Test func stopStringsEndGeneration() throws {
        var first: [Int] = []
        let probe = try generator()
        while let token = try probe.next() { first.append(token.id) }
        let stopper = try generator(stopStrings: ["<\(first[1])>"])
        var ids: [Int] = []
        while let token = try stopper.next() { ids.append(token.id) }
        #expect(stopper.stopReason == .stopString)
        #expect(ids == Array(first.prefix(first.firstIndex(of: first[1])! + 1)))
    }
}

/// A head that recomputes the model's own logits from the tapped hidden state (h · W, W [d, vocab]),
/// optionally adding a fixed vector to h first: the hook latent codes use.
final class ShiftedHead: LogitsHead {
    let weight: Tensor  // [d, vocab]
    let shift: [Float]  // [d]
    var begun: [[Float]] = []
    init(weight: Tensor, shift: [Float]) { self.weight = weight; self.shift = shift }

    func begin(promptHidden: [Float]) throws -> HeadChoice {
        begun.append(promptHidden)
        return HeadChoice(mode: "fixed", code: 0, top: [CodeProbability(code: 0, probability: 1)])
    }

    func logits(hidden: [Float]) -> [Float] {
        let (d, vocab) = (weight.shape[0], weight.shape[1])
        let w = weight.pointer(Float.self)
        var out = [Float](repeating: 0, count: vocab)
        for i in 0..<d {
            let h = hidden[i] + shift[i]
            for v in 0..<vocab { out[v] += h * w[i * vocab + v] }
        }
        return out
    }
}

@Suite("Logits head hook")
struct LogitsHeadTests {
    func setUp() throws -> (LanguageModel, Tensor) {
        let graph = try ONNXLoader.load(path: Fixtures.path("models/llama-optimum/model.onnx")).graph
        let lmHead = try #require(graph.nodes.first { $0.outputs.contains("logits") && $0.opType == "MatMul" })
        let model = try LanguageModel(graph: graph, options: SessionOptions(), hiddenStateValue: lmHead.inputs[0])
        if let weight = graph.initializers[lmHead.inputs[1]] { return (model, weight) }
        // optimum writes the tied head as Transpose(embedding [vocab, d]): transpose it back here.
        let transpose = try #require(graph.nodes.first { $0.outputs.contains(lmHead.inputs[1]) && $0.opType == "Transpose" })
        let embedding = try #require(graph.initializers[transpose.inputs[0]])
        let (vocab, d) = (embedding.shape[0], embedding.shape[1])
        var values = [Float](repeating: 0, count: vocab * d)
        let e = embedding.pointer(Float.self)
        for v in 0..<vocab { for i in 0..<d { values[i * vocab + v] = e[v * d + i] } }
        return (model, Tensor(values, shape: [d, vocab]))
    }

    func greedy(_ model: LanguageModel, head: (any LogitsHead)?) throws -> ([Int], [Float]) {
        var options = SamplingOptions()
        options.greedy = true
        let generator = try TokenGenerator(model: model, prompt: [1, 5, 9, 17], options: options, maxNewTokens: 8, head: head)
        var ids: [Int] = [], logprobs: [Float] = []
        while let token = try generator.next() { ids.append(token.id); logprobs.append(token.logprob) }
        return (ids, logprobs)
    }

    @Test func anIdentityHeadReproducesTheModel() throws {
        let (model, weight) = try setUp()
        let (plain, plainLogprobs) = try greedy(model, head: nil)
        let head = ShiftedHead(weight: weight, shift: [Float](repeating: 0, count: weight.shape[0]))
        let (headed, headedLogprobs) = try greedy(model, head: head)
        #expect(headed == plain)
        for (a, b) in zip(headedLogprobs, plainLogprobs) { #expect(abs(a - b) < 1e-4) }
        #expect(head.begun.count == 1 && head.begun[0].count == weight.shape[0])
    }

    @Test func aShiftedHiddenStateChangesTheTokens() throws {
        let (model, weight) = try setUp()
        let (plain, _) = try greedy(model, head: nil)
        var shift = [Float](repeating: 0, count: weight.shape[0])
        for i in shift.indices { shift[i] = i % 2 == 0 ? 4 : -4 }
        let (shifted, _) = try greedy(model, head: ShiftedHead(weight: weight, shift: shift))
        #expect(shifted != plain)
    }

    @Test func aHeadWithoutATappedHiddenStateIsRefused() throws {
        let model = try LanguageModel(path: Fixtures.path("models/llama-optimum/model.onnx"))
        let head = ShiftedHead(weight: Tensor(zeros: .float32, shape: [32, 128]), shift: [])
        #expect(throws: LanguageModelError.self) { _ = try TokenGenerator(model: model, prompt: [1], head: head) }
    }
}
