import Foundation
import Testing
import TestSupport

/// `lpc train` and `lpc eval` on the tiny complete model folder (Tests/Fixtures/chat_model):
/// help, option validation, an end-to-end run with evaluation, metrics, checkpoints, the final
/// head, an exact resume through the CLI, and `lpc eval` in both formats.
@Suite("Train and eval CLI", .serialized)
struct TrainCLITests {
    let model = Fixtures.path("chat_model")

    /// 12 pairs from two sources; the "short" source prefers the shorter answer, "long" the longer.
    static func writeData(_ dir: String) throws -> String {
        var lines: [String] = []
        for i in 0..<12 {
            let short = String(repeating: "yes ", count: 1 + i % 3), long = String(repeating: "no no no no ", count: 1 + i % 2)
            let (source, chosen, rejected) = i % 2 == 0 ? ("short", short, long) : ("long", long, short)
            let obj: [String: Any] = ["prompt": "Question \(i)?", "chosen": chosen, "rejected": rejected, "source": source]
            lines.append(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys]), as: UTF8.self))
        }
        let path = dir + "/pairs.jsonl"
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func folder(_ tag: String) -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lpc-cli-\(tag)-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test func helpTextNamesTheOptions() throws {
        let help = try CLI.run(["train", "--help"])
        #expect(help.status == 0)
        for option in ["--model", "--data", "--eval-data", "--objective", "--no-lpc", "--codes", "--rank", "--beta", "--kl-weight",
                       "--lr", "--epochs", "--max-steps", "--batch-size", "--grad-accum", "--warmup-steps", "--schedule",
                       "--max-grad-norm", "--seed", "--max-length", "--max-prompt-length", "--eval-every", "--save-every",
                       "--resume", "--metrics", "--out", "--lm-head-precision", "--codebook-init-std", "dpo", "simpo", "ipo", "cosine", "Examples:"] {
            #expect(help.stdout.contains(option), "train --help lacks \(option)")
        }
        #expect(!help.stdout.contains("--stop-after"))
        let eval = try CLI.run(["eval", "--help"])
        for option in ["--model", "--head", "--data", "--format", "json", "table", "posterior", "source"] {
            #expect(eval.stdout.contains(option), "eval --help lacks \(option)")
        }
        let root = try CLI.run(["--help"])
        #expect(root.stdout.contains("train") && root.stdout.contains("eval"))
    }

    @Test(arguments: [
        (["--epochs", "2", "--max-steps", "5"], "not both"),
        (["--no-lpc", "--codes", "8"], "--codes has no effect with --no-lpc"),
        (["--no-lpc", "--kl-weight", "0.1"], "--kl-weight has no effect"),
        (["--no-lpc", "--codebook-init-std", "0.5"], "--codebook-init-std has no effect"),
        (["--codebook-init-std=-1"], "--codebook-init-std must be ≥ 0"),
        (["--codes", "1"], "--codes must be at least 2"),
        (["--eval-every", "10"], "--eval-every needs --eval-data"),
        (["--max-length", "64", "--max-prompt-length", "64"], "must exceed --max-prompt-length"),
        (["--batch-size", "0"], "--batch-size must be positive"),
        (["--grad-accum", "0"], "--grad-accum must be positive"),
        (["--lr", "0"], "--lr must be a positive number"),
        (["--beta=-1"], "--beta must be positive"),
        (["--max-grad-norm=-1"], "--max-grad-norm must be ≥ 0"),
        (["--max-steps", "10", "--warmup-steps", "10"], "--warmup-steps (10) must be smaller"),
        (["--simpo-gamma", "0.3"], "--simpo-gamma applies to --objective simpo only"),
        (["--schedule", "exponential"], "schedule"),
        (["--lm-head-precision", "fp8"], "lm-head-precision"),
    ])
    func badOptionsAreRejected(_ extra: [String], _ message: String) throws {
        let r = try CLI.run(["train", "--model", model, "--data", "x.jsonl", "--objective", "dpo", "--out", "/tmp/never"] + extra)
        #expect(r.status != 0)
        #expect(r.stderr.contains(message), "expected '\(message)' in: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/never"))
    }

    @Test func missingRequiredOptions() throws {
        let noObjective = try CLI.run(["train", "--data", "x.jsonl", "--out", "/tmp/never"])
        #expect(noObjective.status != 0 && noObjective.stderr.contains("--objective"))
        let badObjective = try CLI.run(["train", "--data", "x.jsonl", "--objective", "ppo", "--out", "/tmp/never"])
        #expect(badObjective.status != 0 && badObjective.stderr.contains("ppo"))
        let noOut = try CLI.run(["train", "--data", "x.jsonl", "--objective", "dpo"])
        #expect(noOut.status != 0 && noOut.stderr.contains("--out"))
        let missingData = try CLI.run(["train", "--model", model, "--data", "/nonexistent/pairs.jsonl", "--objective", "dpo",
                                       "--out", Self.folder("nodata")])
        #expect(missingData.status == 1 && missingData.stderr.hasPrefix("error: ") && missingData.stderr.contains("/nonexistent/pairs.jsonl"))
        let noHead = try CLI.run(["eval", "--model", model, "--head", "/nonexistent/head", "--data", "x.jsonl"])
        #expect(noHead.status == 1 && noHead.stderr.contains("/nonexistent/head"))
    }

    /// Train with eval and checkpoints; stop after 2 steps and resume: the final head is
    /// byte-identical to an uninterrupted run; lpc eval reads it back (json and table).
    @Test func trainResumeAndEvaluate() throws {
        let dir = Self.folder("train")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = try Self.writeData(dir)
        let common = ["train", "--model", model, "--data", data, "--eval-data", data, "--objective", "simpo", "--codes", "4",
                      "--rank", "8", "--batch-size", "3", "--grad-accum", "2", "--epochs", "3", "--lr", "0.01", "--warmup-steps", "1",
                      "--eval-every", "2", "--save-every", "2", "--seed", "5", "--cache", dir + "/cache"]
        let straight = try CLI.run(common + ["--out", dir + "/a"])
        #expect(straight.status == 0, "\(straight.stderr)")
        #expect(straight.stderr.contains("step 6/6") && straight.stderr.contains("eval @ step 6"))
        let records = try metrics(dir + "/a/metrics.jsonl")
        #expect(records.filter { $0["loss"] != nil }.count == 6)
        #expect(records.filter { $0["eval/accuracy/prior"] != nil }.count == 3)
        for name in ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected",
                     "kl", "entropy/prior", "entropy/posterior", "codes/perplexity", "grad_norm", "learning_rate", "epoch"] {
            #expect(records[0][name] != nil, "metrics lack \(name)")
        }
        for f in ["head.safetensors", "config.json", "checkpoints/checkpoint-2/optimizer.safetensors", "checkpoints/checkpoint-6/head.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/a/" + f), "missing \(f)")
        }

        let stopped = try CLI.run(common + ["--out", dir + "/b", "--stop-after", "3"])
        #expect(stopped.status == 0 && stopped.stderr.contains("stopped after step 3"), "\(stopped.stderr)")
        let mismatched = try CLI.run(common.map { $0 == "0.01" ? "0.02" : $0 } + ["--out", dir + "/b", "--resume", dir + "/b/checkpoints"])
        #expect(mismatched.status == 1 && mismatched.stderr.contains("other options"), "\(mismatched.stderr)")
        let resumed = try CLI.run(common + ["--out", dir + "/b", "--resume", dir + "/b/checkpoints"])
        #expect(resumed.status == 0 && resumed.stderr.contains("resuming at step 3/6"), "\(resumed.stderr)")
        #expect(FileManager.default.contents(atPath: dir + "/a/head.safetensors") == FileManager.default.contents(atPath: dir + "/b/head.safetensors"))
        #expect(try metrics(dir + "/b/metrics.jsonl").map { $0["loss"] ?? -1 } == records.map { $0["loss"] ?? -1 })

        let json = try CLI.run(["eval", "--model", model, "--head", dir + "/a", "--data", data, "--cache", dir + "/cache", "--format", "json"])
        #expect(json.status == 0, "\(json.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let accuracy = try #require(report["accuracy"] as? [String: Double])
        #expect(Set(accuracy.keys) == ["prior", "posterior", "none"])
        let last = try #require(records.last)
        #expect(abs(accuracy["prior"]! - last["eval/accuracy/prior"]!) < 1e-12)
        let choices = try #require(report["choices"] as? [String: [String: Any]])
        #expect(abs((choices["none"]!["accuracy"] as! Double) - accuracy["none"]!) < 1e-12)
        let sources = try #require(report["sources"] as? [String: [String: Any]])
        #expect(Set(sources.keys) == ["short", "long"] && sources["short"]?["pairs"] as? Int == 6)
        let codes = try #require(report["codes"] as? [String: [Int]])
        #expect(codes["prior"]?.count == 4 && codes["prior"]?.reduce(0, +) == 12)

        let table = try CLI.run(["eval", "--model", model, "--head", dir + "/a", "--data", data, "--cache", dir + "/cache"])
        #expect(table.status == 0 && table.stdout.contains("posterior") && table.stdout.contains("short") && table.stdout.contains("codes (prior argmax)"))
    }

    @Test func baselineHeadReportsNoCode() throws {
        let dir = Self.folder("baseline")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = try Self.writeData(dir)
        let r = try CLI.run(["train", "--model", model, "--data", data, "--objective", "ipo", "--no-lpc", "--rank", "4",
                             "--max-steps", "2", "--batch-size", "6", "--cache", dir + "/cache", "--out", dir + "/h"])
        #expect(r.status == 0, "\(r.stderr)")
        let e = try CLI.run(["eval", "--model", model, "--head", dir + "/h", "--data", data, "--cache", dir + "/cache", "--format", "json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        #expect((report["accuracy"] as? [String: Double]).map { Array($0.keys) } == ["none"])
        #expect(report["codes"] == nil)
    }

    /// --lm-head-precision: stated in the log and the head's config.json; bf16 where the CPU has
    /// AMX-BF16, otherwise a note and f32. A bf16 resume must use bf16 again.
    @Test func lmHeadPrecisionIsLoggedAndRecorded() throws {
        let dir = Self.folder("precision")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = try Self.writeData(dir)
        let common = ["train", "--model", model, "--data", data, "--objective", "dpo", "--codes", "4", "--rank", "4",
                      "--max-steps", "3", "--batch-size", "4", "--seed", "2", "--cache", dir + "/cache"]
        let r = try CLI.run(common + ["--out", dir + "/h", "--lm-head-precision", "bf16", "--stop-after", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let config = try String(contentsOfFile: dir + "/h/checkpoints/checkpoint-2/config.json", encoding: .utf8)
        let used = r.stderr.contains("lm_head=bf16") ? "bf16" : "f32"
        if used == "f32" { #expect(r.stderr.contains("needs AMX-BF16")) }
        #expect(config.contains("\"lm_head_precision\" : \"\(used)\"") || config.contains("\"lm_head_precision\":\"\(used)\""), "\(config)")
        if used == "bf16" {
            let mismatched = try CLI.run(common + ["--out", dir + "/h", "--resume", dir + "/h/checkpoints"])
            #expect(mismatched.status == 1 && mismatched.stderr.contains("other options"), "\(mismatched.stderr)")
            let resumed = try CLI.run(common + ["--out", dir + "/h", "--lm-head-precision", "bf16", "--resume", dir + "/h/checkpoints"])
            #expect(resumed.status == 0 && resumed.stderr.contains("resuming at step 2/3"), "\(resumed.stderr)")
        }
    }

    @Test func codebookInitStdIsRecorded() throws {
        let dir = Self.folder("codebook-std")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let data = try Self.writeData(dir)
        let r = try CLI.run(["train", "--model", model, "--data", data, "--objective", "dpo", "--codes", "4", "--rank", "4",
                             "--max-steps", "1", "--batch-size", "4", "--seed", "2", "--cache", dir + "/cache",
                             "--codebook-init-std", "0.5", "--out", dir + "/h"])
        #expect(r.status == 0, "\(r.stderr)")
        let config = try String(contentsOfFile: dir + "/h/config.json", encoding: .utf8)
        #expect(config.contains("\"codebook_init_std\" : 0.5") || config.contains("\"codebook_init_std\":0.5"), "\(config)")
    }

    func metrics(_ path: String) throws -> [[String: Double]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        return try text.split(separator: "\n").map { line in
            let obj = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            return obj.compactMapValues { ($0 as? NSNumber)?.doubleValue }
        }
    }
}

/// `lpc generate --head … --code …` with a head trained through the CLI on the tiny model folder.
@Suite("Conditioned generation CLI", .serialized)
struct ConditionedGenerationCLITests {
    let model = Fixtures.path("chat_model")

    func trainedHead() throws -> String {
        let dir = TrainCLITests.folder("head")
        let data = try TrainCLITests.writeData(dir)
        let out = dir + "/head"
        let result = try CLI.run(["train", "--model", model, "--data", data, "--objective", "dpo", "--codes", "4", "--rank", "4",
                                  "--max-steps", "3", "--batch-size", "4", "--seed", "1", "--out", out])
        #expect(result.status == 0, "\(result.stderr)")
        return out
    }

    func codeLine(_ stdout: String) throws -> [String: Any] {
        let first = try #require(stdout.split(separator: "\n").first)
        return try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
    }

    @Test func jsonlAnnouncesTheCodeAndAFixedCodeIsApplied() throws {
        let head = try trainedHead()
        let base = ["generate", "--model", model, "--prompt", "Question 3?", "--greedy", "--max-tokens", "4", "--ignore-eos",
                    "--format", "jsonl", "--head", head]
        let auto = try CLI.run(base + ["--code", "auto"])
        #expect(auto.status == 0, "\(auto.stderr)")
        let announced = try codeLine(auto.stdout)
        #expect(announced["type"] as? String == "code" && announced["mode"] as? String == "auto")
        let top = try #require(announced["top"] as? [[String: Any]])
        #expect(top.count == 4)
        #expect(announced["code"] as? Int == top.first?["code"] as? Int)  // auto = the prior's argmax

        let fixed = try CLI.run(base + ["--code", "2"])
        let fixedCode = try codeLine(fixed.stdout)["code"] as? Int
        #expect(fixed.status == 0 && fixedCode == 2)
        let outOfRange = try CLI.run(base + ["--code", "9"])
        #expect(outOfRange.status == 1 && outOfRange.stderr.contains("outside this head's codebook"))
    }

    @Test func codeNeedsAHeadAndAValidValue() throws {
        let noHead = try CLI.run(["generate", "--model", model, "--prompt", "x", "--code", "1"])
        #expect(noHead.status == 64 && noHead.stderr.contains("--code needs --head"))
        let bad = try CLI.run(["generate", "--model", model, "--prompt", "x", "--head", "/tmp", "--code", "best"])
        #expect(bad.status == 64 && bad.stderr.contains("auto, sample, mix"))
    }
}
