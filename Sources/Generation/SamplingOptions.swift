/// The sampling controls of one request, with transformers' defaults where it has them.
public struct SamplingOptions: Sendable {
    /// 0 means greedy decoding.
    public var temperature: Float = 1.0
    /// 0 disables top-k.
    public var topK: Int = 0
    /// 1 disables top-p.
    public var topP: Float = 1.0
    /// 0 disables min-p.
    public var minP: Float = 0
    /// 1 disables the repetition penalty.
    public var repetitionPenalty: Float = 1.0
    public var presencePenalty: Float = 0
    public var frequencyPenalty: Float = 0
    public var logitBias: [Int: Float] = [:]
    public var seed: UInt64 = 0
    public var greedy: Bool = false

    public init() {}

    /// The processor chain in transformers' order: bias and penalties, then temperature, top-k,
    /// top-p, min-p. Greedy decoding applies only the bias and penalties (they change the argmax).
    public func processors(promptLength: Int) -> [any LogitProcessor] {
        var chain: [any LogitProcessor] = []
        if !logitBias.isEmpty { chain.append(LogitBias(logitBias)) }
        if repetitionPenalty != 1 { chain.append(RepetitionPenalty(repetitionPenalty)) }
        if presencePenalty != 0 || frequencyPenalty != 0 {
            chain.append(PresenceFrequencyPenalty(presence: presencePenalty, frequency: frequencyPenalty, generatedFrom: promptLength))
        }
        if isGreedy { return chain }
        if temperature != 1 { chain.append(Temperature(temperature)) }
        if topK > 0 { chain.append(TopK(topK)) }
        if topP < 1 { chain.append(TopP(topP)) }
        if minP > 0 { chain.append(MinP(minP)) }
        return chain
    }

    public var isGreedy: Bool { greedy || temperature == 0 }

    /// Checks ranges; the message names the option as the CLI spells it.
    public func validate() throws(GenerationError) {
        guard temperature >= 0, temperature.isFinite else { throw .invalidOption("--temperature must be ≥ 0, got \(temperature)") }
        guard topK >= 0 else { throw .invalidOption("--top-k must be ≥ 0, got \(topK)") }
        guard topP > 0, topP <= 1 else { throw .invalidOption("--top-p must be in (0, 1], got \(topP)") }
        guard minP >= 0, minP <= 1 else { throw .invalidOption("--min-p must be in [0, 1], got \(minP)") }
        guard repetitionPenalty > 0, repetitionPenalty.isFinite else { throw .invalidOption("--repetition-penalty must be > 0, got \(repetitionPenalty)") }
        guard presencePenalty.isFinite, frequencyPenalty.isFinite else { throw .invalidOption("penalties must be finite numbers") }
    }
}

public enum GenerationError: Error, CustomStringConvertible, Equatable {
    case invalidOption(String)
    case emptyPrompt
    case tokenOutOfRange(id: Int, vocabulary: Int)

    public var description: String {
        switch self {
        case let .invalidOption(message): message
        case .emptyPrompt: "the prompt is empty: give at least one token"
        case let .tokenOutOfRange(id, vocabulary): "token id \(id) is outside the vocabulary (0..<\(vocabulary))"
        }
    }
}
