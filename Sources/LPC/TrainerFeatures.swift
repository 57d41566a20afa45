import Foundation
import TensorCore

/// A cached `FeatureSet` (data/feature module) as the trainer's `PairFeatureSource`.
///
/// Mapping (FeatureSet.swift's layout: hidden row i of a response is h at position P−1+i):
/// h_x = row 0, h_{x,y} = row n, the predicting rows are rows 0 … n−1 with the response tokens as
/// ids. Reference log-probs: by default recomputed from the cached hidden states with
/// `FrozenLMHead.sequenceLogProb` (the training kernel, as LPC's README asks: an untrained head then
/// reproduces them up to summation noise); `.cached` uses the backbone's own logits as extracted.
public final class CachedPairFeatures: PairFeatureSource {
    public enum Reference: String, Sendable { case recompute, cached }

    public let featureSet: FeatureSet
    /// [pairs][2]: summed reference log-probs (chosen, rejected).
    let reference: [(Float, Float)]

    public init(_ set: FeatureSet, lmHead: FrozenLMHead, reference: Reference = .recompute) throws {
        guard set.hiddenSize == lmHead.hiddenSize else {
            throw LPCError.invalidBatch("features have d = \(set.hiddenSize) but the LM head has d = \(lmHead.hiddenSize)")
        }
        self.featureSet = set
        switch reference {
        case .cached:
            self.reference = set.pairs.map { (Float($0.chosen.refLogp), Float($0.rejected.refLogp)) }
        case .recompute:
            var scratch: [Float] = []
            func lp(_ s: SequenceFeatures) -> Float {
                s.tokens.withUnsafeBufferPointer { ids in
                    lmHead.sequenceLogProb(hidden: s.hidden.pointer(Float.self), ids: ids.baseAddress!, rows: s.count, scratch: &scratch)
                }
            }
            self.reference = set.pairs.map { (lp($0.chosen), lp($0.rejected)) }
        }
    }

    public var hiddenSize: Int { featureSet.hiddenSize }
    public var pairCount: Int { featureSet.pairs.count }
    public func source(ofPair i: Int) -> String? { featureSet.pairs[i].source }

    public func batch(_ pairs: [Int]) throws -> PreferenceBatch {
        var b = PreferenceBatch(hiddenSize: featureSet.hiddenSize)
        let d = featureSet.hiddenSize
        var rows = 0
        for i in pairs { rows += featureSet.pairs[i].chosen.count + featureSet.pairs[i].rejected.count }
        b.reserve(pairs: pairs.count, rows: rows)
        for i in pairs {
            guard i >= 0 && i < featureSet.pairs.count else { throw LPCError.invalidBatch("pair index \(i) out of 0..<\(featureSet.pairs.count)") }
            let p = featureSet.pairs[i]
            try p.chosen.tokens.withUnsafeBufferPointer { cw in
                try p.rejected.tokens.withUnsafeBufferPointer { cl in
                    try b.append(promptHidden: p.chosen.promptHidden, chosenLastHidden: p.chosen.lastHidden,
                                 rejectedLastHidden: p.rejected.lastHidden,
                                 chosenTokens: UnsafeBufferPointer(start: p.chosen.hidden.pointer(Float.self), count: p.chosen.count * d),
                                 chosenIds: cw, chosenReferenceLogProb: reference[i].0,
                                 rejectedTokens: UnsafeBufferPointer(start: p.rejected.hidden.pointer(Float.self), count: p.rejected.count * d),
                                 rejectedIds: cl, rejectedReferenceLogProb: reference[i].1)
                }
            }
        }
        return b
    }
}

extension FrozenLMHead {
    /// The frozen head found in the graph (`LMHeadTap`): W [vocab, d] as is (tied embeddings: no
    /// copy) or transposed from [d, vocab]. Heads with a bias are not supported by the training kernel.
    public convenience init(tap: LMHeadTap) throws {
        guard tap.bias == nil else {
            throw LPCError.invalidConfig("the LM head (\(tap.weightDescription)) has a bias; LPC training supports bias-free heads only")
        }
        switch tap.layout {
        case .vocabByHidden:
            try self.init(weight: tap.weight)
        case .hiddenByVocab:
            let d = tap.weight.shape[0], V = tap.weight.shape[1]
            let src = tap.weight.pointer(Float.self)
            var w = [Float](repeating: 0, count: V * d)
            for i in 0..<d { for v in 0..<V { w[v * d + i] = src[i * V + v] } }
            try self.init(weight: w, vocabSize: V, hiddenSize: d)
        }
    }
}
