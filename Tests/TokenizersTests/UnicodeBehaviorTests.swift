import Foundation
import Testing
import TestSupport
@testable import Tokenizers

/// HF tokenizers' Rust components each use their own Unicode version; unicode.json records how they
/// classify and normalize every code point (tools/make_tokenizer_fixtures.py scans all of Unicode).
@Suite("Unicode behaviour matches HF's Rust components")
struct UnicodeBehaviorTests {
    static let table: JSONValue? = try? TokenizerGoldens.json("unicode.json")

    static func allScalars() -> [UInt32] {
        (UInt32(0)..<0x110000).filter { !(0xD800..<0xE000).contains($0) }
    }

    @Test(arguments: ["onig_letter", "onig_number", "onig_space", "punctuation", "numeric", "regex_word", "bert_removed"])
    func characterClass(name: String) throws {
        guard case .object(let classes)? = Self.table?["classes"],
              case .array(let rangesJSON)? = classes.first(where: { $0.0 == name })?.1 else {
            throw FixtureError("unicode.json: no class \(name); run tools/make_tokenizer_fixtures.py")
        }
        var expected = Set<UInt32>()
        for r in rangesJSON {
            let bounds = try TokenizerGoldens.ints(r)
            for v in bounds[0]...bounds[1] { expected.insert(UInt32(v)) }
        }
        let predicate: (UInt32) -> Bool
        switch name {
        case "onig_letter": predicate = CharClass.isLetter
        case "onig_number": predicate = CharClass.isNumber
        case "onig_space": predicate = CharClass.isWhitespace
        case "punctuation": predicate = CharClass.isPunctuation
        case "numeric": predicate = CharClass.isNumeric
        case "regex_word": predicate = CharClass.isWord
        default:
            // BertNormalizer(clean_text) removes NUL, U+FFFD and controls other than \t \n \r.
            predicate = { v in
                v == 0 || v == 0xFFFD || (v != 9 && v != 10 && v != 13 && CharClass.flags(v) & CharClass.bertOther != 0)
            }
        }
        var wrong: [String] = []
        for v in Self.allScalars() where predicate(v) != expected.contains(v) {
            wrong.append("U+\(String(v, radix: 16, uppercase: true))")
        }
        #expect(wrong.isEmpty, "\(name): \(wrong.count) code points differ from HF: \(wrong.prefix(20).joined(separator: " "))")
    }

    static func fnv1a64(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    @Test(arguments: ["nfc", "nfd", "nfkc", "nfkd", "lowercase"])
    func singleCharacterMappings(form: String) throws {
        guard case .object(let forms)? = Self.table?["normalization_block_hashes"],
              case .object(let blocks)? = forms.first(where: { $0.0 == form })?.1 else {
            throw FixtureError("unicode.json: no hashes for \(form)")
        }
        let normalizer: any Normalizer
        switch form {
        case "nfc": normalizer = UnicodeNormalizer(form: .nfc)
        case "nfd": normalizer = UnicodeNormalizer(form: .nfd)
        case "nfkc": normalizer = UnicodeNormalizer(form: .nfkc)
        case "nfkd": normalizer = UnicodeNormalizer(form: .nfkd)
        default: normalizer = LowercaseNormalizer()
        }
        var ours: [UInt32: [UInt8]] = [:]
        // Unassigned code points and the supplementary private use planes map to themselves (and
        // are skipped to keep the test fast in debug builds).
        for v in Self.allScalars() where v < 0xF0000 && Unicode.Scalar(v)!.properties.age != nil {
            let original = utf8(of: [v])
            var s = NormString(bytes: original, origins: [])
            normalizer.normalize(&s, track: false)
            if s.bytes != original {
                ours[v >> 12, default: []].append(contentsOf: Array("\(String(v, radix: 16)):".utf8) + s.bytes + [0x0A])
            }
        }
        var expected: [UInt32: String] = [:]
        for (block, hash) in blocks {
            guard case .string(let h) = hash, let b = UInt32(block, radix: 16) else { throw FixtureError("bad hash entry") }
            expected[b] = h
        }
        var wrong: [String] = []
        for block in Set(ours.keys).union(expected.keys).sorted() {
            let mine = ours[block].map { String(format: "%016llx", Self.fnv1a64($0)) }
            if mine != expected[block] {
                wrong.append("U+\(String(block << 12, radix: 16, uppercase: true))..U+\(String((block << 12) + 0xFFF, radix: 16, uppercase: true))")
            }
        }
        #expect(wrong.isEmpty, "\(form): mappings differ from HF in blocks \(wrong.joined(separator: ", "))")
    }

    @Test func multiCharacterNormalization() throws {
        guard case .array(let samples)? = Self.table?["normalization_samples"] else { throw FixtureError("no samples") }
        let forms: [UnicodeForm] = [.nfc, .nfd, .nfkc, .nfkd]
        var wrong: [String] = []
        for sample in samples {
            guard case .array(let items) = sample else { throw FixtureError("bad sample") }
            let texts = items.compactMap { v -> String? in if case .string(let s) = v { return s } else { return nil } }
            for (k, form) in forms.enumerated() {
                for track in [false, true] {
                    var s = NormString(bytes: Array(texts[0].utf8), origins: track ? (0..<texts[0].utf8.count).map { Int32($0) } : [])
                    UnicodeNormalizer(form: form).normalize(&s, track: track)
                    if s.bytes != Array(texts[k + 1].utf8) {
                        wrong.append("\(form) \(texts[0].unicodeScalars.map { String($0.value, radix: 16) })")
                    }
                }
            }
        }
        #expect(samples.count >= 1000)
        #expect(wrong.isEmpty, "\(wrong.count) differ: \(wrong.prefix(10).joined(separator: "; "))")
    }
}
