// Tokenizer for Jinja templates, following jinja2 3.1's lexer with the settings transformers
// uses for chat templates: trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False.

enum JinjaTokenKind: Equatable {
    case data, variableBegin, variableEnd, blockBegin, blockEnd
    case name, string, integer, float, op
    case eof
}

struct JinjaToken {
    var kind: JinjaTokenKind
    /// Data text, name, operator, or the decoded value of a string literal.
    var text: String
    var intValue = 0
    var floatValue = 0.0
    var line: Int
    var column: Int

    func isName(_ name: String) -> Bool { kind == .name && text == name }
    func isOp(_ op: String) -> Bool { kind == .op && text == op }

    /// jinja2's `describe_token`, used in syntax error messages.
    var description: String {
        switch kind {
        case .name, .op: return text
        case .data: return "template data / text"
        case .variableBegin: return "begin of print statement"
        case .variableEnd: return "end of print statement"
        case .blockBegin: return "begin of statement block"
        case .blockEnd: return "end of statement block"
        case .string: return "string"
        case .integer: return "integer"
        case .float: return "float"
        case .eof: return "end of template"
        }
    }
}

struct JinjaLexer {
    let trimBlocks = true
    let lstripBlocks = true

    private var src: [Unicode.Scalar] = []
    private var pos = 0
    private var lineStarts: [Int] = [0]
    private var tokens: [JinjaToken] = []

    init() {}

    /// Splits `source` into tokens. Newlines (\r\n, \r, \n) become \n and one trailing newline
    /// is dropped, as jinja2 does.
    mutating func tokenize(_ source: String) throws -> [JinjaToken] {
        var normalized: [Unicode.Scalar] = []
        normalized.reserveCapacity(source.unicodeScalars.count)
        var it = Array(source.unicodeScalars)[...]
        while let u = it.popFirst() {
            if u == "\r" {
                if it.first == "\n" { it.removeFirst() }
                normalized.append("\n")
            } else {
                normalized.append(u)
            }
        }
        if normalized.last == "\n" { normalized.removeLast() }
        src = normalized
        lineStarts = [0]
        for (i, u) in src.enumerated() where u == "\n" { lineStarts.append(i + 1) }
        pos = 0
        tokens = []
        try lexRoot()
        let (l, c) = position(src.count)
        tokens.append(JinjaToken(kind: .eof, text: "", line: l, column: c))
        return tokens
    }

    /// 1-based line and column of a source offset.
    func position(_ offset: Int) -> (Int, Int) {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return (lo + 1, offset - lineStarts[lo] + 1)
    }

    private func fail(_ message: String, at offset: Int) -> JinjaError {
        let (l, c) = position(offset)
        return JinjaError.syntax(message, line: l, column: c)
    }

    private mutating func emit(_ kind: JinjaTokenKind, _ text: String, at offset: Int) {
        let (l, c) = position(offset)
        tokens.append(JinjaToken(kind: kind, text: text, line: l, column: c))
    }

    private func at(_ i: Int) -> Unicode.Scalar? { i < src.count ? src[i] : nil }

    private func matches(_ s: String, at i: Int) -> Bool {
        var k = i
        for u in s.unicodeScalars {
            guard k < src.count, src[k] == u else { return false }
            k += 1
        }
        return true
    }

    private func skipSpace(from i: Int) -> Int {
        var k = i
        while k < src.count && pyIsSpace(src[k]) { k += 1 }
        return k
    }

    // MARK: root state

    private mutating func lexRoot() throws {
        var lineStarting = true
        while pos < src.count {
            // The earliest "{{", "{%" or "{#".
            var i = pos
            var found = false
            while i + 1 < src.count {
                if src[i] == "{" && (src[i + 1] == "{" || src[i + 1] == "%" || src[i + 1] == "#") { found = true; break }
                i += 1
            }
            if !found {
                emit(.data, String(pyScalars: src[pos...]), at: pos)
                pos = src.count
                return
            }
            let kind = src[i + 1]
            var text = Array(src[pos..<i])
            let textStart = pos

            // {% raw %} ... {% endraw %}
            if kind == "%", let rawEnd = matchRawBegin(at: i) {
                let sign = at(i + 2)
                text = stripText(text, sign: sign == "-" || sign == "+" ? sign : nil, isVariable: false, lineStarting: lineStarting)
                if !text.isEmpty { emit(.data, String(pyScalars: text), at: textStart) }
                pos = rawEnd
                try lexRaw()
                lineStarting = pos > 0 && src[pos - 1] == "\n"
                continue
            }

            var sign: Unicode.Scalar? = nil
            if let s = at(i + 2), s == "-" || s == "+" { sign = s }
            text = stripText(text, sign: sign, isVariable: kind == "{", lineStarting: lineStarting)
            if !text.isEmpty { emit(.data, String(pyScalars: text), at: textStart) }
            let tagStart = i
            pos = i + 2 + (sign == nil ? 0 : 1)
            switch kind {
            case "#":
                try lexComment(start: tagStart)
            case "%":
                emit(.blockBegin, "{%", at: tagStart)
                try lexTag(isBlock: true)
            default:
                emit(.variableBegin, "{{", at: tagStart)
                try lexTag(isBlock: false)
            }
            lineStarting = pos > 0 && src[pos - 1] == "\n"
        }
    }

    /// Whitespace control of the text before a tag: `-` strips all trailing whitespace;
    /// otherwise lstrip_blocks removes spaces and tabs between a line start and a block or comment tag.
    private func stripText(_ text: [Unicode.Scalar], sign: Unicode.Scalar?, isVariable: Bool, lineStarting: Bool) -> [Unicode.Scalar] {
        if sign == "-" {
            var end = text.count
            while end > 0 && pyIsSpace(text[end - 1]) { end -= 1 }
            return Array(text[..<end])
        }
        if sign != "+" && lstripBlocks && !isVariable {
            let lpos = (text.lastIndex(of: "\n") ?? -1) + 1
            if lpos > 0 || lineStarting {
                let tail = text[lpos...]
                if !tail.isEmpty && tail.allSatisfy(pyIsSpace) { return Array(text[..<lpos]) }
            }
        }
        return text
    }

    /// `{%[-+]? raw [-]?%}`: returns the offset after it.
    private func matchRawBegin(at i: Int) -> Int? {
        var k = i + 2
        if let s = at(k), s == "-" || s == "+" { k += 1 }
        k = skipSpace(from: k)
        guard matches("raw", at: k) else { return nil }
        k += 3
        k = skipSpace(from: k)
        if matches("-%}", at: k) { return skipSpace(from: k + 3) }
        if matches("%}", at: k) { return k + 2 }
        return nil
    }

    private mutating func lexRaw() throws {
        // (.*?)({%[-+]?\s*endraw\s*(+%}|-%}\s*|%}\n?))
        var i = pos
        while i < src.count {
            if matches("{%", at: i) {
                var k = i + 2
                var sign: Unicode.Scalar? = nil
                if let s = at(k), s == "-" || s == "+" { sign = s; k += 1 }
                k = skipSpace(from: k)
                if matches("endraw", at: k) {
                    k = skipSpace(from: k + 6)
                    var end: Int? = nil
                    if matches("+%}", at: k) { end = k + 3 }
                    else if matches("-%}", at: k) { end = skipSpace(from: k + 3) }
                    else if matches("%}", at: k) { end = k + 2; if trimBlocks && at(k + 2) == "\n" { end = k + 3 } }
                    if let end {
                        let lineStarting = pos > 0 && src[pos - 1] == "\n"
                        let text = stripText(Array(src[pos..<i]), sign: sign, isVariable: false, lineStarting: lineStarting)
                        if !text.isEmpty { emit(.data, String(pyScalars: text), at: pos) }
                        pos = end
                        return
                    }
                }
            }
            i += 1
        }
        throw fail("Missing end of raw directive", at: pos)
    }

    private mutating func lexComment(start: Int) throws {
        var i = pos
        while i < src.count {
            if matches("+#}", at: i) { pos = i + 3; return }
            if matches("-#}", at: i) { pos = skipSpace(from: i + 3); return }
            if matches("#}", at: i) {
                pos = i + 2
                if trimBlocks && at(pos) == "\n" { pos += 1 }
                return
            }
            i += 1
        }
        throw fail("Missing end of comment tag", at: start)
    }

    // MARK: inside {{ }} and {% %}

    private static let operators: [String] = [
        "//", "**", "==", "!=", ">=", "<=",
        "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";",
    ]

    private mutating func lexTag(isBlock: Bool) throws {
        var balancing: [Unicode.Scalar] = []
        while true {
            pos = skipSpace(from: pos)
            if pos >= src.count { return }  // the parser reports the unexpected end
            if balancing.isEmpty {
                if isBlock {
                    if matches("+%}", at: pos) { emit(.blockEnd, "%}", at: pos); pos += 3; return }
                    if matches("-%}", at: pos) { emit(.blockEnd, "%}", at: pos); pos = skipSpace(from: pos + 3); return }
                    if matches("%}", at: pos) {
                        emit(.blockEnd, "%}", at: pos)
                        pos += 2
                        if trimBlocks && at(pos) == "\n" { pos += 1 }
                        return
                    }
                } else {
                    if matches("-}}", at: pos) { emit(.variableEnd, "}}", at: pos); pos = skipSpace(from: pos + 3); return }
                    if matches("}}", at: pos) { emit(.variableEnd, "}}", at: pos); pos += 2; return }
                }
            }
            let u = src[pos]
            if let end = matchFloat(at: pos) {
                let text = String(pyScalars: src[pos..<end]).replacingOccurrences(of: "_", with: "")
                var t = tokenAt(.float, text, pos)
                t.floatValue = Double(text) ?? 0
                tokens.append(t)
                pos = end
            } else if let (end, value) = try matchInteger(at: pos) {
                var t = tokenAt(.integer, String(pyScalars: src[pos..<end]), pos)
                t.intValue = value
                tokens.append(t)
                pos = end
            } else if isNameStart(u) {
                var k = pos + 1
                while k < src.count && isNameContinue(src[k]) { k += 1 }
                tokens.append(tokenAt(.name, String(pyScalars: src[pos..<k]), pos))
                pos = k
            } else if u == "'" || u == "\"" {
                try lexString(quote: u)
            } else if let op = Self.operators.first(where: { matches($0, at: pos) }) {
                let c = op.unicodeScalars.first!
                if op == "{" { balancing.append("}") }
                else if op == "(" { balancing.append(")") }
                else if op == "[" { balancing.append("]") }
                else if op == "}" || op == ")" || op == "]" {
                    guard let expected = balancing.popLast() else { throw fail("unexpected '\(op)'", at: pos) }
                    if expected != c { throw fail("unexpected '\(op)', expected '\(expected)'", at: pos) }
                }
                tokens.append(tokenAt(.op, op, pos))
                pos += op.unicodeScalars.count
            } else {
                throw fail("unexpected char \(pyStringRepr(String(Character(u)))) at \(pos)", at: pos)
            }
        }
    }

    private func tokenAt(_ kind: JinjaTokenKind, _ text: String, _ offset: Int) -> JinjaToken {
        let (l, c) = position(offset)
        return JinjaToken(kind: kind, text: text, line: l, column: c)
    }

    private func isNameStart(_ u: Unicode.Scalar) -> Bool {
        u == "_" || (u.value < 128 ? (u.properties.isAlphabetic) : u.properties.isXIDStart)
    }

    private func isNameContinue(_ u: Unicode.Scalar) -> Bool {
        u == "_" || (u.value < 128 ? (u.properties.isAlphabetic || ("0"..."9").contains(u)) : u.properties.isXIDContinue)
    }

    private func isDigit(_ u: Unicode.Scalar?) -> Bool { u.map { ("0"..."9").contains($0) } ?? false }

    /// `(\d+_)*\d+` from offset; returns the end offset.
    private func matchDigits(at i: Int) -> Int? {
        guard isDigit(at(i)) else { return nil }
        var k = i
        while true {
            while isDigit(at(k)) { k += 1 }
            if at(k) == "_" && isDigit(at(k + 1)) { k += 1; continue }
            return k
        }
    }

    /// jinja2's float_re: digits with a fraction and/or an exponent, not preceded by ".".
    private func matchFloat(at i: Int) -> Int? {
        if i > 0 && src[i - 1] == "." { return nil }
        guard let intEnd = matchDigits(at: i) else { return nil }
        var k = intEnd
        var hasFraction = false
        if at(k) == ".", let f = matchDigits(at: k + 1) { k = f; hasFraction = true }
        if let e = at(k), e == "e" || e == "E" {
            var m = k + 1
            if let s = at(m), s == "+" || s == "-" { m += 1 }
            if let ed = matchDigits(at: m) { return ed }
        }
        return hasFraction ? k : nil
    }

    /// jinja2's integer_re: 0b/0o/0x literals and decimals (with "_" separators).
    private func matchInteger(at i: Int) throws -> (Int, Int)? {
        guard isDigit(at(i)) else { return nil }
        if src[i] == "0", let p = at(i + 1) {
            let radix: Int?
            switch p {
            case "b", "B": radix = 2
            case "o", "O": radix = 8
            case "x", "X": radix = 16
            default: radix = nil
            }
            if let radix {
                var k = i + 2
                var digits = ""
                while let u = at(k) {
                    if u == "_", let n = at(k + 1), Int(String(n), radix: radix) != nil { k += 1; continue }
                    guard Int(String(u), radix: radix) != nil else { break }
                    digits.unicodeScalars.append(u)
                    k += 1
                }
                if !digits.isEmpty {
                    guard let v = Int(digits, radix: radix) else { throw fail("integer literal too large", at: i) }
                    return (k, v)
                }
            }
        }
        if src[i] == "0" {
            var k = i + 1
            while true {
                if at(k) == "0" { k += 1 } else if at(k) == "_" && at(k + 1) == "0" { k += 2 } else { break }
            }
            return (k, 0)
        }
        guard let end = matchDigits(at: i) else { return nil }
        let text = String(pyScalars: src[i..<end]).replacingOccurrences(of: "_", with: "")
        guard let v = Int(text) else { throw fail("integer literal too large", at: i) }
        return (end, v)
    }

    /// A quoted string with Python escapes (jinja2 decodes them with `unicode-escape`).
    private mutating func lexString(quote: Unicode.Scalar) throws {
        let start = pos
        var k = pos + 1
        var out = String.UnicodeScalarView()
        func hexValue(_ count: Int) throws -> UInt32 {
            var v: UInt32 = 0
            for n in 0..<count {
                guard let u = at(k + n), let d = UInt32(String(u), radix: 16) else {
                    throw fail("truncated escape sequence in string", at: k)
                }
                v = v * 16 + d
            }
            k += count
            return v
        }
        while true {
            guard let u = at(k) else { throw fail("unexpected char \(pyStringRepr(String(Character(quote)))) at \(start)", at: start) }
            if u == quote { k += 1; break }
            if u == "\\" {
                guard let e = at(k + 1) else { throw fail("unexpected char \(pyStringRepr(String(Character(quote)))) at \(start)", at: start) }
                k += 2
                switch e {
                case "\n": break
                case "\\": out.append("\\")
                case "'": out.append("'")
                case "\"": out.append("\"")
                case "a": out.append("\u{07}")
                case "b": out.append("\u{08}")
                case "f": out.append("\u{0C}")
                case "n": out.append("\n")
                case "r": out.append("\r")
                case "t": out.append("\t")
                case "v": out.append("\u{0B}")
                case "0"..."7":
                    var v = e.value - 0x30
                    var n = 1
                    while n < 3, let d = at(k), ("0"..."7").contains(d) { v = v * 8 + (d.value - 0x30); k += 1; n += 1 }
                    out.append(Unicode.Scalar(v)!)
                case "x", "u", "U":
                    let v = try hexValue(e == "x" ? 2 : (e == "u" ? 4 : 8))
                    guard let s = Unicode.Scalar(v) else { throw fail("invalid escape in string", at: k) }
                    out.append(s)
                default:
                    out.append("\\")
                    out.append(e)
                }
                continue
            }
            out.append(u)
            k += 1
        }
        tokens.append(tokenAt(.string, String(out), start))
        pos = k
    }
}
