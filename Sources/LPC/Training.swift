import Foundation

/// What one optimizer step did.
public struct StepReport: Sendable {
    /// The optimizer step just taken (0-based).
    public var step: Int
    /// Merged over the step's micro-batches (loss etc. are means over all its pairs).
    public var metrics: LPCMetrics
    /// Global gradient norm before clipping.
    public var gradNorm: Double
    public var learningRate: Float
    public var settings: StepSettings

    /// Metrics plus step, lr, grad_norm, g, temperature — one JSONL record's numbers.
    public var values: [String: Double] {
        var v = metrics.values
        v["step"] = Double(step + 1)
        v["learning_rate"] = Double(learningRate)
        v["grad_norm"] = gradNorm
        v["g"] = Double(settings.g)
        v["temperature"] = Double(settings.temperature)
        return v
    }
}

/// The training state the trainer drives: model, AdamW, the noise RNG and the step counter.
/// Everything in it is saved by `saveCheckpoint` and restored by `resume`, so a resumed run is
/// bit-identical to an uninterrupted one given the same batches.
///
///     let training = try LPCTraining(model: config, optimizer: opt, lmHead: head, seed: 1)
///     while training.step < opt.totalSteps {
///         let report = try training.step(microBatches)   // opt.gradientAccumulation batches
///         …log report.values…
///         if …time to save… { try training.saveCheckpoint(to: dir) }
///     }
public final class LPCTraining: @unchecked Sendable {
    public let model: LPCModel
    public let optimizerConfig: OptimizerConfig
    public let optimizer: AdamW
    /// Draws the Gumbel noise (posterior [B, K] then prior [B, K] per micro-batch).
    public var rng: LPCRandom
    public let seed: UInt64
    /// Optimizer steps taken so far.
    public var step: Int { optimizer.step }
    /// Free-form trainer state saved with checkpoints (epoch, data cursor, …).
    public var extraState: [String: String] = [:]

    /// A fresh run: parameters from `LPCRandom(seed:)`, noise from a second stream of the same seed.
    public init(model config: LPCConfig, optimizer: OptimizerConfig, lmHead: FrozenLMHead, seed: UInt64) throws {
        try optimizer.validate()
        model = try LPCModel(config: config, lmHead: lmHead, seed: seed)
        optimizerConfig = optimizer
        self.optimizer = AdamW(parameterCount: model.parameterCount)
        rng = LPCRandom(seed: Self.noiseSeed(seed))
        self.seed = seed
    }

    /// Wraps an existing model (e.g. with parameters set by hand, or loaded).
    public init(model: LPCModel, optimizer: OptimizerConfig, seed: UInt64) throws {
        try optimizer.validate()
        self.model = model
        optimizerConfig = optimizer
        self.optimizer = AdamW(parameterCount: model.parameterCount)
        rng = LPCRandom(seed: Self.noiseSeed(seed))
        self.seed = seed
    }

    static func noiseSeed(_ seed: UInt64) -> UInt64 { seed ^ 0x6C70_635F_6E6F_6973 }

    /// g and τ for the next step.
    public var currentSettings: StepSettings {
        StepSettings(config: model.config, step: step, totalSteps: optimizerConfig.totalSteps)
    }

    /// One optimizer step over `microBatches` (normally `gradientAccumulation` of them; each
    /// contributes 1/count of the gradient): zero grads, forward/backward each, clip, AdamW.
    /// `noise` overrides the RNG (tests feeding PyTorch's noise); otherwise it is drawn.
    @discardableResult
    public func step(_ microBatches: [PreferenceBatch], noise: [GumbelNoise]? = nil) throws -> StepReport {
        guard !microBatches.isEmpty else { throw LPCError.invalidBatch("a step needs at least one micro-batch") }
        if let noise, noise.count != microBatches.count {
            throw LPCError.invalidBatch("\(noise.count) noise sets for \(microBatches.count) micro-batches")
        }
        let settings = currentSettings
        let lr = optimizerConfig.learningRate(step: step)
        model.zeroGradients()
        var metrics = LPCMetrics(codes: model.config.codes)
        let scale = 1 / Float(microBatches.count)
        for (j, batch) in microBatches.enumerated() {
            var n: GumbelNoise?
            if model.config.useLPC {
                n = noise?[j] ?? GumbelNoise(pairs: batch.pairCount, codes: model.config.codes, rng: &rng)
            }
            metrics.merge(try model.forwardBackward(batch, noise: n, settings: settings, lossScale: scale))
        }
        let o = optimizerConfig
        let norm = try model.withParametersAndGradients { p, g in
            let norm = clipGradientNorm(g, count: model.parameterCount, maxNorm: o.maxGradNorm)
            // Refuse to corrupt the parameters: nothing is updated, the step counter stays.
            guard norm.isFinite, metrics.meanLoss.isFinite else {
                throw LPCError.nonFinite("step \(step): loss \(metrics.meanLoss), gradient norm \(norm); lower the learning rate or check the features for NaN/inf")
            }
            optimizer.update(params: p, grads: g, lr: lr, beta1: o.beta1, beta2: o.beta2, epsilon: o.epsilon,
                             weightDecay: o.weightDecay)
            return norm
        }
        return StepReport(step: step - 1, metrics: metrics, gradNorm: norm, learningRate: lr, settings: settings)
    }
}
