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

/// Unicode normalization as HF tokenizers does it: its decomposition tables are Unicode 11.0 and
/// its combining classes Unicode 9.0 (found by comparing every code point and 120k random strings), so
/// characters added later neither decompose, reorder nor compose. Decomposition mappings come from
/// Foundation one scalar at a time (cached; Foundation's whole-string NFC/NFKC on Linux composes
/// across astral scalars, e.g. U+10070 U+0301 -> U+1E55, and misses some compositions), combining
/// classes and composition exclusions from the standard library, and composition is the standard
/// canonical composition algorithm over a table built from those.
enum UnicodeNormalization {
    /// The Unicode versions of HF's decomposition and combining-class data (major * 10 + minor).
    static let dataVersion = 110
    static let combiningClassVersion = 90

    static func known(_ v: UInt32, version: Int = dataVersion) -> Bool {
        guard let a = Unicode.Scalar(v)?.properties.age else { return false }
        return a.major * 10 + a.minor <= version
    }

    final class DecompositionCache: @unchecked Sendable {
        private var canonical: [UInt32: [UInt32]] = [:]
        private var compatibility: [UInt32: [UInt32]] = [:]
        private let lock = NSLock()

        func decomposition(_ v: UInt32, compatibility compat: Bool) -> [UInt32] {
            lock.lock()
            if let d = compat ? compatibility[v] : canonical[v] { lock.unlock(); return d }
            lock.unlock()
            var d = [v]
            if UnicodeNormalization.known(v) {
                let s = String(Character(Unicode.Scalar(v)!))
                let mapped = compat ? s.decomposedStringWithCompatibilityMapping : s.decomposedStringWithCanonicalMapping
                d = mapped.unicodeScalars.map(\.value)
            }
            lock.lock()
            if compat { compatibility[v] = d } else { canonical[v] = d }
            lock.unlock()
            return d
        }
    }

    static let cache = DecompositionCache()

    /// Primary composites: (starter, combining) -> composite, for composites HF's tables know.
    static let compositions: [UInt64: UInt32] = {
        var fullToChar: [[UInt32]: UInt32] = [:]
        var candidates: [(UInt32, [UInt32])] = []
        for range in [0x00C0..<0x3100, 0x11000..<0x12000] {
            for v in range {
                let u = UInt32(v)
                guard let scalar = Unicode.Scalar(u), known(u) else { continue }
                let full = cache.decomposition(u, compatibility: false)
                guard full != [u] else { continue }
                // Characters that are their own NFC (not singletons) stand for their decomposition.
                if String(Character(scalar))._nfcCodeUnits == Array(String(Character(scalar)).utf8) {
                    if fullToChar[full] == nil { fullToChar[full] = u }
                }
                if full.count >= 2 && !scalar.properties.isFullCompositionExclusion { candidates.append((u, full)) }
            }
        }
        var table: [UInt64: UInt32] = [:]
        for (c, full) in candidates {
            let prefix = Array(full.dropLast())
            guard let first = prefix.count == 1 ? prefix[0] : fullToChar[prefix] else { continue }
            table[UInt64(first) << 32 | UInt64(full.last!)] = c
        }
        return table
    }()

    static func compose(_ a: UInt32, _ b: UInt32) -> UInt32? {
        // Hangul: L + V -> LV, LV + T -> LVT.
        if a >= 0x1100 && a < 0x1113 && b >= 0x1161 && b < 0x1176 {
            return 0xAC00 + ((a - 0x1100) * 21 + (b - 0x1161)) * 28
        }
        if a >= 0xAC00 && a <= 0xD7A3 && (a - 0xAC00) % 28 == 0 && b > 0x11A7 && b < 0x11C3 {
            return a + (b - 0x11A7)
        }
        return compositions[UInt64(a) << 32 | UInt64(b)]
    }

    /// Full decomposition plus canonical ordering. `origins` (one per input scalar) stay in place
    /// when marks are reordered: HF assigns alignments positionally while consuming its input.
    static func decompose(_ scalars: [UInt32], origins: [Int32]?, compatibility: Bool) -> ([UInt32], [Int32]) {
        var out: [UInt32] = []
        var outOrigins: [Int32] = []
        out.reserveCapacity(scalars.count)
        for (k, v) in scalars.enumerated() {
            let origin = origins?[k] ?? 0
            // No scalar below U+00A0 decomposes; below U+00C0 only compatibility mappings exist.
            if v < 0xA0 || (!compatibility && v < 0xC0) {
                out.append(v); outOrigins.append(origin)
            } else if v >= 0xAC00 && v <= 0xD7A3 {
                let sIndex = v - 0xAC00
                out.append(0x1100 + sIndex / 588); outOrigins.append(origin)
                out.append(0x1161 + (sIndex % 588) / 28); outOrigins.append(origin)
                if sIndex % 28 != 0 { out.append(0x11A7 + sIndex % 28); outOrigins.append(origin) }
            } else {
                for d in cache.decomposition(v, compatibility: compatibility) { out.append(d); outOrigins.append(origin) }
            }
        }
        // Canonical ordering: stable sort of each run of non-starters by combining class.
        var i = 0
        while i < out.count {
            guard ccc(out[i]) != 0 else { i += 1; continue }
            var j = i
            while j < out.count && ccc(out[j]) != 0 { j += 1 }
            if j - i > 1 {
                let run = Array(out[i..<j])
                let sorted = run.enumerated().sorted { a, b in
                    let ca = ccc(a.element), cb = ccc(b.element)
                    return ca != cb ? ca < cb : a.offset < b.offset
                }
                for (k, e) in sorted.enumerated() { out[i + k] = e.element }
            }
            i = j
        }
        return (out, outOrigins)
    }

    @inline(__always)
    static func ccc(_ v: UInt32) -> UInt8 {
        if v < 0x300 { return 0 }
        let c = Unicode.Scalar(v)!.properties.canonicalCombiningClass.rawValue
        return c == 0 || known(v, version: combiningClassVersion) ? c : 0
    }

    /// Canonical composition of decomposed, canonically ordered scalars (UAX #15's algorithm).
    static func composeAll(_ s: [UInt32]) -> [UInt32] {
        guard !s.isEmpty else { return s }
        var out = s
        var starterPos = 0
        var starter = out[0]
        var lastClass: Int = ccc(starter) == 0 ? 0 : 256
        var compPos = 1
        for decompPos in 1..<out.count {
            let ch = out[decompPos]
            let chClass = Int(ccc(ch))
            if let composite = compose(starter, ch), lastClass < chClass || lastClass == 0 {
                out[starterPos] = composite
                starter = composite
                continue
            }
            if chClass == 0 {
                starterPos = compPos
                starter = ch
            }
            lastClass = chClass
            out[compPos] = ch
            compPos += 1
        }
        out.removeLast(out.count - compPos)
        return out
    }

    static func composedUTF8(_ scalars: [UInt32]) -> [UInt8] { utf8(of: composeAll(scalars)) }

    static func apply(_ form: UnicodeForm, _ bytes: [UInt8]) -> [UInt8] {
        switch form {
        case .nfc:
            // Scalars below U+0300 (lead byte < 0xCC) are all NFC and never compose with each other.
            if allBelow(bytes, leadByte: 0xCC) { return bytes }
            return composedUTF8(decompose(scalars(of: bytes), origins: nil, compatibility: false).0)
        case .nfd: return utf8(of: decompose(scalars(of: bytes), origins: nil, compatibility: false).0)
        case .nfkd: return utf8(of: decompose(scalars(of: bytes), origins: nil, compatibility: true).0)
        case .nfkc: return composedUTF8(decompose(scalars(of: bytes), origins: nil, compatibility: true).0)
        }
    }

    /// Whether every scalar is below `limit` (lead bytes of UTF-8 grow with the scalar value).
    static func allBelow(_ bytes: [UInt8], leadByte limit: UInt8) -> Bool {
        bytes.withUnsafeBufferPointer { p in !p.contains { $0 >= limit } }
    }
}

struct UnicodeNormalizer: Normalizer {
    let form: UnicodeForm

    func normalize(_ s: inout NormString, track: Bool) {
        if s.isASCII { return }
        if !track {
            s = NormString(bytes: UnicodeNormalization.apply(form, s.bytes), origins: [])
            return
        }
        // Per-scalar origins of the input.
        var inScalars: [UInt32] = [], inOrigins: [Int32] = []
        s.forEachScalar { v, origin, _ in inScalars.append(v); inOrigins.append(origin) }
        switch form {
        case .nfd, .nfkd:
            let (out, origins) = UnicodeNormalization.decompose(inScalars, origins: inOrigins, compatibility: form == .nfkd)
            var b = NormBuilder(track: true, capacity: s.bytes.count)
            for (v, o) in zip(out, origins) { b.append(scalar: v, origin: o) }
            s = b.result
        case .nfc, .nfkc:
            let (scalarsIn, originsIn) = UnicodeNormalization.decompose(inScalars, origins: inOrigins, compatibility: form == .nfkc)
            // Compose grapheme cluster by grapheme cluster (composition does not cross cluster
            // boundaries). Output scalar k of a cluster takes the origin of input scalar
            // min(k, count - 1): unchanged clusters keep theirs, composed characters take their
            // first scalar's, as HF's alignments do.
            let text = string(fromScalars: scalarsIn)
            var b = NormBuilder(track: true, capacity: s.bytes.count)
            var k = 0
            for ch in text {
                let n = ch.unicodeScalars.count
                let origins = Array(originsIn[k..<(k + n)])
                for (i, v) in UnicodeNormalization.composeAll(ch.unicodeScalars.map(\.value)).enumerated() {
                    b.append(scalar: v, origin: origins[min(i, n - 1)])
                }
                k += n
            }
            s = b.result
        }
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
                // Remove NUL, U+FFFD and controls (C* except \t \n \r), then map White_Space to ' '.
                if v == 0 || v == 0xFFFD { return }
                let tabOrNewline = v == 0x09 || v == 0x0A || v == 0x0D
                if !tabOrNewline && CharClass.flags(v) & CharClass.bertOther != 0 { return }
                b.append(scalar: CharClass.isWhitespace(v) ? 0x20 : v, origin: origin)
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
