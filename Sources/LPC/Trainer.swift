import Foundation

/// How a training run walks the data and what it writes.
public struct TrainerOptions: Sendable {
    /// Passes over the training pairs (used when `maxSteps` is nil; default 1).
    public var epochs: Int?
    /// Optimizer steps of the run; overrides `epochs` (the data is re-shuffled and repeated as needed).
    public var maxSteps: Int?
    /// Pairs per micro-batch. An optimizer step takes `gradientAccumulation` micro-batches.
    public var batchSize: Int = 8
    /// Evaluate on the evaluation pairs every N optimizer steps (and after the last); nil: only at the end.
    public var evalEvery: Int?
    /// Pairs per evaluation batch.
    public var evalBatchSize: Int = 16
    /// Write a checkpoint every N steps (and after the last) into `checkpointDir`/checkpoint-<step>.
    public var saveEvery: Int?
    public var checkpointDir: String?
    /// The final head (head.safetensors + config.json, no optimizer state).
    public var outputHead: String?
    /// Metrics JSONL file.
    public var metricsPath: String?
    /// Seed of the per-epoch data shuffle; nil: the run's seed.
    public var dataSeed: UInt64?
    /// Stop after this many optimizer steps in all (writing a checkpoint), as if interrupted.
    public var stopAfter: Int?

    public init() {}

    public func validate() throws {
        func bad(_ s: String) -> LPCError { .invalidConfig(s) }
        guard batchSize >= 1 else { throw bad("batch size must be ≥ 1 pair, got \(batchSize)") }
        guard evalBatchSize >= 1 else { throw bad("evaluation batch size must be ≥ 1, got \(evalBatchSize)") }
        if let e = epochs, e < 1 { throw bad("epochs must be ≥ 1, got \(e)") }
        if let m = maxSteps, m < 1 { throw bad("max steps must be ≥ 1, got \(m)") }
        if let e = evalEvery, e < 1 { throw bad("eval-every must be ≥ 1 step, got \(e)") }
        if let s = saveEvery, s < 1 { throw bad("save-every must be ≥ 1 step, got \(s)") }
        if saveEvery != nil && checkpointDir == nil { throw bad("save-every needs a checkpoint folder") }
        if let s = stopAfter, s < 1 { throw bad("stop-after must be ≥ 1 step, got \(s)") }
    }
}

/// What a run did.
public struct TrainerResult: Sendable {
    /// Optimizer steps done in all (including before a resume).
    public var steps: Int
    public var completed: Bool
    /// The last step's values (StepReport.values + epoch).
    public var lastValues: [String: Double]
    /// The last evaluation, when there are evaluation pairs.
    public var evaluation: EvaluationReport?
    /// Pairs per second over this session's optimizer steps.
    public var pairsPerSecond: Double
    /// Checkpoint folders written, in order.
    public var checkpoints: [String]
}

/// The training loop over cached features: a seeded shuffle per epoch, micro-batches with gradient
/// accumulation, evaluation, metrics JSONL, progress, checkpoints and exact resume.
///
/// Data order: epoch e visits the pairs in a Fisher–Yates permutation drawn from
/// `LPCRandom(seed: dataSeed ⊕ e)`. An epoch has ⌈pairs / (batchSize·accumulation)⌉ optimizer steps;
/// step j takes the permutation's pairs j·B·A ..< (j+1)·B·A, cut into micro-batches of B (the last
/// step of an epoch may have fewer or smaller micro-batches; each micro-batch weighs 1/count).
/// The checkpoint's extra state holds `data_seed`, `epoch`, `epoch_step` (steps done in that epoch),
/// `batch_size`, `train_pairs` and `order_hash` (FNV-1a of the epoch's permutation), so a resumed
/// run rebuilds the same order and refuses different data or batch settings.
public final class Trainer {
    public let training: LPCTraining
    public let options: TrainerOptions
    public let train: PairFeatureSource
    public let eval: PairFeatureSource?
    public let dataSeed: UInt64
    public let stepsPerEpoch: Int
    /// Defaults to `.silent`; set a `TrainingProgress` to show one.
    public var progress: TrainingProgress?
    /// Called after each optimizer step with its record (tests, custom logging).
    public var onStep: (([String: Double]) -> Void)?
    public private(set) var epoch = 0
    public private(set) var epochStep = 0
    var order: [Int] = []
    let resumedFrom: Int?

    /// Optimizer steps of a run: `maxSteps`, or `epochs` (default 1) × steps per epoch.
    public static func plannedSteps(pairs: Int, options: TrainerOptions, gradientAccumulation: Int) -> Int {
        if let m = options.maxSteps { return m }
        return (options.epochs ?? 1) * stepsPerEpoch(pairs: pairs, batchSize: options.batchSize, accumulation: gradientAccumulation)
    }

    public static func stepsPerEpoch(pairs: Int, batchSize: Int, accumulation: Int) -> Int {
        let perStep = batchSize * accumulation
        return max(1, (pairs + perStep - 1) / perStep)
    }

    /// A fresh run. `optimizer.totalSteps` is replaced by the planned number of steps.
    public convenience init(model config: LPCConfig, optimizer: OptimizerConfig, lmHead: FrozenLMHead, seed: UInt64,
                            train: PairFeatureSource, eval: PairFeatureSource? = nil, options: TrainerOptions) throws {
        try options.validate()
        guard train.pairCount >= 1 else { throw LPCError.invalidBatch("the training data has no pairs") }
        var opt = optimizer
        opt.totalSteps = Self.plannedSteps(pairs: train.pairCount, options: options, gradientAccumulation: optimizer.gradientAccumulation)
        let training = try LPCTraining(model: config, optimizer: opt, lmHead: lmHead, seed: seed)
        try self.init(training: training, train: train, eval: eval, options: options, resumed: false)
    }

    /// Continues a run from a checkpoint folder written by `Trainer` (or a folder holding
    /// checkpoint-<step> subfolders: the latest is taken). Model, optimizer and schedule come from
    /// the checkpoint; `options.batchSize` must match it (the data order depends on it).
    public static func resuming(from dir: String, lmHead: FrozenLMHead, train: PairFeatureSource,
                                eval: PairFeatureSource? = nil, options: TrainerOptions) throws -> Trainer {
        try options.validate()
        let folder = try latestCheckpoint(in: dir)
        let training = try LPCCheckpoint.resume(from: folder, lmHead: lmHead)
        return try Trainer(training: training, train: train, eval: eval, options: options, resumed: true)
    }

    /// `dir` itself when it is a checkpoint, else its highest-numbered checkpoint-<step> subfolder.
    public static func latestCheckpoint(in dir: String) throws -> String {
        let fm = FileManager.default
        if fm.fileExists(atPath: dir + "/" + LPCCheckpoint.optimizerFile) { return dir }
        let entries = (try? fm.contentsOfDirectory(atPath: dir)) ?? []
        let steps = entries.compactMap { name -> Int? in
            guard name.hasPrefix("checkpoint-") else { return nil }
            return Int(name.dropFirst("checkpoint-".count))
        }
        guard let last = steps.filter({ fm.fileExists(atPath: "\(dir)/checkpoint-\($0)/\(LPCCheckpoint.optimizerFile)") }).max() else {
            throw LPCError.checkpoint("\(dir) is not a training checkpoint (no \(LPCCheckpoint.optimizerFile)) and holds no checkpoint-<step> folders")
        }
        return "\(dir)/checkpoint-\(last)"
    }

    init(training: LPCTraining, train: PairFeatureSource, eval: PairFeatureSource?, options: TrainerOptions, resumed: Bool) throws {
        guard train.hiddenSize == training.model.config.hiddenSize else {
            throw LPCError.invalidBatch("training features have d = \(train.hiddenSize) but the head has d = \(training.model.config.hiddenSize)")
        }
        if let eval, eval.hiddenSize != training.model.config.hiddenSize {
            throw LPCError.invalidBatch("evaluation features have d = \(eval.hiddenSize) but the head has d = \(training.model.config.hiddenSize)")
        }
        self.training = training
        self.train = train
        self.eval = eval
        self.options = options
        stepsPerEpoch = Self.stepsPerEpoch(pairs: train.pairCount, batchSize: options.batchSize,
                                           accumulation: training.optimizerConfig.gradientAccumulation)
        if resumed {
            let x = training.extraState
            func field(_ k: String) throws -> String {
                guard let v = x[k] else { throw LPCError.checkpoint("the checkpoint's trainer state lacks '\(k)' (not written by lpc train?)") }
                return v
            }
            guard let seed = UInt64(try field("data_seed")), let e = Int(try field("epoch")), let j = Int(try field("epoch_step")),
                  let bs = Int(try field("batch_size")), let n = Int(try field("train_pairs")) else {
                throw LPCError.checkpoint("the checkpoint's trainer state is malformed: \(x)")
            }
            guard n == train.pairCount else {
                throw LPCError.checkpoint("the checkpoint was trained on \(n) pairs but the training data now has \(train.pairCount): resume with the same data and length limits")
            }
            guard bs == options.batchSize else {
                throw LPCError.checkpoint("the checkpoint used --batch-size \(bs), not \(options.batchSize): resume with the same batch size")
            }
            dataSeed = seed
            epoch = e
            epochStep = j
            order = Self.order(pairs: n, seed: seed, epoch: e)
            guard String(Self.hash(order), radix: 16) == x["order_hash"] else {
                throw LPCError.checkpoint("the data order rebuilt from the checkpoint does not match the one it saved (order_hash): different data?")
            }
            resumedFrom = training.step
        } else {
            dataSeed = options.dataSeed ?? training.seed
            order = Self.order(pairs: train.pairCount, seed: dataSeed, epoch: 0)
            resumedFrom = nil
        }
    }

    /// The permutation of epoch `epoch`.
    public static func order(pairs: Int, seed: UInt64, epoch: Int) -> [Int] {
        var rng = LPCRandom(seed: seed ^ (0x6461_7461_0000_0000 &+ UInt64(epoch)))
        var p = Array(0..<pairs)
        if pairs > 1 {
            for i in stride(from: pairs - 1, to: 0, by: -1) {
                let j = Int(rng.next() % UInt64(i + 1))
                p.swapAt(i, j)
            }
        }
        return p
    }

    static func hash(_ order: [Int]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for v in order {
            var x = UInt64(v)
            for _ in 0..<8 { h = (h ^ (x & 0xff)) &* 0x100_0000_01b3; x >>= 8 }
        }
        return h
    }

    var state: [String: String] {
        ["data_seed": String(dataSeed), "epoch": String(epoch), "epoch_step": String(epochStep),
         "batch_size": String(options.batchSize), "train_pairs": String(train.pairCount),
         "order_hash": String(Self.hash(order), radix: 16)]
    }

    /// The micro-batches' pair indices of the next optimizer step (advancing the epoch if needed).
    func nextStepPairs() -> [[Int]] {
        if epochStep >= stepsPerEpoch {
            epoch += 1
            epochStep = 0
            order = Self.order(pairs: train.pairCount, seed: dataSeed, epoch: epoch)
        }
        let B = options.batchSize, A = training.optimizerConfig.gradientAccumulation
        let lo = epochStep * B * A, hi = min(order.count, lo + B * A)
        return stride(from: lo, to: hi, by: B).map { Array(order[$0..<min(hi, $0 + B)]) }
    }

    /// Runs to the planned number of steps (or `options.stopAfter`).
    @discardableResult
    public func run() throws -> TrainerResult {
        let total = training.optimizerConfig.totalSteps
        let stop = min(total, options.stopAfter ?? total)
        let log = try options.metricsPath.map { try MetricsLog(path: $0, resumeStep: resumedFrom) }
        let progress = self.progress ?? TrainingProgress(style: .silent, totalSteps: total, pairsPerStep: 1)
        var last: [String: Double] = [:]
        var evaluation: EvaluationReport?
        var checkpoints: [String] = []
        if let r = resumedFrom {
            progress.note("resuming at step \(r)/\(total) (epoch \(epoch + 1), step \(epochStep) of \(stepsPerEpoch) in it)")
        }
        var sessionPairs = 0
        var sessionSeconds = 0.0
        while training.step < stop {
            let micro = nextStepPairs()
            let batches = try micro.map { try train.batch($0) }
            let t0 = DispatchTime.now().uptimeNanoseconds
            let report = try training.step(batches)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            epochStep += 1
            training.extraState = state
            let pairs = micro.reduce(0) { $0 + $1.count }
            sessionPairs += pairs
            sessionSeconds += seconds
            var values = report.values
            values["epoch"] = Double(epoch) + Double(epochStep) / Double(stepsPerEpoch)
            values["pairs"] = Double(pairs)
            last = values
            try log?.write(values)
            onStep?(values)
            progress.update(step: training.step, seconds: seconds, values: values)

            let step = training.step
            let finished = step == total
            if let eval, (options.evalEvery.map { step % $0 == 0 } ?? false) || finished {
                let r = try evaluatePreferences(training.model, on: eval, batchSize: options.evalBatchSize)
                evaluation = r
                var v = r.values
                v["step"] = Double(step)
                v["epoch"] = values["epoch"]
                try log?.write(v)
                progress.note(Self.evalLine(step: step, r))
            }
            if let dir = options.checkpointDir,
               (options.saveEvery.map { step % $0 == 0 } ?? false) || finished || step == stop {
                let folder = "\(dir)/checkpoint-\(step)"
                try training.saveCheckpoint(to: folder)
                checkpoints.append(folder)
                progress.note("saved checkpoint \(folder)")
            }
        }
        progress.finish()
        let completed = training.step >= total
        if completed, let out = options.outputHead {
            try LPCCheckpoint.saveHead(training.model, to: out, step: training.step)
            progress.note("saved head \(out)")
        }
        return TrainerResult(steps: training.step, completed: completed, lastValues: last, evaluation: evaluation,
                             pairsPerSecond: sessionSeconds > 0 ? Double(sessionPairs) / sessionSeconds : .nan,
                             checkpoints: checkpoints)
    }

    static func evalLine(step: Int, _ r: EvaluationReport) -> String {
        let names = EvaluationReport.choiceNames(useLPC: r.useLPC)
        let acc = names.map { "\($0) \(String(format: "%.3f", r.choices[$0]?.accuracy ?? .nan))" }.joined(separator: ", ")
        var s = "eval @ step \(step): accuracy \(acc) on \(r.pairs) pairs"
        if let m = r.metrics.values["rewards/margins"] { s += String(format: "; margin %.4f", m) }
        if let k = r.metrics.values["kl"] { s += String(format: "; kl %.4f", k) }
        if let p = r.metrics.values["codes/perplexity"] { s += String(format: "; codes/perplexity %.2f", p) }
        return s
    }
}
