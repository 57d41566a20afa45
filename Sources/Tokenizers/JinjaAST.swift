// Syntax tree of a Jinja template (the subset of jinja2's nodes that templates use).

struct JinjaExpr {
    indirect enum Kind {
        case literal(JinjaValue)
        case name(String)
        case list([JinjaExpr])
        case tuple([JinjaExpr])
        case dict([(JinjaExpr, JinjaExpr)])
        case getattr(JinjaExpr, String)
        case getitem(JinjaExpr, JinjaExpr)
        case slice(JinjaExpr, start: JinjaExpr?, stop: JinjaExpr?, step: JinjaExpr?)
        case call(JinjaExpr, JinjaCallExprs)
        /// `value | name(args)`; value is nil inside `{% filter %}` blocks.
        case filter(JinjaExpr?, name: String, JinjaCallExprs)
        case test(JinjaExpr, name: String, JinjaCallExprs, negated: Bool)
        case not(JinjaExpr)
        case neg(JinjaExpr)
        case pos(JinjaExpr)
        case binary(String, JinjaExpr, JinjaExpr)
        case and(JinjaExpr, JinjaExpr)
        case or(JinjaExpr, JinjaExpr)
        case concat([JinjaExpr])
        /// A comparison chain `a < b <= c`; operators: ==, !=, <, <=, >, >=, in, notin.
        case compare(JinjaExpr, [(String, JinjaExpr)])
        case condExpr(test: JinjaExpr, then: JinjaExpr, otherwise: JinjaExpr?)
    }

    var kind: Kind
    var line: Int
    var column: Int
}

struct JinjaCallExprs {
    var positional: [JinjaExpr] = []
    var keywords: [(String, JinjaExpr)] = []
    var starArgs: JinjaExpr?
    var starKwargs: JinjaExpr?
}

/// The left side of `set` or the target of `for`.
indirect enum JinjaTarget {
    case name(String)
    case tuple([JinjaTarget])
    /// `ns.attr` (namespace attribute assignment).
    case attribute(String, String)
}

struct JinjaMacroDef {
    var name: String
    var parameters: [(String, JinjaExpr?)]
    var body: [JinjaStmt]
}

struct JinjaStmt {
    indirect enum Kind {
        case text(String)
        case output(JinjaExpr)
        case ifStmt([(JinjaExpr, [JinjaStmt])], otherwise: [JinjaStmt])
        case forStmt(target: JinjaTarget, iter: JinjaExpr, filter: JinjaExpr?, body: [JinjaStmt],
                     otherwise: [JinjaStmt], recursive: Bool)
        case set(JinjaTarget, JinjaExpr)
        case setBlock(JinjaTarget, filters: [JinjaExpr], body: [JinjaStmt])
        case macro(JinjaMacroDef)
        case callBlock(call: JinjaExpr, parameters: [(String, JinjaExpr?)], body: [JinjaStmt])
        case filterBlock([JinjaExpr], body: [JinjaStmt])
        case with([(JinjaTarget, JinjaExpr)], body: [JinjaStmt])
        /// `{% block %}`, `{% generation %}`: their body renders in place.
        case scope([JinjaStmt])
        case breakLoop
        case continueLoop
    }

    var kind: Kind
    var line: Int
    var column: Int
}
