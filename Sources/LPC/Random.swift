import Foundation

/// The deterministic RNG used for initialisation and Gumbel noise: xoshiro256** seeded through
/// SplitMix64. Its whole state is four words, saved in checkpoints so a resumed run draws the same
/// noise as an uninterrupted one. (It does not reproduce torch's RNG: goldens feed their noise and
/// initial weights explicitly.)
public struct LPCRandom: RandomNumberGenerator, Sendable, Equatable {
    public var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var s = seed
        func splitmix() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    public init(state: [UInt64]) {
        precondition(state.count == 4 && state.contains { $0 != 0 }, "xoshiro256** needs 4 words, not all zero")
        self.state = (state[0], state[1], state[2], state[3])
    }

    public var stateWords: [UInt64] { [state.0, state.1, state.2, state.3] }

    public static func == (a: LPCRandom, b: LPCRandom) -> Bool { a.stateWords == b.stateWords }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotl(state.3, 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in the open interval (0, 1), 53 bits.
    @inline(__always)
    public mutating func uniformOpen() -> Double {
        (Double(next() >> 11) + 0.5) * 0x1p-53
    }

    /// Standard Gumbel: −log(−log u).
    @inline(__always)
    public mutating func gumbel() -> Float {
        Float(-Foundation.log(-Foundation.log(uniformOpen())))
    }

    /// Standard normal (Box–Muller, one value per call).
    public mutating func normal() -> Double {
        let u1 = uniformOpen(), u2 = uniformOpen()
        return (-2 * Foundation.log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// Fills `buffer` with standard Gumbel noise.
    public mutating func fillGumbel(_ buffer: inout [Float]) {
        for i in buffer.indices { buffer[i] = gumbel() }
    }

    /// Fresh Gumbel noise for `pairs` rows of `codes` logits.
    public mutating func gumbelNoise(pairs: Int, codes: Int) -> [Float] {
        var a = [Float](repeating: 0, count: pairs * codes)
        fillGumbel(&a)
        return a
    }
}
