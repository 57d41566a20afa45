import Generation
import TensorCore

/// How generation picks the latent code (LPC.md, Inference): the prior's argmax (`auto`), a draw
/// from the prior (`sample`), the prior-weighted mix of all codes (`mix`), or a code chosen by hand.
public enum CodeMode: Sendable, Equatable, CustomStringConvertible {
    case auto
    case sample(seed: UInt64)
    case mix
    case fixed(Int)

    /// Parses the CLI spelling: auto, sample, mix, or a code index.
    public init?(argument: String, seed: UInt64) {
        switch argument {
        case "auto": self = .auto
        case "sample": self = .sample(seed: seed)
        case "mix": self = .mix
        default:
            guard let k = Int(argument), k >= 0 else { return nil }
            self = .fixed(k)
        }
    }

    public var description: String {
        switch self {
        case .auto: "auto"
        case .sample: "sample"
        case .mix: "mix"
        case .fixed: "fixed"
        }
    }
}

/// Conditions generation on a trained LPC head: at prefill the prior reads the last prompt hidden
/// state and the code z is chosen once; every step's logits are then
/// LMHead(h + z + U·gelu(V·(h + z))), the same forward the training code uses (`adaptHidden`).
/// A head trained with --no-lpc has no codes: only its adapter applies (z = 0).
public final class LatentCodeHead: LogitsHead {
    public let model: LPCModel
    public let lmHead: FrozenLMHead
    public let mode: CodeMode
    /// How many of the prior's codes to report.
    public let reportTop: Int
    /// The code vector chosen at prefill, [d]; nil before `begin` or without LPC.
    public private(set) var z: [Float]?

    public init(model: LPCModel, lmHead: FrozenLMHead, mode: CodeMode, reportTop: Int = 5) throws {
        if case let .fixed(k) = mode, !(0..<model.config.codes).contains(k) {
            throw LPCError.invalidConfig("--code \(k) is outside this head's codebook (0..<\(model.config.codes))")
        }
        self.model = model
        self.lmHead = lmHead
        self.mode = mode
        self.reportTop = reportTop
    }

    public func begin(promptHidden: [Float]) throws -> HeadChoice {
        guard model.config.useLPC else {
            z = nil
            return HeadChoice(mode: "none", code: nil, top: [])
        }
        let prior = model.priorProbabilities(promptHidden: promptHidden)
        let top = prior.indices.sorted { prior[$0] > prior[$1] || (prior[$0] == prior[$1] && $0 < $1) }
            .prefix(reportTop).map { CodeProbability(code: $0, probability: prior[$0]) }
        let code: Int?
        switch mode {
        case .auto:
            code = top.first?.code
        case let .sample(seed):
            var generator = Xoshiro256(seed: seed)
            let draw = Float(Double(generator.next() >> 11) * 0x1.0p-53)
            var cumulative: Float = 0
            var chosen = prior.count - 1
            for (k, p) in prior.enumerated() {
                cumulative += p
                if draw < cumulative { chosen = k; break }
            }
            code = chosen
        case .mix:
            code = nil
        case let .fixed(k):
            code = k
        }
        z = try model.code(code.map { .fixed($0) } ?? .priorMean, promptHidden: promptHidden)
        return HeadChoice(mode: mode.description, code: code, top: top)
    }

    public func logits(hidden: [Float]) -> [Float] {
        lmHead.logits(hidden: model.adaptHidden(hidden, rows: 1, code: z), rows: 1)
    }
}
