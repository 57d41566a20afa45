import Foundation
import Testing
import TestSupport
@testable import Tokenizers

/// A small valid byte-level tokenizer.json to break in various ways.
private func tokenizerJSON(
    model: String? = nil,
    preTokenizer: String = #"{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}"#,
    normalizer: String = "null",
    decoder: String = #"{"type": "ByteLevel"}"#,
    postProcessor: String = "null",
    addedTokens: String = #"[{"id": 5, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}]"#
) -> String {
    let m = model ?? #"{"type": "BPE", "dropout": null, "unk_token": null, "vocab": {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġab": 4, "<s>": 5}, "merges": ["a b", "Ġ ab"]}"#
    return """
    {"version": "1.0", "truncation": null, "padding": null, "added_tokens": \(addedTokens),
     "normalizer": \(normalizer), "pre_tokenizer": \(preTokenizer), "post_processor": \(postProcessor),
     "decoder": \(decoder), "model": \(m)}
    """
}

private func loadError(_ json: String) -> TokenizerError? {
    do {
        _ = try Tokenizer(jsonString: json)
        return nil
    } catch {
        return error
    }
}

@Suite("tokenizer.json errors")
struct TokenizerErrorTests {
    @Test func validFixtureLoads() throws {
        let tok = try Tokenizer(jsonString: tokenizerJSON())
        #expect(try tok.encode("ab ab") == [2, 4])
        #expect(try tok.encode("<s>ab") == [5, 2])
        #expect(try tok.decode([2, 4, 5]) == "ab ab<s>")
        #expect(try tok.decode([2, 4, 5], skipSpecialTokens: true) == "ab ab")
    }

    @Test func invalidJSONNamesThePosition() {
        let error = loadError("{\"model\": {\"type\": \"BPE\",\n \"vocab\": {\"a\": 0,}}}")
        guard case .invalidJSON(let message)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(message.contains("line 2"))
        #expect(error!.description.contains("not valid JSON"))
    }

    @Test func truncatedAndEmptyJSON() {
        #expect(loadError("") != nil)
        #expect(loadError(String(tokenizerJSON().dropLast(10))) != nil)
        #expect(loadError("[1, 2]")?.description.contains("expected an object") == true)
    }

    @Test func missingModel() {
        let json = #"{"version": "1.0", "added_tokens": [], "normalizer": null, "pre_tokenizer": null, "decoder": null}"#
        #expect(loadError(json) == .missingField(path: "model"))
        #expect(loadError(json)!.description.contains("'model'"))
        #expect(loadError(tokenizerJSON(model: "null")) == .missingField(path: "model"))
    }

    @Test func missingVocabAndMerges() {
        #expect(loadError(tokenizerJSON(model: #"{"type": "BPE", "merges": []}"#)) == .missingField(path: "model.vocab"))
        #expect(loadError(tokenizerJSON(model: #"{"type": "BPE", "vocab": {}}"#)) == .missingField(path: "model.merges"))
    }

    @Test func badMergesEntryNamesItsIndex() {
        let base = #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b", "#
        for bad in [#""a b c""#, #""ab""#, "42", #"["a"]"#, #""a x""#, #"["a", "ab"]"#] {
            let error = loadError(tokenizerJSON(model: base + bad + "]}"))
            guard case .invalidField(let path, _)? = error else { Issue.record("\(bad): got \(String(describing: error))"); continue }
            #expect(path == "model.merges[1]", "\(bad)")
            #expect(error!.description.contains("model.merges[1]"))
        }
    }

    @Test func badVocabEntry() {
        let error = loadError(tokenizerJSON(model: #"{"type": "BPE", "vocab": {"a": 0, "b": "one"}, "merges": []}"#))
        guard case .invalidField(let path, _)? = error else { Issue.record("got \(String(describing: error))"); return }
        #expect(path.hasPrefix("model.vocab"))
        #expect(path.contains("\"b\""))
    }

    @Test func unknownComponentTypesAreListed() {
        let pre = loadError(tokenizerJSON(preTokenizer: #"{"type": "Sequence", "pretokenizers": [{"type": "Digits"}, {"type": "FancySplit"}]}"#))
        #expect(pre == .unsupportedType(path: "pre_tokenizer.pretokenizers[1].type", kind: "pre-tokenizer", type: "FancySplit",
                                        supported: ["Sequence", "ByteLevel", "Split", "Metaspace", "Digits", "Whitespace",
                                                    "WhitespaceSplit", "Punctuation", "BertPreTokenizer", "CharDelimiterSplit"]))
        #expect(pre!.description.contains("FancySplit"))
        #expect(pre!.description.contains("Metaspace"))

        let norm = loadError(tokenizerJSON(normalizer: #"{"type": "Precompiled", "precompiled_charsmap": ""}"#))
        guard case .unsupportedType(let path, _, let type, _)? = norm else { Issue.record("got \(String(describing: norm))"); return }
        #expect(path == "normalizer.type" && type == "Precompiled")

        let dec = loadError(tokenizerJSON(decoder: #"{"type": "Sequence", "decoders": [{"type": "WordPieceX"}]}"#))
        guard case .unsupportedType(let dpath, "decoder", "WordPieceX", _)? = dec else { Issue.record("got \(String(describing: dec))"); return }
        #expect(dpath == "decoder.decoders[0].type")

        let post = loadError(tokenizerJSON(postProcessor: #"{"type": "Nope"}"#))
        guard case .unsupportedType("post_processor.type", "post-processor", "Nope", _)? = post else { Issue.record("got \(String(describing: post))"); return }

        let model = loadError(tokenizerJSON(model: #"{"type": "Unigram", "vocab": []}"#))
        guard case .unsupportedType("model.type", "model", "Unigram", _)? = model else { Issue.record("got \(String(describing: model))"); return }
    }

    @Test func missingComponentFields() {
        #expect(loadError(tokenizerJSON(preTokenizer: #"{"type": "Split", "behavior": "Isolated"}"#)) == .missingField(path: "pre_tokenizer.pattern"))
        #expect(loadError(tokenizerJSON(preTokenizer: #"{"pattern": {"String": " "}}"#)) == .missingField(path: "pre_tokenizer.type"))
        let behavior = loadError(tokenizerJSON(preTokenizer: #"{"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"}"#))
        guard case .invalidField("pre_tokenizer.behavior", _)? = behavior else { Issue.record("got \(String(describing: behavior))"); return }
        let template = loadError(tokenizerJSON(postProcessor: #"{"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<bos>", "type_id": 0}}], "pair": [], "special_tokens": {}}"#))
        guard case .invalidField("post_processor.single[0].SpecialToken", _)? = template else { Issue.record("got \(String(describing: template))"); return }
        let added = loadError(tokenizerJSON(addedTokens: #"[{"id": 5, "special": true}]"#))
        #expect(added == .missingField(path: "added_tokens[0].content"))
    }

    @Test func dropoutMustBeNull() {
        let error = loadError(tokenizerJSON(model: #"{"type": "BPE", "dropout": 0.1, "vocab": {"a": 0}, "merges": []}"#))
        guard case .invalidField("model.dropout", _)? = error else { Issue.record("got \(String(describing: error))"); return }
    }

    @Test func badRegexIsReported() {
        let error = loadError(tokenizerJSON(preTokenizer: #"{"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated", "invert": false}"#))
        guard case .invalidField("pre_tokenizer.pattern.Regex", _)? = error else { Issue.record("got \(String(describing: error))"); return }
    }

    @Test func missingFileIsAnIOError() {
        #expect(throws: TokenizerError.self) { try Tokenizer(contentsOfFile: "/nonexistent/tokenizer.json") }
    }

    @Test func decodeOutOfRangeIdThrows() throws {
        let tok = try Tokenizer(jsonString: tokenizerJSON())
        #expect(throws: TokenizerError.idOutOfRange(id: 6, vocabularySize: 6)) { try tok.decode([2, 6]) }
        #expect(throws: TokenizerError.self) { try tok.decode([-1]) }
        #expect(throws: TokenizerError.self) { try tok.makeStreamingDetokenizer().push(1_000_000) }
        let smol = try TokenizerGoldens.tokenizer("smollm2")
        #expect(throws: TokenizerError.self) { try smol.decode([smol.vocabularySize]) }
        #expect(try smol.decode([smol.vocabularySize - 1]).isEmpty == false)
    }

    @Test func unknownTokenMissingFromVocabularyIsAnEncodeError() throws {
        let tok = try Tokenizer(jsonString: tokenizerJSON(
            model: #"{"type": "BPE", "unk_token": "<unk>", "vocab": {"a": 0}, "merges": []}"#,
            preTokenizer: "null", decoder: "null", addedTokens: "[]"))
        #expect(try tok.encode("aa") == [0, 0])
        #expect(throws: TokenizerError.unknownTokenNotInVocabulary("<unk>")) { try tok.encode("ab") }
    }
}

@Suite("tokenizer components")
struct TokenizerComponentTests {
    /// Oniguruma's \s (Unicode White_Space) includes U+000B and U+0085, which ICU's \s lacks.
    @Test func regexWhitespaceIsUnicodeWhiteSpace() throws {
        let tok = try Tokenizer(jsonString: tokenizerJSON(
            model: #"{"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2, "d": 3}, "merges": []}"#,
            preTokenizer: #"{"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Removed", "invert": false}"#,
            decoder: "null", addedTokens: "[]"))
        #expect(try tok.encode("a\u{85}b\u{0B}c\u{3000}d") == [0, 1, 2, 3])
        #expect(try tok.decode([0, 1]) == "a b")  // no decoder: tokens joined with spaces
    }

    @Test func gpt2AndLlama3ScannersTileTheInput() throws {
        let samples = ["", "a", "  a", "it's 'S 'ſ", "\r\n\r\n x", "123456", "\u{A0}\u{A0}a", "😀😀 x\t\ty", "a\n\n"]
        for s in samples {
            let bytes = Array(s.utf8)
            for pattern in [GPT2Scanner() as any SplitPattern, Llama3Scanner(digitChunk: 3), Llama3Scanner(digitChunk: 1)] {
                var m: [PatternMatch] = []
                bytes.withUnsafeBufferPointer { pattern.findMatches($0, 0, $0.count, into: &m) }
                var pos = 0
                for x in m {
                    #expect(x.start == pos)
                    pos = x.end
                }
                #expect(pos == bytes.count)
            }
        }
        var m: [PatternMatch] = []
        let text = Array("1234567 'Re".utf8)
        text.withUnsafeBufferPointer { Llama3Scanner(digitChunk: 3).findMatches($0, 0, $0.count, into: &m) }
        #expect(m.map { String(decoding: text[$0.start..<$0.end], as: UTF8.self) } == ["123", "456", "7", " '", "Re"])
    }

    @Test func addedTokenAccessors() throws {
        let tok = try TokenizerGoldens.tokenizer("smollm2")
        #expect(tok.tokenToId("<|im_start|>") == 1)
        #expect(tok.idToToken(1) == "<|im_start|>")
        #expect(tok.isSpecial(1))
        #expect(!tok.isSpecial(300))
        #expect(tok.addedTokens.count == 17)
        #expect(tok.vocabularySize == 49152)
    }
}
