import Foundation

/// One step of the sampling chain: rewrites the logits of the next token in place, given the
/// tokens so far (prompt and generated). Processors run in order; a sampler ends the chain.
public protocol LogitProcessor: Sendable {
    func process(_ logits: inout [Float], history: [Int])
}

/// Adds a fixed bias per token id (OpenAI's `logit_bias`); -inf bans a token.
public struct LogitBias: LogitProcessor {
    public let bias: [Int: Float]
    public init(_ bias: [Int: Float]) { self.bias = bias }
    public func process(_ logits: inout [Float], history: [Int]) {
        for (id, value) in bias where id >= 0 && id < logits.count { logits[id] += value }
    }
}

/// CTRL-style repetition penalty as transformers applies it: a seen token's logit is divided by
/// `penalty` when positive and multiplied when negative (each seen token once).
public struct RepetitionPenalty: LogitProcessor {
    public let penalty: Float
    public init(_ penalty: Float) { self.penalty = penalty }
    public func process(_ logits: inout [Float], history: [Int]) {
        for id in Set(history) where id >= 0 && id < logits.count {
            logits[id] = logits[id] > 0 ? logits[id] / penalty : logits[id] * penalty
        }
    }
}

/// OpenAI-style presence and frequency penalties: logit −= presence·[count > 0] + frequency·count,
/// counting only generated tokens (`history` from `generatedFrom` on).
public struct PresenceFrequencyPenalty: LogitProcessor {
    public let presence: Float
    public let frequency: Float
    public let generatedFrom: Int
    public init(presence: Float, frequency: Float, generatedFrom: Int) {
        self.presence = presence
        self.frequency = frequency
        self.generatedFrom = generatedFrom
    }
    public func process(_ logits: inout [Float], history: [Int]) {
        var counts: [Int: Int] = [:]
        for id in history.dropFirst(generatedFrom) { counts[id, default: 0] += 1 }
        for (id, count) in counts where id >= 0 && id < logits.count {
            logits[id] -= presence + frequency * Float(count)
        }
    }
}

/// Divides logits by the temperature (> 0).
public struct Temperature: LogitProcessor {
    public let temperature: Float
    public init(_ temperature: Float) { self.temperature = temperature }
    public func process(_ logits: inout [Float], history: [Int]) {
        for i in logits.indices { logits[i] /= temperature }
    }
}

/// Keeps the `k` largest logits (ties at the k-th value kept, as transformers does), the rest −inf.
public struct TopK: LogitProcessor {
    public let k: Int
    public init(_ k: Int) { self.k = k }
    public func process(_ logits: inout [Float], history: [Int]) {
        guard k > 0, k < logits.count else { return }
        let threshold = logits.sorted(by: >)[k - 1]
        for i in logits.indices where logits[i] < threshold { logits[i] = -.infinity }
    }
}

/// Nucleus sampling: keeps the smallest set of most likely tokens whose probability reaches `p`
/// (always at least one), the rest −inf.
public struct TopP: LogitProcessor {
    public let p: Float
    public init(_ p: Float) { self.p = p }
    public func process(_ logits: inout [Float], history: [Int]) {
        guard p < 1 else { return }
        let probabilities = softmax(logits)
        let order = logits.indices.sorted { probabilities[$0] > probabilities[$1] || (probabilities[$0] == probabilities[$1] && $0 < $1) }
        var cumulative: Float = 0
        var keep = Set<Int>()
        for id in order {
            keep.insert(id)
            cumulative += probabilities[id]
            if cumulative >= p { break }
        }
        for i in logits.indices where !keep.contains(i) { logits[i] = -.infinity }
    }
}

/// Min-p: drops tokens whose probability is below `minP` × the top token's probability.
public struct MinP: LogitProcessor {
    public let minP: Float
    public init(_ minP: Float) { self.minP = minP }
    public func process(_ logits: inout [Float], history: [Int]) {
        guard minP > 0, let top = logits.max(), top.isFinite else { return }
        // p_i / p_max = exp(l_i − l_max), so compare in log space.
        let threshold = top + logf(minP)
        for i in logits.indices where logits[i] < threshold { logits[i] = -.infinity }
    }
}

/// Softmax in Float with max subtraction; all −inf gives a uniform distribution over nothing (zeros).
public func softmax(_ logits: [Float]) -> [Float] {
    guard let top = logits.max(), top > -.infinity else { return [Float](repeating: 0, count: logits.count) }
    var result = logits.map { expf($0 - top) }
    let sum = result.reduce(0, +)
    for i in result.indices { result[i] /= sum }
    return result
}

/// log-softmax of one entry, computed stably.
public func logSoftmax(_ logits: [Float], at index: Int) -> Float {
    guard let top = logits.max(), top > -.infinity else { return -.infinity }
    var sum: Double = 0
    for value in logits { sum += Double(expf(value - top)) }
    return logits[index] - top - Float(log(sum))
}

