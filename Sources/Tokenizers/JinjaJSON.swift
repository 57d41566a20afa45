// JSON reading that keeps object key order (as Python's json.loads does), and writing that
// matches Python's json.dumps byte for byte (transformers' `tojson` filter).

public enum JinjaJSON {
    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Parses JSON text into a JinjaValue: objects keep their key order, integers stay integers.
    public static func parse(_ text: String) throws -> JinjaValue {
        var p = Parser(Array(text.utf8))
        p.skipWhitespace()
        let v = try p.value()
        p.skipWhitespace()
        if p.i != p.b.count { throw p.error("extra data after the JSON value") }
        return v
    }

    public static func parse(_ bytes: [UInt8]) throws -> JinjaValue {
        try parse(String(decoding: bytes, as: UTF8.self))
    }

    struct Parser {
        let b: [UInt8]
        var i = 0
        init(_ b: [UInt8]) { self.b = b }

        func error(_ message: String) -> ParseError {
            var line = 1, col = 1
            for k in 0..<min(i, b.count) { if b[k] == 0x0A { line += 1; col = 1 } else { col += 1 } }
            return ParseError(description: "invalid JSON at line \(line), column \(col): \(message)")
        }

        mutating func skipWhitespace() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
        }

        mutating func literal(_ word: String, _ v: JinjaValue) throws -> JinjaValue {
            let w = Array(word.utf8)
            guard i + w.count <= b.count, Array(b[i..<(i + w.count)]) == w else { throw error("unexpected character") }
            i += w.count
            return v
        }

        mutating func value() throws -> JinjaValue {
            guard i < b.count else { throw error("unexpected end of input") }
            switch b[i] {
            case UInt8(ascii: "{"):
                i += 1
                var d = JinjaDict()
                skipWhitespace()
                if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .dict(d) }
                while true {
                    skipWhitespace()
                    guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw error("expected a string key") }
                    let k = try string()
                    skipWhitespace()
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { throw error("expected ':'") }
                    i += 1
                    skipWhitespace()
                    d[k] = try value()
                    skipWhitespace()
                    guard i < b.count else { throw error("unexpected end of input") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "}") { i += 1; return .dict(d) }
                    throw error("expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                i += 1
                var a: [JinjaValue] = []
                skipWhitespace()
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .list(a) }
                while true {
                    skipWhitespace()
                    a.append(try value())
                    skipWhitespace()
                    guard i < b.count else { throw error("unexpected end of input") }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "]") { i += 1; return .list(a) }
                    throw error("expected ',' or ']'")
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "n"): return try literal("null", .none)
            case UInt8(ascii: "N"): return try literal("NaN", .float(.nan))
            case UInt8(ascii: "I"): return try literal("Infinity", .float(.infinity))
            default: return try number()
            }
        }

        mutating func number() throws -> JinjaValue {
            let start = i
            if i < b.count, b[i] == UInt8(ascii: "-") {
                i += 1
                if i < b.count, b[i] == UInt8(ascii: "I") { _ = try literal("Infinity", .none); return .float(-.infinity) }
            }
            var isFloat = false
            while i < b.count {
                let c = b[i]
                if c >= 0x30 && c <= 0x39 { i += 1 }
                else if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") { isFloat = true; i += 1 }
                else { break }
            }
            let text = String(decoding: b[start..<i], as: UTF8.self)
            if text.isEmpty || text == "-" { throw error("unexpected character") }
            if !isFloat, let n = Int(text) { return .int(n) }
            guard let d = Double(text) else { throw error("invalid number '\(text)'") }
            return .float(d)
        }

        mutating func hex4() throws -> UInt32 {
            guard i + 4 <= b.count, let v = UInt32(String(decoding: b[i..<(i + 4)], as: UTF8.self), radix: 16) else {
                throw error("invalid \\u escape")
            }
            i += 4
            return v
        }

        mutating func string() throws -> String {
            i += 1  // opening quote
            var bytes: [UInt8] = []
            while true {
                guard i < b.count else { throw error("unterminated string") }
                let c = b[i]
                if c == UInt8(ascii: "\"") { i += 1; break }
                if c == UInt8(ascii: "\\") {
                    i += 1
                    guard i < b.count else { throw error("unterminated string") }
                    let e = b[i]
                    i += 1
                    switch e {
                    case UInt8(ascii: "\""): bytes.append(0x22)
                    case UInt8(ascii: "\\"): bytes.append(0x5C)
                    case UInt8(ascii: "/"): bytes.append(0x2F)
                    case UInt8(ascii: "b"): bytes.append(0x08)
                    case UInt8(ascii: "f"): bytes.append(0x0C)
                    case UInt8(ascii: "n"): bytes.append(0x0A)
                    case UInt8(ascii: "r"): bytes.append(0x0D)
                    case UInt8(ascii: "t"): bytes.append(0x09)
                    case UInt8(ascii: "u"):
                        var v = try hex4()
                        if v >= 0xD800 && v < 0xDC00, i + 6 <= b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") {
                            let save = i
                            i += 2
                            let lo = try hex4()
                            if lo >= 0xDC00 && lo < 0xE000 {
                                v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                i = save
                            }
                        }
                        let scalar = Unicode.Scalar(v) ?? "\u{FFFD}"
                        bytes.append(contentsOf: Array(String(Character(scalar)).utf8))
                    default: throw error("invalid escape")
                    }
                } else {
                    bytes.append(c)
                    i += 1
                }
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    // MARK: - Python json.dumps

    /// Python's `json.dumps(value, ensure_ascii=, indent=, separators=, sort_keys=)`.
    static func dumps(_ value: JinjaValue, ensureASCII: Bool = false, indent: String? = nil,
                      separators: (String, String)? = nil, sortKeys: Bool = false) throws -> String {
        let itemSeparator = separators?.0 ?? (indent == nil ? ", " : ",")
        let keySeparator = separators?.1 ?? ": "
        var out = ""
        try write(value, into: &out, level: 0, ensureASCII: ensureASCII, indent: indent,
                  itemSeparator: itemSeparator, keySeparator: keySeparator, sortKeys: sortKeys)
        return out
    }

    static func quote(_ s: String, ensureASCII: Bool) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 || (ensureASCII && u.value > 0x7E) {
                    if u.value >= 0x10000 {
                        let v = u.value - 0x10000
                        out += "\\u" + jinjaHex(0xD800 + (v >> 10), width: 4) + "\\u" + jinjaHex(0xDC00 + (v & 0x3FF), width: 4)
                    } else {
                        out += "\\u" + jinjaHex(u.value, width: 4)
                    }
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    static func floatText(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        return pyFloatRepr(d)
    }

    private static func write(_ v: JinjaValue, into out: inout String, level: Int, ensureASCII: Bool, indent: String?,
                              itemSeparator: String, keySeparator: String, sortKeys: Bool) throws {
        func newline(_ level: Int) {
            if let indent { out += "\n" + String(repeating: indent, count: level) }
        }
        switch v {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .float(let d): out += floatText(d)
        case .string(let s): out += quote(s, ensureASCII: ensureASCII)
        case .list(let a), .tuple(let a):
            if a.isEmpty { out += "[]"; return }
            out += "["
            for (n, x) in a.enumerated() {
                if n > 0 { out += itemSeparator }
                newline(level + 1)
                try write(x, into: &out, level: level + 1, ensureASCII: ensureASCII, indent: indent,
                          itemSeparator: itemSeparator, keySeparator: keySeparator, sortKeys: sortKeys)
            }
            newline(level)
            out += "]"
        case .dict(let d):
            if d.isEmpty { out += "{}"; return }
            var pairs = d.pairs
            if sortKeys {
                pairs.sort { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) { $0.value < $1.value } }
            }
            out += "{"
            for (n, (k, x)) in pairs.enumerated() {
                if n > 0 { out += itemSeparator }
                newline(level + 1)
                out += quote(k, ensureASCII: ensureASCII) + keySeparator
                try write(x, into: &out, level: level + 1, ensureASCII: ensureASCII, indent: indent,
                          itemSeparator: itemSeparator, keySeparator: keySeparator, sortKeys: sortKeys)
            }
            newline(level)
            out += "}"
        case .undefined:
            throw JinjaError.runtime("Object of type Undefined is not JSON serializable")
        case .namespace, .function, .loop:
            throw JinjaError.runtime("Object of type \(v.typeName) is not JSON serializable")
        }
    }
}
