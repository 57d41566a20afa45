/// Computes next-token logits from the final hidden state in place of the model's own LM head:
/// how a latent preference code conditions generation (LPC.md, Inference). The head decides once,
/// from the last prompt position, and then maps every step's hidden state the same way.
public protocol LogitsHead: AnyObject {
    /// Called once after the prompt's forward pass with the hidden state of its last token, [d].
    func begin(promptHidden: [Float]) throws -> HeadChoice
    /// Logits [vocab] for the hidden state [d] of the position being predicted from.
    func logits(hidden: [Float]) -> [Float]
}

/// What a head chose for a request, as reported in `--format jsonl`.
public struct HeadChoice: Sendable, Equatable {
    /// How the code was chosen: auto, sample, mix, or fixed.
    public let mode: String
    /// The code applied (nil for `mix`, a blend of all codes).
    public let code: Int?
    /// The prior's most likely codes with their probabilities, most likely first.
    public let top: [CodeProbability]

    public init(mode: String, code: Int?, top: [CodeProbability]) {
        self.mode = mode
        self.code = code
        self.top = top
    }
}

public struct CodeProbability: Sendable, Equatable {
    public let code: Int
    public let probability: Float
    public init(code: Int, probability: Float) {
        self.code = code
        self.probability = probability
    }
}
