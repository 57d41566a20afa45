import Foundation
import Testing
import TestSupport
@testable import Tokenizers

/// Goldens from tools/make_chat_template_fixtures.py: what transformers' apply_chat_template
/// returns (or raises) for each model family's template and conversation.
enum ChatGoldens {
    static func load(_ name: String) throws -> JinjaDict {
        let path = Fixtures.path("chat_templates/\(name)")
        guard FileManager.default.fileExists(atPath: path) else {
            throw FixtureError("fixture 'chat_templates/\(name)' is missing; run tools/make_chat_template_fixtures.py")
        }
        guard case .dict(let d) = try JinjaJSON.parse(try String(contentsOfFile: path, encoding: .utf8)) else {
            throw FixtureError("\(name): expected a JSON object")
        }
        return d
    }

    static var families: [String] {
        guard let g = try? load("goldens.json"), case .dict(let f)? = g["families"] else { return [] }
        return f.keys
    }

    /// The error kind this interpreter reports for a Python exception type.
    static func kind(forPythonError type: String) -> JinjaError.Kind {
        switch type {
        case "TemplateError": return .raised
        case "UndefinedError": return .undefined
        case "SecurityError": return .security
        case "TemplateSyntaxError", "TemplateAssertionError": return .syntax
        default: return .runtime
        }
    }

    /// Shows where two strings first differ.
    static func diff(_ actual: String, _ expected: String) -> String {
        let a = Array(actual.unicodeScalars), e = Array(expected.unicodeScalars)
        var i = 0
        while i < a.count && i < e.count && a[i] == e[i] { i += 1 }
        func window(_ s: [Unicode.Scalar]) -> String {
            String(String.UnicodeScalarView(s[max(0, i - 20)..<min(s.count, i + 40)])).debugDescription
        }
        return "first difference at scalar \(i): got \(window(a)), expected \(window(e)) (lengths \(a.count) vs \(e.count))"
    }
}

@Suite("Chat template goldens (transformers apply_chat_template)")
struct ChatTemplateGoldenTests {
    @Test("golden file covers the four required families with at least 8 conversations each")
    func coverage() throws {
        let g = try ChatGoldens.load("goldens.json")
        guard case .dict(let families)? = g["families"] else { Issue.record("no families"); return }
        for family in ["smollm2", "llama3", "mistral", "zephyr"] {
            guard case .dict(let f)? = families[family], case .list(let cases)? = f["cases"] else {
                Issue.record("family \(family) missing from goldens.json")
                continue
            }
            #expect(cases.count >= 8, "\(family) has only \(cases.count) conversations")
        }
        // Each of these templates raises for some conversation, and the golden records the message.
        for family in ["mistral", "mistral_v03", "llama31"] {
            guard case .dict(let f)? = families[family], case .list(let cases)? = f["cases"] else { continue }
            let raised = cases.filter {
                guard case .dict(let c) = $0, case .dict(let e)? = c["error"] else { return false }
                return e["type"]?.stringValue == "TemplateError"
            }
            #expect(!raised.isEmpty, "\(family) has no raise_exception golden")
        }
    }

    @Test("renders byte-identically to transformers", arguments: ChatGoldens.families)
    func family(_ family: String) throws {
        let g = try ChatGoldens.load("goldens.json")
        guard case .dict(let families)? = g["families"], case .dict(let f)? = families[family],
              case .string(let file)? = f["template_file"], case .list(let cases)? = f["cases"] else {
            Issue.record("malformed goldens for \(family)")
            return
        }
        let source = try String(contentsOfFile: Fixtures.path("chat_templates/\(file)"), encoding: .utf8)
        let template = try ChatTemplate(source: source)
        let bos = f["bos_token"]?.stringValue
        let eos = f["eos_token"]?.stringValue
        var checked = 0
        for item in cases {
            guard case .dict(let c) = item, case .string(let name)? = c["name"], let messages = c["messages"] else {
                Issue.record("malformed case in \(family)")
                continue
            }
            var extra: [String: JinjaValue] = [:]
            if case .dict(let e)? = c["extra"] { for (k, v) in e.pairs { extra[k] = v } }
            let agp = c["add_generation_prompt"]?.truthy ?? false
            let result = Result { try template.render(messages: messages, addGenerationPrompt: agp, bosToken: bos, eosToken: eos, extra: extra) }
            switch (result, c["output"], c["error"]) {
            case (.success(let out), .string(let expected)?, _):
                #expect(out == expected, "\(family)/\(name): \(ChatGoldens.diff(out, expected))")
            case (.failure(let error), _, .dict(let expected)?):
                let type = expected["type"]?.stringValue ?? ""
                let message = expected["message"]?.stringValue ?? ""
                guard let e = error as? JinjaError else {
                    Issue.record("\(family)/\(name): unexpected error type \(error)")
                    break
                }
                #expect(e.kind == ChatGoldens.kind(forPythonError: type), "\(family)/\(name): got \(e.kind), expected \(type)")
                #expect(e.message == message, "\(family)/\(name): got message \(e.message.debugDescription), expected \(message.debugDescription)")
                #expect(e.line != nil, "\(family)/\(name): error has no template line")
            case (.success(let out), _, .dict(let expected)?):
                Issue.record("\(family)/\(name): rendered \(out.debugDescription) but transformers raised \(pyRepr(.dict(expected)))")
            case (.failure(let error), _, _):
                Issue.record("\(family)/\(name): failed with \(error) but transformers rendered it")
            default:
                Issue.record("\(family)/\(name): golden has neither output nor error")
            }
            checked += 1
        }
        #expect(checked == cases.count)
    }

    @Test("raise_exception carries the template's message and line")
    func raiseException() throws {
        let source = try String(contentsOfFile: Fixtures.path("chat_templates/mistral.jinja"), encoding: .utf8)
        let template = try ChatTemplate(source: source)
        do {
            _ = try template.render(messages: [["role": "user", "content": "a"], ["role": "user", "content": "b"]],
                                    bosToken: "<s>", eosToken: "</s>")
            Issue.record("expected raise_exception")
        } catch let e as JinjaError {
            #expect(e.kind == .raised)
            #expect(e.message == "Conversation roles must alternate user/assistant/user/assistant/...")
            #expect(e.line == 1)
            #expect(e.description.contains("line 1"))
        }
    }
}
