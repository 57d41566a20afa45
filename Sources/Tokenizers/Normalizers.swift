import Foundation

/// Text being normalized: UTF-8 bytes and, when the pipeline needs them, the original byte offset
/// each byte came from (HF's alignments, reduced to their start; only Metaspace's
/// `prepend_scheme: first` looks at them).
struct NormString {
    var bytes: [UInt8]
    var origins: [Int32]
    init(bytes: [UInt8], origins: [Int32]) {
        self.bytes = bytes
        self.origins = origins
    }

    var isASCII: Bool {
        bytes.withUnsafeBufferPointer { p in
            var acc: UInt8 = 0
            for b in p { acc |= b }
            return acc < 0x80
        }
    }
}

/// Accumulates normalized output with origins.
struct NormBuilder {
    var bytes: [UInt8] = []
    var origins: [Int32] = []
    let track: Bool

    init(track: Bool, capacity: Int) {
        self.track = track
        bytes.reserveCapacity(capacity)
        if track { origins.reserveCapacity(capacity) }
    }

    @inline(__always)
    mutating func append(scalar v: UInt32, origin: Int32) {
        let before = bytes.count
        appendUTF8(v, to: &bytes)
        if track { for _ in before..<bytes.count { origins.append(origin) } }
    }

    mutating func append<C: Collection>(bytes b: C, origin: Int32) where C.Element == UInt8 {
        bytes.append(contentsOf: b)
        if track { for _ in 0..<b.count { origins.append(origin) } }
    }

    var result: NormString { NormString(bytes: bytes, origins: origins) }
}

protocol Normalizer: Sendable {
    func normalize(_ s: inout NormString, track: Bool)
}

extension NormString {
    /// Scalars with the origin of their first byte.
    func forEachScalar(_ body: (UInt32, Int32, Int) -> Void) {
        bytes.withUnsafeBufferPointer { p in
            var i = 0
            while i < p.count {
                let (v, n) = decodeScalar(p, i)
                body(v, origins.isEmpty ? 0 : origins[i], i)
                i += n
            }
        }
    }
}

struct SequenceNormalizer: Normalizer {
    let normalizers: [any Normalizer]
    func normalize(_ s: inout NormString, track: Bool) {
        for n in normalizers { n.normalize(&s, track: track) }
    }
}

enum UnicodeForm: Sendable { case nfc, nfd, nfkc, nfkd }

struct UnicodeNormalizer: Normalizer {
    let form: UnicodeForm

    static func apply(_ form: UnicodeForm, _ text: String) -> String {
        switch form {
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        // NFKC as NFKD + canonical composition: Foundation's direct NFKC misses compositions of
        // marks that come from compatibility decompositions (ｶﾞ -> カ U+3099 instead of ガ).
        case .nfkc: return text.decomposedStringWithCompatibilityMapping.precomposedStringWithCanonicalMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        }
    }

    func normalize(_ s: inout NormString, track: Bool) {
        if s.isASCII { return }
        let text = string(fromValidUTF8: s.bytes)
        if !track {
            s = NormString(bytes: Array(UnicodeNormalizer.apply(form, text).utf8), origins: [])
            return
        }
        // With origins: normalize grapheme cluster by grapheme cluster (normalization does not
        // cross cluster boundaries). Output scalar k of a cluster takes the origin of input scalar
        // min(k, count - 1): unchanged clusters keep theirs, and characters that decompose share
        // the origin of the character they come from, as in HF's alignments.
        var b = NormBuilder(track: true, capacity: s.bytes.count)
        var offset = 0
        for ch in text {
            var inOrigins: [Int32] = []
            var o = offset
            for u in ch.unicodeScalars {
                inOrigins.append(s.origins[o])
                o += utf8Length(scalar: u.value)
            }
            for (k, u) in UnicodeNormalizer.apply(form, String(ch)).unicodeScalars.enumerated() {
                b.append(scalar: u.value, origin: inOrigins[min(k, inOrigins.count - 1)])
            }
            offset = o
        }
        s = b.result
    }
}

struct LowercaseNormalizer: Normalizer {
    func normalize(_ s: inout NormString, track: Bool) {
        if s.isASCII {
            for i in 0..<s.bytes.count where s.bytes[i] >= 0x41 && s.bytes[i] <= 0x5A { s.bytes[i] |= 0x20 }
            return
        }
        var b = NormBuilder(track: track, capacity: s.bytes.count)
        s.forEachScalar { v, origin, _ in
            if v < 0x80 {
                b.append(scalar: (v >= 0x41 && v <= 0x5A) ? v | 0x20 : v, origin: origin)
            } else {
                for u in Unicode.Scalar(v)!.properties.lowercaseMapping.unicodeScalars { b.append(scalar: u.value, origin: origin) }
            }
        }
        s = b.result
    }
}

struct StripNormalizer: Normalizer {
    let left: Bool
    let right: Bool

    func normalize(_ s: inout NormString, track: Bool) {
        var start = 0, end = s.bytes.count
        s.bytes.withUnsafeBufferPointer { p in
            if left {
                while start < end {
                    let (v, n) = decodeScalar(p, start)
                    if !CharClass.isWhitespace(v) { break }
                    start += n
                }
            }
            if right {
                while end > start {
                    var k = end - 1
                    while p[k] & 0xC0 == 0x80 { k -= 1 }
                    let (v, _) = decodeScalar(p, k)
                    if !CharClass.isWhitespace(v) { break }
                    end = k
                }
            }
        }
        if start == 0 && end == s.bytes.count { return }
        s.bytes = Array(s.bytes[start..<end])
        if track { s.origins = Array(s.origins[start..<end]) }
    }
}

struct ReplaceNormalizer: Normalizer {
    let pattern: any SplitPattern
    let content: [UInt8]

    func normalize(_ s: inout NormString, track: Bool) {
        var matches: [PatternMatch] = []
        s.bytes.withUnsafeBufferPointer { p in pattern.findMatches(p, 0, p.count, into: &matches) }
        if !matches.contains(where: { $0.isMatch }) { return }
        var b = NormBuilder(track: track, capacity: s.bytes.count)
        for m in matches {
            if m.isMatch {
                // HF: inserted characters share the alignment of the character before them, which
                // after removing the match is the match's last character.
                var origin: Int32 = 0
                if track {
                    if m.end > m.start { origin = s.origins[m.end - 1] } else if m.start > 0 { origin = s.origins[m.start - 1] }
                }
                b.append(bytes: content, origin: origin)
            } else {
                b.bytes.append(contentsOf: s.bytes[m.start..<m.end])
                if track { b.origins.append(contentsOf: s.origins[m.start..<m.end]) }
            }
        }
        s = b.result
    }
}

struct PrependNormalizer: Normalizer {
    let prepend: [UInt8]

    func normalize(_ s: inout NormString, track: Bool) {
        if s.bytes.isEmpty { return }
        s.bytes.insert(contentsOf: prepend, at: 0)
        if track { s.origins.insert(contentsOf: [Int32](repeating: s.origins[0], count: prepend.count), at: 0) }
    }
}

/// Removes combining marks (General_Category M), as HF StripAccents.
struct StripAccentsNormalizer: Normalizer {
    func normalize(_ s: inout NormString, track: Bool) {
        if s.isASCII { return }
        var b = NormBuilder(track: track, capacity: s.bytes.count)
        s.forEachScalar { v, origin, _ in
            switch Unicode.Scalar(v)!.properties.generalCategory {
            case .nonspacingMark, .spacingMark, .enclosingMark: break
            default: b.append(scalar: v, origin: origin)
            }
        }
        s = b.result
    }
}

/// HF BertNormalizer: clean_text, handle_chinese_chars, strip_accents, lowercase.
struct BertNormalizer: Normalizer {
    let cleanText: Bool
    let handleChineseChars: Bool
    let stripAccents: Bool
    let lowercase: Bool

    static func isChinese(_ v: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B920...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }

    func normalize(_ s: inout NormString, track: Bool) {
        if cleanText {
            var b = NormBuilder(track: track, capacity: s.bytes.count)
            s.forEachScalar { v, origin, _ in
                if v == 0 || v == 0xFFFD { return }
                let f = CharClass.flags(v)
                let isWS = v == 0x20 || v == 0x09 || v == 0x0A || v == 0x0D || f & CharClass.spaceSeparator != 0
                if isWS { b.append(scalar: 0x20, origin: origin); return }
                if f & CharClass.other != 0 { return }
                b.append(scalar: v, origin: origin)
            }
            s = b.result
        }
        if handleChineseChars {
            var b = NormBuilder(track: track, capacity: s.bytes.count)
            s.forEachScalar { v, origin, _ in
                if BertNormalizer.isChinese(v) {
                    b.append(scalar: 0x20, origin: origin)
                    b.append(scalar: v, origin: origin)
                    b.append(scalar: 0x20, origin: origin)
                } else {
                    b.append(scalar: v, origin: origin)
                }
            }
            s = b.result
        }
        if stripAccents {
            UnicodeNormalizer(form: .nfd).normalize(&s, track: track)
            var b = NormBuilder(track: track, capacity: s.bytes.count)
            s.forEachScalar { v, origin, _ in
                if CharClass.flags(v) & CharClass.nonspacingMark == 0 { b.append(scalar: v, origin: origin) }
            }
            s = b.result
        }
        if lowercase { LowercaseNormalizer().normalize(&s, track: track) }
    }
}

/// HF ByteLevel normalizer: every byte becomes its byte-level character.
struct ByteLevelNormalizer: Normalizer {
    func normalize(_ s: inout NormString, track: Bool) {
        var b = NormBuilder(track: track, capacity: s.bytes.count * 2)
        for (i, byte) in s.bytes.enumerated() {
            b.append(scalar: ByteLevelMap.byteToScalar[Int(byte)], origin: track ? s.origins[i] : 0)
        }
        s = b.result
    }
}

func makeNormalizer(_ node: JSONNode) throws(TokenizerError) -> any Normalizer {
    let type = try node.typeTag()
    switch type {
    case "Sequence":
        return SequenceNormalizer(normalizers: try node.field("normalizers").array().map { n throws(TokenizerError) in try makeNormalizer(n) })
    case "NFC": return UnicodeNormalizer(form: .nfc)
    case "NFD": return UnicodeNormalizer(form: .nfd)
    case "NFKC": return UnicodeNormalizer(form: .nfkc)
    case "NFKD": return UnicodeNormalizer(form: .nfkd)
    case "Lowercase": return LowercaseNormalizer()
    case "Strip":
        return StripNormalizer(left: try node.bool("strip_left", default: true), right: try node.bool("strip_right", default: true))
    case "StripAccents": return StripAccentsNormalizer()
    case "Replace":
        return ReplaceNormalizer(pattern: try makePattern(try node.field("pattern")), content: Array(try node.string("content").utf8))
    case "Prepend":
        return PrependNormalizer(prepend: Array(try node.string("prepend").utf8))
    case "BertNormalizer":
        let lowercase = try node.bool("lowercase", default: true)
        return BertNormalizer(cleanText: try node.bool("clean_text", default: true),
                              handleChineseChars: try node.bool("handle_chinese_chars", default: true),
                              stripAccents: try node.optionalField("strip_accents")?.bool() ?? lowercase,
                              lowercase: lowercase)
    case "ByteLevel": return ByteLevelNormalizer()
    default:
        throw .unsupportedType(path: node.childPath("type"), kind: "normalizer", type: type,
                               supported: ["Sequence", "NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Strip", "StripAccents",
                                           "Replace", "Prepend", "BertNormalizer", "ByteLevel"])
    }
}
