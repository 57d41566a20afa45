import Foundation
import Testing
import TestSupport

/// `lpc optimize` on a complete tiny model folder (Tests/Fixtures/chat_model): the output is a
/// complete folder that generates exactly what the source does, and misuse gets clear errors.
@Suite("Optimize CLI")
struct OptimizeCLITests {
    let model = Fixtures.path("chat_model")

    static func folder() -> String {
        FileManager.default.temporaryDirectory.path + "/lpc-optimize-cli-" + UUID().uuidString
    }

    @Test func writesACompleteFolderThatGeneratesTheSame() throws {
        let out = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let result = try CLI.run(["optimize", model, "-o", out])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("nodes"))
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: out))
        #expect(files.isSuperset(of: ["model.onnx", "model.onnx_data", "tokenizer.json", "tokenizer_config.json",
                                      "config.json", "generation_config.json"]), "\(files.sorted())")
        let arguments = ["--prompt", "Hi", "--greedy", "--max-tokens", "8", "--ignore-eos", "--format", "jsonl"]
        let source = try CLI.run(["generate", "--model", model] + arguments)
        let optimized = try CLI.run(["generate", "--model", out] + arguments)
        #expect(source.status == 0 && optimized.status == 0, "\(optimized.stderr)")
        let tokens = { (text: String) in text.split(separator: "\n").filter { $0.contains("\"token\"") } }
        #expect(!tokens(source.stdout).isEmpty)
        #expect(tokens(optimized.stdout) == tokens(source.stdout))
    }

    @Test func refusesToOverwriteOrToReoptimize() throws {
        let out = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: out) }
        #expect(try CLI.run(["optimize", model, "-o", out]).status == 0)
        let again = try CLI.run(["optimize", model, "-o", out])
        #expect(again.status == 1 && again.stderr.contains("--force"), "\(again.stderr)")
        #expect(try CLI.run(["optimize", model, "-o", out, "--force"]).status == 0)
        let twice = try CLI.run(["optimize", out, "-o", Self.folder()])
        #expect(twice.status == 1 && twice.stderr.contains("already written by lpc optimize"), "\(twice.stderr)")
        let inPlace = try CLI.run(["optimize", model, "-o", model])
        #expect(inPlace.status == 1 && inPlace.stderr.contains("own folder"), "\(inPlace.stderr)")
        let auto = try CLI.run(["optimize", model, "-o", Self.folder(), "--weights", "auto"])
        #expect(auto.status == 1 && auto.stderr.contains("chosen at load"), "\(auto.stderr)")
    }

    @Test func writesBF16WeightsThatGenerate() throws {
        let out = Self.folder()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let result = try CLI.run(["optimize", model, "-o", out, "--weights", "bf16"])
        #expect(result.status == 0, "\(result.stderr)")
        let generated = try CLI.run(["generate", "--model", out, "--prompt", "Hi", "--greedy", "--max-tokens", "4",
                                     "--ignore-eos", "--format", "jsonl"])
        #expect(generated.status == 0, "\(generated.stderr)")
        #expect(generated.stdout.split(separator: "\n").filter { $0.contains("\"token\"") }.count == 4, "\(generated.stdout)")
    }
}
