import TensorCore

/// Ends the sampling chain: picks the next token from processed logits.
public enum Sampler: Sendable {
    /// The most likely token (the lowest id among ties).
    case greedy
    /// A draw from softmax(logits) with a seeded generator.
    case random

    public func sample(_ logits: [Float], using generator: inout SeededGenerator) -> Int {
        switch self {
        case .greedy:
            var best = 0
            for i in logits.indices where logits[i] > logits[best] { best = i }
            return best
        case .random:
            let probabilities = softmax(logits)
            let draw = Float(Double(generator.next() >> 11) * 0x1.0p-53)
            var cumulative: Float = 0
            var last = 0
            for (id, probability) in probabilities.enumerated() where probability > 0 {
                cumulative += probability
                last = id
                if draw < cumulative { return id }
            }
            return last  // rounding left the draw just above the total
        }
    }
}

/// The sampler's random source: seeded, so the same seed gives the same tokens on every machine.
public typealias SeededGenerator = Xoshiro256
