import Foundation

// Methods of str, dict and list that templates call (`content.strip()`, `message.get('x')`),
// bound to their receiver. Mutating methods are refused, as in jinja2's ImmutableSandboxedEnvironment.

enum JinjaMethods {
    static let unsafeDict: Set<String> = ["clear", "pop", "popitem", "setdefault", "update"]
    static let unsafeList: Set<String> = ["append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"]

    private static func bound(_ receiver: JinjaValue, _ name: String,
                              _ body: @escaping (JinjaArguments) throws -> JinjaValue) -> JinjaValue {
        .function(JinjaFunction(name: name, repr: "<built-in method \(name) of \(receiver.typeName) object>", body: body))
    }

    private static func unsafe(_ receiver: JinjaValue, _ name: String) -> JinjaValue {
        .undefined(JinjaUndefined(
            message: "access to attribute \(pyStringRepr(name)) of \(pyStringRepr(receiver.typeName)) object is unsafe.",
            isSecurity: true))
    }

    static func method(_ obj: JinjaValue, _ name: String) -> JinjaValue? {
        switch obj {
        case .string(let s): return stringMethod(obj, s, name)
        case .dict(let d):
            if unsafeDict.contains(name) { return unsafe(obj, name) }
            return dictMethod(obj, d, name)
        case .list(let a), .tuple(let a):
            if case .list = obj, unsafeList.contains(name) { return unsafe(obj, name) }
            return listMethod(obj, a, name)
        default:
            return nil
        }
    }

    static func string(_ v: JinjaValue?, _ what: String) throws -> String? {
        guard let v, !v.isNone else { return nil }
        guard case .string(let s) = v else {
            throw JinjaError.runtime("\(what) must be str or None, not \(v.typeName)")
        }
        return s
    }

    static func int(_ v: JinjaValue?, _ defaultValue: Int) throws -> Int {
        guard let v, !v.isNone else { return defaultValue }
        guard let i = v.intLike else {
            throw JinjaError.runtime("'\(v.typeName)' object cannot be interpreted as an integer")
        }
        return i
    }

    private static func prefixes(_ v: JinjaValue?, _ function: String) throws -> [String] {
        switch v {
        case .string(let p)?: return [p]
        case .tuple(let items)?, .list(let items)?:
            return try items.map {
                guard case .string(let p) = $0 else {
                    throw JinjaError.runtime("tuple for \(function) must only contain str, not \($0.typeName)")
                }
                return p
            }
        default:
            throw JinjaError.runtime("\(function) first arg must be str or a tuple of str, not \(v?.typeName ?? "nothing")")
        }
    }

    /// The [start:end] window of startswith/endswith/find/count.
    private static func window(_ s: String, _ start: JinjaValue?, _ end: JinjaValue?) throws -> String {
        let sc = s.pyScalars
        if (start == nil || start!.isNone) && (end == nil || end!.isNone) { return s }
        let idx = try pySliceIndices(count: sc.count, start: start.flatMap { $0.isNone ? nil : $0.intLike },
                                     stop: end.flatMap { $0.isNone ? nil : $0.intLike }, step: 1)
        return String(pyScalars: idx.map { sc[$0] })
    }

    private static func stringMethod(_ obj: JinjaValue, _ s: String, _ name: String) -> JinjaValue? {
        func m(_ body: @escaping (JinjaArguments) throws -> JinjaValue) -> JinjaValue { bound(obj, name, body) }
        switch name {
        case "strip", "lstrip", "rstrip":
            return m { args in
                let chars = try string(try args.bind(name, ["chars"])[0], "strip arg")
                return .string(PyString.strip(s, chars, left: name != "rstrip", right: name != "lstrip"))
            }
        case "split", "rsplit":
            return m { args in
                let a = try args.bind(name, ["sep", "maxsplit"])
                let sep = try string(a[0], "sep")
                let maxsplit = try int(a[1], -1)
                let parts = name == "split" ? try PyString.split(s, sep, maxsplit: maxsplit)
                                            : try PyString.rsplit(s, sep, maxsplit: maxsplit)
                return .list(parts.map { .string($0) })
            }
        case "splitlines":
            return m { args in
                let keep = try args.bind(name, ["keepends"])[0]?.truthy ?? false
                return .list(PyString.splitlines(s, keepends: keep).map { .string($0) })
            }
        case "startswith", "endswith":
            return m { args in
                let a = try args.bind(name, ["prefix", "start", "end"], required: 1)
                let w = try window(s, a[1], a[2])
                let ps = try prefixes(a[0], name)
                return .bool(ps.contains { name == "startswith" ? PyString.hasPrefix(w, $0) : PyString.hasSuffix(w, $0) })
            }
        case "upper": return m { _ in .string(PyString.upper(s)) }
        case "lower", "casefold": return m { _ in .string(PyString.lower(s)) }
        case "title": return m { _ in .string(PyString.title(s)) }
        case "capitalize": return m { _ in .string(PyString.capitalize(s)) }
        case "swapcase":
            return m { _ in
                .string(s.unicodeScalars.map { u -> String in
                    if u.properties.isLowercase { return u.properties.uppercaseMapping }
                    if u.properties.isUppercase { return u.properties.lowercaseMapping }
                    return String(Character(u))
                }.joined())
            }
        case "replace":
            return m { args in
                let a = try args.bind(name, ["old", "new", "count"], required: 2)
                guard case .string(let old) = a[0]!, case .string(let new) = a[1]! else {
                    throw JinjaError.runtime("replace() arguments must be str")
                }
                return .string(PyString.replace(s, old, new, count: try int(a[2], -1)))
            }
        case "find", "rfind", "index", "rindex", "count":
            return m { args in
                let a = try args.bind(name, ["sub", "start", "end"], required: 1)
                guard case .string(let sub) = a[0]! else {
                    throw JinjaError.runtime("must be str, not \(a[0]!.typeName)")
                }
                if name == "count" { return .int(PyString.count(try window(s, a[1], a[2]), sub)) }
                let sc = s.pyScalars
                let start = try int(a[1], 0)
                let lo = start < 0 ? max(0, start + sc.count) : min(start, sc.count)
                var hi = sc.count
                if let e = a[2], !e.isNone { let ev = try int(e, sc.count); hi = ev < 0 ? max(0, ev + sc.count) : min(ev, sc.count) }
                let hay = lo <= hi ? Array(sc[lo..<hi]) : []
                let found = name.hasPrefix("r") ? PyString.rfind(hay, sub.pyScalars) : PyString.find(hay, sub.pyScalars)
                if let f = found { return .int(f + lo) }
                if name.hasSuffix("index") { throw JinjaError.runtime("substring not found") }
                return .int(-1)
            }
        case "join":
            return m { args in
                let a = try args.bind(name, ["iterable"], required: 1)
                let items: [JinjaValue]
                switch a[0]! {
                case .list(let l), .tuple(let l): items = l
                case .string(let t): items = t.unicodeScalars.map { .string(String(Character($0))) }
                case .dict(let d): items = d.keys.map { .string($0) }
                default: throw JinjaError.runtime("can only join an iterable")
                }
                return .string(try items.enumerated().map { n, v in
                    guard case .string(let t) = v else {
                        throw JinjaError.runtime("sequence item \(n): expected str instance, \(v.typeName) found")
                    }
                    return t
                }.joined(separator: s))
            }
        case "isdigit", "isnumeric", "isdecimal":
            return m { _ in .bool(PyString.isDigitString(s)) }
        case "isalpha":
            return m { _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic }) }
        case "isalnum":
            return m { _ in
                .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
            }
        case "isspace":
            return m { _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(pyIsSpace)) }
        case "islower":
            return m { _ in
                let cased = s.unicodeScalars.filter(PyString.isCased)
                return .bool(!cased.isEmpty && cased.allSatisfy { $0.properties.generalCategory == .lowercaseLetter })
            }
        case "isupper":
            return m { _ in
                let cased = s.unicodeScalars.filter(PyString.isCased)
                return .bool(!cased.isEmpty && cased.allSatisfy { $0.properties.generalCategory == .uppercaseLetter })
            }
        case "removeprefix":
            return m { args in
                guard case .string(let p)? = try args.bind(name, ["prefix"], required: 1)[0] else { throw JinjaError.runtime("removeprefix() argument must be str") }
                return .string(PyString.hasPrefix(s, p) ? String(pyScalars: s.pyScalars.dropFirst(p.pyLength)) : s)
            }
        case "removesuffix":
            return m { args in
                guard case .string(let p)? = try args.bind(name, ["suffix"], required: 1)[0] else { throw JinjaError.runtime("removesuffix() argument must be str") }
                return .string(!p.isEmpty && PyString.hasSuffix(s, p) ? String(pyScalars: s.pyScalars.dropLast(p.pyLength)) : s)
            }
        case "zfill":
            return m { args in
                let width = try int(try args.bind(name, ["width"], required: 1)[0], 0)
                let sc = s.pyScalars
                if sc.count >= width { return .string(s) }
                let pad = String(repeating: "0", count: width - sc.count)
                if let f = sc.first, f == "+" || f == "-" { return .string(String(Character(f)) + pad + String(pyScalars: sc.dropFirst())) }
                return .string(pad + s)
            }
        case "center", "ljust", "rjust":
            return m { args in
                let a = try args.bind(name, ["width", "fillchar"], required: 1)
                let width = try int(a[0], 0)
                let fill = try string(a[1], "fillchar") ?? " "
                return .string(pad(s, width: width, fill: fill, mode: name))
            }
        case "format":
            return m { args in .string(try pyBraceFormat(s, args)) }
        default:
            return nil
        }
    }

    static func pad(_ s: String, width: Int, fill: String, mode: String) -> String {
        let n = s.pyLength
        if n >= width { return s }
        let total = width - n
        switch mode {
        case "ljust": return s + String(repeating: fill, count: total)
        case "rjust": return String(repeating: fill, count: total) + s
        default:
            // Python's centering puts the extra character on the left when n and width are odd/even mixed.
            let left = total / 2 + (total & width & 1)
            return String(repeating: fill, count: left) + s + String(repeating: fill, count: total - left)
        }
    }

    private static func dictMethod(_ obj: JinjaValue, _ d: JinjaDict, _ name: String) -> JinjaValue? {
        func m(_ body: @escaping (JinjaArguments) throws -> JinjaValue) -> JinjaValue { bound(obj, name, body) }
        switch name {
        case "get":
            return m { args in
                let a = try args.bind(name, ["key", "default"], required: 1)
                if case .string(let k) = a[0]!, let v = d[k] { return v }
                return a[1] ?? .none
            }
        case "items": return m { _ in .list(d.pairs.map { .tuple([.string($0.0), $0.1]) }) }
        case "keys": return m { _ in .list(d.keys.map { .string($0) }) }
        case "values": return m { _ in .list(d.values) }
        case "copy": return m { _ in .dict(d) }
        default: return nil
        }
    }

    private static func listMethod(_ obj: JinjaValue, _ a: [JinjaValue], _ name: String) -> JinjaValue? {
        func m(_ body: @escaping (JinjaArguments) throws -> JinjaValue) -> JinjaValue { bound(obj, name, body) }
        switch name {
        case "count":
            return m { args in
                let x = try args.bind(name, ["value"], required: 1)[0]!
                return .int(a.filter { pyEqual($0, x) }.count)
            }
        case "index":
            return m { args in
                let x = try args.bind(name, ["value"], required: 1)[0]!
                guard let i = a.firstIndex(where: { pyEqual($0, x) }) else {
                    if case .tuple = obj { throw JinjaError.runtime("tuple.index(x): x not in tuple") }
                    throw JinjaError.runtime("\(pyRepr(x)) is not in list")
                }
                return .int(i)
            }
        case "copy":
            if case .list = obj { return m { _ in .list(a) } }
            return nil
        default: return nil
        }
    }
}

// MARK: - Python string formatting

/// Python's `format % args` (printf-style) for the conversions templates use.
func pyPercentFormat(_ format: String, _ args: JinjaValue) throws -> String {
    var values: [JinjaValue]
    var mapping: JinjaDict? = nil
    // Python treats any non-tuple argument with __getitem__ (dict, list) as a possible mapping and
    // then does not complain about unused arguments.
    var lenient = false
    switch args {
    case .tuple(let t): values = t
    case .dict(let d): values = [args]; mapping = d; lenient = true
    case .list, .undefined: values = [args]; lenient = true
    default: values = [args]
    }
    var next = 0
    var out = ""
    let f = format.pyScalars
    var i = 0
    func takeArg() throws -> JinjaValue {
        guard next < values.count else { throw JinjaError.runtime("not enough arguments for format string") }
        defer { next += 1 }
        return values[next]
    }
    while i < f.count {
        let u = f[i]
        if u != "%" { out.unicodeScalars.append(u); i += 1; continue }
        i += 1
        guard i < f.count else { throw JinjaError.runtime("incomplete format") }
        var key: String? = nil
        if f[i] == "(" {
            var j = i + 1
            while j < f.count && f[j] != ")" { j += 1 }
            key = String(pyScalars: f[(i + 1)..<j])
            i = j + 1
        }
        var flags = Set<Unicode.Scalar>()
        while i < f.count, "-+ #0".unicodeScalars.contains(f[i]) { flags.insert(f[i]); i += 1 }
        var width = 0
        while i < f.count, let d = Int(String(Character(f[i]))) { width = width * 10 + d; i += 1 }
        var precision: Int? = nil
        if i < f.count, f[i] == "." {
            i += 1
            var p = 0
            while i < f.count, let d = Int(String(Character(f[i]))) { p = p * 10 + d; i += 1 }
            precision = p
        }
        guard i < f.count else { throw JinjaError.runtime("incomplete format") }
        let conv = f[i]
        i += 1
        if conv == "%" { out += "%"; continue }
        let v: JinjaValue
        if let key {
            guard let mapping, let x = mapping[key] else { throw JinjaError.runtime("format requires a mapping") }
            v = x
        } else {
            v = try takeArg()
        }
        var text: String
        switch conv {
        case "s": text = pyStr(v)
        case "r", "a": text = pyRepr(v)
        case "d", "i", "u":
            guard let n = v.number else { throw JinjaError.runtime("%\(conv) format: a real number is required, not \(v.typeName)") }
            let iv = v.intLike ?? Int(n.rounded(.towardZero))
            text = String(Swift.abs(iv))
            if iv < 0 { text = "-" + text } else if flags.contains("+") { text = "+" + text } else if flags.contains(" ") { text = " " + text }
        case "f", "F":
            guard let n = v.number else { throw JinjaError.runtime("must be real number, not \(v.typeName)") }
            text = String(format: "%.\(precision ?? 6)f", n)
            if n >= 0 && flags.contains("+") { text = "+" + text }
        case "x", "X", "o":
            guard let iv = v.intLike else { throw JinjaError.runtime("%\(conv) format: an integer is required, not \(v.typeName)") }
            text = String(Swift.abs(iv), radix: conv == "o" ? 8 : 16, uppercase: conv == "X")
            if iv < 0 { text = "-" + text }
        case "c":
            if case .string(let c) = v { text = c } else if let iv = v.intLike, let s = Unicode.Scalar(UInt32(max(0, iv))) { text = String(Character(s)) } else { throw JinjaError.runtime("%c requires int or char") }
        default:
            throw JinjaError.runtime("unsupported format character '\(Character(conv))'")
        }
        if (conv == "s" || conv == "r" || conv == "a"), let precision { text = String(pyScalars: text.pyScalars.prefix(precision)) }
        if text.pyLength < width {
            let padCount = width - text.pyLength
            if flags.contains("-") {
                text += String(repeating: " ", count: padCount)
            } else if flags.contains("0") && "diufFxXo".unicodeScalars.contains(conv) {
                let negative = text.hasPrefix("-") || text.hasPrefix("+")
                let sign = negative ? String(text.prefix(1)) : ""
                text = sign + String(repeating: "0", count: padCount) + String(text.dropFirst(sign.count))
            } else {
                text = String(repeating: " ", count: padCount) + text
            }
        }
        out += text
    }
    if !lenient && next < values.count {
        throw JinjaError.runtime("not all arguments converted during string formatting")
    }
    return out
}

/// Python's `str.format` for `{}`, `{0}` and `{name}` fields without format specs.
func pyBraceFormat(_ format: String, _ args: JinjaArguments) throws -> String {
    let f = format.pyScalars
    var out = ""
    var auto = 0
    var i = 0
    while i < f.count {
        let u = f[i]
        if u == "{" {
            if i + 1 < f.count && f[i + 1] == "{" { out += "{"; i += 2; continue }
            var j = i + 1
            while j < f.count && f[j] != "}" { j += 1 }
            guard j < f.count else { throw JinjaError.runtime("Single '{' encountered in format string") }
            var field = String(pyScalars: f[(i + 1)..<j])
            var spec = ""
            if let colon = field.firstIndex(of: ":") { spec = String(field[field.index(after: colon)...]); field = String(field[..<colon]) }
            if !spec.isEmpty { throw JinjaError.runtime("format specifications are not supported in str.format") }
            let v: JinjaValue
            if field.isEmpty {
                guard auto < args.positional.count else { throw JinjaError.runtime("Replacement index \(auto) out of range for positional args tuple") }
                v = args.positional[auto]
                auto += 1
            } else if let n = Int(field) {
                guard n < args.positional.count else { throw JinjaError.runtime("Replacement index \(n) out of range for positional args tuple") }
                v = args.positional[n]
            } else {
                guard let kv = args.keyword(field) else { throw JinjaError.runtime("KeyError: \(pyStringRepr(field))") }
                v = kv
            }
            out += pyStr(v)
            i = j + 1
        } else if u == "}" {
            if i + 1 < f.count && f[i + 1] == "}" { out += "}"; i += 2; continue }
            throw JinjaError.runtime("Single '}' encountered in format string")
        } else {
            out.unicodeScalars.append(u)
            i += 1
        }
    }
    return out
}
