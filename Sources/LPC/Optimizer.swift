import Foundation

/// Learning-rate decay after warmup (transformers' `get_*_schedule_with_warmup`).
public enum LRDecay: String, Codable, Sendable {
    case cosine, linear, constant
}

/// Optimizer, schedule and step settings (saved in `config.json` under "training").
public struct OptimizerConfig: Codable, Sendable, Equatable {
    public var learningRate: Float = 5e-4
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    /// Decoupled weight decay (AdamW), applied to every trainable tensor (biases and codebook too,
    /// as torch.optim.AdamW with one parameter group).
    public var weightDecay: Float = 0
    public var warmupSteps: Int = 0
    public var decay: LRDecay = .cosine
    /// Optimizer steps of the whole run (the schedules of lr, g and τ are defined over it).
    public var totalSteps: Int
    /// Global-norm gradient clipping (nil: off).
    public var maxGradNorm: Float? = 1.0
    /// Micro-batches per optimizer step.
    public var gradientAccumulation: Int = 1

    public init(totalSteps: Int) {
        self.totalSteps = totalSteps
    }

    enum CodingKeys: String, CodingKey {
        case learningRate = "learning_rate", beta1 = "adam_beta1", beta2 = "adam_beta2", epsilon = "adam_epsilon"
        case weightDecay = "weight_decay", warmupSteps = "warmup_steps", decay = "lr_scheduler_type"
        case totalSteps = "total_steps", maxGradNorm = "max_grad_norm", gradientAccumulation = "gradient_accumulation_steps"
    }

    public func validate() throws {
        func bad(_ s: String) -> LPCError { .invalidConfig(s) }
        guard totalSteps >= 1 else { throw bad("totalSteps must be at least 1, got \(totalSteps)") }
        guard learningRate >= 0, learningRate.isFinite else { throw bad("learning rate must be finite and ≥ 0, got \(learningRate)") }
        guard (0..<1).contains(beta1), (0..<1).contains(beta2) else { throw bad("Adam betas must lie in [0, 1), got \(beta1), \(beta2)") }
        guard epsilon > 0 else { throw bad("Adam epsilon must be positive, got \(epsilon)") }
        guard weightDecay >= 0 else { throw bad("weight decay must be ≥ 0, got \(weightDecay)") }
        guard warmupSteps >= 0 else { throw bad("warmup steps must be ≥ 0, got \(warmupSteps)") }
        guard (maxGradNorm ?? 1) > 0 else { throw bad("max grad norm must be positive, got \(maxGradNorm!)") }
        guard gradientAccumulation >= 1 else { throw bad("gradient accumulation must be ≥ 1, got \(gradientAccumulation)") }
    }

    /// The multiplier of the base learning rate at optimizer step `step` (0-based), exactly
    /// transformers' lambdas as applied by LambdaLR: step < warmup → step/warmup (so step 0 has
    /// lr 0 when warming up); then cosine 0.5·(1 + cos(π·progress)), linear (total − step)/(total −
    /// warmup), or 1.
    public func lrFactor(step: Int) -> Double {
        if step < warmupSteps { return Double(step) / Double(max(1, warmupSteps)) }
        switch decay {
        case .constant: return 1
        case .cosine:
            let progress = Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
            return max(0, 0.5 * (1 + cos(Double.pi * progress)))
        case .linear:
            return max(0, Double(totalSteps - step) / Double(max(1, totalSteps - warmupSteps)))
        }
    }

    public func learningRate(step: Int) -> Float { Float(Double(learningRate) * lrFactor(step: step)) }
}

/// AdamW with PyTorch's semantics (torch.optim.AdamW, single-tensor path): for step t = 1, 2, …
///
///     p ← p·(1 − lr·wd)
///     m ← m + (1 − β1)·(g − m)           (lerp)
///     v ← β2·v + (1 − β2)·g²
///     p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
///
/// State: m and v per parameter (float32) and the step count — everything `--resume` needs.
public final class AdamW: @unchecked Sendable {
    public let count: Int
    public private(set) var step: Int = 0
    let m: FloatBuffer
    let v: FloatBuffer

    public init(parameterCount: Int) {
        count = parameterCount
        m = FloatBuffer(count: parameterCount)
        v = FloatBuffer(count: parameterCount)
    }

    public var firstMoment: [Float] { Array(UnsafeBufferPointer(start: m.pointer, count: count)) }
    public var secondMoment: [Float] { Array(UnsafeBufferPointer(start: v.pointer, count: count)) }

    /// Restores state saved from `firstMoment`, `secondMoment` and `step`.
    public func restore(firstMoment: [Float], secondMoment: [Float], step: Int) throws {
        guard firstMoment.count == count, secondMoment.count == count, step >= 0 else {
            throw LPCError.checkpoint("optimizer state has \(firstMoment.count)/\(secondMoment.count) values (step \(step)); this head has \(count) parameters")
        }
        firstMoment.withUnsafeBufferPointer { m.pointer.update(from: $0.baseAddress!, count: count) }
        secondMoment.withUnsafeBufferPointer { v.pointer.update(from: $0.baseAddress!, count: count) }
        self.step = step
    }

    /// One update of `params` with `grads` (both [count]).
    public func update(params p: UnsafeMutablePointer<Float>, grads g: UnsafePointer<Float>, lr: Float,
                       beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float) {
        step += 1
        let t = Double(step)
        let bc1 = 1 - pow(Double(beta1), t)
        let bc2 = 1 - pow(Double(beta2), t)
        let stepSize = Float(Double(lr) / bc1)
        let bc2Sqrt = Float(bc2.squareRoot())
        let decay = 1 - lr * weightDecay
        let oneMinusB1 = 1 - beta1, oneMinusB2 = 1 - beta2
        let m = self.m.pointer, v = self.v.pointer
        for i in 0..<count {
            let gi = g[i]
            p[i] *= decay
            m[i] += oneMinusB1 * (gi - m[i])
            v[i] = beta2 * v[i] + oneMinusB2 * (gi * gi)
            let denom = v[i].squareRoot() / bc2Sqrt + epsilon
            p[i] -= stepSize * (m[i] / denom)
        }
    }
}

/// The global L2 norm of the gradient (accumulated in double), and PyTorch's clip_grad_norm_:
/// every gradient is multiplied by min(1, maxNorm / (norm + 1e-6)). Returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ g: UnsafeMutablePointer<Float>, count: Int, maxNorm: Float?) -> Double {
    var s = 0.0
    for i in 0..<count { s += Double(g[i]) * Double(g[i]) }
    let norm = s.squareRoot()
    if let maxNorm {
        let coef = Float(min(1.0, Double(maxNorm) / (norm + 1e-6)))
        for i in 0..<count { g[i] *= coef }
    }
    return norm
}
