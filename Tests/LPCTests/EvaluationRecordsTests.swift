import Foundation
import Testing
@testable import LPC

/// Per-pair records of `evaluatePreferences(…, records: true)` (`lpc eval --pairs-out`): they agree
/// with the report's aggregates, do not depend on the batch size, and serialise to JSON Lines.
@Suite("Evaluation per-pair records")
struct EvaluationRecordsTests {
    /// An untrained head with a random codebook: codes change the rewards, so pairs do not all tie.
    func model(useLPC: Bool) throws -> (LPCModel, InMemoryPairFeatures) {
        var (cfg, _, head) = try CheckpointTests.setup(useLPC: useLPC)
        cfg.codebookInitStd = 1.0
        let model = try LPCModel(config: cfg, lmHead: head, seed: 7)
        let sources = (0..<17).map { ["x", "y", "z"][$0 % 3] }
        let data = try syntheticFeatures(d: cfg.hiddenSize, vocab: cfg.vocabSize, pairs: 17, seed: 4, head: head, sources: sources)
        return (model, data)
    }

    @Test("records match the report's accuracy, margins and code histograms; batch size does not matter", arguments: [true, false])
    func recordsAgreeWithAggregates(_ useLPC: Bool) throws {
        let (model, data) = try model(useLPC: useLPC)
        let report = try evaluatePreferences(model, on: data, batchSize: 4, records: true)
        let recs = report.pairRecords
        #expect(recs.map(\.pair) == Array(0..<17))
        #expect(recs.map(\.source) == (0..<17).map { ["x", "y", "z"][$0 % 3] })
        #expect(recs.allSatisfy { $0.line == nil })  // in-memory features know no lines
        for name in EvaluationReport.choiceNames(useLPC: useLPC) {
            let choice = try #require(report.choices[name])
            let correct = recs.map { $0.correct[name]! }
            #expect(abs(correct.reduce(0, +) / 17 - choice.accuracy) < 1e-12, "\(name)")
            #expect(correct.filter { $0 == 0.5 }.count == choice.ties)
            let margin = recs.map { $0.rewards[name]!.chosen - $0.rewards[name]!.rejected }.reduce(0, +) / 17
            #expect(abs(margin - choice.margins) < 1e-9, "\(name)")
        }
        if useLPC {
            var prior = [Int](repeating: 0, count: model.config.codes), post = prior
            for r in recs { prior[r.priorCode!] += 1; post[r.posteriorCode!] += 1 }
            #expect(prior == report.priorCodes && post == report.posteriorCodes)
            #expect(Set(recs.flatMap { $0.correct.keys }) == ["prior", "posterior", "none"])
            // Codes make a difference here, so the test can fail: not every pair ties.
            #expect(recs.contains { $0.correct["prior"]! != 0.5 })
        } else {
            #expect(recs.allSatisfy { $0.priorCode == nil && $0.posteriorCode == nil && Array($0.correct.keys) == ["none"] })
        }
        // Same records in one batch (rewards within float summation noise).
        let one = try evaluatePreferences(model, on: data, batchSize: 17, records: true).pairRecords
        #expect(one.map(\.priorCode) == recs.map(\.priorCode) && one.map(\.posteriorCode) == recs.map(\.posteriorCode))
        for (a, b) in zip(one, recs) {
            for (k, v) in a.rewards { #expect(abs(v.chosen - b.rewards[k]!.chosen) <= 1e-4 * max(1, abs(v.chosen))) }
        }
        // Without records, the report is the same and keeps none.
        let plain = try evaluatePreferences(model, on: data, batchSize: 4)
        #expect(plain.pairRecords.isEmpty && plain.choices == report.choices)
    }

    @Test("records serialise to one JSON object per line")
    func jsonLines() throws {
        let (model, data) = try model(useLPC: true)
        let report = try evaluatePreferences(model, on: data, batchSize: 5, records: true)
        let text = String(decoding: try report.pairRecordsJSONL(), as: UTF8.self)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 17 && text.hasSuffix("\n"))
        for (i, line) in lines.enumerated() {
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(o["pair"] as? Int == i)
            #expect(o["prior_code"] as? Int == report.pairRecords[i].priorCode)
            #expect(o["posterior_code"] as? Int == report.pairRecords[i].posteriorCode)
            #expect(o["line"] is NSNull && o["source"] as? String == ["x", "y", "z"][i % 3])
            let rewards = try #require(o["rewards"] as? [String: [Double]])
            #expect(Set(rewards.keys) == ["prior", "posterior", "none"] && rewards["prior"]!.count == 2)
            #expect((o["correct"] as? [String: Double])?["none"] == report.pairRecords[i].correct["none"])
        }
    }
}
