// Recursive-descent parser mirroring jinja2 3.1's parser.py (same precedence, same error texts
// where practical).

struct JinjaParser {
    private var tokens: [JinjaToken]
    private var i = 0
    private var endTokenStack: [[String]] = []
    private var tagStack: [String] = []

    init(tokens: [JinjaToken]) { self.tokens = tokens }

    static func parse(_ source: String) throws -> [JinjaStmt] {
        var lexer = JinjaLexer()
        var parser = JinjaParser(tokens: try lexer.tokenize(source))
        let body = try parser.subparse(endTokens: nil)
        try JinjaValidator.validate(body)
        return body
    }

    // MARK: token stream

    private var current: JinjaToken { tokens[i] }
    private func look(_ n: Int = 1) -> JinjaToken { tokens[min(i + n, tokens.count - 1)] }
    private mutating func advance() -> JinjaToken {
        let t = tokens[i]
        if i < tokens.count - 1 { i += 1 }
        return t
    }

    private func fail(_ message: String, _ token: JinjaToken? = nil) -> JinjaError {
        let t = token ?? current
        return JinjaError.syntax(message, line: t.line, column: t.column)
    }

    private mutating func skipIfName(_ name: String) -> Bool {
        if current.isName(name) { i += 1; return true }
        return false
    }

    private mutating func skipIfOp(_ op: String) -> Bool {
        if current.isOp(op) { i += 1; return true }
        return false
    }

    private static func describe(_ kind: JinjaTokenKind) -> String {
        JinjaToken(kind: kind, text: "", line: 0, column: 0).description
    }

    @discardableResult
    private mutating func expect(_ kind: JinjaTokenKind) throws -> JinjaToken {
        guard current.kind == kind else {
            if current.kind == .eof {
                throw fail("unexpected end of template, expected '\(Self.describe(kind))'.")
            }
            throw fail("expected token '\(Self.describe(kind))', got '\(current.description)'")
        }
        return advance()
    }

    private mutating func expectOp(_ op: String) throws {
        guard current.isOp(op) else {
            if current.kind == .eof { throw fail("unexpected end of template, expected '\(op)'.") }
            throw fail("expected token '\(op)', got '\(current.description)'")
        }
        i += 1
    }

    private mutating func expectName(_ name: String? = nil) throws -> JinjaToken {
        guard current.kind == .name, name == nil || current.text == name else {
            let wanted = name ?? "name"
            if current.kind == .eof { throw fail("unexpected end of template, expected '\(wanted)'.") }
            throw fail("expected token '\(wanted)', got '\(current.description)'")
        }
        return advance()
    }

    // MARK: statements

    private mutating func subparse(endTokens: [String]?) throws -> [JinjaStmt] {
        var body: [JinjaStmt] = []
        if let endTokens { endTokenStack.append(endTokens) }
        defer { if endTokens != nil { endTokenStack.removeLast() } }
        while true {
            let t = current
            switch t.kind {
            case .data:
                i += 1
                body.append(JinjaStmt(kind: .text(t.text), line: t.line, column: t.column))
            case .variableBegin:
                i += 1
                let e = try parseTuple(withCondexpr: true)
                try expect(.variableEnd)
                body.append(JinjaStmt(kind: .output(e), line: e.line, column: e.column))
            case .blockBegin:
                i += 1
                if let endTokens, current.kind == .name, endTokens.contains(current.text) { return body }
                body.append(contentsOf: try parseStatement())
                try expect(.blockEnd)
            case .eof:
                return body
            default:
                throw fail("unexpected '\(t.description)'")
            }
        }
    }

    /// Parses `%}` body `{% end... %}`; leaves the end tag name current unless `dropNeedle`.
    private mutating func parseStatements(_ endTokens: [String], dropNeedle: Bool = false) throws -> [JinjaStmt] {
        _ = skipIfOp(":")
        try expect(.blockEnd)
        let body = try subparse(endTokens: endTokens)
        if current.kind == .eof { throw failUnknownTag(nil, current, pending: endTokens) }
        if dropNeedle { i += 1 }
        return body
    }

    private func failUnknownTag(_ name: String?, _ token: JinjaToken, pending: [String]? = nil) -> JinjaError {
        var stack = endTokenStack
        if let pending { stack.append(pending) }
        var expected = Set<String>()
        for e in stack { expected.formUnion(e) }
        let currentlyLooking = stack.last.map { $0.map { "'\($0)'" }.joined(separator: " or ") }
        var message = [name == nil ? "Unexpected end of template." : "Encountered unknown tag '\(name!)'."]
        if let currentlyLooking {
            if let name, expected.contains(name) {
                message.append("You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for \(currentlyLooking).")
            } else {
                message.append("Jinja was looking for the following tags: \(currentlyLooking).")
            }
        }
        if let last = tagStack.last { message.append("The innermost block that needs to be closed is '\(last)'.") }
        return fail(message.joined(separator: " "), token)
    }

    private mutating func parseStatement() throws -> [JinjaStmt] {
        let t = current
        guard t.kind == .name else { throw fail("tag name expected") }
        let known = ["for", "if", "set", "macro", "call", "filter", "with", "print", "block", "generation",
                     "break", "continue", "extends", "include", "import", "from", "autoescape"]
        guard known.contains(t.text) else { throw failUnknownTag(t.text, t) }
        tagStack.append(t.text)
        defer { tagStack.removeLast() }
        func stmt(_ kind: JinjaStmt.Kind) -> [JinjaStmt] { [JinjaStmt(kind: kind, line: t.line, column: t.column)] }
        switch t.text {
        case "for": return stmt(try parseFor())
        case "if": return stmt(try parseIf())
        case "set": return stmt(try parseSet())
        case "macro": return stmt(try parseMacro())
        case "call": return stmt(try parseCallBlock())
        case "filter": return stmt(try parseFilterBlock())
        case "with": return stmt(try parseWith())
        case "print":
            i += 1
            let e = try parseTuple(withCondexpr: true)
            return stmt(.output(e))
        case "block":
            i += 1
            _ = try expectName()
            _ = skipIfName("scoped")
            _ = skipIfName("required")
            let body = try parseStatements(["endblock"], dropNeedle: true)
            if current.kind == .name { i += 1 }
            return stmt(.scope(body))
        case "generation":
            i += 1
            return stmt(.scope(try parseStatements(["endgeneration"], dropNeedle: true)))
        case "break":
            i += 1
            return stmt(.breakLoop)
        case "continue":
            i += 1
            return stmt(.continueLoop)
        case "extends", "include", "import", "from":
            throw fail("the '\(t.text)' tag is not supported: chat templates cannot load other templates")
        case "autoescape":
            i += 1
            _ = try parseExpression()
            return stmt(.scope(try parseStatements(["endautoescape"], dropNeedle: true)))
        default:
            throw failUnknownTag(t.text, t)
        }
    }

    private mutating func parseFor() throws -> JinjaStmt.Kind {
        i += 1
        let target = try parseAssignTarget(extraEndRules: ["in"])
        _ = try expectName("in")
        let iter = try parseTuple(withCondexpr: false, extraEndRules: ["recursive"])
        var filter: JinjaExpr? = nil
        if skipIfName("if") { filter = try parseExpression() }
        let recursive = skipIfName("recursive")
        let body = try parseStatements(["endfor", "else"])
        var otherwise: [JinjaStmt] = []
        if advance().text != "endfor" {
            otherwise = try parseStatements(["endfor"], dropNeedle: true)
        }
        return .forStmt(target: target, iter: iter, filter: filter, body: body, otherwise: otherwise, recursive: recursive)
    }

    private mutating func parseIf() throws -> JinjaStmt.Kind {
        i += 1
        var branches: [(JinjaExpr, [JinjaStmt])] = []
        var otherwise: [JinjaStmt] = []
        while true {
            let test = try parseTuple(withCondexpr: false)
            let body = try parseStatements(["elif", "else", "endif"])
            branches.append((test, body))
            let t = advance()
            if t.text == "elif" { continue }
            if t.text == "else" { otherwise = try parseStatements(["endif"], dropNeedle: true) }
            break
        }
        return .ifStmt(branches, otherwise: otherwise)
    }

    private mutating func parseSet() throws -> JinjaStmt.Kind {
        i += 1
        let target = try parseAssignTarget(withNamespace: true)
        if skipIfOp("=") {
            return .set(target, try parseTuple(withCondexpr: true))
        }
        let filters = try parseFilterChain(start: nil, startInline: false)
        let body = try parseStatements(["endset"], dropNeedle: true)
        return .setBlock(target, filters: filters, body: body)
    }

    private mutating func parseMacro() throws -> JinjaStmt.Kind {
        i += 1
        let name = try expectName().text
        let parameters = try parseSignature()
        let body = try parseStatements(["endmacro"], dropNeedle: true)
        return .macro(JinjaMacroDef(name: name, parameters: parameters, body: body))
    }

    private mutating func parseSignature() throws -> [(String, JinjaExpr?)] {
        var parameters: [(String, JinjaExpr?)] = []
        try expectOp("(")
        while !current.isOp(")") {
            if !parameters.isEmpty { try expectOp(",") }
            if current.isOp(")") { break }
            let name = try expectName().text
            var defaultValue: JinjaExpr? = nil
            if skipIfOp("=") { defaultValue = try parseExpression() }
            parameters.append((name, defaultValue))
        }
        try expectOp(")")
        return parameters
    }

    private mutating func parseCallBlock() throws -> JinjaStmt.Kind {
        i += 1
        var parameters: [(String, JinjaExpr?)] = []
        if current.isOp("(") { parameters = try parseSignature() }
        let call = try parseExpression()
        guard case .call = call.kind else { throw fail("expected call", tokens[i - 1]) }
        let body = try parseStatements(["endcall"], dropNeedle: true)
        return .callBlock(call: call, parameters: parameters, body: body)
    }

    private mutating func parseFilterBlock() throws -> JinjaStmt.Kind {
        i += 1
        let filters = try parseFilterChain(start: nil, startInline: true)
        let body = try parseStatements(["endfilter"], dropNeedle: true)
        return .filterBlock(filters, body: body)
    }

    private mutating func parseWith() throws -> JinjaStmt.Kind {
        i += 1
        var assignments: [(JinjaTarget, JinjaExpr)] = []
        while current.kind != .blockEnd {
            if !assignments.isEmpty { try expectOp(",") }
            let target = try parseAssignTarget()
            try expectOp("=")
            assignments.append((target, try parseExpression()))
        }
        let body = try parseStatements(["endwith"], dropNeedle: true)
        return .with(assignments, body: body)
    }

    private mutating func parseAssignTarget(withTuple: Bool = true, extraEndRules: [String] = [],
                                            withNamespace: Bool = false) throws -> JinjaTarget {
        if withNamespace && look().isOp(".") {
            let ns = try expectName().text
            i += 1
            let attr = try expectName().text
            return .attribute(ns, attr)
        }
        // parse_tuple(simplified=True): names separated by commas, optionally parenthesised.
        var items: [JinjaTarget] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEndRules) { break }
            items.append(try parseTargetPrimary())
            if withTuple && current.isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            guard let first = items.first else { throw fail("Expected an expression, got '\(current.description)'") }
            return first
        }
        return .tuple(items)
    }

    private mutating func parseTargetPrimary() throws -> JinjaTarget {
        let t = current
        if t.kind == .name {
            if ["true", "false", "none", "True", "False", "None"].contains(t.text) {
                throw fail("can't assign to 'const'", t)
            }
            i += 1
            return .name(t.text)
        }
        if t.isOp("(") {
            i += 1
            var items: [JinjaTarget] = []
            while !current.isOp(")") {
                if !items.isEmpty { try expectOp(",") }
                if current.isOp(")") { break }
                items.append(try parseTargetPrimary())
            }
            try expectOp(")")
            return items.count == 1 ? items[0] : .tuple(items)
        }
        switch t.kind {
        case .string, .integer, .float: throw fail("can't assign to 'const'", t)
        case .op where t.text == "[": throw fail("can't assign to 'list'", t)
        case .op where t.text == "{": throw fail("can't assign to 'dict'", t)
        case .eof: throw fail("unexpected end of template, expected an expression.", t)
        default: throw fail("unexpected '\(t.description)'", t)
        }
    }

    // MARK: expressions

    private func isTupleEnd(_ extraEndRules: [String]) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd, .eof: return true
        case .op: return current.text == ")"
        case .name: return extraEndRules.contains(current.text)
        default: return false
        }
    }

    private mutating func parseTuple(withCondexpr: Bool, extraEndRules: [String] = [],
                                     explicitParentheses: Bool = false) throws -> JinjaExpr {
        let start = current
        var items: [JinjaExpr] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEndRules) { break }
            items.append(try parseExpression(withCondexpr: withCondexpr))
            if current.isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let first = items.first { return first }
            if !explicitParentheses { throw fail("Expected an expression, got '\(current.description)'") }
        }
        return JinjaExpr(kind: .tuple(items), line: start.line, column: start.column)
    }

    private mutating func parseExpression(withCondexpr: Bool = true) throws -> JinjaExpr {
        withCondexpr ? try parseCondexpr() : try parseOr()
    }

    private mutating func parseCondexpr() throws -> JinjaExpr {
        var expr1 = try parseOr()
        while skipIfName("if") {
            let test = try parseOr()
            var otherwise: JinjaExpr? = nil
            if skipIfName("else") { otherwise = try parseCondexpr() }
            expr1 = JinjaExpr(kind: .condExpr(test: test, then: expr1, otherwise: otherwise), line: expr1.line, column: expr1.column)
        }
        return expr1
    }

    private mutating func parseOr() throws -> JinjaExpr {
        var left = try parseAnd()
        while skipIfName("or") {
            let right = try parseAnd()
            left = JinjaExpr(kind: .or(left, right), line: left.line, column: left.column)
        }
        return left
    }

    private mutating func parseAnd() throws -> JinjaExpr {
        var left = try parseNot()
        while skipIfName("and") {
            let right = try parseNot()
            left = JinjaExpr(kind: .and(left, right), line: left.line, column: left.column)
        }
        return left
    }

    private mutating func parseNot() throws -> JinjaExpr {
        let t = current
        if skipIfName("not") {
            return JinjaExpr(kind: .not(try parseNot()), line: t.line, column: t.column)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> JinjaExpr {
        let expr = try parseMath1()
        var ops: [(String, JinjaExpr)] = []
        while true {
            let t = current
            if t.kind == .op, ["==", "!=", "<", "<=", ">", ">="].contains(t.text) {
                i += 1
                ops.append((t.text, try parseMath1()))
            } else if skipIfName("in") {
                ops.append(("in", try parseMath1()))
            } else if t.isName("not") && look().isName("in") {
                i += 2
                ops.append(("notin", try parseMath1()))
            } else {
                break
            }
        }
        if ops.isEmpty { return expr }
        return JinjaExpr(kind: .compare(expr, ops), line: expr.line, column: expr.column)
    }

    private mutating func parseMath1() throws -> JinjaExpr {
        var left = try parseConcat()
        while current.isOp("+") || current.isOp("-") {
            let op = advance().text
            let right = try parseConcat()
            left = JinjaExpr(kind: .binary(op, left, right), line: left.line, column: left.column)
        }
        return left
    }

    private mutating func parseConcat() throws -> JinjaExpr {
        var args = [try parseMath2()]
        while skipIfOp("~") { args.append(try parseMath2()) }
        if args.count == 1 { return args[0] }
        return JinjaExpr(kind: .concat(args), line: args[0].line, column: args[0].column)
    }

    private mutating func parseMath2() throws -> JinjaExpr {
        var left = try parsePow()
        while current.kind == .op, ["*", "/", "//", "%"].contains(current.text) {
            let op = advance().text
            let right = try parsePow()
            left = JinjaExpr(kind: .binary(op, left, right), line: left.line, column: left.column)
        }
        return left
    }

    private mutating func parsePow() throws -> JinjaExpr {
        var left = try parseUnary()
        while skipIfOp("**") {
            let right = try parseUnary()
            left = JinjaExpr(kind: .binary("**", left, right), line: left.line, column: left.column)
        }
        return left
    }

    private mutating func parseUnary(withFilter: Bool = true) throws -> JinjaExpr {
        let t = current
        var node: JinjaExpr
        if skipIfOp("-") {
            node = JinjaExpr(kind: .neg(try parseUnary(withFilter: false)), line: t.line, column: t.column)
        } else if skipIfOp("+") {
            node = JinjaExpr(kind: .pos(try parseUnary(withFilter: false)), line: t.line, column: t.column)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpr(node) }
        return node
    }

    private mutating func parsePrimary() throws -> JinjaExpr {
        let t = current
        func make(_ k: JinjaExpr.Kind) -> JinjaExpr { JinjaExpr(kind: k, line: t.line, column: t.column) }
        switch t.kind {
        case .name:
            i += 1
            switch t.text {
            case "true", "True": return make(.literal(.bool(true)))
            case "false", "False": return make(.literal(.bool(false)))
            case "none", "None": return make(.literal(.none))
            default: return make(.name(t.text))
            }
        case .string:
            i += 1
            var s = t.text
            while current.kind == .string { s += advance().text }
            return make(.literal(.string(s)))
        case .integer:
            i += 1
            return make(.literal(.int(t.intValue)))
        case .float:
            i += 1
            return make(.literal(.float(t.floatValue)))
        case .op where t.text == "(":
            i += 1
            let e = try parseTuple(withCondexpr: true, explicitParentheses: true)
            try expectOp(")")
            return e
        case .op where t.text == "[":
            i += 1
            var items: [JinjaExpr] = []
            while !current.isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if current.isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return make(.list(items))
        case .op where t.text == "{":
            i += 1
            var items: [(JinjaExpr, JinjaExpr)] = []
            while !current.isOp("}") {
                if !items.isEmpty { try expectOp(",") }
                if current.isOp("}") { break }
                let key = try parseExpression()
                try expectOp(":")
                items.append((key, try parseExpression()))
            }
            try expectOp("}")
            return make(.dict(items))
        case .eof:
            throw fail("unexpected end of template, expected an expression.")
        default:
            throw fail("unexpected '\(t.description)'")
        }
    }

    private mutating func parsePostfix(_ node: JinjaExpr) throws -> JinjaExpr {
        var node = node
        while true {
            if current.isOp(".") || current.isOp("[") {
                node = try parseSubscript(node)
            } else if current.isOp("(") {
                node = try parseCall(node)
            } else {
                return node
            }
        }
    }

    private mutating func parseFilterExpr(_ node: JinjaExpr) throws -> JinjaExpr {
        var node = node
        while true {
            if current.isOp("|") {
                node = try parseFilterChain(start: node, startInline: false).last!
            } else if current.isName("is") {
                node = try parseTest(node)
            } else if current.isOp("(") {
                node = try parseCall(node)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ node: JinjaExpr) throws -> JinjaExpr {
        let t = advance()
        if t.text == "." {
            let attr = current
            if attr.kind == .name {
                i += 1
                return JinjaExpr(kind: .getattr(node, attr.text), line: t.line, column: t.column)
            }
            if attr.kind == .integer {
                i += 1
                let key = JinjaExpr(kind: .literal(.int(attr.intValue)), line: attr.line, column: attr.column)
                return JinjaExpr(kind: .getitem(node, key), line: t.line, column: t.column)
            }
            throw fail("expected name or number", attr)
        }
        // "["
        var args: [JinjaExpr] = []
        while !current.isOp("]") {
            if !args.isEmpty { try expectOp(",") }
            args.append(try parseSubscribed(node))
        }
        try expectOp("]")
        if args.count == 1 {
            if case .slice = args[0].kind { return args[0] }
            return JinjaExpr(kind: .getitem(node, args[0]), line: t.line, column: t.column)
        }
        if args.contains(where: { if case .slice = $0.kind { return true } else { return false } }) {
            throw fail("multi-dimensional slicing is not supported", t)
        }
        return JinjaExpr(kind: .getitem(node, JinjaExpr(kind: .tuple(args), line: t.line, column: t.column)),
                         line: t.line, column: t.column)
    }

    /// One subscript: an expression or a slice `start:stop:step` (returned as a slice of `node`).
    private mutating func parseSubscribed(_ node: JinjaExpr) throws -> JinjaExpr {
        let t = current
        var start: JinjaExpr? = nil
        if current.isOp(":") {
            i += 1
        } else {
            let e = try parseExpression()
            if !current.isOp(":") { return e }
            i += 1
            start = e
        }
        var stop: JinjaExpr? = nil
        if !current.isOp(":") && !current.isOp("]") && !current.isOp(",") { stop = try parseExpression() }
        var step: JinjaExpr? = nil
        if skipIfOp(":") {
            if !current.isOp("]") && !current.isOp(",") { step = try parseExpression() }
        }
        return JinjaExpr(kind: .slice(node, start: start, stop: stop, step: step), line: t.line, column: t.column)
    }

    private mutating func parseCallArgs() throws -> JinjaCallExprs {
        try expectOp("(")
        var args = JinjaCallExprs()
        var first = true
        while !current.isOp(")") {
            if !first {
                try expectOp(",")
                if current.isOp(")") { break }
            }
            first = false
            if skipIfOp("*") {
                args.starArgs = try parseExpression()
            } else if skipIfOp("**") {
                args.starKwargs = try parseExpression()
            } else if current.kind == .name && look().isOp("=") {
                let key = advance().text
                i += 1
                args.keywords.append((key, try parseExpression()))
            } else {
                if !args.keywords.isEmpty || args.starArgs != nil || args.starKwargs != nil {
                    throw fail("Invalid argument syntax")
                }
                args.positional.append(try parseExpression())
            }
        }
        try expectOp(")")
        return args
    }

    private mutating func parseCall(_ node: JinjaExpr) throws -> JinjaExpr {
        let t = current
        let args = try parseCallArgs()
        return JinjaExpr(kind: .call(node, args), line: t.line, column: t.column)
    }

    /// `| name(args) | name ...`; returns the filter nodes in order (each wrapping the previous).
    private mutating func parseFilterChain(start: JinjaExpr?, startInline: Bool) throws -> [JinjaExpr] {
        var node = start
        var result: [JinjaExpr] = []
        var inline = startInline
        while current.isOp("|") || inline {
            if !inline { i += 1 }
            inline = false
            let t = try expectName()
            var name = t.text
            while skipIfOp(".") { name += "." + (try expectName().text) }
            let args = current.isOp("(") ? try parseCallArgs() : JinjaCallExprs()
            let f = JinjaExpr(kind: .filter(node, name: name, args), line: t.line, column: t.column)
            result.append(f)
            node = f
        }
        return result
    }

    private mutating func parseTest(_ node: JinjaExpr) throws -> JinjaExpr {
        let isToken = advance()
        let negated = skipIfName("not")
        var name = try expectName().text
        while skipIfOp(".") { name += "." + (try expectName().text) }
        var args = JinjaCallExprs()
        if current.isOp("(") {
            args = try parseCallArgs()
        } else if [.name, .string, .integer, .float].contains(current.kind) || current.isOp("[") || current.isOp("{") || current.isOp("("),
                  !current.isName("else"), !current.isName("or"), !current.isName("and") {
            if current.isName("is") { throw fail("You cannot chain multiple tests with is") }
            let arg = try parsePostfix(try parsePrimary())
            args.positional = [arg]
        }
        return JinjaExpr(kind: .test(node, name: name, args, negated: negated), line: isToken.line, column: isToken.column)
    }
}

/// Compile-time checks jinja2 does when generating code: unknown filters and tests fail, except
/// inside `if` statements and conditional expressions, where they fail only when evaluated.
enum JinjaValidator {
    static func validate(_ body: [JinjaStmt]) throws {
        for s in body { try check(s, soft: false) }
    }

    private static func check(_ s: JinjaStmt, soft: Bool) throws {
        switch s.kind {
        case .text, .breakLoop, .continueLoop: break
        case .output(let e): try check(e, soft: soft)
        case .ifStmt(let branches, let otherwise):
            for (test, body) in branches {
                try check(test, soft: true)
                for x in body { try check(x, soft: true) }
            }
            for x in otherwise { try check(x, soft: true) }
        case .forStmt(_, let iter, let filter, let body, let otherwise, _):
            try check(iter, soft: soft)
            if let filter { try check(filter, soft: false) }
            for x in body + otherwise { try check(x, soft: false) }
        case .set(_, let e): try check(e, soft: soft)
        case .setBlock(_, let filters, let body), .filterBlock(let filters, let body):
            for f in filters { try check(f, soft: soft) }
            for x in body { try check(x, soft: false) }
        case .macro(let m):
            for (_, d) in m.parameters { if let d { try check(d, soft: soft) } }
            for x in m.body { try check(x, soft: false) }
        case .callBlock(let call, _, let body):
            try check(call, soft: soft)
            for x in body { try check(x, soft: false) }
        case .with(let assignments, let body):
            for (_, e) in assignments { try check(e, soft: soft) }
            for x in body { try check(x, soft: false) }
        case .scope(let body):
            for x in body { try check(x, soft: soft) }
        }
    }

    private static func check(_ args: JinjaCallExprs, soft: Bool) throws {
        for e in args.positional { try check(e, soft: soft) }
        for (_, e) in args.keywords { try check(e, soft: soft) }
        if let e = args.starArgs { try check(e, soft: soft) }
        if let e = args.starKwargs { try check(e, soft: soft) }
    }

    private static func check(_ e: JinjaExpr, soft: Bool) throws {
        switch e.kind {
        case .literal, .name: break
        case .list(let a), .tuple(let a), .concat(let a): for x in a { try check(x, soft: soft) }
        case .dict(let pairs): for (k, v) in pairs { try check(k, soft: soft); try check(v, soft: soft) }
        case .getattr(let x, _), .not(let x), .neg(let x), .pos(let x): try check(x, soft: soft)
        case .getitem(let x, let y), .and(let x, let y), .or(let x, let y), .binary(_, let x, let y):
            try check(x, soft: soft); try check(y, soft: soft)
        case .slice(let x, let a, let b, let c):
            try check(x, soft: soft)
            for y in [a, b, c] { if let y { try check(y, soft: soft) } }
        case .call(let f, let args):
            try check(f, soft: soft); try check(args, soft: soft)
        case .filter(let x, let name, let args):
            if !soft && !JinjaFilters.exists(name) {
                throw JinjaError.syntax("No filter named '\(name)'.", line: e.line, column: e.column)
            }
            if let x { try check(x, soft: soft) }
            try check(args, soft: soft)
        case .test(let x, let name, let args, _):
            if !soft && !JinjaPredicates.exists(name) {
                throw JinjaError.syntax("No test named '\(name)'.", line: e.line, column: e.column)
            }
            try check(x, soft: soft); try check(args, soft: soft)
        case .compare(let x, let ops):
            try check(x, soft: soft)
            for (_, y) in ops { try check(y, soft: soft) }
        case .condExpr(let test, let then, let otherwise):
            try check(test, soft: true); try check(then, soft: true)
            if let otherwise { try check(otherwise, soft: true) }
        }
    }
}
