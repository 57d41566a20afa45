import Foundation
import Testing
import TestSupport
@testable import Tokenizers

/// Goldens from tools/make_tokenizer_fixtures.py: HF `tokenizers` ids and decodes for every corpus
/// string, for every fixture tokenizer.
enum TokenizerGoldens {
    /// Every tokenizer the generator writes (the manifest must list exactly these).
    static let names = ["smollm2", "llama3_bpe", "sp_llama2", "sp_metaspace", "gpt2_bpe", "qwen2_bpe",
                        "components_a", "components_b", "components_c", "components_d"]

    struct Case {
        let text: String
        let ids: [Int]
        let idsSpecial: [Int]
        let decode: String
        let decodeSkip: String
        let decodePlain: String
        let decodePlainSkip: String
    }

    struct RandomCase {
        let ids: [Int]
        let decode: String
        let decodeSkip: String
    }

    static func json(_ relative: String) throws -> JSONValue {
        let path = Fixtures.path("tokenizers/\(relative)")
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FixtureError("fixture 'tokenizers/\(relative)' is missing; run tools/make_tokenizer_fixtures.py")
        }
        return try JSONValue.parse([UInt8](data))
    }

    static func strings(_ v: JSONValue?) throws -> [String] {
        guard case .array(let items)? = v else { throw FixtureError("expected an array of strings") }
        return try items.map { item in
            guard case .string(let s) = item else { throw FixtureError("expected a string") }
            return s
        }
    }

    static func ints(_ v: JSONValue?) throws -> [Int] {
        guard case .array(let items)? = v else { throw FixtureError("expected an array of ids") }
        return try items.map { item in
            guard case .number(let d) = item else { throw FixtureError("expected an id") }
            return Int(d)
        }
    }

    static func string(_ v: JSONValue?) -> String? {
        if case .string(let s)? = v { return s }
        return nil
    }

    static func corpus() throws -> [String] { try strings(try json("corpus.json")) }

    static func tokenizer(_ name: String) throws -> Tokenizer {
        try Tokenizer(contentsOfFile: Fixtures.path("tokenizers/\(name).tokenizer.json"))
    }

    static func cases(_ name: String) throws -> [Case] {
        let corpus = try corpus()
        let g = try json("\(name).golden.json")
        guard case .array(let items)? = g["cases"] else { throw FixtureError("\(name): no cases") }
        guard items.count == corpus.count else { throw FixtureError("\(name): \(items.count) cases for \(corpus.count) corpus strings") }
        return try zip(corpus, items).map { text, c in
            guard let decode = string(c["decode"]), let skip = string(c["decode_skip"]) else { throw FixtureError("\(name): bad case") }
            return Case(text: text, ids: try ints(c["ids"]), idsSpecial: try ints(c["ids_special"]), decode: decode, decodeSkip: skip,
                        decodePlain: string(c["decode_plain"]) ?? decode, decodePlainSkip: string(c["decode_plain_skip"]) ?? skip)
        }
    }

    static func randomCases(_ name: String) throws -> [RandomCase] {
        let g = try json("\(name).golden.json")
        guard case .array(let items)? = g["random"] else { throw FixtureError("\(name): no random cases") }
        return try items.map { c in
            guard let d = string(c["decode"]), let s = string(c["decode_skip"]) else { throw FixtureError("\(name): bad random case") }
            return RandomCase(ids: try ints(c["ids"]), decode: d, decodeSkip: s)
        }
    }

    /// Byte-exact comparison (Swift's == on String compares canonical equivalence).
    static func same(_ a: String, _ b: String) -> Bool { Array(a.utf8) == Array(b.utf8) }

    static func show(_ s: String) -> String {
        s.unicodeScalars.map { u in
            (u.value < 0x20 || u.value == 0x7F || (u.value >= 0x80 && u.value < 0xA0)) ? "\\u{\(String(u.value, radix: 16))}" : String(u)
        }.joined()
    }

    /// Streams `ids` one at a time; returns the pieces.
    static func stream(_ tok: Tokenizer, _ ids: [Int], skip: Bool) throws -> [String] {
        let d = tok.makeStreamingDetokenizer(skipSpecialTokens: skip)
        var pieces = try ids.map { try d.push($0) }
        pieces.append(d.finish())
        return pieces
    }
}

@Suite("tokenizer.json goldens vs HF tokenizers")
struct TokenizerGoldenTests {
    @Test func manifestListsEveryTokenizer() throws {
        guard case .array(let items) = try TokenizerGoldens.json("manifest.json") else { throw FixtureError("bad manifest") }
        let names = items.compactMap { TokenizerGoldens.string($0["name"]) }
        #expect(Set(names) == Set(TokenizerGoldens.names))
    }

    @Test func corpusIsLargeAndHard() throws {
        let corpus = try TokenizerGoldens.corpus()
        #expect(corpus.count >= 300)
        #expect(corpus.contains(""))
        #expect(corpus.contains { $0.contains("\r\n") })
        #expect(corpus.contains { $0.contains("<|im_start|>") })
        #expect(corpus.contains { $0.unicodeScalars.contains { $0.value == 0x200D } })  // ZWJ sequences
    }

    @Test("ids match HF with and without special tokens", arguments: TokenizerGoldens.names)
    func encodeMatches(name: String) throws {
        let tok = try TokenizerGoldens.tokenizer(name)
        var failures: [String] = []
        for (i, c) in try TokenizerGoldens.cases(name).enumerated() {
            let withSpecial = try tok.encode(c.text, addSpecialTokens: true)
            if withSpecial != c.idsSpecial {
                failures.append("#\(i) \"\(TokenizerGoldens.show(c.text))\" with special tokens: \(withSpecial) != HF \(c.idsSpecial)")
            }
            let plain = try tok.encode(c.text, addSpecialTokens: false)
            if plain != c.ids {
                failures.append("#\(i) \"\(TokenizerGoldens.show(c.text))\": \(plain) != HF \(c.ids)")
            }
        }
        #expect(failures.isEmpty, "\(name): \(failures.count) mismatches\n\(failures.prefix(10).joined(separator: "\n"))")
    }

    @Test("decode matches HF (skip_special_tokens false and true)", arguments: TokenizerGoldens.names)
    func decodeMatches(name: String) throws {
        let tok = try TokenizerGoldens.tokenizer(name)
        var failures: [String] = []
        func check(_ got: String, _ want: String, _ what: String) {
            if !TokenizerGoldens.same(got, want) {
                failures.append("\(what): \"\(TokenizerGoldens.show(got))\" != HF \"\(TokenizerGoldens.show(want))\"")
            }
        }
        for (i, c) in try TokenizerGoldens.cases(name).enumerated() {
            check(try tok.decode(c.idsSpecial, skipSpecialTokens: false), c.decode, "#\(i) decode")
            check(try tok.decode(c.idsSpecial, skipSpecialTokens: true), c.decodeSkip, "#\(i) decode skip")
            check(try tok.decode(c.ids, skipSpecialTokens: false), c.decodePlain, "#\(i) decode plain")
            check(try tok.decode(c.ids, skipSpecialTokens: true), c.decodePlainSkip, "#\(i) decode plain skip")
        }
        for (i, r) in try TokenizerGoldens.randomCases(name).enumerated() {
            check(try tok.decode(r.ids, skipSpecialTokens: false), r.decode, "random #\(i) \(r.ids)")
            check(try tok.decode(r.ids, skipSpecialTokens: true), r.decodeSkip, "random #\(i) \(r.ids) skip")
        }
        #expect(failures.isEmpty, "\(name): \(failures.count) mismatches\n\(failures.prefix(10).joined(separator: "\n"))")
    }

    @Test("streaming detokenizer output equals HF decode", arguments: TokenizerGoldens.names)
    func streamingMatches(name: String) throws {
        let tok = try TokenizerGoldens.tokenizer(name)
        var failures: [String] = []
        func check(_ ids: [Int], skip: Bool, want: String, _ what: String) throws {
            let pieces = try TokenizerGoldens.stream(tok, ids, skip: skip)
            let got = pieces.joined()
            if !TokenizerGoldens.same(got, want) {
                failures.append("\(what) skip=\(skip): \"\(TokenizerGoldens.show(got))\" != HF \"\(TokenizerGoldens.show(want))\"")
            }
        }
        for (i, c) in try TokenizerGoldens.cases(name).enumerated() {
            try check(c.idsSpecial, skip: false, want: c.decode, "#\(i)")
            try check(c.idsSpecial, skip: true, want: c.decodeSkip, "#\(i)")
        }
        for (i, r) in try TokenizerGoldens.randomCases(name).enumerated() {
            try check(r.ids, skip: false, want: r.decode, "random #\(i) \(r.ids)")
            try check(r.ids, skip: true, want: r.decodeSkip, "random #\(i) \(r.ids)")
        }
        #expect(failures.isEmpty, "\(name): \(failures.count) mismatches\n\(failures.prefix(10).joined(separator: "\n"))")
    }
}
