/// An error from compiling or rendering a Jinja template. `line` and `column` (1-based) point
/// into the template source when known.
public struct JinjaError: Error, CustomStringConvertible, Equatable {
    public enum Kind: String, Sendable {
        /// The template does not parse (jinja2's TemplateSyntaxError / TemplateAssertionError).
        case syntax
        /// An undefined value was used (jinja2's UndefinedError).
        case undefined
        /// A type or value error while rendering (Python's TypeError, ValueError, ...).
        case runtime
        /// The template called `raise_exception(message)` (transformers' TemplateError).
        case raised
        /// The sandbox forbids the operation (jinja2's SecurityError).
        case security
    }

    public var kind: Kind
    /// The message, without position; for `.raised` exactly the template's message.
    public var message: String
    public var line: Int?
    public var column: Int?

    public init(_ kind: Kind, _ message: String, line: Int? = nil, column: Int? = nil) {
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
    }

    static func syntax(_ message: String, line: Int?, column: Int?) -> JinjaError {
        JinjaError(.syntax, message, line: line, column: column)
    }
    static func runtime(_ message: String) -> JinjaError { JinjaError(.runtime, message) }
    static func undefined(_ u: JinjaUndefined) -> JinjaError {
        JinjaError(u.isSecurity ? .security : .undefined, u.message)
    }

    public var description: String {
        var position = ""
        if let line {
            position = " at line \(line)"
            if let column { position += ", column \(column)" }
        }
        switch kind {
        case .syntax: return "chat template syntax error\(position): \(message)"
        case .raised: return "chat template raised an error\(position): \(message)"
        case .undefined: return "chat template error\(position): \(message)"
        case .runtime, .security: return "chat template error\(position): \(message)"
        }
    }
}
