import Foundation
import Testing
@testable import LPC

@Suite("Optimizer, schedules, evaluation")
struct TrainingTests {
    @Test("lr schedules equal transformers' warmup + cosine/linear/constant lambdas")
    func lrSchedules() {
        var o = OptimizerConfig(totalSteps: 10)
        o.warmupSteps = 2
        o.decay = .cosine
        let cosine = (0..<10).map { o.lrFactor(step: $0) }
        #expect(cosine[0] == 0 && cosine[1] == 0.5 && cosine[2] == 1)
        #expect(abs(cosine[6] - 0.5) < 1e-12)  // progress 4/8
        o.decay = .linear
        #expect(o.lrFactor(step: 6) == 0.5 && o.lrFactor(step: 10) == 0)
        o.decay = .constant
        #expect(o.lrFactor(step: 9) == 1)
        #expect(linearRamp(step: 0, totalSteps: 5, start: 0, end: 1) == 0)
        #expect(linearRamp(step: 4, totalSteps: 5, start: 0, end: 1) == 1)
        #expect(linearRamp(step: 2, totalSteps: 5, start: 1, end: 0.5) == 0.75)
        #expect(linearRamp(step: 9, totalSteps: 5, start: 1, end: 0.5) == 0.5)
    }

    @Test("AdamW step equals torch.optim.AdamW's single-tensor update; clipping as clip_grad_norm_")
    func adamw() {
        let opt = AdamW(parameterCount: 2)
        var p: [Float] = [1.0, -2.0]
        let g: [Float] = [0.5, -0.25]
        // torch: AdamW([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01), two steps with the same grad
        opt.update(params: &p, grads: g, lr: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01)
        opt.update(params: &p, grads: g, lr: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01)
        // p1 = p0·(1−0.001) − 0.1·sign(g); p2 = p1·(1−0.001) − 0.1·(m2/bc1)/(√(v2/bc2)+ε) = … − 0.1·1
        let e0 = (1.0 * 0.999 - 0.1) * 0.999 - 0.1, e1 = (-2.0 * 0.999 + 0.1) * 0.999 + 0.1
        #expect(abs(Double(p[0]) - e0) < 1e-6 && abs(Double(p[1]) - e1) < 1e-6, "\(p) vs \(e0), \(e1)")
        #expect(opt.step == 2)

        var grads: [Float] = [3, 4]
        let norm = clipGradientNorm(&grads, count: 2, maxNorm: 1)
        #expect(norm == 5)
        #expect(abs(grads[0] - 0.6) < 1e-6 && abs(grads[1] - 0.8) < 1e-6)
        var small: [Float] = [0.3, 0.4]
        clipGradientNorm(&small, count: 2, maxNorm: 1)
        #expect(small == [0.3, 0.4])
    }

    @Test("untrained head: policy = reference, so every pair ties (no LPC, and LPC with code none)")
    func untrainedTies() throws {
        let d = 8, V = 30
        var rng = LPCRandom(seed: 4)
        let head = try FrozenLMHead(weight: (0..<(V * d)).map { _ in Float(rng.normal()) }, vocabSize: V, hiddenSize: d)
        // A batch whose reference log-probs are the backbone's own.
        var batch = PreferenceBatch(hiddenSize: d)
        var scratch: [Float] = []
        for _ in 0..<3 {
            func seq(_ T: Int) -> ([Float], [Int32], Float) {
                let H = (0..<(T * d)).map { _ in Float(rng.normal()) }
                let ids = (0..<T).map { _ in Int32(rng.next() % UInt64(V)) }
                return (H, ids, head.sequenceLogProb(hidden: H, ids: ids, rows: T, scratch: &scratch))
            }
            let (hw, iw, rw) = seq(4), (hl, il, rl) = seq(2)
            try batch.append(promptHidden: [Float](repeating: 0.1, count: d), chosenLastHidden: [Float](repeating: 0.2, count: d),
                             rejectedLastHidden: [Float](repeating: 0.3, count: d), chosenTokens: hw, chosenIds: iw,
                             chosenReferenceLogProb: rw, rejectedTokens: hl, rejectedIds: il, rejectedReferenceLogProb: rl)
        }
        var cfg = LPCConfig(hiddenSize: d, vocabSize: V)
        cfg.useLPC = false
        let plain = try LPCModel(config: cfg, lmHead: head, seed: 1)
        let s = try plain.evaluate(batch, code: .none)
        #expect(s.chosenRewards.allSatisfy { abs($0) < 1e-5 } && s.rejectedRewards.allSatisfy { abs($0) < 1e-5 })
        #expect(s.accuracy == [0.5, 0.5, 0.5], "an untrained head ties every pair")
        cfg.useLPC = true
        cfg.codes = 4
        let lpc = try LPCModel(config: cfg, lmHead: head, seed: 1)
        let s2 = try lpc.evaluate(batch, code: .none)
        #expect(s2.chosenRewards.allSatisfy { abs($0) < 1e-5 })
        // With a code the policy moves (slightly: codebook σ = 0.02).
        let s3 = try lpc.evaluate(batch, code: .priorArgmax)
        #expect(s3.codes.allSatisfy { (0..<4).contains($0) })
        #expect(s3.prior.count == 12 && s3.posterior.count == 12)
        #expect(throws: LPCError.self) { _ = try plain.evaluate(batch, code: .priorArgmax) }
        #expect(throws: LPCError.self) { _ = try lpc.evaluate(batch, code: .fixed(4)) }
    }

    @Test("inference helpers reproduce the training forward: adaptHidden + lmHead.logits with code(k)")
    func inferenceMatchesEvaluate() throws {
        let d = 8, V = 30
        var rng = LPCRandom(seed: 8)
        let head = try FrozenLMHead(weight: (0..<(V * d)).map { _ in Float(rng.normal()) }, vocabSize: V, hiddenSize: d)
        var cfg = LPCConfig(hiddenSize: d, vocabSize: V)
        cfg.codes = 3
        cfg.rank = 4
        cfg.codebookInitStd = 0.5
        let model = try LPCModel(config: cfg, lmHead: head, seed: 2)
        try model.setParameter("head.up.weight", (0..<(d * 4)).map { _ in Float(rng.normal() * 0.3) })
        let batch = try syntheticBatches(d: d, vocab: V, batches: 1, pairs: 1, seed: 9)[0]
        let scores = try model.evaluate(batch, code: .fixed(2))
        let z = try model.code(.fixed(2), promptHidden: batch.promptHidden)
        let T = batch.length(ofSequence: 0)
        let ht = model.adaptHidden(Array(batch.tokenHidden[0..<(T * d)]), rows: T, code: z)
        let logits = head.logits(hidden: ht, rows: T)
        var total = 0.0
        for t in 0..<T {
            let row = logits[(t * V)..<((t + 1) * V)].map(Double.init)
            let mx = row.max()!
            total += row[Int(batch.tokenIds[t])] - mx - log(row.reduce(0) { $0 + exp($1 - mx) })
        }
        #expect(abs(total - Double(scores.chosenLogProbs[0])) < 1e-4)
        let p = model.priorProbabilities(promptHidden: batch.promptHidden)
        #expect(abs(p.reduce(0, +) - 1) < 1e-5)
        let zMax = try model.code(.priorArgmax, promptHidden: batch.promptHidden)
        #expect(zMax == model.parameter("codebook.weight")!.chunked(d)[p.indices.max { p[$0] < p[$1] }!])
    }

    @Test("training reduces the loss on a learnable synthetic problem (all objectives, with and without LPC)",
          arguments: [Objective.dpo, .simpo, .ipo], [true, false])
    func learns(_ objective: Objective, _ useLPC: Bool) throws {
        let (cfg0, _, head) = try CheckpointTests.setup(useLPC: useLPC, objective: objective)
        var opt = OptimizerConfig(totalSteps: 40)
        opt.learningRate = 0.02
        opt.warmupSteps = 3
        let training = try LPCTraining(model: cfg0, optimizer: opt, lmHead: head, seed: 7)
        let data = try syntheticBatches(d: cfg0.hiddenSize, vocab: cfg0.vocabSize, batches: 1, pairs: 6, seed: 3)
        let first = try training.step(data).metrics.meanLoss
        var last = first
        for _ in 1..<40 { last = try training.step(data).metrics.meanLoss }
        #expect(last < first * 0.8, "\(objective) lpc=\(useLPC): loss \(first) → \(last)")
        let acc = try training.model.evaluate(data[0], code: useLPC ? .posteriorArgmax : .none).accuracy
        #expect(acc.reduce(0, +) / Float(acc.count) > 0.5)
    }

    @Test("bad batches and options give clear errors")
    func errors() throws {
        var b = PreferenceBatch(hiddenSize: 4)
        #expect(throws: LPCError.self) {
            try b.append(promptHidden: [1, 2, 3], chosenLastHidden: [0, 0, 0, 0], rejectedLastHidden: [0, 0, 0, 0],
                         chosenTokens: [0, 0, 0, 0], chosenIds: [1], chosenReferenceLogProb: 0,
                         rejectedTokens: [0, 0, 0, 0], rejectedIds: [1], rejectedReferenceLogProb: 0)
        }
        #expect(throws: LPCError.self) {
            try b.append(promptHidden: [0, 0, 0, 0], chosenLastHidden: [0, 0, 0, 0], rejectedLastHidden: [0, 0, 0, 0],
                         chosenTokens: [], chosenIds: [], chosenReferenceLogProb: 0,
                         rejectedTokens: [0, 0, 0, 0], rejectedIds: [1], rejectedReferenceLogProb: 0)
        }
        try b.append(promptHidden: [0, 0, 0, 0], chosenLastHidden: [0, 0, 0, 0], rejectedLastHidden: [0, 0, 0, 0],
                     chosenTokens: [0, 0, 0, 0], chosenIds: [99], chosenReferenceLogProb: 0,
                     rejectedTokens: [0, 0, 0, 0], rejectedIds: [1], rejectedReferenceLogProb: 0)
        let head = try FrozenLMHead(weight: [Float](repeating: 0, count: 40), vocabSize: 10, hiddenSize: 4)
        var cfg = LPCConfig(hiddenSize: 4, vocabSize: 10)
        cfg.codes = 2
        let model = try LPCModel(config: cfg, lmHead: head, seed: 0)
        #expect { try model.forwardBackward(b, noise: nil, settings: StepSettings(g: 0, temperature: 1)) } throws: {
            "\($0)".contains("needs Gumbel noise")
        }
        #expect { try model.evaluate(b, code: .none) } throws: {
            "\($0)".contains("pair 0 chosen token 0: id 99 outside the vocabulary 0..<10")
        }
        cfg.codes = 1
        #expect(throws: LPCError.self) { _ = try LPCModel(config: cfg, lmHead: head, seed: 0) }
        #expect(throws: LPCError.self) { try OptimizerConfig(totalSteps: 0).validate() }
    }
}

extension Array {
    func chunked(_ n: Int) -> [[Element]] {
        stride(from: 0, to: count, by: n).map { Array(self[$0..<Swift.min($0 + n, count)]) }
    }
}

@Suite("Divergence guard")
struct DivergenceTests {
    @Test("a non-finite loss throws before any parameter changes")
    func nonFinite() throws {
        let (cfg, opt, head) = try CheckpointTests.setup(useLPC: true)
        let run = try LPCTraining(model: cfg, optimizer: opt, lmHead: head, seed: 1)
        var data = try syntheticBatches(d: cfg.hiddenSize, vocab: cfg.vocabSize, batches: 1, pairs: 2, seed: 1)
        var b = PreferenceBatch(hiddenSize: cfg.hiddenSize)
        let d = cfg.hiddenSize
        var tokens = [Float](repeating: 0, count: d)
        tokens[0] = .nan
        try b.append(promptHidden: [Float](repeating: 0, count: d), chosenLastHidden: [Float](repeating: 0, count: d),
                     rejectedLastHidden: [Float](repeating: 0, count: d), chosenTokens: tokens, chosenIds: [1],
                     chosenReferenceLogProb: -1, rejectedTokens: [Float](repeating: 0, count: d), rejectedIds: [2],
                     rejectedReferenceLogProb: -1)
        data.append(b)
        let before = run.model.parameters
        #expect { try run.step([data[1]]) } throws: { "\($0)".contains("training diverged: step 0") }
        #expect(run.model.parameters == before && run.step == 0)
        let scores = try run.model.evaluate(data[0], code: .posteriorArgmax)
        #expect(scores.metrics.pairs == 2 && scores.metrics.values["codes/perplexity"] != nil)
    }
}
