import Foundation
import TensorCore

/// One generated token: its id, the text it completes (possibly empty while a UTF-8 character is
/// incomplete), and its log-probability under the model (log-softmax of the raw logits).
public struct GeneratedToken: Sendable, Equatable {
    public let id: Int
    public let text: String
    public let logprob: Float
}

/// Why generation ended.
public enum StopReason: String, Sendable {
    case eos, stopString = "stop_string", maxTokens = "max_tokens", cancelled
}

/// Pulls tokens one at a time: prefill on the first call, then one decode step per call.
/// `decode` turns each new id into the text it adds (a streaming detokenizer); stop strings are
/// matched on that text.
public final class TokenGenerator {
    public let model: LanguageModel
    public let options: SamplingOptions
    public let maxNewTokens: Int
    public let eosIDs: Set<Int>
    public let stopStrings: [String]
    public private(set) var history: [Int]
    public private(set) var cache: KVCache
    public private(set) var stopReason: StopReason?
    public private(set) var text = ""
    /// Seconds spent in the prompt's forward pass and in decode steps.
    public private(set) var prefillSeconds: Double = 0
    public private(set) var decodeSeconds: Double = 0
    public private(set) var generatedCount = 0

    private let promptLength: Int
    private let processors: [any LogitProcessor]
    private var generator: SeededGenerator
    private var pendingLogits: [Float]?
    private let decode: (Int) -> String
    /// Replaces the model's LM head (e.g. a latent-code head); nil: the model's own logits.
    private let head: (any LogitsHead)?
    /// What the head chose at prefill (e.g. the latent code), for reports.
    public private(set) var headChoice: HeadChoice?

    public init(model: LanguageModel, prompt: [Int], options: SamplingOptions = SamplingOptions(), maxNewTokens: Int = 256,
                eosIDs: Set<Int> = [], stopStrings: [String] = [], cache: KVCache? = nil,
                head: (any LogitsHead)? = nil, decode: @escaping (Int) -> String = { _ in "" }) throws {
        try options.validate()
        guard !prompt.isEmpty else { throw GenerationError.emptyPrompt }
        if let vocabulary = model.vocabularySize, let bad = prompt.first(where: { $0 < 0 || $0 >= vocabulary }) {
            throw GenerationError.tokenOutOfRange(id: bad, vocabulary: vocabulary)
        }
        self.model = model
        self.options = options
        self.maxNewTokens = maxNewTokens
        self.eosIDs = eosIDs
        self.stopStrings = stopStrings
        self.cache = cache ?? model.emptyCache()
        self.decode = decode
        self.head = head
        if head != nil && model.hiddenStateValue == nil {
            throw LanguageModelError("a logits head needs the model's hidden state: create the LanguageModel with hiddenStateValue")
        }
        history = prompt
        promptLength = prompt.count
        processors = options.processors(promptLength: prompt.count)
        generator = SeededGenerator(seed: options.seed)
    }

    /// The next token, or nil once a stop condition has been met.
    public func next() throws -> GeneratedToken? {
        guard stopReason == nil else { return nil }
        if generatedCount >= maxNewTokens {
            stopReason = .maxTokens
            return nil
        }
        let rawLogits: [Float]
        if let pending = pendingLogits {
            rawLogits = pending
        } else {
            // Prefill: everything in history the cache has not seen yet.
            let start = Date()
            let logits = try step(Array(history[cache.length...]))
            if let head { headChoice = try head.begin(promptHidden: model.lastHiddenState) }
            prefillSeconds += Date().timeIntervalSince(start)
            rawLogits = nextLogits(logits)
        }
        var logits = rawLogits
        for processor in processors { processor.process(&logits, history: history) }
        let id = (options.isGreedy ? Sampler.greedy : Sampler.random).sample(logits, using: &generator)
        let token = GeneratedToken(id: id, text: decode(id), logprob: logSoftmax(rawLogits, at: id))
        history.append(id)
        generatedCount += 1
        text += token.text

        if eosIDs.contains(id) {
            stopReason = .eos
        } else if stopStrings.contains(where: { text.contains($0) }) {
            stopReason = .stopString
        } else if generatedCount < maxNewTokens {
            let start = Date()
            let logits = try step([id])
            pendingLogits = nextLogits(logits)
            decodeSeconds += Date().timeIntervalSince(start)
        } else {
            stopReason = .maxTokens
        }
        return token
    }

    /// Marks the generation cancelled; later `next()` calls return nil.
    public func cancel() {
        if stopReason == nil { stopReason = .cancelled }
    }

    /// Runs tokens through the model: with a head, only up to the hidden state the head reads.
    private func step(_ tokens: [Int]) throws -> Tensor? {
        if head != nil {
            try model.advance(tokens, cache: &cache)
            return nil
        }
        return try model.forward(tokens, cache: &cache)
    }

    /// The next token's logits: the head's from the last hidden state, or the model's own.
    private func nextLogits(_ logits: Tensor?) -> [Float] {
        if let head { return head.logits(hidden: model.lastHiddenState) }
        return logits.map(Self.lastRow) ?? []
    }

    /// The last position's logits of [1, seq, vocab] as Floats.
    static func lastRow(_ logits: Tensor) -> [Float] {
        let vocab = logits.shape.last ?? 0
        let start = (logits.count / max(vocab, 1) - 1) * vocab
        if logits.dtype == .float32 {
            return Array(UnsafeBufferPointer(start: logits.pointer(Float.self) + start, count: vocab))
        }
        return logits.doubles()[start..<start + vocab].map { Float($0) }
    }
}

/// Generation events for `AsyncThrowingStream` consumers.
public enum GenerationEvent: Sendable {
    case token(GeneratedToken)
    case finished(GenerationStats)
}

public struct GenerationStats: Sendable, Codable {
    public let promptTokens: Int
    public let generatedTokens: Int
    public let stopReason: String
    public let prefillSeconds: Double
    public let decodeSeconds: Double
}

extension TokenGenerator {
    public var stats: GenerationStats {
        GenerationStats(promptTokens: promptLength, generatedTokens: generatedCount,
                        stopReason: (stopReason ?? .maxTokens).rawValue,
                        prefillSeconds: prefillSeconds, decodeSeconds: decodeSeconds)
    }

    /// The tokens as an async stream. Cancelling the consuming task (or dropping the stream)
    /// stops generation at the next token.
    public func stream() -> AsyncThrowingStream<GenerationEvent, Error> {
        let generator = UncheckedBox(self)
        return AsyncThrowingStream { continuation in
            let task = Task.detached {
                do {
                    while !Task.isCancelled, let token = try generator.value.next() {
                        continuation.yield(.token(token))
                    }
                    if Task.isCancelled { generator.value.cancel() }
                    continuation.yield(.finished(generator.value.stats))
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// Moves a non-Sendable reference into a detached task that is its only user.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
