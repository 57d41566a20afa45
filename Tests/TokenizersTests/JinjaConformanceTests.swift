import Foundation
import Testing
import TestSupport
@testable import Tokenizers

/// Small templates rendered by transformers' own Jinja environment
/// (tools/make_chat_template_fixtures.py → jinja_cases.json): output, or error kind, message and line.
@Suite("Jinja conformance with transformers' environment")
struct JinjaConformanceTests {
    static var caseNames: [String] {
        guard let d = try? ChatGoldens.load("jinja_cases.json"), case .list(let cases)? = d["cases"] else { return [] }
        return cases.compactMap { if case .dict(let c) = $0 { return c["name"]?.stringValue } else { return nil } }
    }

    @Test("fixture is present and large") func fixture() throws {
        let d = try ChatGoldens.load("jinja_cases.json")
        guard case .list(let cases)? = d["cases"] else { Issue.record("no cases"); return }
        #expect(cases.count >= 100)
    }

    @Test("case", arguments: caseNames)
    func conformance(_ name: String) throws {
        let d = try ChatGoldens.load("jinja_cases.json")
        guard case .list(let cases)? = d["cases"],
              let item = cases.first(where: { if case .dict(let c) = $0 { return c["name"]?.stringValue == name } else { return false } }),
              case .dict(let c) = item, case .string(let source)? = c["template"] else {
            Issue.record("case \(name) missing")
            return
        }
        var context: [String: JinjaValue] = [:]
        if case .dict(let ctx)? = c["context"] { for (k, v) in ctx.pairs { context[k] = v } }
        let result = Result { try ChatTemplate(source: source).render(context: context) }
        switch (result, c["output"], c["error"]) {
        case (.success(let out), .string(let expected)?, _):
            #expect(out == expected, "\(ChatGoldens.diff(out, expected))")
        case (.failure(let error), _, .dict(let expected)?):
            guard let e = error as? JinjaError else {
                Issue.record("unexpected error type \(error)")
                return
            }
            let type = expected["type"]?.stringValue ?? ""
            #expect(e.kind == ChatGoldens.kind(forPythonError: type), "got \(e.kind) (\(e.message)), expected \(type)")
            #expect(e.message == expected["message"]?.stringValue, "got \(e.message.debugDescription)")
            if let line = expected["line"]?.intLike {
                #expect(e.line == line, "error reported at line \(e.line.map(String.init) ?? "nil"), jinja2 says \(line)")
            }
            #expect(e.line != nil, "error has no template line: \(e)")
        case (.success(let out), _, .dict(let expected)?):
            Issue.record("rendered \(out.debugDescription) but jinja2 raised \(pyRepr(.dict(expected)))")
        case (.failure(let error), _, _):
            Issue.record("failed with \(error) but jinja2 rendered \(pyRepr(c["output"] ?? .none))")
        default:
            Issue.record("case has neither output nor error")
        }
    }
}
