// A small, strict JSON parser (RFC 8259) that keeps object key order and reports line/column on
// syntax errors, plus `JSONNode`, a cursor that remembers the field path it was reached by so that
// schema errors can name it (e.g. `model.merges[12]`).

/// A parsed JSON value. Objects keep their keys in document order.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return Array(x.utf8) == Array(y.utf8)
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { Array($0.0.utf8) == Array($1.0.utf8) && $0.1 == $1.1 }
        default: return false
        }
    }

    /// Looks a key up in an object (the last occurrence wins, as with serde_json maps).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let pairs) = self else { return nil }
        let k = Array(key.utf8)
        for (name, value) in pairs.reversed() where name.utf8.count == k.count && Array(name.utf8) == k {
            return value
        }
        return nil
    }

    var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Parses UTF-8 JSON text.
    public static func parse(_ bytes: [UInt8]) throws(TokenizerError) -> JSONValue {
        var parser = JSONParser(bytes: bytes)
        return try parser.parseDocument()
    }

    public static func parse(_ text: String) throws(TokenizerError) -> JSONValue {
        try parse(Array(text.utf8))
    }
}

struct JSONParser {
    let bytes: [UInt8]
    var pos = 0
    var depth = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func parseDocument() throws(TokenizerError) -> JSONValue {
        // A UTF-8 byte order mark is tolerated.
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { pos = 3 }
        skipWhitespace()
        let value = try parseValue()
        skipWhitespace()
        if pos != bytes.count { throw error("unexpected content after the JSON value") }
        return value
    }

    func error(_ message: String) -> TokenizerError {
        var line = 1, column = 1
        var i = 0
        let end = min(pos, bytes.count)
        while i < end {
            if bytes[i] == 0x0A { line += 1; column = 1 } else if bytes[i] & 0xC0 != 0x80 { column += 1 }
            i += 1
        }
        return .invalidJSON("\(message) at line \(line), column \(column)")
    }

    mutating func skipWhitespace() {
        while pos < bytes.count {
            let b = bytes[pos]
            if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { pos += 1 } else { break }
        }
    }

    mutating func parseValue() throws(TokenizerError) -> JSONValue {
        guard pos < bytes.count else { throw error("unexpected end of input") }
        switch bytes[pos] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectWord("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectWord("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectWord("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        default: throw error("unexpected character '\(String(decoding: [bytes[pos]], as: UTF8.self))'")
        }
    }

    mutating func expectWord(_ word: StaticString) throws(TokenizerError) {
        let n = word.utf8CodeUnitCount
        let w = UnsafeBufferPointer(start: word.utf8Start, count: n)
        guard pos + n <= bytes.count else { throw error("unexpected end of input") }
        for i in 0..<n where bytes[pos + i] != w[i] { throw error("invalid literal") }
        pos += n
    }

    mutating func parseNumber() throws(TokenizerError) -> JSONValue {
        let start = pos
        if bytes[pos] == UInt8(ascii: "-") { pos += 1 }
        func digits(_ p: inout Int, _ b: [UInt8]) -> Int {
            let s = p
            while p < b.count && b[p] >= 0x30 && b[p] <= 0x39 { p += 1 }
            return p - s
        }
        guard pos < bytes.count else { throw error("invalid number") }
        if bytes[pos] == UInt8(ascii: "0") {
            pos += 1
        } else if digits(&pos, bytes) == 0 {
            throw error("invalid number")
        }
        if pos < bytes.count && bytes[pos] == UInt8(ascii: ".") {
            pos += 1
            if digits(&pos, bytes) == 0 { throw error("invalid number") }
        }
        if pos < bytes.count && (bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E")) {
            pos += 1
            if pos < bytes.count && (bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-")) { pos += 1 }
            if digits(&pos, bytes) == 0 { throw error("invalid number") }
        }
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        guard let value = Double(text) else { throw error("invalid number") }
        return .number(value)
    }

    mutating func parseHex4() throws(TokenizerError) -> UInt32 {
        guard pos + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let b = bytes[pos]
            let d: UInt32
            switch b {
            case 0x30...0x39: d = UInt32(b - 0x30)
            case 0x41...0x46: d = UInt32(b - 0x41 + 10)
            case 0x61...0x66: d = UInt32(b - 0x61 + 10)
            default: throw error("invalid \\u escape")
            }
            v = v << 4 | d
            pos += 1
        }
        return v
    }

    mutating func parseString() throws(TokenizerError) -> String {
        pos += 1  // opening quote
        let start = pos
        // Fast path: no escapes.
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                let s = try validatedString(bytes[start..<pos])
                pos += 1
                return s
            }
            if b == UInt8(ascii: "\\") || b < 0x20 { break }
            pos += 1
        }
        var out = [UInt8](bytes[start..<pos])
        while true {
            guard pos < bytes.count else { throw error("unterminated string") }
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") { pos += 1; break }
            if b < 0x20 { throw error("control character in string") }
            if b != UInt8(ascii: "\\") { out.append(b); pos += 1; continue }
            pos += 1
            guard pos < bytes.count else { throw error("unterminated string") }
            let e = bytes[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var v = try parseHex4()
                if v >= 0xD800 && v < 0xDC00 {
                    guard pos + 6 <= bytes.count, bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u") else {
                        throw error("lone surrogate in \\u escape")
                    }
                    pos += 2
                    let low = try parseHex4()
                    guard low >= 0xDC00 && low < 0xE000 else { throw error("lone surrogate in \\u escape") }
                    v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                } else if v >= 0xDC00 && v < 0xE000 {
                    throw error("lone surrogate in \\u escape")
                }
                appendUTF8(v, to: &out)
            default:
                throw error("invalid escape")
            }
        }
        return try validatedString(out[...])
    }

    func validatedString(_ slice: ArraySlice<UInt8>) throws(TokenizerError) -> String {
        if let s = String(validating: slice, as: UTF8.self) { return s }
        throw error("invalid UTF-8 in string")
    }

    mutating func parseArray() throws(TokenizerError) -> JSONValue {
        pos += 1
        depth += 1
        guard depth < 512 else { throw error("nesting too deep") }
        defer { depth -= 1 }
        var items: [JSONValue] = []
        skipWhitespace()
        if pos < bytes.count && bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try parseValue())
            skipWhitespace()
            guard pos < bytes.count else { throw error("unterminated array") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
            throw error("expected ',' or ']'")
        }
    }

    mutating func parseObject() throws(TokenizerError) -> JSONValue {
        pos += 1
        depth += 1
        guard depth < 512 else { throw error("nesting too deep") }
        defer { depth -= 1 }
        var pairs: [(String, JSONValue)] = []
        skipWhitespace()
        if pos < bytes.count && bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(pairs) }
        while true {
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let key = try parseString()
            skipWhitespace()
            guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw error("expected ':'") }
            pos += 1
            skipWhitespace()
            pairs.append((key, try parseValue()))
            skipWhitespace()
            guard pos < bytes.count else { throw error("unterminated object") }
            if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
            if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .object(pairs) }
            throw error("expected ',' or '}'")
        }
    }
}

@inline(__always)
func appendUTF8(_ v: UInt32, to out: inout [UInt8]) {
    if v < 0x80 {
        out.append(UInt8(v))
    } else if v < 0x800 {
        out.append(UInt8(0xC0 | (v >> 6)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    } else if v < 0x10000 {
        out.append(UInt8(0xE0 | (v >> 12)))
        out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    } else {
        out.append(UInt8(0xF0 | (v >> 18)))
        out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
        out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    }
}

/// A JSON value together with the path it was reached by, for error messages.
struct JSONNode {
    let value: JSONValue
    let path: String

    init(_ value: JSONValue, path: String) {
        self.value = value
        self.path = path
    }

    func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// A field that must be present (it may be null).
    func field(_ key: String) throws(TokenizerError) -> JSONNode {
        guard case .object = value else { throw .invalidField(path: path, "expected an object, found \(value.kindName)") }
        guard let v = value[key] else { throw .missingField(path: childPath(key)) }
        return JSONNode(v, path: childPath(key))
    }

    /// A field that may be missing or null.
    func optionalField(_ key: String) throws(TokenizerError) -> JSONNode? {
        guard case .object = value else { throw .invalidField(path: path, "expected an object, found \(value.kindName)") }
        guard let v = value[key], v != .null else { return nil }
        return JSONNode(v, path: childPath(key))
    }

    var isNull: Bool { value == .null }

    func string() throws(TokenizerError) -> String {
        guard case .string(let s) = value else { throw .invalidField(path: path, "expected a string, found \(value.kindName)") }
        return s
    }

    func bool() throws(TokenizerError) -> Bool {
        guard case .bool(let b) = value else { throw .invalidField(path: path, "expected a boolean, found \(value.kindName)") }
        return b
    }

    func double() throws(TokenizerError) -> Double {
        guard case .number(let d) = value else { throw .invalidField(path: path, "expected a number, found \(value.kindName)") }
        return d
    }

    /// A non-negative integer that fits the given bound.
    func int(max: Int = Int(Int32.max)) throws(TokenizerError) -> Int {
        guard case .number(let d) = value else { throw .invalidField(path: path, "expected an integer, found \(value.kindName)") }
        guard d >= 0, d <= Double(max), d.rounded() == d else {
            throw .invalidField(path: path, "expected an integer in 0...\(max), found \(d)")
        }
        return Int(d)
    }

    func array() throws(TokenizerError) -> [JSONNode] {
        guard case .array(let items) = value else { throw .invalidField(path: path, "expected an array, found \(value.kindName)") }
        var out: [JSONNode] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() { out.append(JSONNode(item, path: "\(path)[\(i)]")) }
        return out
    }

    func objectPairs() throws(TokenizerError) -> [(String, JSONValue)] {
        guard case .object(let pairs) = value else { throw .invalidField(path: path, "expected an object, found \(value.kindName)") }
        return pairs
    }

    // Typed optional accessors with defaults.
    func bool(_ key: String, default d: Bool) throws(TokenizerError) -> Bool {
        try optionalField(key)?.bool() ?? d
    }

    func string(_ key: String) throws(TokenizerError) -> String { try field(key).string() }

    func optionalString(_ key: String) throws(TokenizerError) -> String? { try optionalField(key)?.string() }

    /// The component's "type" tag.
    func typeTag() throws(TokenizerError) -> String { try field("type").string() }
}
