import Foundation
import Testing
import Tokenizers
import TestSupport
@testable import LPC

/// JSONL preference pairs: parsing, errors with file/line/field, chat-template rendering,
/// tokenization and the truncation policy.
@Suite("Preference data")
struct DataPreferenceTests {
    static let smolTemplate = try! ChatTemplateConfig.load(modelDirectory: Fixtures.path("lpc_data/smollm2"))
    static let tinyFolder = Fixtures.path("chat_model")

    func parse(_ text: String) throws(DataError) -> [PreferencePair] {
        try PreferencePair.parse(Data(text.utf8), file: "bad.jsonl")
    }

    func expectError(_ text: String, line: Int, field: String?, mentioning words: [String],
                     sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try parse(text)
            Issue.record("no error for \(text)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.line == line, "\(error)", sourceLocation: sourceLocation)
            #expect(error.field == field, "\(error)", sourceLocation: sourceLocation)
            let message = error.description
            #expect(message.hasPrefix("bad.jsonl:\(line)"), "\(message)", sourceLocation: sourceLocation)
            for word in words {
                #expect(message.contains(word), "'\(message)' should mention '\(word)'", sourceLocation: sourceLocation)
            }
        }
    }

    static let good = #"{"prompt": "p", "chosen": "a", "rejected": "b"}"#

    @Test func parsesStringsMessagesSourcesAndSkipsBlankLines() throws {
        let pairs = try PreferencePair.read(file: Fixtures.path("lpc_data/pairs.jsonl"))
        #expect(pairs.count == 4)
        #expect(pairs.map(\.line) == [1, 3, 4, 5])
        #expect(pairs[0].prompt == .text("Why is the sky blue?"))
        #expect(pairs[0].source == "science")
        #expect(pairs[1].chosen == .messages([.init(role: "assistant", content: "Old pond, a frog jumps.")]))
        #expect(pairs[2].source == nil && pairs[3].source == nil)
    }

    @Test func invalidJSONNamesTheLine() {
        expectError(Self.good + "\n{\"prompt\": \"p\", \"chosen\": ", line: 2, field: nil, mentioning: ["invalid JSON"])
    }

    @Test func nonObjectLine() {
        expectError("[1, 2]", line: 1, field: nil, mentioning: ["expected a JSON object", "a list"])
    }

    @Test func missingFieldNamesTheField() {
        expectError(Self.good + "\n\n" + #"{"prompt": "p", "chosen": "a"}"#, line: 3, field: "rejected", mentioning: ["missing", "\"chosen\""])
        expectError(#"{"chosen": "a", "rejected": "b"}"#, line: 1, field: "prompt", mentioning: ["missing"])
    }

    @Test func wrongTypes() {
        expectError(#"{"prompt": 3, "chosen": "a", "rejected": "b"}"#, line: 1, field: "prompt", mentioning: ["a number"])
        expectError(#"{"prompt": "p", "chosen": {"text": "a"}, "rejected": "b"}"#, line: 1, field: "chosen", mentioning: ["an object"])
        expectError(#"{"prompt": "p", "chosen": "a", "rejected": "b", "source": 7}"#, line: 1, field: "source", mentioning: ["expected a string"])
        expectError(#"{"prompt": ["hi"], "chosen": "a", "rejected": "b"}"#, line: 1, field: "prompt[0]", mentioning: ["message object"])
        expectError(#"{"prompt": [{"content": "hi"}], "chosen": "a", "rejected": "b"}"#, line: 1, field: "prompt[0].role", mentioning: ["missing"])
        expectError(#"{"prompt": "p", "chosen": [{"role": "assistant", "content": null}], "rejected": "b"}"#, line: 1, field: "chosen[0].content", mentioning: ["null"])
        expectError(#"{"prompt": "p", "chosen": "a", "rejected": true}"#, line: 1, field: "rejected", mentioning: ["a boolean"])
    }

    @Test func emptyResponsesAndPrompts() {
        expectError(#"{"prompt": "p", "chosen": "a", "rejected": "  "}"#, line: 1, field: "rejected", mentioning: ["empty response"])
        expectError(#"{"prompt": "p", "chosen": [], "rejected": "b"}"#, line: 1, field: "chosen", mentioning: ["empty response"])
        expectError(#"{"prompt": "p", "chosen": [{"role": "assistant", "content": ""}], "rejected": "b"}"#, line: 1, field: "chosen", mentioning: ["empty response"])
        expectError(#"{"prompt": "", "chosen": "a", "rejected": "b"}"#, line: 1, field: "prompt", mentioning: ["empty prompt"])
    }

    @Test func missingAndEmptyFiles() throws {
        #expect(throws: DataError.cannotRead(file: "/nonexistent/x.jsonl", reason: "no such file")) {
            try PreferencePair.read(file: "/nonexistent/x.jsonl")
        }
        #expect(throws: DataError.self) { try PreferencePair.parse(Data("\n  \n".utf8), file: "e.jsonl") }
    }

    /// SmolLM2's ChatML template: string prompt → one user turn + generation prompt; response =
    /// the full rendering minus the prompt's, i.e. the text plus "<|im_end|>\n".
    @Test func rendersPairsWithTheSmolLM2Template() throws {
        let renderer = PairRenderer(template: Self.smolTemplate)
        let pairs = try PreferencePair.read(file: Fixtures.path("lpc_data/pairs.jsonl"))
        let system = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"

        let first = try renderer.render(pairs[0])
        #expect(first.prompt == system + "<|im_start|>user\nWhy is the sky blue?<|im_end|>\n<|im_start|>assistant\n")
        #expect(first.chosen == "Rayleigh scattering.<|im_end|>\n")
        #expect(first.rejected == "Because it reflects the ocean, which is blue, and so on.<|im_end|>\n")

        let messages = try renderer.render(pairs[1])
        #expect(messages.prompt == system + "<|im_start|>user\nWrite a haiku.<|im_end|>\n<|im_start|>assistant\n")
        #expect(messages.chosen == "Old pond, a frog jumps.<|im_end|>\n")

        let multiTurn = try renderer.render(pairs[2])
        #expect(multiTurn.prompt == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n")
        #expect(multiTurn.chosen == "4<|im_end|>\n" && multiTurn.rejected == "5<|im_end|>\n")

        // Implicit prompt (TRL): responses that repeat the prompt's messages have them removed.
        let implicit = try renderer.render(pairs[3])
        #expect(implicit.chosen == "Red.<|im_end|>\n" && implicit.rejected == "Seven.<|im_end|>\n")
    }

    @Test func aTemplateThatRewritesEarlierTurnsIsAnError() throws {
        // Renders the last message differently: prompt+response does not extend the prompt.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("lpc-template-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try "{% for m in messages %}{% if loop.last %}[{{ m.content }}]{% else %}{{ m.content }}{% endif %}{% endfor %}"
            .write(to: folder.appendingPathComponent("chat_template.jinja"), atomically: true, encoding: .utf8)
        let renderer = PairRenderer(template: try ChatTemplateConfig.load(modelDirectory: folder.path))
        let pair = try parse(#"{"prompt": "p", "chosen": "a", "rejected": "b"}"#)[0]
        #expect {
            try renderer.render(pair, file: "t.jsonl")
        } throws: { error in
            let e = error as? DataError
            return e?.line == 1 && e?.field == "chosen" && e!.description.contains("does not start with")
        }
    }

    // The tiny chat model: template "<s>role: content</s>", a character-level tokenizer.
    static func tiny() throws -> (PairRenderer, Tokenizer) {
        (PairRenderer(template: try ChatTemplateConfig.load(modelDirectory: tinyFolder)),
         try Tokenizer(contentsOfFile: tinyFolder + "/tokenizer.json"))
    }

    @Test func tokenizesPromptAndResponsesSeparately() throws {
        let (renderer, tokenizer) = try Self.tiny()
        let data = try PreferenceDataset.make(pairs: parse(#"{"prompt": "Hi", "chosen": "Hello", "rejected": "No", "source": "s"}"#),
                                              file: "t.jsonl", renderer: renderer, tokenizer: tokenizer, lengths: .unlimited)
        let pair = try #require(data.pairs.first)
        #expect(pair.prompt == (try tokenizer.encode("<s>user: Hi</s><s>assistant: ", addSpecialTokens: false)))
        #expect(pair.chosen == (try tokenizer.encode("Hello</s>", addSpecialTokens: false)))
        #expect(pair.rejected == (try tokenizer.encode("No</s>", addSpecialTokens: false)))
        #expect(data.stats.pairs == 1 && data.stats.bySource == ["s": 1])
    }

    /// TRL's policy: the prompt keeps its end, responses keep their start, and a pair whose prompt
    /// alone reaches max-length is skipped and counted.
    @Test func truncationPolicy() throws {
        let (renderer, tokenizer) = try Self.tiny()
        let lines = [
            #"{"prompt": "Hi", "chosen": "Hello there", "rejected": "No"}"#,
            #"{"prompt": "\#(String(repeating: "x", count: 60))", "chosen": "a", "rejected": "b"}"#,
        ].joined(separator: "\n")
        let full = try PreferenceDataset.make(pairs: parse(lines), file: "t.jsonl", renderer: renderer, tokenizer: tokenizer, lengths: .unlimited)
        let promptLength = full.pairs[0].prompt.count   // "<s>user: Hi</s><s>assistant: "
        #expect(full.pairs[1].prompt.count > promptLength + 40)

        // max-length only: the long prompt reaches it → skipped; the chosen response is cut.
        let cut = try PreferenceDataset.make(pairs: parse(lines), file: "t.jsonl", renderer: renderer, tokenizer: tokenizer,
                                             lengths: LengthOptions(maxLength: promptLength + 4, maxPromptLength: nil))
        #expect(cut.stats.skippedPromptTooLong == 1 && cut.stats.pairs == 1 && cut.stats.lines == 2)
        #expect(cut.pairs[0].chosen == Array(full.pairs[0].chosen.prefix(4)))
        #expect(cut.pairs[0].rejected == full.pairs[0].rejected)   // "No</s>" fits
        #expect(cut.stats.truncatedResponses == 1)
        #expect(cut.stats.description.contains("1 skipped"))

        // max-prompt-length: the long prompt keeps its last tokens instead of being skipped.
        let kept = try PreferenceDataset.make(pairs: parse(lines), file: "t.jsonl", renderer: renderer, tokenizer: tokenizer,
                                              lengths: LengthOptions(maxLength: promptLength + 20, maxPromptLength: promptLength))
        #expect(kept.stats.skippedPromptTooLong == 0 && kept.stats.truncatedPrompts == 1)
        #expect(kept.pairs[0].prompt == full.pairs[0].prompt)
        #expect(kept.pairs[1].prompt == Array(full.pairs[1].prompt.suffix(promptLength)))

        // Everything skipped → an error that says how to fix it.
        #expect(throws: DataError.self) {
            try PreferenceDataset.make(pairs: parse(lines), file: "t.jsonl", renderer: renderer, tokenizer: tokenizer,
                                       lengths: LengthOptions(maxLength: 5, maxPromptLength: nil))
        }
    }

    @Test func badLengthOptions() {
        #expect(throws: DataError.self) { try LengthOptions(maxLength: 1, maxPromptLength: nil).validate() }
        #expect(throws: DataError.self) { try LengthOptions(maxLength: 10, maxPromptLength: 10).validate() }
        #expect(throws: DataError.self) { try LengthOptions(maxLength: 10, maxPromptLength: 0).validate() }
        #expect(throws: Never.self) { try LengthOptions.default.validate() }
    }
}
