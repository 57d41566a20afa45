import Foundation

// jinja2's builtin filters and tests, plus transformers' `tojson` override.

enum JinjaFilters {
    static let supported: Set<String> = [
        "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e", "escape",
        "first", "float", "forceescape", "format", "indent", "int", "items", "join", "last", "length", "list",
        "lower", "map", "max", "min", "pprint", "reject", "rejectattr", "replace", "reverse", "round", "safe",
        "select", "selectattr", "slice", "sort", "string", "sum", "title", "tojson", "trim", "truncate",
        "unique", "upper", "wordcount",
    ]
    /// jinja2 filters this interpreter does not implement: known names, so they fail only when used.
    static let unsupported: Set<String> = [
        "filesizeformat", "groupby", "random", "striptags", "urlencode", "urlize", "wordwrap", "xmlattr",
    ]
    static func exists(_ name: String) -> Bool { supported.contains(name) || unsupported.contains(name) }
}

enum JinjaPredicates {
    static let names: Set<String> = [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "==", "escaped", "even", "false",
        "filter", "float", "ge", ">=", "gt", "greaterthan", ">", "in", "integer", "iterable", "le", "<=",
        "lower", "lt", "lessthan", "<", "mapping", "ne", "!=", "none", "number", "odd", "sameas", "sequence",
        "string", "test", "true", "undefined", "upper",
    ]
    static func exists(_ name: String) -> Bool { names.contains(name) }
}

extension JinjaInterpreter {
    /// jinja2's `soft_str`: str() with undefined as "".
    func softStr(_ v: JinjaValue) -> String { pyStr(v) }


    /// jinja2's `make_attrgetter`: "a.b.0" looks up each part with getitem (digits as integers).
    func attributePath(_ item: JinjaValue, _ attribute: JinjaValue) throws -> JinjaValue {
        if let i = attribute.intLike { return try getItem(item, .int(i)) }
        guard case .string(let path) = attribute else { return try getItem(item, attribute) }
        var v = item
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            let p = String(part)
            if PyString.isDigitString(p), let i = Int(p) { v = try getItem(v, .int(i)) } else { v = try getItem(v, .string(p)) }
        }
        return v
    }

    private func sortKey(_ v: JinjaValue, caseSensitive: Bool) -> JinjaValue {
        if !caseSensitive, case .string(let s) = v { return .string(s.lowercased()) }
        return v
    }

    private func sorted(_ items: [JinjaValue], reverse: Bool, key: (JinjaValue) throws -> JinjaValue) throws -> [JinjaValue] {
        let keyed = try items.map { (try key($0), $0) }
        var error: Error? = nil
        // Python's sort is stable; so is this merge of indices.
        let order = Array(keyed.indices).sortedStable { a, b in
            do {
                return reverse ? try pyLess(keyed[b].0, keyed[a].0) : try pyLess(keyed[a].0, keyed[b].0)
            } catch let e {
                error = e
                return false
            }
        }
        if let error { throw error }
        return order.map { keyed[$0].1 }
    }

    func applyFilter(_ name: String, _ value: JinjaValue, _ args: JinjaArguments) throws -> JinjaValue {
        switch name {
        case "abs":
            switch value {
            case .int(let i): return .int(Swift.abs(i))
            case .bool(let b): return .int(b ? 1 : 0)
            case .float(let d): return .float(Swift.abs(d))
            default: throw JinjaError.runtime("bad operand type for abs(): '\(value.typeName)'")
            }
        case "attr":
            let a = try args.bind(name, ["name"], required: 1)
            guard case .string(let attr) = a[0]! else { return Self.noAttribute(value, pyStr(a[0]!)) }
            if case .undefined(let u) = value { throw JinjaError.undefined(u) }
            if let m = JinjaMethods.method(value, attr) { return m }
            switch value {
            case .namespace(let ns): if let v = ns.attributes[attr] { return v }
            case .loop(let l): if let v = l.attribute(attr) { return v }
            default: break
            }
            return Self.noAttribute(value, attr)
        case "batch":
            let a = try args.bind(name, ["linecount", "fill_with"], required: 1)
            let n = try JinjaMethods.int(a[0], 1)
            guard n > 0 else { throw JinjaError.runtime("batch size must be positive") }
            var result: [JinjaValue] = []
            var row: [JinjaValue] = []
            for item in try iterate(value) {
                if row.count == n { result.append(.list(row)); row = [] }
                row.append(item)
            }
            if !row.isEmpty {
                if let fill = a[1], !fill.isNone { while row.count < n { row.append(fill) } }
                result.append(.list(row))
            }
            return .list(result)
        case "capitalize":
            return .string(PyString.capitalize(softStr(value)))
        case "center":
            let a = try args.bind(name, ["width"])
            return .string(JinjaMethods.pad(softStr(value), width: try JinjaMethods.int(a[0], 80), fill: " ", mode: "center"))
        case "count", "length":
            switch value {
            case .string(let s): return .int(s.pyLength)
            case .list(let l), .tuple(let l): return .int(l.count)
            case .dict(let d): return .int(d.count)
            case .undefined: return .int(0)
            case .loop(let l): return .int(l.length)
            default: throw JinjaError.runtime("object of type '\(value.typeName)' has no len()")
            }
        case "d", "default":
            let a = try args.bind(name, ["default_value", "boolean"])
            let boolean = a[1]?.truthy ?? false
            if value.isUndefined || (boolean && !value.truthy) { return a[0] ?? .string("") }
            return value
        case "dictsort":
            let a = try args.bind(name, ["case_sensitive", "by", "reverse"])
            let caseSensitive = a[0]?.truthy ?? false
            let by = try JinjaMethods.string(a[1], "by") ?? "key"
            guard by == "key" || by == "value" else { throw JinjaError.runtime("You can only sort by either \"key\" or \"value\"") }
            if case .undefined(let u) = value { throw JinjaError.undefined(u) }
            guard case .dict(let d) = value else { throw JinjaError.runtime("'\(value.typeName)' object has no attribute 'items'") }
            let pairs: [JinjaValue] = d.pairs.map { .tuple([.string($0.0), $0.1]) }
            return .list(try sorted(pairs, reverse: a[2]?.truthy ?? false) { p in
                guard case .tuple(let t) = p else { return p }
                return sortKey(by == "key" ? t[0] : t[1], caseSensitive: caseSensitive)
            })
        case "e", "escape", "forceescape":
            if case .string(let s) = value, name == "e" || name == "escape" || name == "forceescape" {
                return .string(htmlEscape(s))
            }
            return .string(htmlEscape(softStr(value)))
        case "first":
            let items = try iterate(value)
            return items.first ?? .undefined(JinjaUndefined(message: "No first item, sequence was empty."))
        case "last":
            switch value {
            case .list, .tuple, .dict, .string, .undefined: break
            default: throw JinjaError.runtime("'\(value.typeName)' object is not reversible")
            }
            let items = try iterate(value)
            return items.last ?? .undefined(JinjaUndefined(message: "No last item, sequence was empty."))
        case "float":
            let a = try args.bind(name, ["default"])
            let defaultValue = a[0] ?? .float(0)
            if case .undefined(let u) = value { throw JinjaError.undefined(u) }
            switch value {
            case .float: return value
            case .int(let i): return .float(Double(i))
            case .bool(let b): return .float(b ? 1 : 0)
            case .string(let s): return pyParseFloat(s).map { .float($0) } ?? defaultValue
            default: return defaultValue
            }
        case "format":
            guard case .string(let fmt) = value else { return .string(try pyPercentFormat(softStr(value), .tuple(args.positional))) }
            if !args.keywords.isEmpty && !args.positional.isEmpty {
                throw JinjaError.runtime("can't handle positional and keyword arguments at the same time")
            }
            if !args.keywords.isEmpty { return .string(try pyPercentFormat(fmt, .dict(JinjaDict(args.keywords)))) }
            return .string(try pyPercentFormat(fmt, .tuple(args.positional)))
        case "indent":
            let a = try args.bind(name, ["width", "first", "blank"])
            var indention = "    "
            if case .string(let w)? = a[0] { indention = w } else if let w = a[0] { indention = String(repeating: " ", count: max(0, try JinjaMethods.int(w, 4))) }
            switch value {
            case .string: break
            case .undefined(let u): throw JinjaError.undefined(u)
            case .list: throw JinjaError.runtime("'list' object has no attribute 'splitlines'")
            case .tuple: throw JinjaError.runtime("can only concatenate tuple (not \"str\") to tuple")
            default: throw JinjaError.runtime("unsupported operand type(s) for +=: '\(value.typeName)' and 'str'")
            }
            let s = softStr(value) + "\n"
            var rv: String
            if a[2]?.truthy ?? false {
                rv = PyString.splitlines(s).joined(separator: "\n" + indention)
            } else {
                var lines = PyString.splitlines(s)
                rv = lines.isEmpty ? "" : lines.removeFirst()
                if !lines.isEmpty {
                    rv += "\n" + lines.map { $0.isEmpty ? $0 : indention + $0 }.joined(separator: "\n")
                }
            }
            if a[1]?.truthy ?? false { rv = indention + rv }
            return .string(rv)
        case "int":
            let a = try args.bind(name, ["default", "base"])
            let defaultValue = a[0] ?? .int(0)
            let base = try JinjaMethods.int(a[1], 10)
            if case .undefined(let u) = value { throw JinjaError.undefined(u) }
            switch value {
            case .int: return value
            case .bool(let b): return .int(b ? 1 : 0)
            case .float(let d):
                guard d.isFinite, Swift.abs(d) < 9.2e18 else { return defaultValue }
                return .int(Int(d.rounded(.towardZero)))
            case .string(let s):
                if let i = pyParseInt(s, base: base) { return .int(i) }
                if let d = pyParseFloat(s), d.isFinite, Swift.abs(d) < 9.2e18 { return .int(Int(d.rounded(.towardZero))) }
                return defaultValue
            default: return defaultValue
            }
        case "items":
            switch value {
            case .undefined: return .list([])
            case .dict(let d): return .list(d.pairs.map { .tuple([.string($0.0), $0.1]) })
            default: throw JinjaError.runtime("Can only get item pairs from a mapping.")
            }
        case "join":
            let a = try args.bind(name, ["d", "attribute"])
            let sep = a[0].map { softStr($0) } ?? ""
            var items = try iterate(value)
            if let attr = a[1], !attr.isNone { items = try items.map { try attributePath($0, attr) } }
            return .string(items.map { softStr($0) }.joined(separator: sep))
        case "list":
            return .list(try iterate(value))
        case "lower":
            return .string(PyString.lower(softStr(value)))
        case "upper":
            return .string(PyString.upper(softStr(value)))
        case "map":
            let items = value.truthy ? try iterate(value) : []
            if let attr = args.keyword("attribute") {
                let defaultValue = args.keyword("default")
                return .list(try items.map { item in
                    let v = try attributePath(item, attr)
                    if v.isUndefined, let defaultValue { return defaultValue }
                    return v
                })
            }
            guard case .string(let filter)? = args.positional.first else {
                throw JinjaError.runtime("map requires a filter argument")
            }
            guard JinjaFilters.exists(filter) else { throw JinjaError.runtime("No filter named '\(filter)'.") }
            let rest = JinjaArguments(positional: Array(args.positional.dropFirst()), keywords: args.keywords)
            return .list(try items.map { try applyFilter(filter, $0, rest) })
        case "max", "min":
            let a = try args.bind(name, ["case_sensitive", "attribute"])
            let caseSensitive = a[0]?.truthy ?? false
            let items = try iterate(value)
            guard !items.isEmpty else { return .undefined(JinjaUndefined(message: "No aggregated item, sequence was empty.")) }
            func key(_ v: JinjaValue) throws -> JinjaValue {
                var k = v
                if let attr = a[1], !attr.isNone { k = try attributePath(v, attr) }
                return sortKey(k, caseSensitive: caseSensitive)
            }
            var best = items[0]
            var bestKey = try key(best)
            for item in items.dropFirst() {
                let k = try key(item)
                if try pyOrder(name == "max" ? ">" : "<", k, bestKey) { best = item; bestKey = k }
            }
            return best
        case "pprint":
            return .string(pyRepr(value))
        case "reject", "select":
            let items = value.truthy ? try iterate(value) : []
            return .list(try items.filter { item in
                let ok: Bool
                if case .string(let test)? = args.positional.first {
                    guard JinjaPredicates.exists(test) else { throw JinjaError.runtime("No test named '\(test)'.") }
                    ok = try applyTest(test, item, JinjaArguments(positional: Array(args.positional.dropFirst()), keywords: args.keywords))
                } else {
                    ok = item.truthy
                }
                return name == "select" ? ok : !ok
            })
        case "rejectattr", "selectattr":
            let items = value.truthy ? try iterate(value) : []
            guard let attr = args.positional.first else { throw JinjaError.runtime("Missing parameter for attribute name") }
            return .list(try items.filter { item in
                let v = try attributePath(item, attr)
                let ok: Bool
                if args.positional.count > 1, case .string(let test) = args.positional[1] {
                    guard JinjaPredicates.exists(test) else { throw JinjaError.runtime("No test named '\(test)'.") }
                    ok = try applyTest(test, v, JinjaArguments(positional: Array(args.positional.dropFirst(2)), keywords: args.keywords))
                } else {
                    ok = v.truthy
                }
                return name == "selectattr" ? ok : !ok
            })
        case "replace":
            let a = try args.bind(name, ["old", "new", "count"], required: 2)
            return .string(PyString.replace(softStr(value), softStr(a[0]!), softStr(a[1]!), count: try JinjaMethods.int(a[2], -1)))
        case "reverse":
            if case .string(let s) = value { return .string(String(pyScalars: s.pyScalars.reversed())) }
            guard let items = try? iterate(value) else { throw JinjaError.runtime("argument must be iterable") }
            return .list(items.reversed())
        case "round":
            let a = try args.bind(name, ["precision", "method"])
            let precision = try JinjaMethods.int(a[0], 0)
            let method = try JinjaMethods.string(a[1], "method") ?? "common"
            guard let x = value.number else { throw JinjaError.runtime("type \(value.typeName) doesn't define __round__ method") }
            let scale = pyPow(10, Double(precision))
            switch method {
            case "common":
                if let i = value.intLike, precision >= 0 { return .int(i) }
                return .float((x * scale).rounded(.toNearestOrEven) / scale)
            case "ceil": return .float((x * scale).rounded(.up) / scale)
            case "floor": return .float((x * scale).rounded(.down) / scale)
            default: throw JinjaError.runtime("method must be common, ceil or floor")
            }
        case "safe":
            return value
        case "slice":
            let a = try args.bind(name, ["slices", "fill_with"], required: 1)
            let slices = try JinjaMethods.int(a[0], 1)
            let seq = try iterate(value)
            let length = seq.count
            let perSlice = length / max(1, slices)
            let withExtra = length % max(1, slices)
            var offset = 0
            var result: [JinjaValue] = []
            for n in 0..<slices {
                let start = offset + n * perSlice
                if n < withExtra { offset += 1 }
                let end = offset + (n + 1) * perSlice
                var tmp = Array(seq[min(start, length)..<min(end, length)])
                if let fill = a[1], !fill.isNone, n >= withExtra { tmp.append(fill) }
                result.append(.list(tmp))
            }
            return .list(result)
        case "sort":
            let a = try args.bind(name, ["reverse", "case_sensitive", "attribute"])
            let caseSensitive = a[1]?.truthy ?? false
            return .list(try sorted(try iterate(value), reverse: a[0]?.truthy ?? false) { v in
                var k = v
                if let attr = a[2], !attr.isNone { k = try attributePath(v, attr) }
                return sortKey(k, caseSensitive: caseSensitive)
            })
        case "string":
            return .string(softStr(value))
        case "sum":
            let a = try args.bind(name, ["attribute", "start"])
            var total = a[1] ?? .int(0)
            for item in try iterate(value) {
                var v = item
                if let attr = a[0], !attr.isNone { v = try attributePath(item, attr) }
                total = try binary("+", total, v)
            }
            return total
        case "title":
            return .string(PyString.jinjaTitle(softStr(value)))
        case "tojson":
            // transformers: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
            let a = try args.bind(name, ["ensure_ascii", "indent", "separators", "sort_keys"])
            var indent: String? = nil
            switch a[1] {
            case .string(let s)?: indent = s
            case .some(let v) where v.intLike != nil: indent = String(repeating: " ", count: max(0, v.intLike!))
            default: break
            }
            var separators: (String, String)? = nil
            if let sep = a[2], !sep.isNone {
                guard case let items = try iterate(sep), items.count == 2,
                      case .string(let s0) = items[0], case .string(let s1) = items[1] else {
                    throw JinjaError.runtime("separators must be a pair of strings")
                }
                separators = (s0, s1)
            }
            return .string(try JinjaJSON.dumps(value, ensureASCII: a[0]?.truthy ?? false, indent: indent,
                                               separators: separators, sortKeys: a[3]?.truthy ?? false))
        case "trim":
            let a = try args.bind(name, ["chars"])
            return .string(PyString.strip(softStr(value), try JinjaMethods.string(a[0], "chars")))
        case "truncate":
            let a = try args.bind(name, ["length", "killwords", "end", "leeway"])
            let s = softStr(value)
            let length = try JinjaMethods.int(a[0], 255)
            let end = try JinjaMethods.string(a[2], "end") ?? "..."
            let leeway = try JinjaMethods.int(a[3], 5)
            let sc = s.pyScalars
            if sc.count <= length + leeway { return .string(s) }
            let cut = String(pyScalars: sc.prefix(max(0, length - end.pyLength)))
            if a[1]?.truthy ?? false { return .string(cut + end) }
            let parts = try PyString.rsplit(cut, " ", maxsplit: 1)
            return .string(parts[0] + end)
        case "unique":
            let a = try args.bind(name, ["case_sensitive", "attribute"])
            let caseSensitive = a[0]?.truthy ?? false
            var seen: [JinjaValue] = []
            var result: [JinjaValue] = []
            for item in try iterate(value) {
                var k = item
                if let attr = a[1], !attr.isNone { k = try attributePath(item, attr) }
                k = sortKey(k, caseSensitive: caseSensitive)
                switch k {
                case .list, .dict: throw JinjaError.runtime("unhashable type: '\(k.typeName)'")
                default: break
                }
                if !seen.contains(where: { pyEqual($0, k) }) { seen.append(k); result.append(item) }
            }
            return .list(result)
        case "wordcount":
            var count = 0
            var inWord = false
            for u in softStr(value).unicodeScalars {
                let isWord = u == "_" || u.properties.isAlphabetic || u.properties.numericType != nil
                if isWord && !inWord { count += 1 }
                inWord = isWord
            }
            return .int(count)
        default:
            if JinjaFilters.unsupported.contains(name) {
                throw JinjaError.runtime("the '\(name)' filter is not supported by this interpreter")
            }
            throw JinjaError.runtime("No filter named '\(name)' found.")
        }
    }

    func applyTest(_ name: String, _ value: JinjaValue, _ args: JinjaArguments) throws -> Bool {
        func arg() throws -> JinjaValue {
            guard let a = args.positional.first ?? args.keywords.first?.1 else {
                throw JinjaError.runtime("test '\(name)' needs an argument")
            }
            return a
        }
        switch name {
        case "boolean": if case .bool = value { return true } else { return false }
        case "callable":
            switch value {
            case .function, .loop, .undefined: return true
            default: return false
            }
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "divisibleby":
            let r = try binary("%", value, try arg())
            return pyEqual(r, .int(0))
        case "eq", "equalto", "==": return pyEqual(value, try arg())
        case "ne", "!=": return !pyEqual(value, try arg())
        case "lt", "lessthan", "<": return try compare("<", value, try arg())
        case "le", "<=": return try compare("<=", value, try arg())
        case "gt", "greaterthan", ">": return try compare(">", value, try arg())
        case "ge", ">=": return try compare(">=", value, try arg())
        case "in": return try contains(try arg(), value)
        case "escaped": return false
        case "even": return pyEqual(try binary("%", value, .int(2)), .int(0))
        case "odd": return pyEqual(try binary("%", value, .int(2)), .int(1))
        case "false": if case .bool(false) = value { return true } else { return false }
        case "true": if case .bool(true) = value { return true } else { return false }
        case "filter":
            guard case .string(let n) = value else { return false }
            return JinjaFilters.exists(n)
        case "test":
            guard case .string(let n) = value else { return false }
            return JinjaPredicates.exists(n)
        case "float": if case .float = value { return true } else { return false }
        case "integer": if case .int = value { return true } else { return false }
        case "number":
            switch value {
            case .int, .float, .bool: return true
            default: return false
            }
        case "iterable":
            switch value {
            case .list, .tuple, .dict, .string, .undefined, .loop: return true
            default: return false
            }
        case "sequence":
            switch value {
            case .list, .tuple, .dict, .string, .undefined: return true
            default: return false
            }
        case "mapping": if case .dict = value { return true } else { return false }
        case "none": return value.isNone
        case "string": if case .string = value { return true } else { return false }
        case "lower":
            let s = softStr(value)
            let cased = s.unicodeScalars.filter(PyString.isCased)
            return !cased.isEmpty && cased.allSatisfy { $0.properties.generalCategory == .lowercaseLetter }
        case "upper":
            let s = softStr(value)
            let cased = s.unicodeScalars.filter(PyString.isCased)
            return !cased.isEmpty && cased.allSatisfy { $0.properties.generalCategory == .uppercaseLetter }
        case "sameas":
            let other = try arg()
            switch (value, other) {
            case (.none, .none): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.namespace(let a), .namespace(let b)): return a === b
            case (.function(let a), .function(let b)): return a === b
            case (.int(let a), .int(let b)): return a == b && a >= -5 && a <= 256
            default: return false
            }
        default:
            throw JinjaError.runtime("No test named '\(name)' found.")
        }
    }

    private func htmlEscape(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }
}

/// Python's `int(text, base)`: surrounding whitespace, a sign, "_" between digits, and a
/// 0x/0o/0b prefix matching the base (or any prefix with base 0).
func pyParseInt(_ text: String, base: Int) -> Int? {
    var s = PyString.strip(text, nil)
    var negative = false
    if s.hasPrefix("-") || s.hasPrefix("+") { negative = s.hasPrefix("-"); s.removeFirst() }
    var b = base
    let lower = s.lowercased()
    for (prefix, pb) in [("0x", 16), ("0o", 8), ("0b", 2)] where lower.hasPrefix(prefix) && (b == pb || b == 0) {
        s = String(s.dropFirst(2))
        if s.hasPrefix("_") { s.removeFirst() }
        b = pb
    }
    if b == 0 { b = 10 }
    guard !s.isEmpty, !s.hasPrefix("_"), !s.hasSuffix("_"), !s.contains("__") else { return nil }
    s = s.replacingOccurrences(of: "_", with: "")
    guard b >= 2 && b <= 36, let v = Int(s, radix: b) else { return nil }
    return negative ? -v : v
}

/// Python's `float(text)`.
func pyParseFloat(_ text: String) -> Double? {
    let s = PyString.strip(text, nil).lowercased()
    switch s {
    case "nan", "+nan", "-nan": return .nan
    case "inf", "+inf", "infinity", "+infinity": return .infinity
    case "-inf", "-infinity": return -.infinity
    default: break
    }
    guard !s.isEmpty, s.allSatisfy({ "0123456789+-.e_".contains($0) }) else { return nil }
    return Double(s.replacingOccurrences(of: "_", with: ""))
}

extension Array {
    /// A stable merge sort (Swift's `sort` is not guaranteed stable; Python's is).
    func sortedStable(by less: (Element, Element) -> Bool) -> [Element] {
        if count <= 1 { return self }
        let mid = count / 2
        let left = Array(self[..<mid]).sortedStable(by: less)
        let right = Array(self[mid...]).sortedStable(by: less)
        var result: [Element] = []
        result.reserveCapacity(count)
        var i = 0, j = 0
        while i < left.count && j < right.count {
            if less(right[j], left[i]) { result.append(right[j]); j += 1 } else { result.append(left[i]); i += 1 }
        }
        result += left[i...]
        result += right[j...]
        return result
    }
}
