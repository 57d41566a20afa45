import Foundation
import TensorCore

/// The deterministic RNG used for initialisation and Gumbel noise: xoshiro256** seeded through
/// SplitMix64. Its whole state is four words, saved in checkpoints so a resumed run draws the same
/// noise as an uninterrupted one. (It does not reproduce torch's RNG: goldens feed their noise and
/// initial weights explicitly.)
public typealias LPCRandom = Xoshiro256

extension Xoshiro256 {
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
