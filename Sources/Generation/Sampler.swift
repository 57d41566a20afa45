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

/// xoshiro256** seeded through SplitMix64: the same seed gives the same tokens on every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    public mutating func next() -> UInt64 {
        let result = rotate(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotate(state.3, 45)
        return result
    }

    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}
