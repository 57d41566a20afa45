import Foundation

// Values of the Jinja interpreter, modelled on the Python objects jinja2 hands to templates
// (str, int, float, bool, None, list, tuple, dict, jinja2's Undefined and Namespace).
// Printing, equality, ordering and truthiness follow Python so that output is byte-identical.

/// A dictionary key compared and hashed by Unicode scalars (Python semantics), not by Swift's
/// canonical equivalence.
struct JinjaKey: Hashable {
    let string: String
    init(_ string: String) { self.string = string }
    static func == (a: JinjaKey, b: JinjaKey) -> Bool {
        a.string.unicodeScalars.elementsEqual(b.string.unicodeScalars)
    }
    func hash(into hasher: inout Hasher) {
        for u in string.unicodeScalars { hasher.combine(u.value) }
    }
}

/// An insertion-ordered dictionary with string keys (like a Python dict built from JSON).
public struct JinjaDict {
    private(set) var keys: [String] = []
    private var storage: [JinjaKey: JinjaValue] = [:]

    public init() {}
    public init(_ pairs: [(String, JinjaValue)]) {
        for (k, v) in pairs { self[k] = v }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public subscript(key: String) -> JinjaValue? {
        get { storage[JinjaKey(key)] }
        set {
            let k = JinjaKey(key)
            if let newValue {
                if storage.updateValue(newValue, forKey: k) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: k) != nil {
                keys.removeAll { JinjaKey($0) == k }
            }
        }
    }

    public var pairs: [(String, JinjaValue)] { keys.map { ($0, storage[JinjaKey($0)]!) } }
    public var values: [JinjaValue] { keys.map { storage[JinjaKey($0)]! } }
}

/// jinja2's `Undefined`: printed as nothing, falsy, iterable as empty; most other uses fail with
/// `message` (e.g. "'x' is undefined", "'dict object' has no attribute 'content'").
public struct JinjaUndefined {
    public var message: String
    /// The kind of error raised when the value is used: UndefinedError, or SecurityError for
    /// sandbox-forbidden attributes.
    var isSecurity = false
}

/// jinja2's `namespace()` object: attribute assignment from inside loops is visible outside.
public final class JinjaNamespace {
    public var attributes: JinjaDict
    public init(_ attributes: JinjaDict = JinjaDict()) { self.attributes = attributes }
}

/// Arguments of a call: positional and keyword, in source order.
struct JinjaArguments {
    var positional: [JinjaValue] = []
    var keywords: [(String, JinjaValue)] = []

    func keyword(_ name: String) -> JinjaValue? {
        keywords.last(where: { $0.0 == name })?.1
    }

    /// Binds arguments to Python-style parameters `names` (positional-or-keyword). Unknown
    /// keywords or too many positionals are errors, like Python's TypeError.
    func bind(_ function: String, _ names: [String], required: Int = 0) throws -> [JinjaValue?] {
        var result = [JinjaValue?](repeating: nil, count: names.count)
        if positional.count > names.count {
            throw JinjaError.runtime(
                "\(function)() takes at most \(names.count) positional argument\(names.count == 1 ? "" : "s") (\(positional.count) given)")
        }
        for (i, v) in positional.enumerated() { result[i] = v }
        for (k, v) in keywords {
            guard let i = names.firstIndex(of: k) else {
                throw JinjaError.runtime("\(function)() got an unexpected keyword argument '\(k)'")
            }
            if result[i] != nil { throw JinjaError.runtime("\(function)() got multiple values for argument '\(k)'") }
            result[i] = v
        }
        for i in 0..<required where result[i] == nil {
            throw JinjaError.runtime("\(function)() missing required argument: '\(names[i])'")
        }
        return result
    }
}

/// A callable: a builtin global, a bound method, a macro, or a loop helper.
public final class JinjaFunction {
    let name: String
    let repr: String
    let body: (JinjaArguments) throws -> JinjaValue
    init(name: String, repr: String? = nil, body: @escaping (JinjaArguments) throws -> JinjaValue) {
        self.name = name
        self.repr = repr ?? "<built-in function \(name)>"
        self.body = body
    }
}

/// The `loop` variable of a for loop.
public final class JinjaLoop {
    let items: [JinjaValue]
    var index0 = 0
    let depth0: Int
    var lastChanged: [JinjaValue]?
    init(items: [JinjaValue], depth0: Int) {
        self.items = items
        self.depth0 = depth0
    }
    var length: Int { items.count }

    func attribute(_ name: String) -> JinjaValue? {
        switch name {
        case "index": return .int(index0 + 1)
        case "index0": return .int(index0)
        case "revindex": return .int(length - index0)
        case "revindex0": return .int(length - index0 - 1)
        case "first": return .bool(index0 == 0)
        case "last": return .bool(index0 == length - 1)
        case "length": return .int(length)
        case "depth": return .int(depth0 + 1)
        case "depth0": return .int(depth0)
        case "previtem":
            return index0 > 0 ? items[index0 - 1] : .undefined(JinjaUndefined(message: "there is no previous item"))
        case "nextitem":
            return index0 + 1 < length ? items[index0 + 1] : .undefined(JinjaUndefined(message: "there is no next item"))
        case "cycle":
            return .function(JinjaFunction(name: "cycle") { [self] args in
                guard !args.positional.isEmpty else { throw JinjaError.runtime("no items for cycling given") }
                return args.positional[self.index0 % args.positional.count]
            })
        case "changed":
            return .function(JinjaFunction(name: "changed") { [self] args in
                if let last = self.lastChanged, last.count == args.positional.count,
                   zip(last, args.positional).allSatisfy({ pyEqual($0, $1) }) {
                    return .bool(false)
                }
                self.lastChanged = args.positional
                return .bool(true)
            })
        default: return nil
        }
    }
}

public enum JinjaValue {
    case undefined(JinjaUndefined)
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case list([JinjaValue])
    case tuple([JinjaValue])
    case dict(JinjaDict)
    case namespace(JinjaNamespace)
    case function(JinjaFunction)
    case loop(JinjaLoop)

    static func undefinedName(_ name: String) -> JinjaValue {
        .undefined(JinjaUndefined(message: "\(pyRepr(.string(name))) is undefined"))
    }

    var isUndefined: Bool { if case .undefined = self { return true } else { return false } }
    var isNone: Bool { if case .none = self { return true } else { return false } }

    var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }

    /// Python's truth value.
    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .float(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let a), .tuple(let a): return !a.isEmpty
        case .dict(let d): return !d.isEmpty
        case .namespace, .function, .loop: return true
        }
    }

    /// Python's type name, as used in TypeError messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .function: return "builtin_function_or_method"
        case .loop: return "LoopContext"
        }
    }

    /// jinja2's `object_type_repr`, used in undefined-attribute messages.
    var objectTypeRepr: String {
        switch self {
        case .none: return "None"
        case .namespace: return "jinja2.utils.Namespace object"
        case .loop: return "jinja2.runtime.LoopContext object"
        default: return "\(typeName) object"
        }
    }

    /// The number value of bools, ints and floats (Python treats bool as int).
    var number: Double? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return Double(i)
        case .float(let d): return d
        default: return nil
        }
    }

    var intLike: Int? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return i
        default: return nil
        }
    }
}

// MARK: - Conversion from Swift values

extension JinjaValue {
    /// Converts Swift values (String, Int, Double, Bool, arrays, dictionaries, nil/NSNull-like
    /// optionals, JinjaValue) to a JinjaValue. Dictionaries from Swift have no order: their keys
    /// are sorted so rendering is deterministic; use `JinjaValue.dict` or `JinjaJSON.parse` to
    /// keep a specific order.
    public init(any value: Any?) {
        guard let value else { self = .none; return }
        // An Optional boxed inside Any.
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .optional {
            self = mirror.children.first.map { JinjaValue(any: $0.value) } ?? .none
            return
        }
        // Exact Swift types first: a bridged NSNumber may also cast to Bool or Int.
        let type = Swift.type(of: value)
        if type == Bool.self { self = .bool(value as! Bool); return }
        if type == Int.self { self = .int(value as! Int); return }
        if type == Double.self { self = .float(value as! Double); return }
        if let n = value as? NSNumber, type != String.self {
            switch String(cString: n.objCType) {
            case "c", "B": self = .bool(n.boolValue)
            case "f", "d": self = .float(n.doubleValue)
            default: self = .int(n.intValue)
            }
            return
        }
        switch value {
        case let v as JinjaValue: self = v
        case let v as String: self = .string(v)
        case let v as Substring: self = .string(String(v))
        case let v as Bool: self = .bool(v)
        case let v as Int: self = .int(v)
        case let v as Int32: self = .int(Int(v))
        case let v as Int64: self = .int(Int(v))
        case let v as UInt: self = .int(Int(v))
        case let v as Double: self = .float(v)
        case let v as Float: self = .float(Double(v))
        case let v as [Any?]: self = .list(v.map { JinjaValue(any: $0) })
        case let v as [Any]: self = .list(v.map { JinjaValue(any: $0) })
        case let v as [(String, Any)]:
            self = .dict(JinjaDict(v.map { ($0.0, JinjaValue(any: $0.1)) }))
        case let v as [String: Any?]:
            self = .dict(JinjaDict(v.keys.sorted().map { ($0, JinjaValue(any: v[$0] ?? nil)) }))
        case let v as [String: Any]:
            self = .dict(JinjaDict(v.keys.sorted().map { ($0, JinjaValue(any: v[$0])) }))
        case is NSNull: self = .none
        default: self = .string(String(describing: value))
        }
    }
}

// MARK: - Python str() and repr()

/// Python's `str(value)`; jinja2 prints undefined values as the empty string.
func pyStr(_ v: JinjaValue) -> String {
    switch v {
    case .undefined: return ""
    case .string(let s): return s
    default: return pyRepr(v)
    }
}

/// Python's `repr(value)`.
func pyRepr(_ v: JinjaValue) -> String {
    switch v {
    case .undefined: return "Undefined"
    case .none: return "None"
    case .bool(let b): return b ? "True" : "False"
    case .int(let i): return String(i)
    case .float(let d): return pyFloatRepr(d)
    case .string(let s): return pyStringRepr(s)
    case .list(let a): return "[" + a.map(pyRepr).joined(separator: ", ") + "]"
    case .tuple(let a):
        if a.count == 1 { return "(" + pyRepr(a[0]) + ",)" }
        return "(" + a.map(pyRepr).joined(separator: ", ") + ")"
    case .dict(let d):
        return "{" + d.pairs.map { pyStringRepr($0.0) + ": " + pyRepr($0.1) }.joined(separator: ", ") + "}"
    case .namespace(let ns): return "<Namespace " + pyRepr(.dict(ns.attributes)) + ">"
    case .function(let f): return f.repr
    case .loop(let l): return "<LoopContext \(l.index0 + 1)/\(l.length)>"
    }
}

/// Python's float repr: shortest round-trip digits, exponent form when the decimal exponent is
/// below -4 or above 16.
func pyFloatRepr(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d < 0 ? "-inf" : "inf" }
    if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
    let sign = d < 0 ? "-" : ""
    // Swift's description gives the shortest round-trip digits, in either notation.
    let text = "\(Swift.abs(d))"
    var mantissa = Substring(text)
    var exponent = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        mantissa = text[..<e]
        exponent = Int(text[text.index(after: e)...]) ?? 0
    }
    let parts = mantissa.split(separator: ".", omittingEmptySubsequences: false)
    let intPart = String(parts[0])
    let fracPart = parts.count > 1 ? String(parts[1]) : ""
    var digits = Array(intPart + fracPart)
    var decpt = intPart.count + exponent
    while digits.first == "0" { digits.removeFirst(); decpt -= 1 }
    while digits.last == "0" { digits.removeLast() }
    if digits.isEmpty { return "0.0" }
    let ds = String(digits)
    if decpt > -4 && decpt <= 16 {
        if decpt <= 0 { return sign + "0." + String(repeating: "0", count: -decpt) + ds }
        if decpt >= digits.count { return sign + ds + String(repeating: "0", count: decpt - digits.count) + ".0" }
        return sign + String(digits[..<decpt]) + "." + String(digits[decpt...])
    }
    let e = decpt - 1
    var out = sign + String(digits[0])
    if digits.count > 1 { out += "." + String(digits[1...]) }
    let ae = Swift.abs(e)
    out += (e < 0 ? "e-" : "e+") + (ae < 10 ? "0" : "") + String(ae)
    return out
}

/// Python's repr of a str: single quotes unless the text has a single quote and no double quote.
func pyStringRepr(_ s: String) -> String {
    let quote: Character = (s.contains("'") && !s.contains("\"")) ? "\"" : "'"
    var out = String(quote)
    for u in s.unicodeScalars {
        switch u {
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if Character(u) == quote { out += "\\" + String(quote); continue }
            if pyIsPrintable(u) {
                out.unicodeScalars.append(u)
            } else if u.value < 0x100 {
                out += "\\x" + jinjaHex(u.value, width: 2)
            } else if u.value < 0x10000 {
                out += "\\u" + jinjaHex(u.value, width: 4)
            } else {
                out += "\\U" + jinjaHex(u.value, width: 8)
            }
        }
    }
    out.append(quote)
    return out
}

func jinjaHex(_ v: UInt32, width: Int) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, width - s.count)) + s
}

/// Python's `str.isprintable()` for one character: not in categories Cc, Cf, Cs, Co, Cn, Zl, Zp,
/// and not a separator other than the ASCII space.
func pyIsPrintable(_ u: Unicode.Scalar) -> Bool {
    if u == " " { return true }
    switch u.properties.generalCategory {
    case .control, .format, .surrogate, .privateUse, .unassigned,
         .lineSeparator, .paragraphSeparator, .spaceSeparator:
        return false
    default:
        return true
    }
}

// MARK: - Python equality and ordering

/// Python's `==`.
func pyEqual(_ a: JinjaValue, _ b: JinjaValue) -> Bool {
    switch (a, b) {
    case (.undefined, .undefined): return true
    case (.undefined, _), (_, .undefined): return false
    case (.none, .none): return true
    case (.string(let x), .string(let y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
    case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
        return x.count == y.count && zip(x, y).allSatisfy { pyEqual($0, $1) }
    case (.dict(let x), .dict(let y)):
        guard x.count == y.count else { return false }
        for (k, v) in x.pairs {
            guard let w = y[k], pyEqual(v, w) else { return false }
        }
        return true
    case (.namespace(let x), .namespace(let y)): return x === y
    case (.function(let x), .function(let y)): return x === y
    case (.loop(let x), .loop(let y)): return x === y
    default:
        if let x = a.intLike, let y = b.intLike { return x == y }
        if let x = a.number, let y = b.number { return x == y }
        return false
    }
}

/// Python's ordering comparison `a op b` for op in <, <=, >, >= (sequences compare their first
/// differing items with the same operator, as Python does).
func pyOrder(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> Bool {
    func apply<T: Comparable>(_ x: T, _ y: T) -> Bool {
        switch op {
        case "<": return x < y
        case "<=": return x <= y
        case ">": return x > y
        default: return x >= y
        }
    }
    if case .undefined(let u) = a { throw JinjaError.undefined(u) }
    if case .undefined(let u) = b { throw JinjaError.undefined(u) }
    switch (a, b) {
    case (.string(let x), .string(let y)):
        let xs = x.unicodeScalars.map(\.value), ys = y.unicodeScalars.map(\.value)
        for (p, q) in zip(xs, ys) where p != q { return apply(p, q) }
        return apply(xs.count, ys.count)
    case (.list(let x), .list(let y)), (.tuple(let x), .tuple(let y)):
        for (p, q) in zip(x, y) where !pyEqual(p, q) { return try pyOrder(op, p, q) }
        return apply(x.count, y.count)
    default:
        if let x = a.intLike, let y = b.intLike { return apply(x, y) }
        if let x = a.number, let y = b.number { return apply(x, y) }
        throw JinjaError.runtime("'\(op)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
    }
}

/// Python's `a < b`.
func pyLess(_ a: JinjaValue, _ b: JinjaValue) throws -> Bool { try pyOrder("<", a, b) }
