// LPC: codebook, prior, posterior, latent head, losses, optimizer, checkpoints (see README.md here
// and ../../../shared/LPC.md for the method).
import Foundation

/// Errors at the LPC module's boundaries (configuration, batches, checkpoints), each saying what
/// failed, where, and how to fix it.
public enum LPCError: Error, CustomStringConvertible, Equatable {
    case invalidConfig(String)
    case invalidBatch(String)
    case checkpoint(String)
    case nonFinite(String)

    public var description: String {
        switch self {
        case .invalidConfig(let s): "invalid LPC configuration: \(s)"
        case .invalidBatch(let s): "invalid preference batch: \(s)"
        case .checkpoint(let s): "checkpoint: \(s)"
        case .nonFinite(let s): "training diverged: \(s)"
        }
    }
}

/// The preference objective (LPC.md "Objectives").
public enum Objective: String, Codable, Sendable, CaseIterable {
    case dpo, simpo, ipo
}

/// How a sequence's log-ratio enters the loss: summed over response tokens or divided by the
/// response length. SimPO always uses `.mean`; defaults: DPO `.sum`, IPO `.mean` (as TRL).
public enum LogRatioReduction: String, Codable, Sendable {
    case sum, mean
}

/// What `z_prior` is in z = g·z_prior + (1−g)·z_post during training.
/// `.gumbel` (default): a Gumbel-softmax sample from the prior with its own noise, the same
/// temperature, soft weights — so that at g = 1 training uses exactly what `sample` inference
/// draws, and the prior learns from the preference loss as g rises.
/// `.mean`: the prior's expected code Σ p_k e_k (no noise).
public enum PriorCode: String, Codable, Sendable {
    case gumbel, mean
}

/// The model and objective: everything a head checkpoint needs to be used again
/// (`config.json` beside the weights). Optimizer settings are in `OptimizerConfig`.
public struct LPCConfig: Codable, Sendable, Equatable {
    /// d: the backbone's hidden size (the LM head's input size).
    public var hiddenSize: Int
    /// The LM head's output size.
    public var vocabSize: Int
    /// K: codebook size.
    public var codes: Int = 32
    /// r: latent head adapter rank.
    public var rank: Int = 64
    /// false: the baseline — no codebook/prior/posterior, no z, no KL; only the adapter trains.
    public var useLPC: Bool = true
    public var objective: Objective = .dpo
    /// nil: DPO 0.1, SimPO 2.0, IPO uses `ipoTau` instead.
    public var beta: Float?
    /// SimPO margin γ; nil: 0.5·β.
    public var simpoGamma: Float?
    /// IPO τ (target margin 1/(2τ)).
    public var ipoTau: Float = 0.1
    /// nil: the objective's default (DPO sum, IPO mean; SimPO is always mean).
    public var logRatio: LogRatioReduction?
    /// λ, weight of KL(q‖p).
    public var klWeight: Float = 0.05
    /// Gumbel-softmax temperature at the first step; `temperatureEnd` (e.g. 0.5) anneals linearly
    /// to the last step, nil keeps it constant.
    public var temperature: Float = 1.0
    public var temperatureEnd: Float?
    /// The prior→posterior mix g ramps linearly from `gStart` (first step) to `gEnd` (last step).
    public var gStart: Float = 0
    public var gEnd: Float = 1
    public var priorCode: PriorCode = .gumbel
    /// Codebook entries are drawn from N(0, σ²) with σ = this; small so that the initial policy is
    /// close to the reference (z ≈ 0).
    public var codebookInitStd: Float = 0.02
    /// The LM head's arithmetic in training (`FrozenLMHead.setPrecision`); nil (configs written
    /// before the option existed) means f32.
    public var lmHeadPrecision: LMHeadPrecision?

    public init(hiddenSize: Int, vocabSize: Int) {
        self.hiddenSize = hiddenSize
        self.vocabSize = vocabSize
    }

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size", vocabSize = "vocab_size", codes, rank, useLPC = "use_lpc", objective
        case beta, simpoGamma = "simpo_gamma", ipoTau = "ipo_tau", logRatio = "log_ratio", klWeight = "kl_weight"
        case temperature, temperatureEnd = "temperature_end", gStart = "g_start", gEnd = "g_end"
        case priorCode = "prior_code", codebookInitStd = "codebook_init_std", lmHeadPrecision = "lm_head_precision"
    }

    /// β as used by the loss: DPO 0.1, SimPO 2.0 unless set. (IPO uses `ipoTau`.)
    public var effectiveBeta: Float {
        beta ?? (objective == .simpo ? 2.0 : 0.1)
    }

    public var effectiveSimpoGamma: Float { simpoGamma ?? 0.5 * effectiveBeta }

    public var effectiveLogRatio: LogRatioReduction {
        switch objective {
        case .simpo: .mean
        case .dpo: logRatio ?? .sum
        case .ipo: logRatio ?? .mean
        }
    }

    /// The scale of the implicit reward scale·(log π_θ − log π_ref): β, or τ for IPO (as TRL).
    public var rewardScale: Float { objective == .ipo ? ipoTau : effectiveBeta }

    public func validate() throws {
        func bad(_ s: String) -> LPCError { .invalidConfig(s) }
        guard hiddenSize > 0 else { throw bad("hiddenSize must be positive, got \(hiddenSize)") }
        guard vocabSize > 0 else { throw bad("vocabSize must be positive, got \(vocabSize)") }
        guard codes >= 2 else { throw bad("codes (K) must be at least 2, got \(codes)") }
        guard rank >= 1 else { throw bad("rank (r) must be at least 1, got \(rank)") }
        guard temperature > 0, (temperatureEnd ?? 1) > 0 else {
            throw bad("Gumbel temperature must be positive (got \(temperature) → \(temperatureEnd.map { "\($0)" } ?? "constant"))")
        }
        guard (0...1).contains(gStart), (0...1).contains(gEnd) else {
            throw bad("gStart/gEnd must lie in [0, 1], got \(gStart)/\(gEnd)")
        }
        guard klWeight >= 0 else { throw bad("klWeight (λ) must be ≥ 0, got \(klWeight)") }
        guard effectiveBeta > 0 else { throw bad("beta must be positive, got \(effectiveBeta)") }
        guard ipoTau > 0 else { throw bad("ipoTau must be positive, got \(ipoTau)") }
        guard codebookInitStd >= 0 else { throw bad("codebookInitStd must be ≥ 0") }
    }

    /// One line naming every loss-relevant choice (for logs and reports).
    public var summary: String {
        var s = "objective=\(objective.rawValue) lpc=\(useLPC) "
        s += objective == .ipo ? "tau_ipo=\(ipoTau) " : "beta=\(effectiveBeta) "
        if objective == .simpo { s += "gamma=\(effectiveSimpoGamma) " }
        s += "log_ratio=\(effectiveLogRatio.rawValue) d=\(hiddenSize) r=\(rank)"
        s += " lm_head=\((lmHeadPrecision ?? .f32).rawValue)"
        if useLPC {
            s += " K=\(codes) lambda=\(klWeight) temperature=\(temperature)"
            if let e = temperatureEnd { s += "→\(e)" }
            s += " g=\(gStart)→\(gEnd) prior_code=\(priorCode.rawValue)"
        }
        return s
    }
}

/// Linear ramp from `start` (step 0) to `end` (step total−1), then flat: used for g and τ.
@inlinable
public func linearRamp(step: Int, totalSteps: Int, start: Float, end: Float) -> Float {
    let t = min(1.0, Double(step) / Double(max(1, totalSteps - 1)))
    return Float(Double(start) + (Double(end) - Double(start)) * t)
}
