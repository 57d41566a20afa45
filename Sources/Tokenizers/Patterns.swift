import Foundation

// Split patterns: things that find matches in UTF-8 text the way HF tokenizers' `Pattern` trait does
// (a list of (range, isMatch) covering the whole input). The GPT-2 and Llama-3 regexes, which
// byte-level tokenizers run on every word, get hand-written scanners that reproduce Oniguruma's
// backtracking results exactly; other regexes go to NSRegularExpression (ICU) after `\s`/`\S` are
// rewritten to Oniguruma's meaning (Unicode White_Space).

struct PatternMatch {
    var start: Int
    var end: Int
    var isMatch: Bool
}

protocol SplitPattern: Sendable {
    /// Appends matches and the gaps between them, covering `start..<end` of `p`, in order.
    /// An empty input yields one empty non-match (as HF does).
    func findMatches(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, into out: inout [PatternMatch])
}

/// A pattern whose matches tile the whole input (every position starts a match): the GPT-2 and
/// Llama-3 pre-tokenization regexes. `matchEnd` returns where the match starting at `pos` ends.
protocol TilingScanner: SplitPattern {
    func matchEnd(_ p: UnsafeBufferPointer<UInt8>, _ pos: Int, _ end: Int) -> Int
}

extension TilingScanner {
    func findMatches(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, into out: inout [PatternMatch]) {
        if start == end { out.append(PatternMatch(start: start, end: end, isMatch: false)); return }
        var i = start
        while i < end {
            let e = matchEnd(p, i, end)
            out.append(PatternMatch(start: i, end: e, isMatch: true))
            i = e
        }
    }
}

@inline(__always) private func isL(_ v: UInt32) -> Bool { CharClass.isLetter(v) }
@inline(__always) private func isN(_ v: UInt32) -> Bool { CharClass.isNumber(v) }
@inline(__always) private func isS(_ v: UInt32) -> Bool { CharClass.isWhitespace(v) }

/// Shared pieces of the two scanners.
private enum Scan {
    /// End of the run of scalars satisfying `pred` starting at i.
    @inline(__always)
    static func run(_ p: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int, _ pred: (UInt32) -> Bool) -> Int {
        var j = i
        while j < end {
            let (v, n) = decodeScalar(p, j)
            if !pred(v) { break }
            j += n
        }
        return j
    }

    @inline(__always)
    static func isOther(_ v: UInt32) -> Bool { !isS(v) && !isL(v) && !isN(v) }

    /// `\s+(?!\S)|\s+` at a whitespace position i: the whitespace run, minus its last scalar when
    /// the run is followed by a non-space and has at least two scalars.
    @inline(__always)
    static func whitespace(_ p: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        var j = i, last = i
        while j < end {
            let (v, n) = decodeScalar(p, j)
            if !isS(v) { break }
            last = j
            j += n
        }
        if j == end { return j }           // \s+ to the end: (?!\S) holds
        if last > i { return last }         // backtrack one scalar: the next one is a space
        return j                            // \s+ (single scalar followed by \S)
    }

    /// Case-insensitive ASCII letter test for the contraction alternatives; `ſ` (U+017F) folds to s.
    @inline(__always)
    static func foldedLetter(_ p: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int, caseInsensitive: Bool) -> (UInt8, Int)? {
        guard i < end else { return nil }
        let b = p[i]
        if b < 0x80 {
            if caseInsensitive && b >= 0x41 && b <= 0x5A { return (b | 0x20, 1) }
            return (b, 1)
        }
        if caseInsensitive && b == 0xC5 && i + 1 < end && p[i + 1] == 0xBF { return (UInt8(ascii: "s"), 2) }
        return nil
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d` at an apostrophe; returns the match end or nil.
    @inline(__always)
    static func contraction(_ p: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int, caseInsensitive: Bool) -> Int? {
        guard let (c1, n1) = foldedLetter(p, i + 1, end, caseInsensitive: caseInsensitive) else { return nil }
        switch c1 {
        case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"):
            return i + 1 + n1
        case UInt8(ascii: "r"), UInt8(ascii: "v"), UInt8(ascii: "l"):
            guard let (c2, n2) = foldedLetter(p, i + 1 + n1, end, caseInsensitive: caseInsensitive) else { return nil }
            let want: UInt8 = c1 == UInt8(ascii: "l") ? UInt8(ascii: "l") : UInt8(ascii: "e")
            return c2 == want ? i + 1 + n1 + n2 : nil
        default:
            return nil
        }
    }
}

/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` (GPT-2, ByteLevel).
struct GPT2Scanner: TilingScanner {
    static let pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    @inline(__always)
    func matchEnd(_ p: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        let b = p[i]
        // ASCII fast paths.
        if b < 0x80 {
            if b == UInt8(ascii: "'"), let e = Scan.contraction(p, i, end, caseInsensitive: false) { return e }
            var start = i
            if b == 0x20 {
                guard i + 1 < end else { return end }
                let (v, _) = decodeScalar(p, i + 1)
                if isS(v) { return Scan.whitespace(p, i, end) }
                start = i + 1
            }
            let (v, n) = decodeScalar(p, start)
            if isL(v) { return Scan.run(p, start + n, end, isL) }
            if isN(v) { return Scan.run(p, start + n, end, isN) }
            if isS(v) { return Scan.whitespace(p, i, end) }
            return Scan.run(p, start + n, end, Scan.isOther)
        }
        let (v, n) = decodeScalar(p, i)
        if isL(v) { return Scan.run(p, i + n, end, isL) }
        if isN(v) { return Scan.run(p, i + n, end, isN) }
        if isS(v) { return Scan.whitespace(p, i, end) }
        return Scan.run(p, i + n, end, Scan.isOther)
    }
}

/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,K}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// with K = 3 (Llama-3) or 1 (Qwen2).
struct Llama3Scanner: TilingScanner {
    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    let digitChunk: Int

    @inline(__always)
    private func newlines(_ p: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        var j = i
        while j < end && (p[j] == 0x0A || p[j] == 0x0D) { j += 1 }
        return j
    }

    func matchEnd(_ p: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        let (v, n) = decodeScalar(p, i)
        if v == 0x27, let e = Scan.contraction(p, i, end, caseInsensitive: true) { return e }
        if isL(v) { return Scan.run(p, i + n, end, isL) }
        if isN(v) {
            var j = i + n, count = 1
            while count < digitChunk && j < end {
                let (w, m) = decodeScalar(p, j)
                if !isN(w) { break }
                j += m
                count += 1
            }
            return j
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+ with one leading non-letter, non-digit, non-newline scalar.
        if v != 0x0A && v != 0x0D && i + n < end {
            let (w, m) = decodeScalar(p, i + n)
            if isL(w) { return Scan.run(p, i + n + m, end, isL) }
        }
        if !isS(v) {
            // [^\s\p{L}\p{N}]+[\r\n]*
            return newlines(p, Scan.run(p, i + n, end, Scan.isOther), end)
        }
        if v == 0x20 && i + 1 < end {
            // ' ?[^\s\p{L}\p{N}]+[\r\n]*' with the optional space.
            let (w, m) = decodeScalar(p, i + 1)
            if Scan.isOther(w) { return newlines(p, Scan.run(p, i + 1 + m, end, Scan.isOther), end) }
        }
        // \s*[\r\n]+ : the whitespace run up to and including its last newline.
        var j = i, lastNewline = -1
        while j < end {
            let (w, m) = decodeScalar(p, j)
            if !isS(w) { break }
            if w == 0x0A || w == 0x0D { lastNewline = j }
            j += m
        }
        if lastNewline >= 0 { return lastNewline + 1 }
        return Scan.whitespace(p, i, end)
    }
}

/// A literal string (HF escapes String patterns into a regex): non-overlapping, leftmost.
struct LiteralPattern: SplitPattern {
    let needle: [UInt8]

    func findMatches(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, into out: inout [PatternMatch]) {
        if start == end { out.append(PatternMatch(start: start, end: end, isMatch: false)); return }
        if needle.isEmpty { out.append(PatternMatch(start: start, end: end, isMatch: false)); return }
        var prev = start, i = start
        let n = needle.count, first = needle[0]
        needle.withUnsafeBufferPointer { nd in
            while i + n <= end {
                if p[i] == first && (n == 1 || memcmp(p.baseAddress! + i, nd.baseAddress!, n) == 0) {
                    if prev != i { out.append(PatternMatch(start: prev, end: i, isMatch: false)) }
                    out.append(PatternMatch(start: i, end: i + n, isMatch: true))
                    i += n
                    prev = i
                } else {
                    i += 1
                }
            }
        }
        if prev != end { out.append(PatternMatch(start: prev, end: end, isMatch: false)) }
    }
}

/// One match per scalar satisfying a predicate (HF's `impl Pattern for Fn(char) -> bool`).
struct ScalarPredicatePattern: SplitPattern {
    let predicate: @Sendable (UInt32) -> Bool

    func findMatches(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, into out: inout [PatternMatch]) {
        if start == end { out.append(PatternMatch(start: start, end: end, isMatch: false)); return }
        var last = start, i = start
        while i < end {
            let (v, n) = decodeScalar(p, i)
            if predicate(v) {
                if last < i { out.append(PatternMatch(start: last, end: i, isMatch: false)) }
                out.append(PatternMatch(start: i, end: i + n, isMatch: true))
                last = i + n
            }
            i += n
        }
        if last < end { out.append(PatternMatch(start: last, end: end, isMatch: false)) }
    }
}

/// Flips match / non-match (HF `Invert`).
struct InvertedPattern: SplitPattern {
    let base: any SplitPattern

    func findMatches(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, into out: inout [PatternMatch]) {
        let from = out.count
        base.findMatches(p, start, end, into: &out)
        for k in from..<out.count { out[k].isMatch.toggle() }
    }
}

/// Any other regex, through NSRegularExpression (ICU).
final class ICURegexPattern: SplitPattern, @unchecked Sendable {
    let source: String
    let regex: NSRegularExpression

    init(_ pattern: String, path: String) throws(TokenizerError) {
        source = pattern
        do {
            regex = try NSRegularExpression(pattern: ICURegexPattern.translate(pattern), options: [])
        } catch {
            throw .invalidField(path: path, "cannot compile regex \(pattern): \(error)")
        }
    }

    /// Oniguruma's `\s` is Unicode White_Space; ICU's lacks U+000B and U+0085. Rewrite `\s` / `\S`.
    static let whiteSpaceSet = #"\t\n\x{0B}\f\r\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"#

    static func translate(_ pattern: String) -> String {
        var out = ""
        var inClass = 0
        var it = Array(pattern.unicodeScalars)[...]
        while let c = it.popFirst() {
            if c == "\\", let next = it.first {
                it.removeFirst()
                switch next {
                case "s": out += inClass > 0 ? whiteSpaceSet : "[\(whiteSpaceSet)]"
                case "S": out += "[^\(whiteSpaceSet)]"
                default: out.unicodeScalars.append(c); out.unicodeScalars.append(next)
                }
                continue
            }
            if c == "[" { inClass += 1 } else if c == "]" && inClass > 0 { inClass -= 1 }
            out.unicodeScalars.append(c)
        }
        return out
    }

    func findMatches(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, into out: inout [PatternMatch]) {
        if start == end { out.append(PatternMatch(start: start, end: end, isMatch: false)); return }
        let text = String(decoding: UnsafeBufferPointer(rebasing: p[start..<end]), as: UTF8.self)
        // UTF-16 offset -> UTF-8 offset.
        var map: [Int] = []
        map.reserveCapacity(end - start + 1)
        var byte = start
        for s in text.unicodeScalars {
            map.append(byte)
            if s.value >= 0x10000 { map.append(byte) }
            byte += utf8Length(scalar: s.value)
        }
        map.append(byte)
        let ns = text as NSString
        var prev = start
        for m in regex.matches(in: text, options: [], range: NSRange(location: 0, length: ns.length)) {
            let s = map[m.range.location], e = map[m.range.location + m.range.length]
            if prev != s { out.append(PatternMatch(start: prev, end: s, isMatch: false)) }
            out.append(PatternMatch(start: s, end: e, isMatch: true))
            prev = e
        }
        if prev != end { out.append(PatternMatch(start: prev, end: end, isMatch: false)) }
    }
}

/// Builds the pattern for a `{"String": ...}` / `{"Regex": ...}` JSON object.
func makePattern(_ node: JSONNode) throws(TokenizerError) -> any SplitPattern {
    if let s = try node.optionalField("String") {
        return LiteralPattern(needle: Array(try s.string().utf8))
    }
    if let r = try node.optionalField("Regex") {
        return try makeRegex(try r.string(), path: r.path)
    }
    throw .invalidField(path: node.path, "expected {\"String\": ...} or {\"Regex\": ...}")
}

func makeRegex(_ pattern: String, path: String) throws(TokenizerError) -> any SplitPattern {
    let bytes = Array(pattern.utf8)
    if bytes == Array(GPT2Scanner.pattern.utf8) { return GPT2Scanner() }
    if bytes == Array(Llama3Scanner.llama3Pattern.utf8) { return Llama3Scanner(digitChunk: 3) }
    if bytes == Array(Llama3Scanner.qwen2Pattern.utf8) { return Llama3Scanner(digitChunk: 1) }
    return try ICURegexPattern(pattern, path: path)
}
