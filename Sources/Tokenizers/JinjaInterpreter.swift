import Foundation

// Evaluates a parsed template with jinja2's semantics under transformers' environment
// (ImmutableSandboxedEnvironment, default Undefined, no autoescape).

final class JinjaScope {
    var vars: [String: JinjaValue] = [:]
    let parent: JinjaScope?
    init(parent: JinjaScope?) { self.parent = parent }

    func lookup(_ name: String) -> JinjaValue? {
        var s: JinjaScope? = self
        while let c = s {
            if let v = c.vars[name] { return v }
            s = c.parent
        }
        return nil
    }
}

enum JinjaFlow { case normal, breakLoop, continueLoop }

final class JinjaInterpreter {
    var globals: [String: JinjaValue] = [:]

    init(globals: [String: JinjaValue]) { self.globals = globals }

    func render(_ body: [JinjaStmt], context: [String: JinjaValue]) throws -> String {
        let root = JinjaScope(parent: nil)
        root.vars = context
        var out = ""
        _ = try exec(body, root, &out)
        return out
    }

    // MARK: statements

    func exec(_ body: [JinjaStmt], _ scope: JinjaScope, _ out: inout String) throws -> JinjaFlow {
        for s in body {
            let flow: JinjaFlow
            do {
                flow = try execOne(s, scope, &out)
            } catch let e as JinjaError where e.line == nil {
                var located = e
                located.line = s.line
                located.column = s.column
                throw located
            }
            if flow != .normal { return flow }
        }
        return .normal
    }

    private func execOne(_ s: JinjaStmt, _ scope: JinjaScope, _ out: inout String) throws -> JinjaFlow {
        switch s.kind {
        case .text(let t):
            out += t
        case .output(let e):
            out += pyStr(try eval(e, scope))
        case .ifStmt(let branches, let otherwise):
            for (test, body) in branches where try eval(test, scope).truthy {
                return try exec(body, scope, &out)
            }
            return try exec(otherwise, scope, &out)
        case .forStmt(let target, let iterExpr, let filter, let body, let otherwise, let recursive):
            if recursive { throw JinjaError.runtime("recursive for loops are not supported") }
            var items = try iterate(try eval(iterExpr, scope))
            if let filter {
                items = try items.filter { item in
                    let s2 = JinjaScope(parent: scope)
                    try assign(target, item, s2)
                    return try eval(filter, s2).truthy
                }
            }
            if items.isEmpty {
                return try exec(otherwise, JinjaScope(parent: scope), &out)
            }
            let loop = JinjaLoop(items: items, depth0: 0)
            for (n, item) in items.enumerated() {
                loop.index0 = n
                let s2 = JinjaScope(parent: scope)
                try assign(target, item, s2)
                s2.vars["loop"] = .loop(loop)
                if try exec(body, s2, &out) == .breakLoop { break }
            }
        case .set(let target, let e):
            try assign(target, try eval(e, scope), scope)
        case .setBlock(let target, let filters, let body):
            var captured = ""
            _ = try exec(body, JinjaScope(parent: scope), &captured)
            try assign(target, try applyFilterChain(filters, to: .string(captured), scope), scope)
        case .macro(let m):
            scope.vars[m.name] = .function(makeMacro(m, scope))
        case .callBlock(let call, let parameters, let body):
            guard case .call(let callee, let argExprs) = call.kind else { break }
            let caller = makeMacro(JinjaMacroDef(name: "caller", parameters: parameters, body: body), scope)
            var args = try evalArgs(argExprs, scope)
            args.keywords.append(("caller", .function(caller)))
            out += pyStr(try callValue(try eval(callee, scope), args))
        case .filterBlock(let filters, let body):
            var captured = ""
            _ = try exec(body, JinjaScope(parent: scope), &captured)
            out += pyStr(try applyFilterChain(filters, to: .string(captured), scope))
        case .with(let assignments, let body):
            let s2 = JinjaScope(parent: scope)
            for (target, e) in assignments { try assign(target, try eval(e, scope), s2) }
            return try exec(body, s2, &out)
        case .scope(let body):
            return try exec(body, JinjaScope(parent: scope), &out)
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        }
        return .normal
    }

    private func applyFilterChain(_ filters: [JinjaExpr], to value: JinjaValue, _ scope: JinjaScope) throws -> JinjaValue {
        var v = value
        for f in filters {
            guard case .filter(_, let name, let argExprs) = f.kind else { continue }
            v = try applyFilter(name, v, try evalArgs(argExprs, scope))
        }
        return v
    }

    private func makeMacro(_ m: JinjaMacroDef, _ scope: JinjaScope) -> JinjaFunction {
        weak let definingScope = scope
        return JinjaFunction(name: m.name, repr: "<Macro '\(m.name)'>") { [unowned self] args in
            let s = JinjaScope(parent: definingScope)
            var extraKeywords = JinjaDict()
            for (k, v) in args.keywords where !m.parameters.contains(where: { $0.0 == k }) {
                if k == "caller" { s.vars["caller"] = v } else { extraKeywords[k] = v }
            }
            for (n, (name, defaultExpr)) in m.parameters.enumerated() {
                if n < args.positional.count {
                    s.vars[name] = args.positional[n]
                } else if let v = args.keyword(name) {
                    s.vars[name] = v
                } else if let defaultExpr {
                    s.vars[name] = try self.eval(defaultExpr, s)
                } else {
                    s.vars[name] = .undefined(JinjaUndefined(message: "parameter \(pyStringRepr(name)) was not provided"))
                }
            }
            s.vars["varargs"] = .tuple(Array(args.positional.dropFirst(m.parameters.count)))
            s.vars["kwargs"] = .dict(extraKeywords)
            var out = ""
            _ = try self.exec(m.body, s, &out)
            return .string(out)
        }
    }

    func assign(_ target: JinjaTarget, _ value: JinjaValue, _ scope: JinjaScope) throws {
        switch target {
        case .name(let n):
            scope.vars[n] = value
        case .tuple(let targets):
            let items = try iterate(value)
            if items.count > targets.count {
                throw JinjaError.runtime("too many values to unpack (expected \(targets.count))")
            }
            if items.count < targets.count {
                throw JinjaError.runtime("not enough values to unpack (expected \(targets.count), got \(items.count))")
            }
            for (t, v) in zip(targets, items) { try assign(t, v, scope) }
        case .attribute(let ns, let attr):
            guard case .namespace(let namespace)? = scope.lookup(ns) ?? globals[ns] else {
                throw JinjaError.runtime("cannot assign attribute on non-namespace object")
            }
            namespace.attributes[attr] = value
        }
    }

    // MARK: expressions

    func eval(_ e: JinjaExpr, _ scope: JinjaScope) throws -> JinjaValue {
        do {
            return try evalInner(e, scope)
        } catch let err as JinjaError where err.line == nil {
            var located = err
            located.line = e.line
            located.column = e.column
            throw located
        }
    }

    private func evalInner(_ e: JinjaExpr, _ scope: JinjaScope) throws -> JinjaValue {
        switch e.kind {
        case .literal(let v):
            return v
        case .name(let n):
            return scope.lookup(n) ?? globals[n] ?? .undefinedName(n)
        case .list(let items):
            return .list(try items.map { try eval($0, scope) })
        case .tuple(let items):
            return .tuple(try items.map { try eval($0, scope) })
        case .dict(let pairs):
            var d = JinjaDict()
            for (k, v) in pairs {
                let key = try eval(k, scope)
                guard case .string(let ks) = key else {
                    throw JinjaError.runtime("only string dictionary keys are supported, got \(key.typeName)")
                }
                d[ks] = try eval(v, scope)
            }
            return .dict(d)
        case .getattr(let obj, let name):
            return try getAttr(try eval(obj, scope), name)
        case .getitem(let obj, let key):
            return try getItem(try eval(obj, scope), try eval(key, scope))
        case .slice(let obj, let start, let stop, let step):
            let o = try eval(obj, scope)
            func index(_ x: JinjaExpr?) throws -> Int? {
                guard let x else { return nil }
                let v = try eval(x, scope)
                if v.isNone { return nil }
                guard let i = v.intLike else {
                    throw JinjaError.runtime("slice indices must be integers or None or have an __index__ method")
                }
                return i
            }
            return try slice(o, try index(start), try index(stop), try index(step))
        case .call(let callee, let argExprs):
            let f = try eval(callee, scope)
            return try callValue(f, try evalArgs(argExprs, scope))
        case .filter(let value, let name, let argExprs):
            guard let value else { throw JinjaError.runtime("filter without a value") }
            return try applyFilter(name, try eval(value, scope), try evalArgs(argExprs, scope))
        case .test(let value, let name, let argExprs, let negated):
            let result = try applyTest(name, try eval(value, scope), try evalArgs(argExprs, scope))
            return .bool(negated ? !result : result)
        case .not(let x):
            return .bool(!(try eval(x, scope).truthy))
        case .neg(let x):
            let v = try eval(x, scope)
            switch v {
            case .undefined(let u): throw JinjaError.undefined(u)
            case .bool(let b): return .int(b ? -1 : 0)
            case .int(let i): return .int(-i)
            case .float(let d): return .float(-d)
            default: throw JinjaError.runtime("bad operand type for unary -: '\(v.typeName)'")
            }
        case .pos(let x):
            let v = try eval(x, scope)
            switch v {
            case .undefined(let u): throw JinjaError.undefined(u)
            case .bool(let b): return .int(b ? 1 : 0)
            case .int, .float: return v
            default: throw JinjaError.runtime("bad operand type for unary +: '\(v.typeName)'")
            }
        case .binary(let op, let l, let r):
            return try binary(op, try eval(l, scope), try eval(r, scope))
        case .and(let l, let r):
            let a = try eval(l, scope)
            return a.truthy ? try eval(r, scope) : a
        case .or(let l, let r):
            let a = try eval(l, scope)
            return a.truthy ? a : try eval(r, scope)
        case .concat(let parts):
            return .string(try parts.map { pyStr(try eval($0, scope)) }.joined())
        case .compare(let first, let ops):
            var left = try eval(first, scope)
            for (op, rightExpr) in ops {
                let right = try eval(rightExpr, scope)
                if !(try compare(op, left, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .condExpr(let test, let then, let otherwise):
            if try eval(test, scope).truthy { return try eval(then, scope) }
            if let otherwise { return try eval(otherwise, scope) }
            return .undefined(JinjaUndefined(message:
                "the inline if-expression on line \(e.line) evaluated to false and no else section was defined."))
        }
    }

    func evalArgs(_ a: JinjaCallExprs, _ scope: JinjaScope) throws -> JinjaArguments {
        var args = JinjaArguments()
        args.positional = try a.positional.map { try eval($0, scope) }
        args.keywords = try a.keywords.map { ($0.0, try eval($0.1, scope)) }
        if let star = a.starArgs { args.positional += try iterate(try eval(star, scope)) }
        if let starKw = a.starKwargs {
            guard case .dict(let d) = try eval(starKw, scope) else {
                throw JinjaError.runtime("argument after ** must be a mapping")
            }
            args.keywords += d.pairs
        }
        return args
    }

    func callValue(_ f: JinjaValue, _ args: JinjaArguments) throws -> JinjaValue {
        switch f {
        case .function(let fn): return try fn.body(args)
        case .undefined(let u): throw JinjaError.undefined(u)
        default: throw JinjaError.runtime("'\(f.typeName)' object is not callable")
        }
    }

    // MARK: attribute and item access (jinja2's Environment.getattr / getitem, sandboxed)

    static func noAttribute(_ obj: JinjaValue, _ name: String) -> JinjaValue {
        .undefined(JinjaUndefined(message: "\(pyStringRepr(obj.objectTypeRepr)) has no attribute \(pyStringRepr(name))"))
    }

    func getAttr(_ obj: JinjaValue, _ name: String) throws -> JinjaValue {
        if case .undefined(let u) = obj { throw JinjaError.undefined(u) }
        if let m = JinjaMethods.method(obj, name) { return m }
        switch obj {
        case .dict(let d): if let v = d[name] { return v }
        case .namespace(let ns): if let v = ns.attributes[name] { return v }
        case .loop(let l): if let v = l.attribute(name) { return v }
        default: break
        }
        return Self.noAttribute(obj, name)
    }

    func getItem(_ obj: JinjaValue, _ key: JinjaValue) throws -> JinjaValue {
        switch obj {
        case .undefined(let u):
            throw JinjaError.undefined(u)
        case .dict(let d):
            if case .string(let k) = key, let v = d[k] { return v }
        case .list(let a), .tuple(let a):
            if let i = key.intLike {
                let idx = i < 0 ? i + a.count : i
                if idx >= 0 && idx < a.count { return a[idx] }
            }
        case .string(let s):
            if let i = key.intLike {
                let sc = s.pyScalars
                let idx = i < 0 ? i + sc.count : i
                if idx >= 0 && idx < sc.count { return .string(String(Character(sc[idx]))) }
            }
        default:
            break
        }
        if case .string(let k) = key {
            return try getAttr(obj, k)
        }
        return .undefined(JinjaUndefined(message: "\(obj.objectTypeRepr) has no element \(pyRepr(key))"))
    }

    func slice(_ obj: JinjaValue, _ start: Int?, _ stop: Int?, _ step: Int?) throws -> JinjaValue {
        switch obj {
        case .undefined(let u):
            throw JinjaError.undefined(u)
        case .list(let a):
            return .list(try pySliceIndices(count: a.count, start: start, stop: stop, step: step).map { a[$0] })
        case .tuple(let a):
            return .tuple(try pySliceIndices(count: a.count, start: start, stop: stop, step: step).map { a[$0] })
        case .string(let s):
            let sc = s.pyScalars
            return .string(String(pyScalars: try pySliceIndices(count: sc.count, start: start, stop: stop, step: step).map { sc[$0] }))
        case .dict:
            // jinja2 compiles slices to plain Python subscription.
            throw JinjaError.runtime("unhashable type: 'slice'")
        default:
            throw JinjaError.runtime("'\(obj.typeName)' object is not subscriptable")
        }
    }

    /// Python iteration: list/tuple items, dict keys, string characters; undefined is empty.
    func iterate(_ v: JinjaValue) throws -> [JinjaValue] {
        switch v {
        case .list(let a), .tuple(let a): return a
        case .dict(let d): return d.keys.map { .string($0) }
        case .string(let s): return s.unicodeScalars.map { .string(String(Character($0))) }
        case .undefined: return []
        case .loop(let l): return l.items
        default: throw JinjaError.runtime("'\(v.typeName)' object is not iterable")
        }
    }

    // MARK: operators

    func binary(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> JinjaValue {
        if op == "%", case .string(let fmt) = a { return .string(try pyPercentFormat(fmt, b)) }
        if case .undefined(let u) = a { throw JinjaError.undefined(u) }
        if case .undefined(let u) = b { throw JinjaError.undefined(u) }
        func unsupported() -> JinjaError {
            JinjaError.runtime("unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'")
        }
        func checked(_ r: (partialValue: Int, overflow: Bool)) throws -> JinjaValue {
            if r.overflow { throw JinjaError.runtime("integer overflow") }
            return .int(r.partialValue)
        }
        switch op {
        case "+":
            switch (a, b) {
            case (.string(let x), .string(let y)): return .string(x + y)
            case (.list(let x), .list(let y)): return .list(x + y)
            case (.tuple(let x), .tuple(let y)): return .tuple(x + y)
            case (.string, _): throw JinjaError.runtime("can only concatenate str (not \"\(b.typeName)\") to str")
            case (.list, _): throw JinjaError.runtime("can only concatenate list (not \"\(b.typeName)\") to list")
            case (.tuple, _): throw JinjaError.runtime("can only concatenate tuple (not \"\(b.typeName)\") to tuple")
            default: break
            }
            if let x = a.intLike, let y = b.intLike { return try checked(x.addingReportingOverflow(y)) }
            if let x = a.number, let y = b.number { return .float(x + y) }
            throw unsupported()
        case "-":
            if let x = a.intLike, let y = b.intLike { return try checked(x.subtractingReportingOverflow(y)) }
            if let x = a.number, let y = b.number { return .float(x - y) }
            throw unsupported()
        case "*":
            switch (a, b) {
            case (.string(let s), _) where b.intLike != nil:
                return .string(String(repeating: s, count: max(0, b.intLike!)))
            case (_, .string(let s)) where a.intLike != nil:
                return .string(String(repeating: s, count: max(0, a.intLike!)))
            case (.list(let l), _) where b.intLike != nil:
                return .list(Array([[JinjaValue]](repeating: l, count: max(0, b.intLike!)).joined()))
            case (_, .list(let l)) where a.intLike != nil:
                return .list(Array([[JinjaValue]](repeating: l, count: max(0, a.intLike!)).joined()))
            case (.tuple(let l), _) where b.intLike != nil:
                return .tuple(Array([[JinjaValue]](repeating: l, count: max(0, b.intLike!)).joined()))
            case (_, .tuple(let l)) where a.intLike != nil:
                return .tuple(Array([[JinjaValue]](repeating: l, count: max(0, a.intLike!)).joined()))
            default: break
            }
            for (seq, other) in [(a, b), (b, a)] {
                switch seq {
                case .string, .list, .tuple:
                    throw JinjaError.runtime("can't multiply sequence by non-int of type '\(other.typeName)'")
                default: break
                }
            }
            if let x = a.intLike, let y = b.intLike { return try checked(x.multipliedReportingOverflow(by: y)) }
            if let x = a.number, let y = b.number { return .float(x * y) }
            throw unsupported()
        case "/":
            guard let x = a.number, let y = b.number else { throw unsupported() }
            if y == 0 { throw JinjaError.runtime(a.intLike != nil && b.intLike != nil ? "division by zero" : "float division by zero") }
            return .float(x / y)
        case "//":
            if let x = a.intLike, let y = b.intLike {
                if y == 0 { throw JinjaError.runtime("integer division or modulo by zero") }
                var q = x / y
                if x % y != 0 && ((x < 0) != (y < 0)) { q -= 1 }
                return .int(q)
            }
            guard let x = a.number, let y = b.number else { throw unsupported() }
            if y == 0 { throw JinjaError.runtime("float floor division by zero") }
            // CPython's float_floor_div.
            var mod = fmod(x, y)
            var div = (x - mod) / y
            if mod != 0 {
                if (y < 0) != (mod < 0) { mod += y; div -= 1 }
            }
            if div == 0 { return .float(0.0 * (x / y)) }
            var floorDiv = div.rounded(.down)
            if div - floorDiv > 0.5 { floorDiv += 1 }
            return .float(floorDiv)
        case "%":
            if case .string(let fmt) = a { return .string(try pyPercentFormat(fmt, b)) }
            if let x = a.intLike, let y = b.intLike {
                if y == 0 { throw JinjaError.runtime("integer modulo by zero") }
                var r = x % y
                if r != 0 && ((r < 0) != (y < 0)) { r += y }
                return .int(r)
            }
            guard let x = a.number, let y = b.number else { throw unsupported() }
            if y == 0 { throw JinjaError.runtime("float modulo") }
            var r = x.truncatingRemainder(dividingBy: y)
            if r != 0 && ((r < 0) != (y < 0)) { r += y }
            return .float(r)
        case "**":
            if let x = a.intLike, let y = b.intLike, y >= 0 {
                var result = 1
                for _ in 0..<y {
                    let r = result.multipliedReportingOverflow(by: x)
                    if r.overflow { throw JinjaError.runtime("integer overflow") }
                    result = r.partialValue
                }
                return .int(result)
            }
            guard let x = a.number, let y = b.number else {
                throw JinjaError.runtime("unsupported operand type(s) for ** or pow(): '\(a.typeName)' and '\(b.typeName)'")
            }
            if x == 0 && y < 0 { throw JinjaError.runtime("0.0 cannot be raised to a negative power") }
            return .float(pyPow(x, y))
        default:
            throw JinjaError.runtime("unknown operator \(op)")
        }
    }

    func compare(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> Bool {
        switch op {
        case "==": return pyEqual(a, b)
        case "!=": return !pyEqual(a, b)
        case "in": return try contains(b, a)
        case "notin": return !(try contains(b, a))
        default:
            if case .undefined(let u) = a { throw JinjaError.undefined(u) }
            if case .undefined(let u) = b { throw JinjaError.undefined(u) }
            return try pyOrder(op, a, b)
        }
    }

    /// Python's `item in container`.
    func contains(_ container: JinjaValue, _ item: JinjaValue) throws -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let sub) = item else {
                throw JinjaError.runtime("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return PyString.contains(s, sub)
        case .list(let a), .tuple(let a):
            return a.contains { pyEqual($0, item) }
        case .dict(let d):
            if case .string(let k) = item { return d[k] != nil }
            if case .list = item { throw JinjaError.runtime("unhashable type: 'list'") }
            if case .dict = item { throw JinjaError.runtime("unhashable type: 'dict'") }
            return false
        case .undefined:
            return false
        case .loop(let l):
            return l.items.contains { pyEqual($0, item) }
        default:
            throw JinjaError.runtime("argument of type '\(container.typeName)' is not iterable")
        }
    }
}

/// Python's float `**`.
func pyPow(_ x: Double, _ y: Double) -> Double { Foundation.pow(x, y) }
