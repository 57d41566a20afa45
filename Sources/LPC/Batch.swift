import Foundation

/// The cached backbone features of B preference pairs, packed for one forward/backward.
///
/// Sequences are ordered (chosen_0, rejected_0, chosen_1, rejected_1, …): sequence s = 2i is pair i's
/// chosen response, s = 2i+1 its rejected one. Every sequence's token rows are packed into one
/// [N, d] matrix so the adapter and the LM head run as a few large sgemms.
///
/// A response's rows are the final hidden states (after the final norm: the LM head's input) at the
/// positions that *predict* its tokens — for prompt length P and response length T, positions
/// P−1 … P+T−2 — and `tokenIds` are the response tokens they predict.
public struct PreferenceBatch: Sendable {
    public let hiddenSize: Int
    /// h_x [B, d]: final hidden state at the last prompt token.
    public private(set) var promptHidden: [Float] = []
    /// h_{x,y_w} [B, d]: final hidden state at the last token of prompt + chosen.
    public private(set) var chosenLastHidden: [Float] = []
    /// h_{x,y_l} [B, d]: the same for prompt + rejected.
    public private(set) var rejectedLastHidden: [Float] = []
    /// [N, d]: every sequence's predicting rows, concatenated in sequence order.
    public private(set) var tokenHidden: [Float] = []
    /// [N]: the response token each row predicts.
    public private(set) var tokenIds: [Int32] = []
    /// [2B + 1]: sequence s owns rows sequenceStarts[s] ..< sequenceStarts[s+1].
    public private(set) var sequenceStarts: [Int] = [0]
    /// [2B]: log π_ref(y|x) summed over the response tokens (the backbone without a head).
    public private(set) var referenceLogProbs: [Float] = []

    public init(hiddenSize: Int) {
        self.hiddenSize = hiddenSize
    }

    public var pairCount: Int { referenceLogProbs.count / 2 }
    public var rowCount: Int { tokenIds.count }
    public func length(ofSequence s: Int) -> Int { sequenceStarts[s + 1] - sequenceStarts[s] }

    public mutating func reserve(pairs: Int, rows: Int) {
        let d = hiddenSize
        promptHidden.reserveCapacity(pairs * d)
        chosenLastHidden.reserveCapacity(pairs * d)
        rejectedLastHidden.reserveCapacity(pairs * d)
        tokenHidden.reserveCapacity(rows * d)
        tokenIds.reserveCapacity(rows)
        sequenceStarts.reserveCapacity(2 * pairs + 1)
        referenceLogProbs.reserveCapacity(2 * pairs)
    }

    /// Appends one pair. Buffers: promptHidden/chosenLast/rejectedLast [d]; chosenTokens [Tw, d] with
    /// chosenIds [Tw]; rejectedTokens [Tl, d] with rejectedIds [Tl]; Tw, Tl ≥ 1.
    public mutating func append(promptHidden hx: UnsafeBufferPointer<Float>,
                                chosenLastHidden hw: UnsafeBufferPointer<Float>,
                                rejectedLastHidden hl: UnsafeBufferPointer<Float>,
                                chosenTokens: UnsafeBufferPointer<Float>, chosenIds: UnsafeBufferPointer<Int32>,
                                chosenReferenceLogProb: Float,
                                rejectedTokens: UnsafeBufferPointer<Float>, rejectedIds: UnsafeBufferPointer<Int32>,
                                rejectedReferenceLogProb: Float) throws {
        let d = hiddenSize
        let pair = pairCount
        func bad(_ s: String) -> LPCError { .invalidBatch("pair \(pair): \(s)") }
        guard hx.count == d, hw.count == d, hl.count == d else {
            throw bad("prompt/chosen/rejected last hidden states must have d = \(d) values, got \(hx.count)/\(hw.count)/\(hl.count)")
        }
        for (what, rows, ids) in [("chosen", chosenTokens, chosenIds), ("rejected", rejectedTokens, rejectedIds)] {
            guard ids.count >= 1 else { throw bad("\(what) response has no tokens") }
            guard rows.count == ids.count * d else {
                throw bad("\(what) token hidden states hold \(rows.count) values, expected \(ids.count) tokens × d \(d)")
            }
        }
        promptHidden.append(contentsOf: hx)
        chosenLastHidden.append(contentsOf: hw)
        rejectedLastHidden.append(contentsOf: hl)
        tokenHidden.append(contentsOf: chosenTokens)
        tokenIds.append(contentsOf: chosenIds)
        sequenceStarts.append(tokenIds.count)
        tokenHidden.append(contentsOf: rejectedTokens)
        tokenIds.append(contentsOf: rejectedIds)
        sequenceStarts.append(tokenIds.count)
        referenceLogProbs.append(chosenReferenceLogProb)
        referenceLogProbs.append(rejectedReferenceLogProb)
    }

    /// Array convenience for `append(promptHidden:…)`.
    public mutating func append(promptHidden: [Float], chosenLastHidden: [Float], rejectedLastHidden: [Float],
                                chosenTokens: [Float], chosenIds: [Int32], chosenReferenceLogProb: Float,
                                rejectedTokens: [Float], rejectedIds: [Int32], rejectedReferenceLogProb: Float) throws {
        try promptHidden.withUnsafeBufferPointer { hx in
            try chosenLastHidden.withUnsafeBufferPointer { hw in
                try rejectedLastHidden.withUnsafeBufferPointer { hl in
                    try chosenTokens.withUnsafeBufferPointer { ct in
                        try chosenIds.withUnsafeBufferPointer { ci in
                            try rejectedTokens.withUnsafeBufferPointer { rt in
                                try rejectedIds.withUnsafeBufferPointer { ri in
                                    try append(promptHidden: hx, chosenLastHidden: hw, rejectedLastHidden: hl,
                                               chosenTokens: ct, chosenIds: ci, chosenReferenceLogProb: chosenReferenceLogProb,
                                               rejectedTokens: rt, rejectedIds: ri, rejectedReferenceLogProb: rejectedReferenceLogProb)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// A batch of the given pairs of this one (e.g. micro-batches), in that order.
    public func subset(_ pairs: [Int]) throws -> PreferenceBatch {
        var out = PreferenceBatch(hiddenSize: hiddenSize)
        let d = hiddenSize
        for i in pairs {
            guard i >= 0 && i < pairCount else { throw LPCError.invalidBatch("pair index \(i) out of 0..<\(pairCount)") }
            let cw = sequenceStarts[2 * i], cl = sequenceStarts[2 * i + 1], end = sequenceStarts[2 * i + 2]
            try out.append(promptHidden: Array(promptHidden[i * d..<(i + 1) * d]),
                           chosenLastHidden: Array(chosenLastHidden[i * d..<(i + 1) * d]),
                           rejectedLastHidden: Array(rejectedLastHidden[i * d..<(i + 1) * d]),
                           chosenTokens: Array(tokenHidden[cw * d..<cl * d]), chosenIds: Array(tokenIds[cw..<cl]),
                           chosenReferenceLogProb: referenceLogProbs[2 * i],
                           rejectedTokens: Array(tokenHidden[cl * d..<end * d]), rejectedIds: Array(tokenIds[cl..<end]),
                           rejectedReferenceLogProb: referenceLogProbs[2 * i + 1])
        }
        return out
    }

    /// Checks ids against the vocabulary and sizes against d (called by the model).
    func validate(hiddenSize d: Int, vocabSize: Int) throws {
        guard hiddenSize == d else {
            throw LPCError.invalidBatch("features have d = \(hiddenSize) but the head was built for d = \(d)")
        }
        guard pairCount >= 1 else { throw LPCError.invalidBatch("empty batch") }
        for (t, id) in tokenIds.enumerated() where id < 0 || Int(id) >= vocabSize {
            let s = sequenceStarts.lastIndex { $0 <= t } ?? 0
            throw LPCError.invalidBatch("pair \(s / 2) \(s % 2 == 0 ? "chosen" : "rejected") token \(t - sequenceStarts[s]): id \(id) outside the vocabulary 0..<\(vocabSize)")
        }
    }
}
