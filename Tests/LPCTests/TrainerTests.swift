import Foundation
import Testing
import TestSupport
@testable import LPC

/// Random synthetic pairs (`syntheticBatches`) with reference log-probs from the training kernel,
/// so an untrained head without a code ties every pair; small enough for a head to fit.
func syntheticFeatures(d: Int, vocab: Int, pairs: Int, seed: UInt64, head: FrozenLMHead,
                       sources: [String]? = nil) throws -> InMemoryPairFeatures {
    let base = try syntheticBatches(d: d, vocab: vocab, batches: 1, pairs: pairs, seed: seed)[0]
    // Reference log-probs from the same kernel (an untrained head ties every pair).
    var b = PreferenceBatch(hiddenSize: d)
    var scratch: [Float] = []
    for i in 0..<pairs {
        let one = try base.subset([i])
        let cw = one.sequenceStarts[1], end = one.sequenceStarts[2]
        let refW = one.tokenHidden.withUnsafeBufferPointer { h in
            one.tokenIds.withUnsafeBufferPointer { ids in
                head.sequenceLogProb(hidden: h.baseAddress!, ids: ids.baseAddress!, rows: cw, scratch: &scratch)
            }
        }
        let refL = one.tokenHidden.withUnsafeBufferPointer { h in
            one.tokenIds.withUnsafeBufferPointer { ids in
                head.sequenceLogProb(hidden: h.baseAddress! + cw * d, ids: ids.baseAddress! + cw, rows: end - cw, scratch: &scratch)
            }
        }
        try b.append(promptHidden: one.promptHidden, chosenLastHidden: one.chosenLastHidden,
                     rejectedLastHidden: one.rejectedLastHidden,
                     chosenTokens: Array(one.tokenHidden[0..<cw * d]), chosenIds: Array(one.tokenIds[0..<cw]),
                     chosenReferenceLogProb: refW,
                     rejectedTokens: Array(one.tokenHidden[cw * d..<end * d]), rejectedIds: Array(one.tokenIds[cw..<end]),
                     rejectedReferenceLogProb: refL)
    }
    return try InMemoryPairFeatures(b, sources: sources.map { s in (0..<pairs).map { s[$0 % s.count] } })
}

@Suite("Trainer: data order, resume, metrics, evaluation")
struct TrainerTests {
    static func setup(useLPC: Bool, objective: Objective = .dpo) throws -> (LPCConfig, OptimizerConfig, FrozenLMHead) {
        var (cfg, opt, head) = try CheckpointTests.setup(useLPC: useLPC, objective: objective)
        opt.gradientAccumulation = 2
        cfg.temperatureEnd = 0.5
        return (cfg, opt, head)
    }

    @Test("steps per epoch, data order per epoch: a seeded permutation visiting every pair once")
    func order() {
        #expect(Trainer.stepsPerEpoch(pairs: 10, batchSize: 3, accumulation: 2) == 2)
        #expect(Trainer.stepsPerEpoch(pairs: 12, batchSize: 3, accumulation: 2) == 2)
        #expect(Trainer.stepsPerEpoch(pairs: 2, batchSize: 8, accumulation: 4) == 1)
        var o = TrainerOptions()
        o.batchSize = 3
        o.epochs = 3
        #expect(Trainer.plannedSteps(pairs: 10, options: o, gradientAccumulation: 2) == 6)
        o.maxSteps = 5
        #expect(Trainer.plannedSteps(pairs: 10, options: o, gradientAccumulation: 2) == 5)
        let a = Trainer.order(pairs: 50, seed: 7, epoch: 0), b = Trainer.order(pairs: 50, seed: 7, epoch: 1)
        #expect(a.sorted() == Array(0..<50) && b.sorted() == Array(0..<50))
        #expect(a != b && a != Array(0..<50))
        #expect(a == Trainer.order(pairs: 50, seed: 7, epoch: 0))
    }

    /// End to end through the trainer: run 7 steps straight; run to step k (checkpoint, as if
    /// interrupted), resume from the folder in a fresh Trainer, finish — final parameters, moments,
    /// RNG and head file are bit-identical; the metrics file reads as one run.
    @Test("resume through the trainer continues bit-identically (mid-epoch and at an epoch boundary)",
          arguments: [(true, 3), (true, 4), (false, 3)])
    func resume(_ useLPC: Bool, _ stopAt: Int) throws {
        let (cfg, opt, head) = try Self.setup(useLPC: useLPC)
        let train = try syntheticFeatures(d: cfg.hiddenSize, vocab: cfg.vocabSize, pairs: 10, seed: 3, head: head)
        let eval = try syntheticFeatures(d: cfg.hiddenSize, vocab: cfg.vocabSize, pairs: 5, seed: 4, head: head)
        let root = temporaryFolder("trainer-resume")
        defer { try? FileManager.default.removeItem(atPath: root) }
        var o = TrainerOptions()
        o.batchSize = 3          // 10 pairs, 2 micro-batches per step: 2 steps per epoch (6 + 4 pairs)
        o.maxSteps = 7           // 3.5 epochs
        o.evalEvery = 2
        o.saveEvery = 5

        var a = o
        a.checkpointDir = root + "/a"
        a.outputHead = root + "/a-head"
        a.metricsPath = root + "/a.jsonl"
        let straight = try Trainer(model: cfg, optimizer: opt, lmHead: head, seed: 11, train: train, eval: eval, options: a)
        let ra = try straight.run()
        #expect(ra.completed && ra.steps == 7)
        #expect(ra.checkpoints == [root + "/a/checkpoint-5", root + "/a/checkpoint-7"])

        var b = o
        b.checkpointDir = root + "/b"
        b.outputHead = root + "/b-head"
        b.metricsPath = root + "/b.jsonl"
        b.stopAfter = stopAt
        let first = try Trainer(model: cfg, optimizer: opt, lmHead: head, seed: 11, train: train, eval: eval, options: b)
        let rb = try first.run()
        #expect(!rb.completed && rb.steps == stopAt)
        #expect(!FileManager.default.fileExists(atPath: root + "/b-head/head.safetensors"))
        // Junk past the checkpoint, as an interrupted run would leave, is dropped on resume.
        let junk = MetricsLog.line(["step": Double(stopAt + 1), "loss": 9])
        let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: root + "/b.jsonl"))
        try fh.seekToEnd(); try fh.write(contentsOf: junk); try fh.close()

        b.stopAfter = nil
        let resumed = try Trainer.resuming(from: root + "/b", lmHead: head, train: train, eval: eval, options: b)
        #expect(resumed.training.step == stopAt)
        let rr = try resumed.run()
        #expect(rr.completed && rr.steps == 7)

        #expect(resumed.training.model.parameters == straight.training.model.parameters, "parameters differ after resume")
        #expect(resumed.training.optimizer.firstMoment == straight.training.optimizer.firstMoment)
        #expect(resumed.training.optimizer.secondMoment == straight.training.optimizer.secondMoment)
        #expect(resumed.training.rng == straight.training.rng)
        #expect(FileManager.default.contents(atPath: root + "/a-head/head.safetensors")
                == FileManager.default.contents(atPath: root + "/b-head/head.safetensors"))

        // Metrics: same records (timing-free), in the same order.
        let ma = try MetricsLog.read(root + "/a.jsonl"), mb = try MetricsLog.read(root + "/b.jsonl")
        #expect(ma.count == 7 + 4)  // 7 steps + evals at 2, 4, 6, 7
        #expect(ma.map { $0["step"]! } == mb.map { $0["step"]! })
        #expect(ma.map { $0["loss"] ?? 0 } == mb.map { $0["loss"] ?? 0 })
        #expect(ma.map { $0["eval/accuracy/none"] ?? -1 } == mb.map { $0["eval/accuracy/none"] ?? -1 })
    }

    @Test("resume refuses different data or batch size")
    func resumeMismatch() throws {
        let (cfg, opt, head) = try Self.setup(useLPC: true)
        let train = try syntheticFeatures(d: cfg.hiddenSize, vocab: cfg.vocabSize, pairs: 10, seed: 3, head: head)
        let root = temporaryFolder("trainer-mismatch")
        defer { try? FileManager.default.removeItem(atPath: root) }
        var o = TrainerOptions()
        o.batchSize = 3
        o.maxSteps = 4
        o.stopAfter = 2
        o.checkpointDir = root
        _ = try Trainer(model: cfg, optimizer: opt, lmHead: head, seed: 1, train: train, options: o).run()
        o.stopAfter = nil
        let other = try syntheticFeatures(d: cfg.hiddenSize, vocab: cfg.vocabSize, pairs: 9, seed: 3, head: head)
        #expect(throws: LPCError.self) { try Trainer.resuming(from: root, lmHead: head, train: other, options: o) }
        var o2 = o
        o2.batchSize = 4
        do {
            _ = try Trainer.resuming(from: root, lmHead: head, train: train, options: o2)
            Issue.record("a different batch size was accepted")
        } catch let e as LPCError {
            #expect(e.description.contains("--batch-size 3"))
        }
        // The folder of checkpoints resolves to its latest.
        #expect(try Trainer.latestCheckpoint(in: root) == root + "/checkpoint-2")
        #expect(throws: LPCError.self) { try Trainer.latestCheckpoint(in: root + "/nothing") }
    }

    @Test("training on a learnable set lifts held-out accuracy above chance; the final head loads")
    func learns() throws {
        var (cfg, opt, head) = try Self.setup(useLPC: true)
        cfg.codes = 4
        opt.learningRate = 0.02
        opt.gradientAccumulation = 1
        opt.warmupSteps = 0
        let train = try syntheticFeatures(d: cfg.hiddenSize, vocab: cfg.vocabSize, pairs: 24, seed: 3, head: head,
                                          sources: ["a", "b"])
        let root = temporaryFolder("trainer-learn")
        defer { try? FileManager.default.removeItem(atPath: root) }
        var o = TrainerOptions()
        o.batchSize = 8
        o.epochs = 12
        o.outputHead = root + "/head"
        let t = try Trainer(model: cfg, optimizer: opt, lmHead: head, seed: 2, train: train, eval: train, options: o)
        // Untrained, without a code (U = 0, z = 0): the policy is the reference, every pair ties.
        let before = try evaluatePreferences(t.training.model, on: train)
        #expect(before.choices["none"]!.accuracy == 0.5 && before.choices["none"]!.ties == 24)
        let r = try t.run()
        let e = try #require(r.evaluation)
        #expect(e.choices["posterior"]!.accuracy > 0.7, "\(e.table)")
        #expect(e.priorCodes.reduce(0, +) == 24 && e.posteriorCodes.reduce(0, +) == 24)
        #expect(Set(e.sources.keys) == ["a", "b"] && e.sources["a"]!.pairs == 12)
        #expect(e.values["eval/accuracy/prior"] != nil && e.values["eval/kl"] != nil)
        let loaded = try LPCCheckpoint.loadHead(from: root + "/head", lmHead: head)
        #expect(loaded.parameters == t.training.model.parameters)
        let again = try evaluatePreferences(loaded, on: train, batchSize: 5)
        #expect(abs(again.choices["prior"]!.accuracy - e.choices["prior"]!.accuracy) < 1e-12)
        let json = try JSONSerialization.data(withJSONObject: again.json)
        #expect(!json.isEmpty)
        #expect(again.table.contains("posterior"))
    }

    @Test("progress: bar with rate and ETA on a terminal, plain lines otherwise")
    func progress() {
        var out: [String] = []
        let bar = TrainingProgress(style: .bar, totalSteps: 4, pairsPerStep: 8) { out.append($0) }
        bar.update(step: 1, seconds: 0.5, values: ["loss": 0.69, "rewards/accuracies": 0.5])
        #expect(out.last!.hasPrefix("\r") && out.last!.contains("1/4") && out.last!.contains("16.0 pairs/s")
                && out.last!.contains("ETA 0:02"))
        bar.note("eval")
        #expect(out.suffix(2) == ["\r\u{1B}[K", "eval\n"])
        out = []
        let lines = TrainingProgress(style: .lines, totalSteps: 10, pairsPerStep: 4, lineEvery: 5) { out.append($0) }
        for s in 1...10 { lines.update(step: s, seconds: 1, values: ["loss": 0.5, "learning_rate": 1e-3]) }
        #expect(out.count == 2 && out[0].hasPrefix("step 5/10 (50%)") && out[1].contains("ETA 0:00") && !out[0].contains("\r"))
        #expect(TrainingProgress.duration(3725) == "1:02:05")
    }

    @Test("options are validated")
    func options() {
        var o = TrainerOptions()
        o.batchSize = 0
        #expect(throws: LPCError.self) { try o.validate() }
        o = TrainerOptions()
        o.saveEvery = 10
        #expect(throws: LPCError.self) { try o.validate() }
        o.checkpointDir = "/tmp/x"
        #expect(throws: Never.self) { try o.validate() }
    }
}
