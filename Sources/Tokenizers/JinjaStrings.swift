// Python str operations on Unicode scalars (code points), which is what Python's str indexes,
// counts and compares — not Swift's grapheme clusters.

/// Python's `str.isspace()` for one code point.
func pyIsSpace(_ u: Unicode.Scalar) -> Bool {
    switch u.value {
    case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
        return true
    default:
        return false
    }
}

extension String {
    var pyScalars: [Unicode.Scalar] { Array(unicodeScalars) }

    init(pyScalars: some Sequence<Unicode.Scalar>) {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: pyScalars)
        self = String(s)
    }

    var pyLength: Int { unicodeScalars.count }
}

enum PyString {
    static func strip(_ s: String, _ chars: String?, left: Bool = true, right: Bool = true) -> String {
        let a = s.pyScalars
        let set = chars.map { Set($0.unicodeScalars) }
        func drop(_ u: Unicode.Scalar) -> Bool { set.map { $0.contains(u) } ?? pyIsSpace(u) }
        var lo = 0, hi = a.count
        if left { while lo < hi && drop(a[lo]) { lo += 1 } }
        if right { while hi > lo && drop(a[hi - 1]) { hi -= 1 } }
        return String(pyScalars: a[lo..<hi])
    }

    static func find(_ hay: [Unicode.Scalar], _ needle: [Unicode.Scalar], from start: Int = 0) -> Int? {
        if needle.isEmpty { return start <= hay.count ? start : nil }
        if needle.count > hay.count { return nil }
        var i = max(0, start)
        while i + needle.count <= hay.count {
            if hay[i] == needle[0] && hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    static func rfind(_ hay: [Unicode.Scalar], _ needle: [Unicode.Scalar]) -> Int? {
        if needle.count > hay.count { return nil }
        var i = hay.count - needle.count
        while i >= 0 {
            if hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i -= 1
        }
        return nil
    }

    static func contains(_ s: String, _ sub: String) -> Bool {
        find(s.pyScalars, sub.pyScalars) != nil
    }

    static func count(_ s: String, _ sub: String) -> Int {
        let h = s.pyScalars, n = sub.pyScalars
        if n.isEmpty { return h.count + 1 }
        var c = 0, i = 0
        while let j = find(h, n, from: i) { c += 1; i = j + n.count }
        return c
    }

    static func replace(_ s: String, _ old: String, _ new: String, count: Int? = nil) -> String {
        let h = s.pyScalars, o = old.pyScalars, n = new.pyScalars
        var limit = count ?? Int.max
        if limit < 0 { limit = Int.max }
        var out: [Unicode.Scalar] = []
        if o.isEmpty {
            // Python inserts `new` between every character (and at both ends).
            var done = 0
            for u in h {
                if done < limit { out += n; done += 1 }
                out.append(u)
            }
            if done < limit { out += n }
            return String(pyScalars: out)
        }
        var i = 0, done = 0
        while done < limit, let j = find(h, o, from: i) {
            out += h[i..<j]
            out += n
            i = j + o.count
            done += 1
        }
        out += h[i...]
        return String(pyScalars: out)
    }

    static func hasPrefix(_ s: String, _ p: String) -> Bool {
        s.unicodeScalars.starts(with: p.unicodeScalars)
    }

    static func hasSuffix(_ s: String, _ p: String) -> Bool {
        s.unicodeScalars.reversed().starts(with: p.unicodeScalars.reversed())
    }

    /// Python's `str.split(sep=None, maxsplit=-1)`.
    static func split(_ s: String, _ sep: String?, maxsplit: Int = -1) throws -> [String] {
        let h = s.pyScalars
        var result: [String] = []
        guard let sep else {
            var i = 0, splits = 0
            while true {
                while i < h.count && pyIsSpace(h[i]) { i += 1 }
                if i >= h.count { break }
                if maxsplit >= 0 && splits >= maxsplit {
                    result.append(String(pyScalars: h[i...]))
                    break
                }
                var j = i
                while j < h.count && !pyIsSpace(h[j]) { j += 1 }
                result.append(String(pyScalars: h[i..<j]))
                splits += 1
                i = j
            }
            return result
        }
        let n = sep.pyScalars
        if n.isEmpty { throw JinjaError.runtime("empty separator") }
        var i = 0, splits = 0
        while maxsplit < 0 || splits < maxsplit, let j = find(h, n, from: i) {
            result.append(String(pyScalars: h[i..<j]))
            i = j + n.count
            splits += 1
        }
        result.append(String(pyScalars: h[i...]))
        return result
    }

    /// Python's `str.rsplit(sep=None, maxsplit=-1)`.
    static func rsplit(_ s: String, _ sep: String?, maxsplit: Int = -1) throws -> [String] {
        if maxsplit < 0 { return try split(s, sep) }
        // Split from the right by reversing scalars.
        let reversed = String(pyScalars: s.pyScalars.reversed())
        let rsep = sep.map { String(pyScalars: $0.pyScalars.reversed()) }
        return try split(reversed, rsep, maxsplit: maxsplit).reversed().map { String(pyScalars: $0.pyScalars.reversed()) }
    }

    static func splitlines(_ s: String, keepends: Bool = false) -> [String] {
        let h = s.pyScalars
        var result: [String] = []
        var start = 0, i = 0
        while i < h.count {
            let u = h[i].value
            var eol = 0
            switch u {
            case 0x0D: eol = (i + 1 < h.count && h[i + 1] == "\n") ? 2 : 1
            case 0x0A, 0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029: eol = 1
            default: break
            }
            if eol > 0 {
                result.append(String(pyScalars: h[start..<(keepends ? i + eol : i)]))
                i += eol
                start = i
            } else {
                i += 1
            }
        }
        if start < h.count { result.append(String(pyScalars: h[start...])) }
        return result
    }

    static func isCased(_ u: Unicode.Scalar) -> Bool {
        switch u.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter: return true
        default: return false
        }
    }

    static func upper(_ s: String) -> String { s.uppercased() }
    static func lower(_ s: String) -> String { s.lowercased() }

    static func titleChar(_ u: Unicode.Scalar) -> String { u.properties.titlecaseMapping }

    /// Python's `str.capitalize()`: first character title-cased, the rest lower-cased.
    static func capitalize(_ s: String) -> String {
        let a = s.pyScalars
        guard let first = a.first else { return "" }
        return titleChar(first) + String(pyScalars: a.dropFirst()).lowercased()
    }

    /// Python's `str.title()`.
    static func title(_ s: String) -> String {
        var out = ""
        var previousCased = false
        for u in s.unicodeScalars {
            if previousCased { out += u.properties.lowercaseMapping } else { out += u.properties.titlecaseMapping }
            previousCased = isCased(u)
        }
        return out
    }

    /// jinja2's `title` filter: upper-cases the first letter of each word, where words are
    /// separated by runs of `-`, whitespace, `(`, `{`, `[` or `<`.
    static func jinjaTitle(_ s: String) -> String {
        func isDelimiter(_ u: Unicode.Scalar) -> Bool {
            u == "-" || u == "(" || u == "{" || u == "[" || u == "<" || pyIsSpace(u)
        }
        var out = ""
        var atWordStart = true
        for u in s.unicodeScalars {
            if isDelimiter(u) {
                out.unicodeScalars.append(u)
                atWordStart = true
            } else if atWordStart {
                out += u.properties.uppercaseMapping
                atWordStart = false
            } else {
                out += u.properties.lowercaseMapping
            }
        }
        return out
    }

    static func isDigitString(_ s: String) -> Bool {
        !s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType == .decimal || $0.properties.numericType == .digit }
    }
}

/// Python's slice resolution: the indices selected by `[start:stop:step]` of a sequence of
/// `count` elements.
func pySliceIndices(count: Int, start: Int?, stop: Int?, step: Int?) throws -> [Int] {
    let step = step ?? 1
    if step == 0 { throw JinjaError.runtime("slice step cannot be zero") }
    func clamp(_ v: Int?, _ defaultValue: Int, lower: Int, upper: Int) -> Int {
        guard var v else { return defaultValue }
        if v < 0 { v += count }
        return min(max(v, lower), upper)
    }
    var result: [Int] = []
    if step > 0 {
        let s = clamp(start, 0, lower: 0, upper: count)
        let e = clamp(stop, count, lower: 0, upper: count)
        var i = s
        while i < e { result.append(i); i += step }
    } else {
        let s = clamp(start, count - 1, lower: -1, upper: count - 1)
        let e = clamp(stop, -1, lower: -1, upper: count - 1)
        var i = s
        while i > e { result.append(i); i += step }
    }
    return result
}
