import Foundation
import Testing
import TestSupport

/// `lpc generate`, `chat`, `tokenize` and `detokenize` on a complete tiny model folder
/// (Tests/Fixtures/chat_model, made by tools/make_cli_fixture.py): plumbing, formats and errors.
@Suite("Generation CLI")
struct GenerateCLITests {
    let model = Fixtures.path("chat_model")
    var tokenizer: String { model + "/tokenizer.json" }

    func jsonLines(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    @Test func greedyJSONLStreamsTokensThenStats() throws {
        let result = try CLI.run(["generate", "--model", model, "--prompt", "Hi", "--greedy", "--max-tokens", "6", "--ignore-eos", "--format", "jsonl"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = try jsonLines(result.stdout)
        let tokens = lines.filter { $0["type"] as? String == "token" }
        #expect(tokens.count == 6)
        for token in tokens {
            #expect(token["id"] is Int && token["text"] is String)
            #expect((token["logprob"] as? Double).map { $0 <= 0 } == true)
        }
        let stats = try #require(lines.last)
        #expect(stats["type"] as? String == "stats" && stats["generated_tokens"] as? Int == 6 && stats["stop_reason"] as? String == "max_tokens")
        // Greedy decoding is deterministic.
        let again = try CLI.run(["generate", "--model", model, "--prompt", "Hi", "--greedy", "--max-tokens", "6", "--ignore-eos", "--format", "jsonl"])
        #expect(try jsonLines(again.stdout).filter { $0["type"] as? String == "token" }.map { $0["id"] as? Int } == tokens.map { $0["id"] as? Int })
    }

    /// `--weights`: every storage generates (f24 on these full-precision fixture weights packs
    /// nothing, so its tokens are f32's); a storage that does not exist is refused by name.
    @Test func weightStorageOption() throws {
        func ids(_ weights: String) throws -> [Int?] {
            let result = try CLI.run(["generate", "--model", model, "--prompt", "Hi", "--greedy", "--max-tokens", "4", "--ignore-eos",
                                      "--format", "jsonl", "--weights", weights])
            #expect(result.status == 0, "--weights \(weights): \(result.stderr)")
            return try jsonLines(result.stdout).filter { $0["type"] as? String == "token" }.map { $0["id"] as? Int }
        }
        let f32 = try ids("f32")
        #expect(f32.count == 4)
        #expect(try ids("f24") == f32)
        for storage in ["f16", "bf16", "i16"] { #expect(try ids(storage).count == 4, "\(storage)") }
        let bad = try CLI.run(["generate", "--model", model, "--prompt", "Hi", "--weights", "q4"])
        #expect(bad.status != 0 && bad.stderr.contains("--weights"), "\(bad.stderr)")
    }

    @Test func seededSamplingIsReproducible() throws {
        let arguments = ["generate", "--model", model, "--prompt", "Hi", "--temperature", "1.5", "--top-k", "20", "--seed", "7",
                         "--max-tokens", "8", "--ignore-eos", "--format", "jsonl"]
        let first = try CLI.run(arguments), second = try CLI.run(arguments)
        #expect(first.status == 0 && first.stdout.split(separator: "\n").dropLast() == second.stdout.split(separator: "\n").dropLast())
    }

    @Test func promptIDsFileIsUsedAsIs() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ids-\(UUID()).json")
        try Data("[1, 43, 76]".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try CLI.run(["generate", "--model", model, "--prompt-ids-file", file.path, "--greedy", "--max-tokens", "2", "--format", "jsonl"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try jsonLines(result.stdout).last?["prompt_tokens"] as? Int == 3)
    }

    @Test func badRequestsFailClearly() throws {
        let idsFile = FileManager.default.temporaryDirectory.appendingPathComponent("ids-\(UUID()).json")
        try Data("[1, 5000]".utf8).write(to: idsFile)
        defer { try? FileManager.default.removeItem(at: idsFile) }
        let cases: [([String], String)] = [
            (["generate", "--model", model, "--prompt-ids-file", idsFile.path], "outside the vocabulary"),
            (["generate", "--model", "/nonexistent", "--prompt", "x"], "not a model folder"),
            (["generate", "--model", Fixtures.path("models/llama-optimum"), "--prompt", "x"], "tokenizer.json"),
            (["generate", "--model", model, "--prompt", "x", "--top-p", "0"], "--top-p"),
            (["generate", "--model", model, "--prompt", "x", "--logit-bias", "nonsense"], "ID=BIAS"),
            (["generate", "--model", model], "exactly one of"),
        ]
        for (arguments, message) in cases {
            let result = try CLI.run(arguments)
            #expect(result.status != 0 && result.status < 128, "\(arguments): status \(result.status)")
            #expect(result.stderr.contains(message), "\(arguments): expected '\(message)' in \(result.stderr)")
        }
    }

    @Test func tokenizeAndDetokenizeRoundTrip() throws {
        let ids = try CLI.runWithInput(["tokenize", "--tokenizer", tokenizer, "--format", "json"], input: Data("Hi there!".utf8))
        #expect(ids.status == 0 && ids.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[43,76,3,87,75,72,85,72,4]")
        let text = try CLI.runWithInput(["detokenize", "--tokenizer", tokenizer, "--format", "json"], input: Data(ids.stdout.utf8))
        #expect(text.status == 0 && text.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "\"Hi there!\"")
        let lines = try CLI.runWithInput(["tokenize", "--tokenizer", tokenizer, "--jsonl"], input: Data("\"a\"\n\"b c\"\n".utf8))
        #expect(lines.stdout == "[68]\n[69,3,70]\n")
    }

    @Test func tokenizerInputErrors() throws {
        let invalidUTF8 = try CLI.runWithInput(["tokenize", "--tokenizer", tokenizer], input: Data([0x61, 0xFF, 0x62]))
        #expect(invalidUTF8.status == 1 && invalidUTF8.stderr.contains("not valid UTF-8") && invalidUTF8.stderr.contains("offset 1"))
        let outOfRange = try CLI.runWithInput(["detokenize", "--tokenizer", tokenizer], input: Data("[1, 99999]".utf8))
        #expect(outOfRange.status == 1 && outOfRange.stderr.contains("99999"))
        let notIDs = try CLI.runWithInput(["detokenize", "--tokenizer", tokenizer], input: Data("[1, \"x\"]".utf8))
        #expect(notIDs.status == 1 && notIDs.stderr.contains("element 1"))
        let badFile = try CLI.runWithInput(["tokenize", "--tokenizer", Fixtures.path("chat_model/config.json")], input: Data("x".utf8))
        #expect(badFile.status == 1 && badFile.stderr.contains("model"))
    }

    @Test func chatAnswersEachTurnAndQuits() throws {
        let result = try CLI.runWithInput(["chat", "--model", model, "--greedy", "--max-tokens", "3"], input: Data("Hello\nAgain\n/quit\n".utf8))
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.split(separator: "\n", omittingEmptySubsequences: false).count >= 2)
    }

    @Test func helpTextNamesTheOptions() throws {
        let help = try CLI.run(["generate", "--help"])
        for option in ["--prompt", "--messages", "--prompt-ids-file", "--temperature", "--top-k", "--top-p", "--min-p",
                       "--repetition-penalty", "--presence-penalty", "--frequency-penalty", "--logit-bias", "--seed", "--stop", "--format"] {
            #expect(help.stdout.contains(option), "generate --help lacks \(option)")
        }
        let root = try CLI.run(["--help"])
        for command in ["generate", "chat", "inspect", "run", "tokenize", "detokenize"] {
            #expect(root.stdout.contains(command))
        }
    }
}

@Suite("Chat template errors through the CLI")
struct TemplateErrorCLITests {
    @Test func brokenTemplateNamesItsLine() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lpc-broken-template-\(UUID())")
        try FileManager.default.copyItem(atPath: Fixtures.path("chat_model"), toPath: folder.path)
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = #"{"bos_token": "<s>", "eos_token": "</s>", "chat_template": "{% for m in messages %}\n{{ m['content'] }\n{% endfor %}"}"#
        try Data(config.utf8).write(to: folder.appendingPathComponent("tokenizer_config.json"))
        let result = try CLI.run(["generate", "--model", folder.path, "--prompt", "Hi"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("line 2"), "\(result.stderr)")
    }

    @Test func raiseExceptionMessageReachesTheUser() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lpc-raising-template-\(UUID())")
        try FileManager.default.copyItem(atPath: Fixtures.path("chat_model"), toPath: folder.path)
        defer { try? FileManager.default.removeItem(at: folder) }
        let config = #"{"chat_template": "{{ raise_exception('Conversation roles must alternate') }}"}"#
        try Data(config.utf8).write(to: folder.appendingPathComponent("tokenizer_config.json"))
        let result = try CLI.run(["generate", "--model", folder.path, "--prompt", "Hi"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("Conversation roles must alternate"), "\(result.stderr)")
    }
}
