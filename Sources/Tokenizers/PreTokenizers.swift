/// GPT-2's reversible byte <-> printable character map used by ByteLevel components.
enum ByteLevelMap {
    static let byteToScalar: [UInt32] = {
        var map = [UInt32](repeating: 0, count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                map[b] = UInt32(b)
            } else {
                map[b] = 256 + n
                n += 1
            }
        }
        return map
    }()

    /// Scalar value -> byte, or -1 (scalars are all below 0x144).
    static let scalarToByte: [Int16] = {
        var t = [Int16](repeating: -1, count: 0x144)
        for (b, s) in byteToScalar.enumerated() { t[Int(s)] = Int16(b) }
        return t
    }()

    /// UTF-8 of each byte's character.
    static let byteToUTF8: [[UInt8]] = byteToScalar.map { v in
        var out: [UInt8] = []
        appendUTF8(v, to: &out)
        return out
    }

    @inline(__always)
    static func byte(for v: UInt32) -> UInt8? {
        if v < 0x144, scalarToByte[Int(v)] >= 0 { return UInt8(scalarToByte[Int(v)]) }
        return nil
    }
}

/// A piece of the text being encoded: a byte range of `PreTokenized.buf`, or an added token.
struct Span {
    var start: Int
    var end: Int
    /// The added token's id, or -1 for text still to be tokenized.
    var token: Int32
    /// The bytes still need the ByteLevel byte -> character mapping (applied lazily: the BPE model
    /// reads raw bytes directly).
    var byteLevel: Bool

    init(start: Int, end: Int, token: Int32 = -1, byteLevel: Bool = false) {
        self.start = start
        self.end = end
        self.token = token
        self.byteLevel = byteLevel
    }
}

/// HF's PreTokenizedString: normalized text split into pieces.
struct PreTokenized {
    var buf: [UInt8]
    /// Original byte offset of each byte of `buf` (empty unless tracked).
    var origins: [Int32]
    var spans: [Span]
    let track: Bool

    /// Splits every text span with `body`, which appends the replacement spans (only non-empty ones
    /// are kept, as HF drops empty splits).
    mutating func split(_ body: (UnsafeBufferPointer<UInt8>, Span, inout [Span]) -> Void) {
        materializeByteLevel()
        var out: [Span] = []
        out.reserveCapacity(spans.count * 2)
        buf.withUnsafeBufferPointer { p in
            for s in spans {
                if s.token >= 0 { out.append(s); continue }
                let from = out.count
                body(p, s, &out)
                var k = from
                while k < out.count {
                    if out[k].start == out[k].end { out.remove(at: k) } else { k += 1 }
                }
            }
        }
        spans = out
    }

    /// Rewrites every text span through `body`, which appends the new bytes of one span (with
    /// origins when tracked) to the new buffer and returns the spans over it.
    mutating func rewrite(_ body: (ArraySlice<UInt8>, ArraySlice<Int32>, inout [UInt8], inout [Int32], inout [Span]) -> Void) {
        materializeByteLevel()
        var newBuf: [UInt8] = []
        newBuf.reserveCapacity(buf.count + spans.count * 3)
        var newOrigins: [Int32] = []
        var out: [Span] = []
        out.reserveCapacity(spans.count)
        for s in spans {
            if s.token >= 0 { out.append(Span(start: 0, end: 0, token: s.token)); continue }
            let from = out.count
            body(buf[s.start..<s.end], track ? origins[s.start..<s.end] : [], &newBuf, &newOrigins, &out)
            var k = from
            while k < out.count {
                if out[k].start == out[k].end { out.remove(at: k) } else { k += 1 }
            }
        }
        buf = newBuf
        origins = newOrigins
        spans = out
    }

    /// Applies the pending ByteLevel mapping so that later components see mapped characters.
    mutating func materializeByteLevel() {
        guard spans.contains(where: { $0.byteLevel && $0.token < 0 }) else { return }
        var newBuf: [UInt8] = []
        var newOrigins: [Int32] = []
        var out: [Span] = []
        for s in spans {
            if s.token >= 0 { out.append(s); continue }
            let start = newBuf.count
            for i in s.start..<s.end {
                if s.byteLevel {
                    newBuf.append(contentsOf: ByteLevelMap.byteToUTF8[Int(buf[i])])
                    if track { for _ in 0..<ByteLevelMap.byteToUTF8[Int(buf[i])].count { newOrigins.append(origins[i]) } }
                } else {
                    newBuf.append(buf[i])
                    if track { newOrigins.append(origins[i]) }
                }
            }
            out.append(Span(start: start, end: newBuf.count))
        }
        buf = newBuf
        origins = newOrigins
        spans = out
    }
}

enum SplitBehavior: Sendable {
    case removed, isolated, mergedWithPrevious, mergedWithNext, contiguous

    init(_ node: JSONNode) throws(TokenizerError) {
        switch try node.string() {
        case "Removed": self = .removed
        case "Isolated": self = .isolated
        case "MergedWithPrevious": self = .mergedWithPrevious
        case "MergedWithNext": self = .mergedWithNext
        case "Contiguous": self = .contiguous
        case let other:
            throw .invalidField(path: node.path, "unknown split behavior '\(other)' (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)")
        }
    }
}

/// HF NormalizedString::split: turns the pattern's (range, isMatch) list into pieces.
func applyBehavior(_ m: [PatternMatch], _ behavior: SplitBehavior, into out: inout [Span]) {
    switch behavior {
    case .isolated:
        for x in m { out.append(Span(start: x.start, end: x.end)) }
    case .removed:
        for x in m where !x.isMatch { out.append(Span(start: x.start, end: x.end)) }
    case .contiguous:
        var previous = false
        let base = out.count
        for x in m {
            if x.isMatch == previous && out.count > base {
                out[out.count - 1].end = x.end
            } else {
                out.append(Span(start: x.start, end: x.end))
            }
            previous = x.isMatch
        }
    case .mergedWithPrevious:
        var previous = false
        let base = out.count
        for x in m {
            if x.isMatch && !previous && out.count > base {
                out[out.count - 1].end = x.end
            } else {
                out.append(Span(start: x.start, end: x.end))
            }
            previous = x.isMatch
        }
    case .mergedWithNext:
        var previous = false
        var rev: [Span] = []
        for x in m.reversed() {
            if x.isMatch && !previous && !rev.isEmpty {
                rev[rev.count - 1].start = x.start
            } else {
                rev.append(Span(start: x.start, end: x.end))
            }
            previous = x.isMatch
        }
        out.append(contentsOf: rev.reversed())
    }
}

protocol PreTokenizer: Sendable {
    func preTokenize(_ pt: inout PreTokenized)
    /// Whether this component needs original offsets (Metaspace with prepend_scheme "first").
    var needsOrigins: Bool { get }
}

extension PreTokenizer {
    var needsOrigins: Bool { false }
}

struct SequencePreTokenizer: PreTokenizer {
    let items: [any PreTokenizer]
    func preTokenize(_ pt: inout PreTokenized) { for p in items { p.preTokenize(&pt) } }
    var needsOrigins: Bool { items.contains { $0.needsOrigins } }
}

struct PatternSplitPreTokenizer: PreTokenizer {
    let pattern: any SplitPattern
    let behavior: SplitBehavior

    func preTokenize(_ pt: inout PreTokenized) {
        var matches: [PatternMatch] = []
        pt.split { p, s, out in
            matches.removeAll(keepingCapacity: true)
            pattern.findMatches(p, s.start, s.end, into: &matches)
            applyBehavior(matches, behavior, into: &out)
        }
    }
}

struct ByteLevelPreTokenizer: PreTokenizer {
    let addPrefixSpace: Bool
    let useRegex: Bool
    static let scanner = GPT2Scanner()

    func preTokenize(_ pt: inout PreTokenized) {
        if addPrefixSpace && pt.spans.contains(where: { $0.token < 0 && pt.buf[$0.start] != 0x20 }) {
            pt.rewrite { bytes, origins, nb, no, out in
                let start = nb.count
                if bytes.first != 0x20 {
                    nb.append(0x20)
                    if !origins.isEmpty { no.append(origins.first!) }
                }
                nb.append(contentsOf: bytes)
                no.append(contentsOf: origins)
                out.append(Span(start: start, end: nb.count))
            }
        }
        if useRegex {
            let scanner = ByteLevelPreTokenizer.scanner
            pt.split { p, s, out in
                var i = s.start
                while i < s.end {
                    let e = scanner.matchEnd(p, i, s.end)
                    out.append(Span(start: i, end: e, byteLevel: true))
                    i = e
                }
            }
        } else {
            pt.materializeByteLevel()
        }
        for k in pt.spans.indices where pt.spans[k].token < 0 { pt.spans[k].byteLevel = true }
    }
}

enum PrependScheme: Sendable { case first, always, never }

struct MetaspacePreTokenizer: PreTokenizer {
    let replacement: [UInt8]
    let replacementScalar: UInt32
    let prependScheme: PrependScheme
    let splitWords: Bool

    var needsOrigins: Bool { prependScheme == .first }

    func preTokenize(_ pt: inout PreTokenized) {
        let track = pt.track
        pt.rewrite { bytes, origins, nb, no, out in
            let start = nb.count
            let startsWithReplacement = bytes.starts(with: replacement)
            // A leading space becomes the replacement too, so that counts as starting with it.
            let startsWithSpace = bytes.first == 0x20
            var prepend = false
            switch prependScheme {
            case .always: prepend = !startsWithReplacement && !startsWithSpace
            case .first:
                let origin = origins.isEmpty ? 0 : origins.first!
                prepend = !startsWithReplacement && !startsWithSpace && origin == 0
            case .never: prepend = false
            }
            if prepend {
                nb.append(contentsOf: replacement)
                if track { for _ in replacement { no.append(origins.first!) } }
            }
            var k = origins.startIndex
            for b in bytes {
                if b == 0x20 {
                    nb.append(contentsOf: replacement)
                    if track { for _ in replacement { no.append(origins[k]) } }
                } else {
                    nb.append(b)
                    if track { no.append(origins[k]) }
                }
                k += 1
            }
            out.append(Span(start: start, end: nb.count))
        }
        if splitWords {
            let pattern = LiteralPattern(needle: replacement)
            var matches: [PatternMatch] = []
            pt.split { p, s, out in
                matches.removeAll(keepingCapacity: true)
                pattern.findMatches(p, s.start, s.end, into: &matches)
                applyBehavior(matches, .mergedWithNext, into: &out)
            }
        }
    }
}

/// `\w+|[^\w\s]+` keeping the matches (HF Whitespace).
struct WhitespacePreTokenizer: PreTokenizer {
    func preTokenize(_ pt: inout PreTokenized) {
        pt.split { p, s, out in
            var i = s.start
            while i < s.end {
                let (v, n) = decodeScalar(p, i)
                if CharClass.isWhitespace(v) { i += n; continue }
                let word = CharClass.isWord(v)
                var j = i + n
                while j < s.end {
                    let (w, m) = decodeScalar(p, j)
                    if word ? !CharClass.isWord(w) : (CharClass.isWord(w) || CharClass.isWhitespace(w)) { break }
                    j += m
                }
                out.append(Span(start: i, end: j))
                i = j
            }
        }
    }
}

func makePreTokenizer(_ node: JSONNode) throws(TokenizerError) -> any PreTokenizer {
    let type = try node.typeTag()
    switch type {
    case "Sequence":
        return SequencePreTokenizer(items: try node.field("pretokenizers").array().map { n throws(TokenizerError) in try makePreTokenizer(n) })
    case "ByteLevel":
        return ByteLevelPreTokenizer(addPrefixSpace: try node.bool("add_prefix_space", default: true),
                                     useRegex: try node.bool("use_regex", default: true))
    case "Split":
        var pattern = try makePattern(try node.field("pattern"))
        if try node.bool("invert", default: false) { pattern = InvertedPattern(base: pattern) }
        return PatternSplitPreTokenizer(pattern: pattern, behavior: try SplitBehavior(try node.field("behavior")))
    case "Metaspace":
        let replacementNode = try node.field("replacement")
        let replacement = try replacementNode.string()
        guard replacement.unicodeScalars.count == 1 else {
            throw .invalidField(path: replacementNode.path, "expected a single character")
        }
        var scheme = PrependScheme.always
        if let s = try node.optionalField("prepend_scheme") {
            switch try s.string() {
            case "first": scheme = .first
            case "always": scheme = .always
            case "never": scheme = .never
            case let other: throw .invalidField(path: s.path, "unknown prepend_scheme '\(other)' (expected first, always or never)")
            }
        } else if try node.optionalField("add_prefix_space")?.bool() == false {
            scheme = .never
        }
        return MetaspacePreTokenizer(replacement: Array(replacement.utf8), replacementScalar: replacement.unicodeScalars.first!.value,
                                     prependScheme: scheme, splitWords: try node.bool("split", default: true))
    case "Digits":
        let individual = try node.bool("individual_digits", default: false)
        return PatternSplitPreTokenizer(pattern: ScalarPredicatePattern(predicate: { CharClass.isNumeric($0) }),
                                        behavior: individual ? .isolated : .contiguous)
    case "Whitespace":
        return WhitespacePreTokenizer()
    case "WhitespaceSplit":
        return PatternSplitPreTokenizer(pattern: ScalarPredicatePattern(predicate: { CharClass.isWhitespace($0) }), behavior: .removed)
    case "Punctuation":
        let behavior = try node.optionalField("behavior").map { n throws(TokenizerError) in try SplitBehavior(n) } ?? .isolated
        return PatternSplitPreTokenizer(pattern: ScalarPredicatePattern(predicate: { CharClass.isPunctuation($0) }), behavior: behavior)
    case "BertPreTokenizer":
        return SequencePreTokenizer(items: [
            PatternSplitPreTokenizer(pattern: ScalarPredicatePattern(predicate: { CharClass.isWhitespace($0) }), behavior: .removed),
            PatternSplitPreTokenizer(pattern: ScalarPredicatePattern(predicate: { CharClass.isPunctuation($0) }), behavior: .isolated),
        ])
    case "CharDelimiterSplit":
        let d = try node.field("delimiter")
        let delimiter = try d.string()
        guard delimiter.unicodeScalars.count == 1 else { throw .invalidField(path: d.path, "expected a single character") }
        let v = delimiter.unicodeScalars.first!.value
        return PatternSplitPreTokenizer(pattern: ScalarPredicatePattern(predicate: { $0 == v }), behavior: .removed)
    default:
        throw .unsupportedType(path: node.childPath("type"), kind: "pre-tokenizer", type: type,
                               supported: ["Sequence", "ByteLevel", "Split", "Metaspace", "Digits", "Whitespace",
                                           "WhitespaceSplit", "Punctuation", "BertPreTokenizer", "CharDelimiterSplit"])
    }
}
