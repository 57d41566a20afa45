import Foundation
import TensorCore

/// Per-step settings of the schedules: the prior/posterior mix g and the Gumbel temperature τ.
public struct StepSettings: Sendable, Equatable {
    public var g: Float
    public var temperature: Float
    public init(g: Float, temperature: Float) {
        self.g = g
        self.temperature = temperature
    }

    /// g and τ at optimizer step `step` of `totalSteps` (linear ramps, LPC.md).
    public init(config: LPCConfig, step: Int, totalSteps: Int) {
        g = linearRamp(step: step, totalSteps: totalSteps, start: config.gStart, end: config.gEnd)
        temperature = linearRamp(step: step, totalSteps: totalSteps, start: config.temperature,
                                 end: config.temperatureEnd ?? config.temperature)
    }
}

/// Gumbel noise for one batch: posterior [B, K] and prior [B, K] (the prior's is unused with
/// `PriorCode.mean`). Drawn from `LPCRandom` in that order by the training loop.
public struct GumbelNoise: Sendable {
    public var posterior: [Float]
    public var prior: [Float]
    public init(posterior: [Float], prior: [Float]) {
        self.posterior = posterior
        self.prior = prior
    }

    public init(pairs: Int, codes: Int, rng: inout LPCRandom) {
        posterior = rng.gumbelNoise(pairs: pairs, codes: codes)
        prior = rng.gumbelNoise(pairs: pairs, codes: codes)
    }
}

/// Which code conditions the policy in `evaluate` and at inference.
public enum CodeChoice: Sendable, Equatable {
    /// No code (z = 0): the adapter alone.
    case none
    /// argmax of the prior p(z|x) (inference default, `auto`).
    case priorArgmax
    /// argmax of the posterior q(z|x, y_w ≻ y_l) (needs both responses: evaluation only).
    case posteriorArgmax
    /// Σ_k p(k|x) e_k (`mix`).
    case priorMean
    /// A fixed code index.
    case fixed(Int)
}

/// Per-pair results of `evaluate`.
public struct PairScores: Sendable {
    /// Summed log π_θ(y|x,z) [B].
    public var chosenLogProbs: [Float]
    public var rejectedLogProbs: [Float]
    /// scale·(log π_θ − log π_ref), summed [B]; `rewardScale` is β (τ for IPO).
    public var chosenRewards: [Float]
    public var rejectedRewards: [Float]
    /// The code index used per pair (−1 for `.none` and `.priorMean`).
    public var codes: [Int]
    /// p(z|x) and q(z|x,y_w≻y_l), [B, K] (empty without LPC).
    public var prior: [Float]
    public var posterior: [Float]
    /// Batch metrics under this code (loss without the KL term; kl, entropies, code usage as usual).
    public var metrics: LPCMetrics
    /// The reward scale (β, τ for IPO): rewards / rewardScale are log-ratios in nats.
    public var rewardScale: Float = 1
    /// Per pair: 1 if r_w > r_l, 0.5 on a tie, else 0 (the held-out accuracy counts ties as
    /// half). A tie is a log-ratio margin |Δ| ≤ `tieTolerance` nats (default 1e-4): summed float32
    /// log-probs of the same policy differ by rounding noise (~1e-5 for 300 tokens), so an
    /// untrained head ties every pair instead of scoring a coin flip.
    public func accuracy(tieTolerance: Float = 1e-4) -> [Float] {
        zip(chosenRewards, rejectedRewards).map { w, l in
            let margin = (w - l) / rewardScale
            return abs(margin) <= tieTolerance ? 0.5 : (margin > 0 ? 1 : 0)
        }
    }

    /// `accuracy(tieTolerance: 1e-4)`.
    public var accuracy: [Float] { accuracy() }
}

/// The trainable part of LPC over a frozen backbone: codebook, prior, posterior and latent head,
/// their forward and explicit backward for a `PreferenceBatch`, and the loss of `config.objective`.
///
/// Not thread-safe: one instance owns its workspace. Parameters and gradients are flat float
/// vectors laid out by `layout` (see `ParameterLayout`).
public final class LPCModel: @unchecked Sendable {
    public let config: LPCConfig
    public let layout: ParameterLayout
    public let lmHead: FrozenLMHead
    let params: FloatBuffer
    let grads: FloatBuffer
    let off: ParameterOffsets
    let ws = Workspace()

    /// Builds and initialises (see `initialize(seed:)`).
    public init(config: LPCConfig, lmHead: FrozenLMHead, seed: UInt64) throws {
        try config.validate()
        guard lmHead.hiddenSize == config.hiddenSize, lmHead.vocabSize == config.vocabSize else {
            throw LPCError.invalidConfig("LM head is [\(lmHead.vocabSize), \(lmHead.hiddenSize)] but the config says vocab \(config.vocabSize), d \(config.hiddenSize)")
        }
        self.config = config
        self.lmHead = lmHead
        layout = ParameterLayout(config: config)
        params = FloatBuffer(count: layout.totalCount)
        grads = FloatBuffer(count: layout.totalCount)
        off = ParameterOffsets(layout, useLPC: config.useLPC)
        initialize(seed: seed)
    }

    public var parameterCount: Int { layout.totalCount }

    /// Initialisation, drawn in layout order from `LPCRandom(seed:)`:
    /// every nn.Linear weight and bias ~ U(−1/√fan_in, 1/√fan_in) (PyTorch's default init),
    /// codebook ~ N(0, codebookInitStd²), head.up.weight (U) = 0.
    public func initialize(seed: UInt64) {
        var rng = LPCRandom(seed: seed)
        let p = params.pointer
        for spec in layout.specs {
            let out = p + spec.offset
            switch spec.name {
            case "codebook.weight":
                let s = Double(config.codebookInitStd)
                for i in 0..<spec.count { out[i] = Float(rng.normal() * s) }
            case "head.up.weight":
                out.update(repeating: 0, count: spec.count)
            default:
                let fanIn: Int
                switch spec.name {
                case "posterior.0.weight", "posterior.0.bias": fanIn = 2 * config.hiddenSize
                default: fanIn = config.hiddenSize
                }
                let bound = 1 / Double(fanIn).squareRoot()
                for i in 0..<spec.count { out[i] = Float((2 * rng.uniformOpen() - 1) * bound) }
            }
        }
        zeroGradients()
    }

    // MARK: parameter access

    /// The flat parameter vector [parameterCount] (a copy).
    public var parameters: [Float] {
        get { Array(UnsafeBufferPointer(start: params.pointer, count: layout.totalCount)) }
        set {
            precondition(newValue.count == layout.totalCount, "expected \(layout.totalCount) parameters")
            newValue.withUnsafeBufferPointer { params.pointer.update(from: $0.baseAddress!, count: newValue.count) }
        }
    }

    /// The accumulated gradient vector [parameterCount] (a copy).
    public var gradients: [Float] { Array(UnsafeBufferPointer(start: grads.pointer, count: layout.totalCount)) }

    public func zeroGradients() { grads.zero(layout.totalCount) }

    /// One parameter tensor by name (a copy), nil if there is none.
    public func parameter(_ name: String) -> [Float]? {
        layout.spec(name).map { Array(UnsafeBufferPointer(start: params.pointer + $0.offset, count: $0.count)) }
    }

    public func gradient(_ name: String) -> [Float]? {
        layout.spec(name).map { Array(UnsafeBufferPointer(start: grads.pointer + $0.offset, count: $0.count)) }
    }

    /// Sets one parameter tensor; throws on an unknown name or wrong size.
    public func setParameter(_ name: String, _ values: [Float]) throws {
        guard let spec = layout.spec(name) else {
            throw LPCError.checkpoint("no parameter '\(name)' in this head (it has: \(layout.specs.map(\.name).joined(separator: ", ")))")
        }
        guard values.count == spec.count else {
            throw LPCError.checkpoint("parameter '\(name)' has shape \(spec.shape) (\(spec.count) values), got \(values.count)")
        }
        values.withUnsafeBufferPointer { (params.pointer + spec.offset).update(from: $0.baseAddress!, count: spec.count) }
    }

    /// Raw access for the optimizer: (parameters, gradients), both [parameterCount].
    public func withParametersAndGradients<R>(_ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) throws -> R) rethrows -> R {
        try body(params.pointer, grads.pointer)
    }

    // MARK: forward / backward

    /// Forward of the whole batch and, when `computeGradients`, the backward: gradients of
    /// `lossScale ×` (mean loss over the batch's pairs) are ADDED to the gradient vector (call
    /// `zeroGradients()` first; use lossScale = 1/accumulationSteps when accumulating).
    /// `noise` is required with LPC (Gumbel noise, [B, K] each), ignored without.
    public func forwardBackward(_ batch: PreferenceBatch, noise: GumbelNoise?, settings: StepSettings,
                                lossScale: Float = 1, computeGradients: Bool = true) throws -> LPCMetrics {
        let B = batch.pairCount, K = config.codes
        if config.useLPC {
            guard let noise else { throw LPCError.invalidBatch("LPC training needs Gumbel noise for \(B) pairs") }
            guard noise.posterior.count == B * K, config.priorCode == .mean || noise.prior.count == B * K else {
                throw LPCError.invalidBatch("Gumbel noise must be [\(B), \(K)] for posterior and prior, got \(noise.posterior.count) and \(noise.prior.count) values")
            }
            guard settings.temperature > 0 else { throw LPCError.invalidConfig("temperature must be positive") }
        }
        try batch.validate(hiddenSize: config.hiddenSize, vocabSize: config.vocabSize)
        return run(batch, noise: noise, settings: settings, code: nil, lossScale: lossScale, backward: computeGradients).metrics
    }

    /// Evaluation: log-probs and implicit rewards with a chosen code, no gradients, no noise.
    public func evaluate(_ batch: PreferenceBatch, code: CodeChoice) throws -> PairScores {
        try batch.validate(hiddenSize: config.hiddenSize, vocabSize: config.vocabSize)
        if case .fixed(let k) = code, !(0..<config.codes).contains(k) {
            throw LPCError.invalidConfig("code index \(k) outside 0..<\(config.codes)")
        }
        if !config.useLPC, code != .none {
            throw LPCError.invalidConfig("this head was trained without LPC: it has no codes (use CodeChoice.none)")
        }
        let result = run(batch, noise: nil, settings: StepSettings(g: 0, temperature: 1), code: code, lossScale: 1,
                         backward: false)
        var scores = result.scores
        scores.metrics = result.metrics
        scores.rewardScale = config.rewardScale
        return scores
    }

    final class Workspace {
        let postIn = FloatBuffer(), a1q = FloatBuffer(), g1q = FloatBuffer(), lq = FloatBuffer()
        let a1p = FloatBuffer(), g1p = FloatBuffer(), lp = FloatBuffer()
        let wq = FloatBuffer(), wp = FloatBuffer(), logq = FloatBuffer(), logp = FloatBuffer()
        let z = FloatBuffer(), dz = FloatBuffer(), dzq = FloatBuffer(), dzp = FloatBuffer()
        let dwq = FloatBuffer(), dwp = FloatBuffer(), dlq = FloatBuffer(), dlp = FloatBuffer()
        let dg1 = FloatBuffer()
        let u0 = FloatBuffer(), a = FloatBuffer(), ga = FloatBuffer(), ht = FloatBuffer(), m = FloatBuffer()
        let dga = FloatBuffer(), tok = FloatBuffer(), coef = FloatBuffer()
        var logits: [Float] = []
    }

    struct RunResult {
        var metrics: LPCMetrics
        var scores: PairScores
    }

    // swiftlint:disable:next function_body_length
    func run(_ batch: PreferenceBatch, noise: GumbelNoise?, settings: StepSettings, code: CodeChoice?,
             lossScale: Float, backward: Bool) -> RunResult {
        let d = config.hiddenSize, K = config.codes, r = config.rank
        let B = batch.pairCount, N = batch.rowCount
        let lpc = config.useLPC && code != CodeChoice.none
        let P = params.pointer, G = grads.pointer
        let tau = settings.temperature, g = settings.g
        let priorTau: Float = config.priorCode == .gumbel ? tau : 1

        // ---- codes: posterior / prior MLPs, Gumbel-softmax, z [B, d]
        let z = ws.z.ensure(B * d)
        let lq = ws.lq.ensure(B * K), lp = ws.lp.ensure(B * K)
        let logq = ws.logq.ensure(B * K), logp = ws.logp.ensure(B * K)
        let wq = ws.wq.ensure(B * K), wp = ws.wp.ensure(B * K)
        var codesUsed = [Int](repeating: -1, count: B)
        if config.useLPC {
            let postIn = ws.postIn.ensure(B * 2 * d)
            batch.chosenLastHidden.withUnsafeBufferPointer { hw in
                batch.rejectedLastHidden.withUnsafeBufferPointer { hl in
                    for i in 0..<B {
                        (postIn + i * 2 * d).update(from: hw.baseAddress! + i * d, count: d)
                        (postIn + i * 2 * d + d).update(from: hl.baseAddress! + i * d, count: d)
                    }
                }
            }
            let a1q = ws.a1q.ensure(B * d), g1q = ws.g1q.ensure(B * d)
            linearForward(postIn, rows: B, inFeatures: 2 * d, outFeatures: d, weight: P + off.post0W, bias: P + off.post0b, out: a1q)
            geluForward(a1q, g1q, count: B * d)
            linearForward(g1q, rows: B, inFeatures: d, outFeatures: K, weight: P + off.post2W, bias: P + off.post2b, out: lq)
            let a1p = ws.a1p.ensure(B * d), g1p = ws.g1p.ensure(B * d)
            batch.promptHidden.withUnsafeBufferPointer { hx in
                linearForward(hx.baseAddress!, rows: B, inFeatures: d, outFeatures: d, weight: P + off.prior0W, bias: P + off.prior0b, out: a1p)
            }
            geluForward(a1p, g1p, count: B * d)
            linearForward(g1p, rows: B, inFeatures: d, outFeatures: K, weight: P + off.prior2W, bias: P + off.prior2b, out: lp)
            logSoftmaxRows(lq, out: logq, rows: B, cols: K)
            logSoftmaxRows(lp, out: logp, rows: B, cols: K)
            let E = P + off.codebook
            if let code {
                // Evaluation: a hard code (one-hot) or the prior's mean.
                for i in 0..<B {
                    let zi = z + i * d
                    switch code {
                    case .none: zi.update(repeating: 0, count: d)
                    case .priorMean:
                        zi.update(repeating: 0, count: d)
                        for k in 0..<K {
                            let pk = exp(logp[i * K + k])
                            for j in 0..<d { zi[j] += pk * E[k * d + j] }
                        }
                    case .priorArgmax, .posteriorArgmax, .fixed:
                        let kk: Int
                        switch code {
                        case .priorArgmax: kk = argmax(logp + i * K, K)
                        case .posteriorArgmax: kk = argmax(logq + i * K, K)
                        case .fixed(let k): kk = k
                        default: kk = 0
                        }
                        codesUsed[i] = kk
                        zi.update(from: E + kk * d, count: d)
                    }
                }
            } else {
                let noise = noise!
                noise.posterior.withUnsafeBufferPointer { n in
                    softmaxRows(lq, noise: n.baseAddress!, temperature: tau, out: wq, rows: B, cols: K)
                }
                if config.priorCode == .gumbel {
                    noise.prior.withUnsafeBufferPointer { n in
                        softmaxRows(lp, noise: n.baseAddress!, temperature: tau, out: wp, rows: B, cols: K)
                    }
                } else {
                    softmaxRows(lp, noise: nil, temperature: 1, out: wp, rows: B, cols: K)
                }
                // z = g·(w_p E) + (1−g)·(w_q E)
                gemm(m: B, n: d, k: K, alpha: 1 - g, wq, lda: K, E, ldb: d, z, ldc: d)
                gemm(m: B, n: d, k: K, alpha: g, wp, lda: K, E, ldb: d, beta: 1, z, ldc: d)
            }
        }

        // ---- latent head over all rows: u0 = h + z, a = u0·Vᵀ, h̃ = u0 + gelu(a)·Uᵀ
        let u0 = ws.u0.ensure(N * d), A = ws.a.ensure(N * r), GA = ws.ga.ensure(N * r), Ht = ws.ht.ensure(N * d)
        batch.tokenHidden.withUnsafeBufferPointer { h in u0.update(from: h.baseAddress!, count: N * d) }
        if lpc {
            for s in 0..<(2 * B) {
                let zi = z + (s / 2) * d
                for t in batch.sequenceStarts[s]..<batch.sequenceStarts[s + 1] {
                    let row = u0 + t * d
                    for j in 0..<d { row[j] += zi[j] }
                }
            }
        }
        linearForward(u0, rows: N, inFeatures: d, outFeatures: r, weight: P + off.down, bias: nil, out: A)
        geluForward(A, GA, count: N * r)
        Ht.update(from: u0, count: N * d)
        gemm(transB: true, m: N, n: d, k: r, GA, lda: r, P + off.up, ldb: r, beta: 1, Ht, ldc: d)

        // ---- frozen LM head: token log-probs (and M = softmax·W for the backward)
        let tok = ws.tok.ensure(N)
        let M = backward ? ws.m.ensure(N * d) : nil
        batch.tokenIds.withUnsafeBufferPointer { ids in
            lmHead.tokenLogProbs(hidden: Ht, ids: ids.baseAddress!, rows: N, logProbs: tok, expected: M, scratch: &ws.logits)
        }
        var seqLogp = [Double](repeating: 0, count: 2 * B)
        for s in 0..<(2 * B) {
            var acc = 0.0
            for t in batch.sequenceStarts[s]..<batch.sequenceStarts[s + 1] { acc += Double(tok[t]) }
            seqLogp[s] = acc
        }

        // ---- objective per pair: loss and dL/d(summed log-prob) of each sequence
        var metrics = LPCMetrics(codes: K)
        var dSeq = [Double](repeating: 0, count: 2 * B)
        let beta = Double(config.effectiveBeta), scale = Double(config.rewardScale)
        let mean = config.effectiveLogRatio == .mean
        var scores = PairScores(chosenLogProbs: [], rejectedLogProbs: [], chosenRewards: [], rejectedRewards: [],
                                codes: codesUsed, prior: [], posterior: [], metrics: LPCMetrics(codes: K))
        for i in 0..<B {
            let piW = seqLogp[2 * i], piL = seqLogp[2 * i + 1]
            let refW = Double(batch.referenceLogProbs[2 * i]), refL = Double(batch.referenceLogProbs[2 * i + 1])
            let lenW = Double(batch.length(ofSequence: 2 * i)), lenL = Double(batch.length(ofSequence: 2 * i + 1))
            let (loss, dW, dL) = Self.pairLoss(objective: config.objective, piW: piW, piL: piL, refW: refW, refL: refL,
                                               lenW: lenW, lenL: lenL, mean: mean, beta: beta,
                                               gamma: Double(config.effectiveSimpoGamma), ipoTau: Double(config.ipoTau))
            dSeq[2 * i] = dW
            dSeq[2 * i + 1] = dL
            let rw = scale * (piW - refW), rl = scale * (piL - refL)
            metrics.addPair(loss: loss, chosenReward: rw, rejectedReward: rl, chosenLogProb: piW, rejectedLogProb: piL)
            scores.chosenLogProbs.append(Float(piW))
            scores.rejectedLogProbs.append(Float(piL))
            scores.chosenRewards.append(Float(rw))
            scores.rejectedRewards.append(Float(rl))
        }
        var klPerPair = [Double](repeating: 0, count: B)
        if config.useLPC {
            for i in 0..<B {
                var kl = 0.0, hp = 0.0, hq = 0.0
                var qRow = [Double](repeating: 0, count: K)
                for k in 0..<K {
                    let lqk = Double(logq[i * K + k]), lpk = Double(logp[i * K + k])
                    let q = exp(lqk), p = exp(lpk)
                    kl += q * (lqk - lpk)
                    hq -= q * lqk
                    hp -= p * lpk
                    qRow[k] = q
                }
                klPerPair[i] = kl
                metrics.addCodes(kl: kl, klWeight: code == nil ? Double(config.klWeight) : 0,
                                 priorEntropy: hp, posteriorEntropy: hq, posterior: qRow)
            }
            scores.prior = (0..<(B * K)).map { exp(logp[$0]) }
            scores.posterior = (0..<(B * K)).map { exp(logq[$0]) }
        }
        guard backward else { return RunResult(metrics: metrics, scores: scores) }

        // ---- backward
        let perPair = Double(lossScale) / Double(B)
        let coef = ws.coef.ensure(N)
        for s in 0..<(2 * B) {
            let c = Float(dSeq[s] * perPair)
            for t in batch.sequenceStarts[s]..<batch.sequenceStarts[s + 1] { coef[t] = c }
        }
        let dHt = Ht  // h̃ is no longer needed: reuse its buffer for dL/dh̃, then dL/du0
        batch.tokenIds.withUnsafeBufferPointer { ids in
            lmHead.backward(ids: ids.baseAddress!, coefficients: coef, expected: M!, rows: N, dHidden: dHt, accumulate: false)
        }
        // h̃ = u0 + GA·Uᵀ:  dU += dHtᵀ·GA,  dGA = dHt·U
        gemm(transA: true, m: d, n: r, k: N, dHt, lda: d, GA, ldb: r, beta: 1, G + off.up, ldc: r)
        let dGA = ws.dga.ensure(N * r)
        gemm(m: N, n: r, k: d, dHt, lda: d, P + off.up, ldb: r, dGA, ldc: r)
        geluBackward(A, dy: dGA, dx: dGA, count: N * r)
        // a = u0·Vᵀ:  dV += dAᵀ·u0,  du0 = dHt + dA·V
        gemm(transA: true, m: r, n: d, k: N, dGA, lda: r, u0, ldb: d, beta: 1, G + off.down, ldc: d)
        guard config.useLPC else { return RunResult(metrics: metrics, scores: scores) }
        gemm(m: N, n: d, k: r, dGA, lda: r, P + off.down, ldb: d, beta: 1, dHt, ldc: d)
        // z is shared by all rows of a pair
        let dz = ws.dz.ensure(B * d)
        dz.update(repeating: 0, count: B * d)
        for s in 0..<(2 * B) {
            let dzi = dz + (s / 2) * d
            for t in batch.sequenceStarts[s]..<batch.sequenceStarts[s + 1] {
                let row = dHt + t * d
                for j in 0..<d { dzi[j] += row[j] }
            }
        }
        let E = P + off.codebook, dE = G + off.codebook
        // z = g·wp·E + (1−g)·wq·E
        let dwq = ws.dwq.ensure(B * K), dwp = ws.dwp.ensure(B * K)
        gemm(transA: true, m: K, n: d, k: B, alpha: 1 - g, wq, lda: K, dz, ldb: d, beta: 1, dE, ldc: d)
        gemm(transA: true, m: K, n: d, k: B, alpha: g, wp, lda: K, dz, ldb: d, beta: 1, dE, ldc: d)
        gemm(transB: true, m: B, n: K, k: d, alpha: 1 - g, dz, lda: d, E, ldb: d, dwq, ldc: K)
        gemm(transB: true, m: B, n: K, k: d, alpha: g, dz, lda: d, E, ldb: d, dwp, ldc: K)
        let dlq = ws.dlq.ensure(B * K), dlp = ws.dlp.ensure(B * K)
        softmaxBackward(w: wq, dw: dwq, temperature: tau, dLogits: dlq, rows: B, cols: K, accumulate: false)
        softmaxBackward(w: wp, dw: dwp, temperature: priorTau, dLogits: dlp, rows: B, cols: K, accumulate: false)
        // λ·KL(q‖p): d/dlq = q⊙(log q − log p − KL), d/dlp = p − q
        let klScale = Double(config.klWeight) * perPair
        for i in 0..<B {
            for k in 0..<K {
                let lqk = Double(logq[i * K + k]), lpk = Double(logp[i * K + k])
                let q = exp(lqk), p = exp(lpk)
                dlq[i * K + k] += Float(klScale * q * (lqk - lpk - klPerPair[i]))
                dlp[i * K + k] += Float(klScale * (p - q))
            }
        }
        // MLPs: logits = gelu(x·W0ᵀ + b0)·W2ᵀ + b2
        let dg1 = ws.dg1.ensure(B * d)
        linearBackward(ws.g1q.pointer, dy: dlq, rows: B, inFeatures: d, outFeatures: K, weight: P + off.post2W,
                       dWeight: G + off.post2W, dBias: G + off.post2b, dx: dg1)
        geluBackward(ws.a1q.pointer, dy: dg1, dx: dg1, count: B * d)
        linearBackward(ws.postIn.pointer, dy: dg1, rows: B, inFeatures: 2 * d, outFeatures: d, weight: P + off.post0W,
                       dWeight: G + off.post0W, dBias: G + off.post0b, dx: nil)
        linearBackward(ws.g1p.pointer, dy: dlp, rows: B, inFeatures: d, outFeatures: K, weight: P + off.prior2W,
                       dWeight: G + off.prior2W, dBias: G + off.prior2b, dx: dg1)
        geluBackward(ws.a1p.pointer, dy: dg1, dx: dg1, count: B * d)
        batch.promptHidden.withUnsafeBufferPointer { hx in
            linearBackward(hx.baseAddress!, dy: dg1, rows: B, inFeatures: d, outFeatures: d, weight: P + off.prior0W,
                           dWeight: G + off.prior0W, dBias: G + off.prior0b, dx: nil)
        }
        return RunResult(metrics: metrics, scores: scores)
    }

    /// One pair's preference loss and its derivatives with respect to the summed policy log-probs
    /// of the chosen and rejected responses.
    static func pairLoss(objective: Objective, piW: Double, piL: Double, refW: Double, refL: Double,
                         lenW: Double, lenL: Double, mean: Bool, beta: Double, gamma: Double, ipoTau: Double)
        -> (loss: Double, dChosen: Double, dRejected: Double) {
        switch objective {
        case .dpo, .ipo:
            let nW = mean ? 1 / lenW : 1, nL = mean ? 1 / lenL : 1
            let h = (piW - refW) * nW - (piL - refL) * nL
            if objective == .dpo {
                let x = beta * h
                let dx = -sigmoid(-x)
                return (softplus(-x), dx * beta * nW, -dx * beta * nL)
            }
            let e = h - 1 / (2 * ipoTau)
            return (e * e, 2 * e * nW, -2 * e * nL)
        case .simpo:
            let x = beta * (piW / lenW - piL / lenL) - gamma
            let dx = -sigmoid(-x)
            return (softplus(-x), dx * beta / lenW, -dx * beta / lenL)
        }
    }

    // MARK: inference helpers (generation)

    /// p(z|x) [K] for one prompt's last hidden state h_x [d].
    public func priorProbabilities(promptHidden hx: [Float]) -> [Float] {
        precondition(config.useLPC && hx.count == config.hiddenSize)
        let d = config.hiddenSize, K = config.codes, P = params.pointer
        var a = [Float](repeating: 0, count: d), gl = [Float](repeating: 0, count: d), l = [Float](repeating: 0, count: K)
        var out = [Float](repeating: 0, count: K)
        hx.withUnsafeBufferPointer { x in
            linearForward(x.baseAddress!, rows: 1, inFeatures: d, outFeatures: d, weight: P + off.prior0W, bias: P + off.prior0b, out: &a)
        }
        geluForward(a, &gl, count: d)
        linearForward(gl, rows: 1, inFeatures: d, outFeatures: K, weight: P + off.prior2W, bias: P + off.prior2b, out: &l)
        softmaxRows(l, noise: nil, temperature: 1, out: &out, rows: 1, cols: K)
        return out
    }

    /// The code vector z [d] for a prompt: argmax / mix / fixed; `.posteriorArgmax` is not
    /// available at inference. `.none` gives zeros.
    public func code(_ choice: CodeChoice, promptHidden hx: [Float]) throws -> [Float] {
        let d = config.hiddenSize
        if choice == .none { return [Float](repeating: 0, count: d) }
        guard config.useLPC else { throw LPCError.invalidConfig("this head was trained without LPC: it has no codes") }
        let E = params.pointer + off.codebook
        switch choice {
        case .none: return [Float](repeating: 0, count: d)
        case .posteriorArgmax: throw LPCError.invalidConfig("the posterior needs both responses: use priorArgmax, priorMean or fixed at inference")
        case .fixed(let k):
            guard (0..<config.codes).contains(k) else { throw LPCError.invalidConfig("code index \(k) outside 0..<\(config.codes)") }
            return Array(UnsafeBufferPointer(start: E + k * d, count: d))
        case .priorArgmax:
            let p = priorProbabilities(promptHidden: hx)
            let k = p.indices.max { p[$0] < p[$1] }!
            return Array(UnsafeBufferPointer(start: E + k * d, count: d))
        case .priorMean:
            let p = priorProbabilities(promptHidden: hx)
            var z = [Float](repeating: 0, count: d)
            for k in 0..<config.codes { for j in 0..<d { z[j] += p[k] * E[k * d + j] } }
            return z
        }
    }

    /// h̃ = u + U·gelu(V·u), u = h + z, for hidden [rows, d]; feed the result to `lmHead.logits`.
    public func adaptHidden(_ hidden: [Float], rows: Int, code z: [Float]?) -> [Float] {
        let d = config.hiddenSize, r = config.rank, P = params.pointer
        precondition(hidden.count == rows * d)
        var u = hidden
        if let z {
            precondition(z.count == d)
            for t in 0..<rows { for j in 0..<d { u[t * d + j] += z[j] } }
        }
        var a = [Float](repeating: 0, count: rows * r)
        linearForward(u, rows: rows, inFeatures: d, outFeatures: r, weight: P + off.down, bias: nil, out: &a)
        var ga = [Float](repeating: 0, count: rows * r)
        geluForward(a, &ga, count: rows * r)
        gemm(transB: true, m: rows, n: d, k: r, ga, lda: r, P + off.up, ldb: r, beta: 1, &u, ldc: d)
        return u
    }
}

@inline(__always) func sigmoid(_ x: Double) -> Double {
    x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
}

/// log(1 + eˣ), stable.
@inline(__always) func softplus(_ x: Double) -> Double {
    x > 0 ? x + log1p(exp(-x)) : log1p(exp(x))
}

func argmax(_ p: UnsafePointer<Float>, _ n: Int) -> Int {
    var best = 0
    for k in 1..<n where p[k] > p[best] { best = k }
    return best
}
