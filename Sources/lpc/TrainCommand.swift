import ArgumentParser
import Foundation
import Generation
import LPC
import Tokenizers

extension Objective: ExpressibleByArgument {}
extension LRDecay: ExpressibleByArgument {}
extension LogRatioReduction: ExpressibleByArgument {}
extension LMHeadPrecision: ExpressibleByArgument {}

/// Data files → cached backbone features: shared by `train` and `eval`.
struct DataOptions: ParsableArguments {
    @Option(name: .customLong("max-length"), help: "Longest prompt + response in tokens; longer responses are cut at the end.")
    var maxLength: Int = 1024

    @Option(name: .customLong("max-prompt-length"), help: "Longest prompt in tokens; a pair whose prompt is longer is skipped (and counted).")
    var maxPromptLength: Int = 512

    @Option(name: .customLong("cache"), help: ArgumentHelp("Feature cache folder (final hidden states and reference log-probs, keyed by model, data and lengths).", valueName: "DIR"))
    var cacheDir: String = ".lpc-cache"

    @Option(name: .customLong("reference"), help: "Reference log-probs: recompute from the cached hidden states with the training kernel (an untrained head ties every pair), or cached (the backbone's own logits).")
    var reference: ReferenceChoice = .recompute

    @Option(name: .customLong("feature-batch-size"), help: "Sequences per batched prefill when extracting features.")
    var featureBatchSize: Int = 8

    func validate() throws {
        guard featureBatchSize >= 1 else { throw ValidationError("--feature-batch-size must be ≥ 1, got \(featureBatchSize)") }
        guard maxPromptLength >= 1 else { throw ValidationError("--max-prompt-length must be ≥ 1, got \(maxPromptLength)") }
        guard maxLength > maxPromptLength else {
            throw ValidationError("--max-length (\(maxLength)) must exceed --max-prompt-length (\(maxPromptLength)) to leave room for a response")
        }
    }
}

enum ReferenceChoice: String, ExpressibleByArgument, CaseIterable {
    case recompute, cached
}

/// The model's frozen LM head and the features of data files (extracted once, then cached).
final class PairFeatureStore {
    let folder: ModelFolder
    let tokenizer: Tokenizer
    let renderer: PairRenderer
    let extractor: FeatureExtractor
    let lmHead: FrozenLMHead
    let options: DataOptions
    let say: (String) -> Void

    init(modelDir: String, options: DataOptions, say: @escaping (String) -> Void) throws {
        folder = try ModelFolder(path: modelDir)
        tokenizer = try Tokenizer(contentsOfFile: folder.tokenizerFile)
        renderer = PairRenderer(template: try ChatTemplateConfig.load(modelDirectory: folder.path))
        extractor = try FeatureExtractor(modelFile: folder.modelFile)
        lmHead = try FrozenLMHead(tap: extractor.tap)
        self.options = options
        self.say = say
    }

    func features(for file: String, role: String) throws -> CachedPairFeatures {
        let lengths = LengthOptions(maxLength: options.maxLength, maxPromptLength: options.maxPromptLength)
        let dataset = try PreferenceDataset.load(file: file, renderer: renderer, tokenizer: tokenizer, lengths: lengths)
        say("\(role) data \(file): \(dataset.stats)")
        var fo = FeatureOptions()
        fo.batchSize = options.featureBatchSize
        let set = try FeatureSet.load(dataset: dataset, extractor: extractor, cacheRoot: options.cacheDir, options: fo)
        return try CachedPairFeatures(set, lmHead: lmHead, reference: options.reference == .cached ? .cached : .recompute)
    }
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a Latent Preference Coding head (or a baseline adapter) on preference pairs over the frozen model.",
        discussion: """
        The backbone is frozen: its final hidden states and reference log-probs are computed once per
        data file and cached; each step trains the codebook, prior, posterior and latent head.

        Data: JSONL, one pair per line: "prompt", "chosen", "rejected" (strings or chat message lists),
        optional "source". Metrics: JSONL with TRL's names (loss, rewards/chosen, rewards/rejected,
        rewards/accuracies, rewards/margins, logps/chosen, logps/rejected) plus kl, entropy/prior,
        entropy/posterior, codes/perplexity, grad_norm, learning_rate, g, temperature; evaluation
        records as eval/… (accuracy with the prior's code, the posterior's and none; ties count ½).
        Checkpoints go to OUT/checkpoints/checkpoint-<step>; the final head to OUT (head.safetensors,
        config.json). --resume continues a run exactly with the same data and options.

        Examples:
          lpc train --data prefs/train.jsonl --eval-data prefs/eval.jsonl --objective dpo --out heads/dpo
          lpc train --data train.jsonl --objective simpo --no-lpc --epochs 3 --lr 1e-3 --out heads/simpo-base
          lpc train --data train.jsonl --objective ipo --max-steps 400 --save-every 100 --out heads/ipo \\
                    --resume heads/ipo/checkpoints
        """
    )

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: ArgumentHelp("Training pairs (JSONL).", valueName: "FILE"))
    var data: String

    @Option(name: .customLong("eval-data"), help: ArgumentHelp("Held-out pairs (JSONL), evaluated every --eval-every steps and at the end.", valueName: "FILE"))
    var evalData: String?

    @Option(help: "Preference objective: dpo, simpo or ipo.")
    var objective: Objective

    @Flag(name: .customLong("no-lpc"), help: "Baseline: train only the latent head's adapter, without codes or KL.")
    var noLPC = false

    @Option(help: "K: codebook size (LPC).")
    var codes: Int?

    @Option(help: "r: rank of the latent head's adapter.")
    var rank: Int = 64

    @Option(help: "β (DPO default 0.1, SimPO 2.0; IPO uses --ipo-tau).")
    var beta: Float?

    @Option(name: .customLong("simpo-gamma"), help: "SimPO target margin γ (default 0.5·β).")
    var simpoGamma: Float?

    @Option(name: .customLong("ipo-tau"), help: "IPO τ: target margin 1/(2τ).")
    var ipoTau: Float = 0.1

    @Option(name: .customLong("log-ratio"), help: "DPO/IPO log-ratios summed or length-averaged (default: DPO sum, IPO mean).")
    var logRatio: LogRatioReduction?

    @Option(name: .customLong("kl-weight"), help: "λ: weight of KL(posterior ‖ prior) (LPC; default 0.05).")
    var klWeight: Float?

    @Option(name: .customLong("codebook-init-std"), help: "Standard deviation of the codebook's normal initialisation (LPC; default 0.02).")
    var codebookInitStd: Float?

    @Option(name: .customLong("gumbel-temperature"), help: "Gumbel-softmax temperature at the first step (LPC).")
    var gumbelTemperature: Float = 1.0

    @Option(name: .customLong("gumbel-temperature-end"), help: "Anneal the Gumbel temperature linearly to this value at the last step (LPC).")
    var gumbelTemperatureEnd: Float?

    @Option(name: .customLong("lm-head-precision"), help: "Arithmetic of the frozen LM head in training: f32 (float32 sgemm, exact) or bf16 (bfloat16 inputs, float32 accumulation, AMX; falls back to f32 with a note where the CPU lacks AMX-BF16).")
    var lmHeadPrecision: LMHeadPrecision = .f32

    @Option(help: "Peak learning rate (AdamW).")
    var lr: Float = 5e-4

    @Option(name: .customLong("weight-decay"), help: "AdamW decoupled weight decay.")
    var weightDecay: Float = 0

    @Option(help: "Passes over the training pairs (default 1 unless --max-steps).")
    var epochs: Int?

    @Option(name: .customLong("max-steps"), help: "Optimizer steps (instead of --epochs).")
    var maxSteps: Int?

    @Option(name: .customLong("batch-size"), help: "Pairs per micro-batch.")
    var batchSize: Int = 8

    @Option(name: .customLong("grad-accum"), help: "Micro-batches per optimizer step.")
    var gradAccum: Int = 1

    @Option(name: .customLong("warmup-steps"), help: "Linear learning-rate warmup steps.")
    var warmupSteps: Int = 0

    @Option(help: "Learning-rate decay after warmup: cosine, linear or constant.")
    var schedule: LRDecay = .cosine

    @Option(name: .customLong("max-grad-norm"), help: "Clip the global gradient norm to this (0: no clipping).")
    var maxGradNorm: Float = 1.0

    @Option(help: "Seed of the initialisation, the Gumbel noise and the data order.")
    var seed: UInt64 = 0

    @OptionGroup var features: DataOptions

    @Option(name: .customLong("eval-every"), help: "Evaluate on --eval-data every N steps (default: only at the end).")
    var evalEvery: Int?

    @Option(name: .customLong("eval-batch-size"), help: "Pairs per evaluation batch.")
    var evalBatchSize: Int = 16

    @Option(name: .customLong("save-every"), help: "Write a resumable checkpoint every N steps (one is always written at the end).")
    var saveEvery: Int?

    @Option(help: ArgumentHelp("Continue from a checkpoint folder, or from a folder of checkpoint-<step> folders (the latest).", valueName: "DIR"))
    var resume: String?

    @Option(help: ArgumentHelp("Metrics JSONL (default OUT/metrics.jsonl).", valueName: "FILE"))
    var metrics: String?

    @Option(help: ArgumentHelp("Output folder of the final head (head.safetensors, config.json) and its checkpoints/.", valueName: "HEAD_DIR"))
    var out: String

    @Option(name: .customLong("stop-after"), help: .hidden)
    var stopAfter: Int?

    func validate() throws {
        func positive<T: Comparable & Numeric>(_ v: T?, _ name: String) throws {
            if let v, v <= 0 { throw ValidationError("\(name) must be positive, got \(v)") }
        }
        if noLPC {
            if codes != nil { throw ValidationError("--codes has no effect with --no-lpc (the baseline has no codebook)") }
            if klWeight != nil { throw ValidationError("--kl-weight has no effect with --no-lpc (the baseline has no KL term)") }
            if codebookInitStd != nil { throw ValidationError("--codebook-init-std has no effect with --no-lpc (the baseline has no codebook)") }
        }
        if let codes, codes < 2 { throw ValidationError("--codes must be at least 2, got \(codes)") }
        try positive(rank, "--rank")
        try positive(beta, "--beta")
        try positive(simpoGamma.map { $0 + 1 }, "--simpo-gamma + 1")   // γ may be 0
        if let g = simpoGamma, g < 0 { throw ValidationError("--simpo-gamma must be ≥ 0, got \(g)") }
        if simpoGamma != nil && objective != .simpo { throw ValidationError("--simpo-gamma applies to --objective simpo only") }
        try positive(ipoTau, "--ipo-tau")
        if logRatio != nil && objective == .simpo { throw ValidationError("--log-ratio does not apply to simpo (always length-averaged)") }
        if let k = klWeight, k < 0 { throw ValidationError("--kl-weight must be ≥ 0, got \(k)") }
        if let std = codebookInitStd, !(std >= 0 && std.isFinite) { throw ValidationError("--codebook-init-std must be ≥ 0, got \(std)") }
        try positive(gumbelTemperature, "--gumbel-temperature")
        try positive(gumbelTemperatureEnd, "--gumbel-temperature-end")
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number, got \(lr)") }
        guard weightDecay >= 0 else { throw ValidationError("--weight-decay must be ≥ 0, got \(weightDecay)") }
        if epochs != nil && maxSteps != nil { throw ValidationError("give --epochs or --max-steps, not both") }
        try positive(epochs, "--epochs")
        try positive(maxSteps, "--max-steps")
        try positive(batchSize, "--batch-size")
        try positive(gradAccum, "--grad-accum")
        guard warmupSteps >= 0 else { throw ValidationError("--warmup-steps must be ≥ 0, got \(warmupSteps)") }
        if let m = maxSteps, warmupSteps >= m { throw ValidationError("--warmup-steps (\(warmupSteps)) must be smaller than --max-steps (\(m))") }
        guard maxGradNorm >= 0, maxGradNorm.isFinite else { throw ValidationError("--max-grad-norm must be ≥ 0 (0: off), got \(maxGradNorm)") }
        try positive(evalEvery, "--eval-every")
        if evalEvery != nil && evalData == nil { throw ValidationError("--eval-every needs --eval-data") }
        try positive(evalBatchSize, "--eval-batch-size")
        try positive(saveEvery, "--save-every")
        try positive(stopAfter, "--stop-after")
        guard !out.isEmpty else { throw ValidationError("--out must name a folder") }
    }

    func modelConfig(hiddenSize: Int, vocabSize: Int) -> LPCConfig {
        var c = LPCConfig(hiddenSize: hiddenSize, vocabSize: vocabSize)
        c.useLPC = !noLPC
        c.objective = objective
        if let codes { c.codes = codes }
        c.rank = rank
        c.beta = beta
        c.simpoGamma = simpoGamma
        c.ipoTau = ipoTau
        c.logRatio = logRatio
        if let klWeight { c.klWeight = klWeight }
        if let codebookInitStd { c.codebookInitStd = codebookInitStd }
        c.temperature = gumbelTemperature
        c.temperatureEnd = gumbelTemperatureEnd
        return c
    }

    var optimizerConfig: OptimizerConfig {
        var o = OptimizerConfig(totalSteps: 1)
        o.learningRate = lr
        o.weightDecay = weightDecay
        o.warmupSteps = warmupSteps
        o.decay = schedule
        o.maxGradNorm = maxGradNorm > 0 ? maxGradNorm : nil
        o.gradientAccumulation = gradAccum
        return o
    }

    var trainerOptions: TrainerOptions {
        var t = TrainerOptions()
        t.epochs = epochs
        t.maxSteps = maxSteps
        t.batchSize = batchSize
        t.evalEvery = evalEvery
        t.evalBatchSize = evalBatchSize
        t.saveEvery = saveEvery
        t.checkpointDir = out + "/checkpoints"
        t.outputHead = out
        t.metricsPath = metrics ?? out + "/metrics.jsonl"
        t.stopAfter = stopAfter
        return t
    }

    func run() throws {
        do {
            let say: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
            let store = try PairFeatureStore(modelDir: modelOptions.model, options: features, say: say)
            // Before the features: recomputed reference log-probs use the training kernel.
            let precision = store.lmHead.setPrecision(lmHeadPrecision)
            if precision != lmHeadPrecision {
                say("note: --lm-head-precision \(lmHeadPrecision.rawValue) needs AMX-BF16, which this CPU or OS does not offer; using \(precision.rawValue)")
            }
            let train = try store.features(for: data, role: "training")
            let eval = try evalData.map { try store.features(for: $0, role: "evaluation") }
            let head = store.lmHead
            let opts = trainerOptions
            let trainer: Trainer
            var config = modelConfig(hiddenSize: head.hiddenSize, vocabSize: head.vocabSize)
            config.lmHeadPrecision = precision
            var opt = optimizerConfig
            opt.totalSteps = Trainer.plannedSteps(pairs: train.pairCount, options: opts, gradientAccumulation: gradAccum)
            if let resume {
                trainer = try Trainer.resuming(from: resume, lmHead: head, train: train, eval: eval, options: opts)
                let had = trainer.training
                var hadConfig = had.model.config
                if hadConfig.lmHeadPrecision == nil { hadConfig.lmHeadPrecision = .f32 }  // written before the option
                if hadConfig != config || had.optimizerConfig != opt || had.seed != seed {
                    throw ValidationError("""
                        --resume \(resume): the checkpoint was trained with other options; resume with the same ones.
                          checkpoint: \(had.model.config.summary); lr \(had.optimizerConfig.learningRate), \(had.optimizerConfig.totalSteps) steps, seed \(had.seed)
                          now:        \(config.summary); lr \(opt.learningRate), \(opt.totalSteps) steps, seed \(seed)
                        """)
                }
            } else {
                trainer = try Trainer(model: config, optimizer: opt, lmHead: head, seed: seed, train: train, eval: eval, options: opts)
            }
            let total = trainer.training.optimizerConfig.totalSteps
            say("training \(train.pairCount) pairs, \(trainer.stepsPerEpoch) steps/epoch, \(total) steps of \(batchSize)×\(gradAccum) pairs; \(config.summary)")
            trainer.progress = TrainingProgress(style: TrainingProgress.automaticStyle, totalSteps: total,
                                                pairsPerStep: batchSize * gradAccum)
            let result = try trainer.run()
            let rate = String(format: "%.1f", result.pairsPerSecond)
            if result.completed {
                say("done: \(result.steps) steps, \(rate) pairs/s; head in \(out), metrics in \(opts.metricsPath!)")
            } else {
                say("stopped after step \(result.steps) of \(total) (\(rate) pairs/s); continue with --resume \(out)/checkpoints")
            }
        } catch let error as ValidationError {
            exitWithError(error)
        } catch {
            exitWithError(error)
        }
    }
}
