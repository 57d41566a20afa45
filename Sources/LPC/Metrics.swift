import Foundation

/// Batch metrics, kept as sums over pairs so micro-batches merge exactly (`merge`), reported as
/// means under TRL's names plus LPC's own (`values`).
///
/// - loss: preference loss + λ·KL (the optimised quantity); loss/preference: without the KL term
/// - rewards/chosen|rejected: scale·(log π_θ − log π_ref) with SUMMED log-probs (scale = β, τ for
///   IPO), whatever the objective; rewards/accuracies: share of pairs with r_w > r_l (strict);
///   rewards/margins: mean r_w − r_l
/// - logps/chosen|rejected: mean summed log π_θ(y|x,z)
/// - kl: mean KL(q‖p); entropy/prior, entropy/posterior: mean entropies (nats);
///   codes/perplexity: exp(entropy of the batch-average posterior) — effective number of codes used
public struct LPCMetrics: Sendable, Equatable {
    public private(set) var pairs = 0
    var loss = 0.0, preference = 0.0
    var chosenReward = 0.0, rejectedReward = 0.0, correct = 0.0, margin = 0.0
    var chosenLogProb = 0.0, rejectedLogProb = 0.0
    var kl = 0.0, priorEntropy = 0.0, posteriorEntropy = 0.0
    var posteriorSum: [Double]
    var codePairs = 0

    public init(codes: Int) {
        posteriorSum = [Double](repeating: 0, count: codes)
    }

    mutating func addPair(loss l: Double, chosenReward rw: Double, rejectedReward rl: Double,
                          chosenLogProb pw: Double, rejectedLogProb pl: Double) {
        pairs += 1
        loss += l
        preference += l
        chosenReward += rw
        rejectedReward += rl
        correct += rw > rl ? 1 : 0
        margin += rw - rl
        chosenLogProb += pw
        rejectedLogProb += pl
    }

    mutating func addCodes(kl k: Double, klWeight: Double, priorEntropy hp: Double, posteriorEntropy hq: Double,
                           posterior q: [Double]) {
        codePairs += 1
        kl += k
        loss += klWeight * k
        priorEntropy += hp
        posteriorEntropy += hq
        for i in q.indices { posteriorSum[i] += q[i] }
    }

    /// Adds another micro-batch's sums.
    public mutating func merge(_ o: LPCMetrics) {
        pairs += o.pairs; loss += o.loss; preference += o.preference
        chosenReward += o.chosenReward; rejectedReward += o.rejectedReward; correct += o.correct; margin += o.margin
        chosenLogProb += o.chosenLogProb; rejectedLogProb += o.rejectedLogProb
        kl += o.kl; priorEntropy += o.priorEntropy; posteriorEntropy += o.posteriorEntropy
        codePairs += o.codePairs
        if posteriorSum.count == o.posteriorSum.count {
            for i in posteriorSum.indices { posteriorSum[i] += o.posteriorSum[i] }
        }
    }

    /// Mean loss over pairs (including λ·KL).
    public var meanLoss: Double { pairs > 0 ? loss / Double(pairs) : .nan }

    /// Means under their logged names.
    public var values: [String: Double] {
        let n = Double(max(pairs, 1))
        var v: [String: Double] = [
            "loss": loss / n, "loss/preference": preference / n,
            "rewards/chosen": chosenReward / n, "rewards/rejected": rejectedReward / n,
            "rewards/accuracies": correct / n, "rewards/margins": margin / n,
            "logps/chosen": chosenLogProb / n, "logps/rejected": rejectedLogProb / n,
        ]
        if codePairs > 0 {
            let c = Double(codePairs)
            v["kl"] = kl / c
            v["entropy/prior"] = priorEntropy / c
            v["entropy/posterior"] = posteriorEntropy / c
            var h = 0.0
            for s in posteriorSum where s > 0 {
                let q = s / c
                h -= q * log(q)
            }
            v["codes/perplexity"] = exp(h)
        }
        return v
    }
}
