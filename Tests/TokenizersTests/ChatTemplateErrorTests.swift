import Foundation
import Testing
import TestSupport
@testable import Tokenizers

/// Bad templates and bad model folders: every error is a clear message that names the template
/// line (and column) or the file and field at fault.
@Suite("Chat template errors and loading")
struct ChatTemplateErrorTests {
    private func syntaxError(_ source: String) -> JinjaError? {
        do {
            _ = try ChatTemplate(source: source)
            return nil
        } catch let e as JinjaError {
            return e
        } catch {
            return nil
        }
    }

    private func renderError(_ source: String, _ messages: [[String: Any]] = [["role": "user", "content": "hi"]]) -> JinjaError? {
        do {
            _ = try ChatTemplate(source: source).render(messages: messages)
            return nil
        } catch let e as JinjaError {
            return e
        } catch {
            return nil
        }
    }

    @Test("syntax errors name the line and column", arguments: [
        ("{% for m in messages %}\n{{ m.content }}\n{% if m.role == %}x{% endif %}\n{% endfor %}", 3, "unexpected 'end of statement block'"),
        ("line 1\nline 2\n{{ 1 + }}", 3, "unexpected 'end of print statement'"),
        ("line 1\n{% if %}{% endif %}", 2, "Expected an expression, got 'end of statement block'"),
        ("{% for m in messages %}\n{{ m }}\n", 2, "Unexpected end of template"),
        ("{% if true %}\n\n\n{% endfor %}", 4, "Encountered unknown tag 'endfor'"),
        ("ok\n{{ 'never closed }}", 2, "unexpected char"),
        ("a\nb\nc\n{{ x | nosuchfilter }}", 4, "No filter named 'nosuchfilter'"),
        ("{{ x is nosuchtest }}", 1, "No test named 'nosuchtest'"),
        ("{% frobnicate %}", 1, "Encountered unknown tag 'frobnicate'"),
        ("a {# comment", 1, "Missing end of comment tag"),
        ("\n\n{{ (1, 2]) }}", 3, "unexpected ']'"),
        ("{% include 'other.jinja' %}", 1, "not supported"),
    ])
    func syntaxErrors(_ source: String, _ line: Int, _ fragment: String) throws {
        let e = try #require(syntaxError(source), "expected a syntax error for \(source.debugDescription)")
        #expect(e.kind == .syntax)
        #expect(e.line == line, "line \(e.line.map(String.init) ?? "nil") for \(source.debugDescription): \(e)")
        #expect(e.column != nil)
        #expect(e.message.contains(fragment), "\(e.message)")
        #expect(e.description.contains("line \(line)"), "\(e.description)")
    }

    @Test("the column points at the offending token")
    func column() throws {
        let e = try #require(syntaxError("{{ a }}\n  {{ 1 + }}"))
        #expect(e.line == 2)
        #expect(e.column == 10)  // the "}}" where an expression was expected
    }

    @Test("runtime errors name the line")
    func runtimeErrors() throws {
        var e = try #require(renderError("{% for m in messages %}\n{{ m.content + 1 }}\n{% endfor %}"))
        #expect(e.kind == .runtime)
        #expect(e.line == 2)
        #expect(e.message == "can only concatenate str (not \"int\") to str")

        e = try #require(renderError("x\n{{ messages[0].nothing.deeper }}"))
        #expect(e.kind == .undefined)
        #expect(e.line == 2)
        #expect(e.message == "'dict object' has no attribute 'nothing'")

        e = try #require(renderError("\n\n{% for m in messages %}{{ raise_exception('No ' ~ m.role ~ ' messages, please') }}{% endfor %}"))
        #expect(e.kind == .raised)
        #expect(e.line == 3)
        #expect(e.message == "No user messages, please")
        #expect(e.description.contains("line 3") && e.description.contains("No user messages, please"))

        e = try #require(renderError("{% if false %}{{ x | nosuchfilter }}{% endif %}\n{% if true %}{{ x | nosuchfilter }}{% endif %}"))
        #expect(e.kind == .runtime)
        #expect(e.message == "No filter named 'nosuchfilter' found.")
        #expect(e.line == 2)
    }

    @Test("undefined values print as nothing and are falsy, like jinja2's default Undefined")
    func undefinedValues() throws {
        let t = try ChatTemplate(source: "[{{ nothing }}][{{ messages[0].missing }}][{% if nothing %}yes{% else %}no{% endif %}][{{ nothing | length }}][{{ nothing is defined }}]")
        #expect(try t.render(messages: [["role": "user", "content": "x"]]) == "[][][no][0][False]")
    }

    @Test("messages as Swift dictionaries, typed messages and JSON render alike")
    func apiForms() throws {
        let source = try String(contentsOfFile: Fixtures.path("chat_templates/llama3.jinja"), encoding: .utf8)
        let t = try ChatTemplate(source: source)
        let expected = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi  there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        let a = try t.render(messages: [["role": "system", "content": "Be brief."], ["role": "user", "content": " Hi  there\n"]],
                             addGenerationPrompt: true, bosToken: "<|begin_of_text|>", eosToken: "<|eot_id|>")
        let b = try t.render(messages: [ChatMessage(role: "system", content: "Be brief."), ChatMessage(role: "user", content: " Hi  there\n")],
                             addGenerationPrompt: true, bosToken: "<|begin_of_text|>", eosToken: "<|eot_id|>")
        let c = try t.render(messages: try JinjaJSON.parse(#"[{"role": "system", "content": "Be brief."}, {"role": "user", "content": " Hi  there\n"}]"#),
                             addGenerationPrompt: true, bosToken: "<|begin_of_text|>", eosToken: "<|eot_id|>")
        #expect(a == expected)
        #expect(b == expected)
        #expect(c == expected)
    }

    @Test("extra context reaches the template and tools default to none")
    func extraContext() throws {
        let t = try ChatTemplate(source: "{{ tools is none }}|{{ documents is none }}|{{ custom }}|{{ flag }}|{{ bos_token is defined }}")
        #expect(try t.render(messages: [[String: Any]](), extra: ["custom": "value", "flag": true]) == "True|True|value|True|False")
    }

    // MARK: loading a model folder

    private func folder(_ files: [String: String]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("chat-template-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (name, text) in files {
            let url = dir.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        return dir.path
    }

    @Test("template from tokenizer_config.json with AddedToken-style special tokens")
    func loadFromConfig() throws {
        let dir = try folder(["tokenizer_config.json": #"""
            {"bos_token": {"__type": "AddedToken", "content": "<s>", "lstrip": false}, "eos_token": "</s>",
             "chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}"}
            """#])
        let config = try ChatTemplateConfig.load(modelDirectory: dir)
        #expect(config.bosToken == "<s>")
        #expect(config.eosToken == "</s>")
        #expect(config.specialTokens.keys.sorted() == ["bos_token", "eos_token"])
        #expect(try config.render(messages: [ChatMessage(role: "user", content: "hi")]) == "<s>[user]hi</s>")
        #expect(config.origin.hasSuffix("tokenizer_config.json"))
        let out = try config.template.render(messages: [["role": "user", "content": "hi"]], bosToken: config.bosToken, eosToken: config.eosToken)
        #expect(out == "<s>[user]hi</s>")
    }

    @Test("chat_template.jinja wins over tokenizer_config.json")
    func loadJinjaFile() throws {
        let dir = try folder([
            "tokenizer_config.json": #"{"eos_token": "<|im_end|>", "chat_template": "from config"}"#,
            "chat_template.jinja": "from file {{ eos_token }}\n",
        ])
        let config = try ChatTemplateConfig.load(modelDirectory: dir)
        #expect(config.origin.hasSuffix("chat_template.jinja"))
        #expect(try config.template.render(messages: [[String: Any]](), eosToken: config.eosToken) == "from file <|im_end|>")
    }

    @Test("a list of named templates: default unless another name is asked for")
    func loadNamed() throws {
        let dir = try folder(["tokenizer_config.json": #"""
            {"chat_template": [{"name": "default", "template": "D"}, {"name": "tool_use", "template": "T"}]}
            """#])
        #expect(try ChatTemplateConfig.load(modelDirectory: dir).template.render(context: [:]) == "D")
        let tool = try ChatTemplateConfig.load(modelDirectory: dir, templateName: "tool_use")
        #expect(try tool.template.render(context: [:]) == "T")
        #expect(tool.availableNames == ["default", "tool_use"])
        #expect(throws: ChatTemplateLoadError.self) { try ChatTemplateConfig.load(modelDirectory: dir, templateName: "rag") }

        let noDefault = try folder(["tokenizer_config.json": #"{"chat_template": [{"name": "a", "template": "A"}]}"#])
        do {
            _ = try ChatTemplateConfig.load(modelDirectory: noDefault)
            Issue.record("expected an error")
        } catch let e as ChatTemplateLoadError {
            #expect(e.description.contains("none is named \"default\""))
        }
    }

    @Test("bad model folders give errors that name the file and the problem", arguments: [
        ([String: String](), "no chat template"),
        (["tokenizer_config.json": #"{"eos_token": "</s>"}"#], "chat_template.jinja"),
        (["tokenizer_config.json": #"{"chat_template": 42}"#], "chat_template must be a string"),
        (["tokenizer_config.json": #"{"chat_template": [{"name": "default"}]}"#], "chat_template[0]"),
        (["tokenizer_config.json": #"{"chat_template": "x", "bos_token": 7}"#], "bos_token must be"),
        (["tokenizer_config.json": #"{"chat_template": "x", "eos_token": {"lstrip": true}}"#], "eos_token is an object without"),
        (["tokenizer_config.json": #"{"chat_template": "x",,}"#], "tokenizer_config.json: invalid JSON at line 1"),
        (["tokenizer_config.json": #"{"chat_template": "line1\n{% for x in y %}"}"#], "line 2"),
    ])
    func badFolders(_ files: [String: String], _ fragment: String) throws {
        let dir = try folder(files)
        do {
            _ = try ChatTemplateConfig.load(modelDirectory: dir)
            Issue.record("expected an error for \(files)")
        } catch let e as ChatTemplateLoadError {
            #expect(e.description.contains(fragment), "\(e.description)")
        }
    }

    @Test("the SmolLM2 model folder, when present, loads and matches its golden")
    func smolLM2Folder() throws {
        let dir = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("models/SmolLM2-135M-Instruct").path
        guard FileManager.default.fileExists(atPath: dir + "/tokenizer_config.json") else { return }
        let config = try ChatTemplateConfig.load(modelDirectory: dir)
        let golden = try String(contentsOfFile: Fixtures.path("chat_templates/smollm2.jinja"), encoding: .utf8)
        #expect(config.template.source == golden)
        let out = try config.render(messages: [ChatMessage(role: "user", content: "What is the capital of France?")],
                                    addGenerationPrompt: true)
        #expect(config.specialTokens["eos_token"]?.stringValue == "<|im_end|>")
        #expect(out == "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
    }
}

@Suite("Chat template inputs from Swift values")
struct ChatTemplateInputTests {
    @Test("JSONSerialization values keep their types (bool vs int vs float vs null)")
    func jsonSerializationValues() throws {
        let data = Data(#"[{"role": "user", "content": "x", "flag": true, "n": 1, "zero": 0, "f": 1.5, "nothing": null}]"#.utf8)
        let messages = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        let t = try ChatTemplate(source: "{% set m = messages[0] %}{{ m.flag is boolean }}{{ m.n is integer }}{{ m.zero is integer }}{{ m.f is float }}{{ m.nothing is none }}|{{ m.flag }} {{ m.n }} {{ m.zero }} {{ m.f }} {{ m.nothing }}")
        #expect(try t.render(messages: messages) == "TrueTrueTrueTrueTrue|True 1 0 1.5 None")
    }

    @Test("Swift optionals and nested collections")
    func swiftValues() throws {
        let maybe: String? = nil
        let t = try ChatTemplate(source: "{{ a is none }}{{ b }}{{ c|tojson }}{{ d is boolean }}")
        let out = try t.render(messages: [[String: Any]](), extra: ["a": maybe as Any, "b": [1, 2] as [Int], "c": ["z": 1, "a": [true, 2.5]] as [String: Any], "d": false])
        #expect(out == #"True[1, 2]{"a": [true, 2.5], "z": 1}True"#)
    }
}
