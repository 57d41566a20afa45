import Foundation
import Testing
import TestSupport

/// `lpc eval --pairs-out`: one JSON line per pair with its line, source, codes, rewards and
/// accuracy per code choice, consistent with the JSON report of the same evaluation.
@Suite("Eval per-pair records CLI", .serialized)
struct EvalPairsCLITests {
    let model = Fixtures.path("chat_model")

    @Test func pairsOutAgreesWithTheReport() throws {
        let dir = TrainCLITests.folder("pairs")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = try TrainCLITests.writeData(dir)
        let train = try CLI.run(["train", "--model", model, "--data", data, "--objective", "dpo", "--codes", "3", "--rank", "4",
                                 "--max-steps", "3", "--batch-size", "4", "--lr", "0.02", "--seed", "2",
                                 "--cache", dir + "/cache", "--out", dir + "/h"])
        #expect(train.status == 0, "\(train.stderr)")
        let out = dir + "/pairs.out.jsonl"
        let e = try CLI.run(["eval", "--model", model, "--head", dir + "/h", "--data", data, "--cache", dir + "/cache",
                             "--format", "json", "--batch-size", "5", "--pairs-out", out])
        #expect(e.status == 0, "\(e.stderr)")
        #expect(e.stderr.contains("wrote 12 pair records"))
        let report = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        let text = try String(contentsOfFile: out, encoding: .utf8)
        let records = try text.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        #expect(records.count == 12)
        #expect(records.map { $0["pair"] as? Int } == Array(0..<12))
        #expect(records.map { $0["line"] as? Int } == Array(1...12))  // no pair skipped: line = index + 1
        #expect(records.map { $0["source"] as? String } == (0..<12).map { $0 % 2 == 0 ? "short" : "long" })
        let codes = try #require(report["codes"] as? [String: [Int]])
        for (key, name) in [("prior_code", "prior"), ("posterior_code", "posterior")] {
            var hist = [Int](repeating: 0, count: 3)
            for r in records { hist[try #require(r[key] as? Int)] += 1 }
            #expect(hist == codes[name], "\(name)")
        }
        let accuracy = try #require(report["accuracy"] as? [String: Double])
        for name in ["prior", "posterior", "none"] {
            let mean = records.map { ($0["correct"] as! [String: Double])[name]! }.reduce(0, +) / 12
            #expect(abs(mean - accuracy[name]!) < 1e-12, "\(name)")
        }
        // Per-pair rewards are the numbers behind the report's means (they were once written as
        // [1, 1] for every pair), and agree with each record's accuracy.
        let choices = try #require(report["choices"] as? [String: [String: Any]])
        for name in ["prior", "posterior", "none"] {
            let rewards = try records.map { try #require(($0["rewards"] as? [String: [Double]])?[name]) }
            #expect(rewards.allSatisfy { $0.count == 2 })
            let meanChosen = rewards.map { $0[0] }.reduce(0, +) / 12, meanRejected = rewards.map { $0[1] }.reduce(0, +) / 12
            let c = try #require(choices[name])
            let reportChosen = try #require(c["rewards/chosen"] as? Double), reportRejected = try #require(c["rewards/rejected"] as? Double)
            #expect(abs(meanChosen - reportChosen) <= 1e-5 * max(1, abs(reportChosen)), "\(name): \(meanChosen) vs \(reportChosen)")
            #expect(abs(meanRejected - reportRejected) <= 1e-5 * max(1, abs(reportRejected)), "\(name): \(meanRejected) vs \(reportRejected)")
            #expect(Set(rewards.map { $0[0] }).count > 1, "\(name): per-pair rewards should differ between pairs")
            for (r, rec) in zip(rewards, records) where abs(r[0] - r[1]) > 1e-3 {
                let correct = (rec["correct"] as! [String: Double])[name]!
                #expect(correct == (r[0] > r[1] ? 1 : 0), "\(name)")
            }
        }

        let bad = try CLI.run(["eval", "--model", model, "--head", dir + "/h", "--data", data, "--cache", dir + "/cache",
                               "--pairs-out", dir + "/no/such/folder/p.jsonl"])
        #expect(bad.status != 0 && bad.stderr.contains("--pairs-out"), "\(bad.stderr)")
        let help = try CLI.run(["eval", "--help"])
        #expect(help.stdout.contains("--pairs-out"))
    }
}
