import Foundation

/// One chat message: `role`, `content` and any extra fields (`name`, `tool_calls`, ...), in the
/// order a template sees them (role, content, then extras in the given order).
public struct ChatMessage {
    public var role: String
    public var content: JinjaValue
    public var extra: [(String, JinjaValue)]

    public init(role: String, content: String, extra: [(String, JinjaValue)] = []) {
        self.role = role
        self.content = .string(content)
        self.extra = extra
    }

    public init(role: String, content: JinjaValue, extra: [(String, JinjaValue)] = []) {
        self.role = role
        self.content = content
        self.extra = extra
    }

    public var jinjaValue: JinjaValue {
        .dict(JinjaDict([("role", .string(role)), ("content", content)] + extra))
    }
}

/// A model's Jinja chat template, rendered the way transformers' `apply_chat_template(tokenize=False)`
/// renders it: jinja2's ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the
/// `raise_exception` and `strftime_now` globals, and a `tojson` filter that does not escape
/// non-ASCII or HTML characters.
public final class ChatTemplate: @unchecked Sendable {  // immutable after init; each render has its own state
    public let source: String
    private let body: [JinjaStmt]

    /// Parses the template; throws `JinjaError` (kind `.syntax`, with line and column) when it does
    /// not compile.
    public init(source: String) throws {
        self.source = source
        self.body = try JinjaParser.parse(source)
    }

    /// Renders `messages` (dictionaries with "role", "content" and optional extra fields).
    /// Swift dictionaries have no order: each message is presented as role, content, then the other
    /// keys sorted; pass `JinjaValue`s to control the order of nested objects.
    public func render(messages: [[String: Any]], addGenerationPrompt: Bool = false,
                       bosToken: String? = nil, eosToken: String? = nil,
                       extra: [String: Any] = [:]) throws -> String {
        let list: [JinjaValue] = messages.map { m in
            var pairs: [(String, JinjaValue)] = []
            for key in ["role", "content"] where m.keys.contains(key) { pairs.append((key, JinjaValue(any: m[key]!))) }
            for key in m.keys.sorted() where key != "role" && key != "content" { pairs.append((key, JinjaValue(any: m[key]!))) }
            return .dict(JinjaDict(pairs))
        }
        return try render(messages: .list(list), addGenerationPrompt: addGenerationPrompt, bosToken: bosToken,
                          eosToken: eosToken, extra: extra.mapValues { JinjaValue(any: $0) })
    }

    public func render(messages: [ChatMessage], addGenerationPrompt: Bool = false,
                       bosToken: String? = nil, eosToken: String? = nil,
                       extra: [String: JinjaValue] = [:]) throws -> String {
        try render(messages: .list(messages.map(\.jinjaValue)), addGenerationPrompt: addGenerationPrompt,
                   bosToken: bosToken, eosToken: eosToken, extra: extra)
    }

    /// Renders with `messages` given as a JinjaValue (e.g. from `JinjaJSON.parse`). The context is
    /// what transformers passes: messages, tools=None, documents=None, add_generation_prompt, the
    /// special tokens, then `extra` (which may override any of them, e.g. `tools` or `date_string`).
    public func render(messages: JinjaValue, addGenerationPrompt: Bool = false,
                       bosToken: String? = nil, eosToken: String? = nil,
                       extra: [String: JinjaValue] = [:]) throws -> String {
        var context: [String: JinjaValue] = [
            "messages": messages,
            "tools": .none,
            "documents": .none,
            "add_generation_prompt": .bool(addGenerationPrompt),
        ]
        if let bosToken { context["bos_token"] = .string(bosToken) }
        if let eosToken { context["eos_token"] = .string(eosToken) }
        for (k, v) in extra { context[k] = v }
        let interpreter = JinjaInterpreter(globals: Self.globals())
        return try interpreter.render(body, context: context)
    }

    /// Renders with an arbitrary context (no chat defaults), for plain Jinja use.
    public func render(context: [String: JinjaValue]) throws -> String {
        try JinjaInterpreter(globals: Self.globals()).render(body, context: context)
    }

    static func globals() -> [String: JinjaValue] {
        var g: [String: JinjaValue] = [:]
        g["raise_exception"] = .function(JinjaFunction(name: "raise_exception") { args in
            let message = args.positional.first ?? args.keyword("message") ?? .string("")
            throw JinjaError(.raised, pyStr(message))
        })
        g["strftime_now"] = .function(JinjaFunction(name: "strftime_now") { args in
            guard case .string(let format)? = args.positional.first else {
                throw JinjaError.runtime("strftime_now() needs a format string")
            }
            return .string(strftimeNow(format))
        })
        g["range"] = .function(JinjaFunction(name: "range", repr: "<class 'range'>") { args in
            let ints = try args.positional.map { v -> Int in
                guard let i = v.intLike else { throw JinjaError.runtime("'\(v.typeName)' object cannot be interpreted as an integer") }
                return i
            }
            var start = 0, stop = 0, step = 1
            switch ints.count {
            case 1: stop = ints[0]
            case 2: start = ints[0]; stop = ints[1]
            case 3: start = ints[0]; stop = ints[1]; step = ints[2]
            default: throw JinjaError.runtime("range expected 1 to 3 arguments, got \(ints.count)")
            }
            if step == 0 { throw JinjaError.runtime("range() arg 3 must not be zero") }
            let count = step > 0 ? max(0, (stop - start + step - 1) / step) : max(0, (start - stop - step - 1) / -step)
            if count > 100_000 {
                throw JinjaError(.runtime, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).")
            }
            return .list((0..<count).map { .int(start + $0 * step) })
        })
        func mapping(_ args: JinjaArguments, _ function: String) throws -> JinjaDict {
            var d = JinjaDict()
            if let first = args.positional.first {
                switch first {
                case .dict(let x): d = x
                case .namespace(let ns): d = ns.attributes
                default:
                    for pair in try JinjaInterpreter(globals: [:]).iterate(first) {
                        guard case let items = try JinjaInterpreter(globals: [:]).iterate(pair), items.count == 2,
                              case .string(let k) = items[0] else {
                            throw JinjaError.runtime("\(function)(): expected a mapping or (key, value) pairs")
                        }
                        d[k] = items[1]
                    }
                }
            }
            for (k, v) in args.keywords { d[k] = v }
            return d
        }
        g["dict"] = .function(JinjaFunction(name: "dict", repr: "<class 'dict'>") { args in .dict(try mapping(args, "dict")) })
        g["namespace"] = .function(JinjaFunction(name: "namespace", repr: "<class 'jinja2.utils.Namespace'>") { args in
            .namespace(JinjaNamespace(try mapping(args, "namespace")))
        })
        g["joiner"] = .function(JinjaFunction(name: "joiner") { args in
            let sep = args.positional.first.map(pyStr) ?? args.keyword("sep").map(pyStr) ?? ", "
            var used = false
            return .function(JinjaFunction(name: "joiner") { _ in
                if used { return .string(sep) }
                used = true
                return .string("")
            })
        })
        return g
    }
}

/// `datetime.now().strftime(format)` in local time.
func strftimeNow(_ format: String) -> String {
    var t = time(nil)
    var tmValue = tm()
    localtime_r(&t, &tmValue)
    var buffer = [Int8](repeating: 0, count: 512)
    let n = strftime(&buffer, buffer.count, format, &tmValue)
    return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

// MARK: - Loading a model folder's template

public struct ChatTemplateLoadError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The chat template of a model folder and the special tokens it refers to, found the way
/// transformers finds them: `chat_template.jinja` (plus `additional_chat_templates/*.jinja`) if
/// present, else `chat_template` in tokenizer_config.json — a string, or a list of
/// `{"name", "template"}` of which "default" is used unless another name is asked for.
public struct ChatTemplateConfig: @unchecked Sendable {  // holds only immutable strings and lists
    public var template: ChatTemplate
    /// The file the template came from.
    public var origin: String
    public var bosToken: String?
    public var eosToken: String?
    /// Every named template available (the single template is named "default").
    public var availableNames: [String]
    /// What transformers passes to the template as `special_tokens_map`: bos/eos/unk/sep/pad/cls/mask
    /// tokens that are set, and `additional_special_tokens`.
    public var specialTokens: [String: JinjaValue] = [:]

    /// Renders like `tokenizer.apply_chat_template(messages, tokenize=False, ...)` for this model:
    /// the special tokens are passed along, then `extra` (e.g. `tools`, `date_string`).
    public func render(messages: JinjaValue, addGenerationPrompt: Bool = false,
                       extra: [String: JinjaValue] = [:]) throws -> String {
        var context = specialTokens
        for (k, v) in extra { context[k] = v }
        return try template.render(messages: messages, addGenerationPrompt: addGenerationPrompt, extra: context)
    }

    public func render(messages: [ChatMessage], addGenerationPrompt: Bool = false,
                       extra: [String: JinjaValue] = [:]) throws -> String {
        try render(messages: .list(messages.map(\.jinjaValue)), addGenerationPrompt: addGenerationPrompt, extra: extra)
    }

    static let specialTokenKeys = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]

    public static func load(modelDirectory: String, templateName: String? = nil) throws -> ChatTemplateConfig {
        let dir = URL(fileURLWithPath: modelDirectory)
        let fm = FileManager.default
        let configURL = dir.appendingPathComponent("tokenizer_config.json")
        var config = JinjaDict()
        if fm.fileExists(atPath: configURL.path) {
            guard case .dict(let d) = try readJSON(configURL) else {
                throw ChatTemplateLoadError("\(configURL.path): expected a JSON object")
            }
            config = d
        }

        var templates: [(String, String)] = []
        var origin = ""
        let jinjaURL = dir.appendingPathComponent("chat_template.jinja")
        if fm.fileExists(atPath: jinjaURL.path) {
            templates.append(("default", try readText(jinjaURL)))
            origin = jinjaURL.path
        } else if let value = config["chat_template"], !value.isNone {
            origin = configURL.path
            switch value {
            case .string(let s):
                templates.append(("default", s))
            case .list(let items):
                for (n, item) in items.enumerated() {
                    guard case .dict(let entry) = item, case .string(let name)? = entry["name"],
                          case .string(let text)? = entry["template"] else {
                        throw ChatTemplateLoadError(
                            "\(configURL.path): chat_template[\(n)] must be an object with string fields \"name\" and \"template\"")
                    }
                    templates.append((name, text))
                }
            default:
                throw ChatTemplateLoadError("\(configURL.path): chat_template must be a string or a list of {\"name\", \"template\"} objects, not \(value.typeName == "dict" ? "an object" : value.typeName)")
            }
        }
        let extraDir = dir.appendingPathComponent("additional_chat_templates")
        if let names = try? fm.contentsOfDirectory(atPath: extraDir.path) {
            for file in names.sorted() where file.hasSuffix(".jinja") {
                templates.append((String(file.dropLast(6)), try readText(extraDir.appendingPathComponent(file))))
            }
        }
        guard !templates.isEmpty else {
            throw ChatTemplateLoadError(
                "\(dir.path) has no chat template: expected chat_template.jinja or a \"chat_template\" entry in tokenizer_config.json (save one with transformers' tokenizer.save_pretrained, or pass the prompt with --prompt instead of chat messages)")
        }
        let wanted = templateName ?? "default"
        guard let chosen = templates.first(where: { $0.0 == wanted }) else {
            if templateName == nil {
                throw ChatTemplateLoadError("\(origin) has several chat templates (\(templates.map(\.0).joined(separator: ", "))) and none is named \"default\"; choose one by name")
            }
            throw ChatTemplateLoadError("no chat template named \"\(wanted)\" in \(dir.path); available: \(templates.map(\.0).joined(separator: ", "))")
        }

        let template: ChatTemplate
        do {
            template = try ChatTemplate(source: chosen.1)
        } catch let e as JinjaError {
            throw ChatTemplateLoadError("\(origin): chat template \"\(chosen.0)\" does not compile: \(e)")
        }

        var bos = try specialToken(config, "bos_token", configURL)
        var eos = try specialToken(config, "eos_token", configURL)
        let mapURL = dir.appendingPathComponent("special_tokens_map.json")
        if (bos == nil || eos == nil), fm.fileExists(atPath: mapURL.path), case .dict(let map) = try readJSON(mapURL) {
            if bos == nil { bos = try specialToken(map, "bos_token", mapURL) }
            if eos == nil { eos = try specialToken(map, "eos_token", mapURL) }
        }
        var result = ChatTemplateConfig(template: template, origin: origin, bosToken: bos, eosToken: eos,
                                        availableNames: templates.map(\.0))
        var map = JinjaDict()
        if fm.fileExists(atPath: mapURL.path), case .dict(let m) = try readJSON(mapURL) { map = m }
        for key in specialTokenKeys {
            if let t = try specialToken(config, key, configURL) ?? specialToken(map, key, mapURL) {
                result.specialTokens[key] = .string(t)
            }
        }
        let extraKey = "additional_special_tokens"
        if case .list(let items)? = config[extraKey] ?? map[extraKey] {
            result.specialTokens[extraKey] = .list(items.map { item -> JinjaValue in
                if case .dict(let d) = item, let c = d["content"] { return c }
                return item
            })
        }
        return result
    }

    /// A special token given as a string or as an AddedToken object `{"content": ...}`.
    static func specialToken(_ config: JinjaDict, _ key: String, _ url: URL) throws -> String? {
        switch config[key] {
        case nil, .none?: return nil
        case .string(let s)?: return s
        case .dict(let d)?:
            guard case .string(let s)? = d["content"] else {
                throw ChatTemplateLoadError("\(url.path): \(key) is an object without a string \"content\"")
            }
            return s
        case let v?:
            throw ChatTemplateLoadError("\(url.path): \(key) must be a string or an object with \"content\", not \(v.typeName)")
        }
    }

    private static func readText(_ url: URL) throws -> String {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ChatTemplateLoadError("cannot read \(url.path): \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ChatTemplateLoadError("\(url.path) is not valid UTF-8")
        }
        return text
    }

    private static func readJSON(_ url: URL) throws -> JinjaValue {
        let text = try readText(url)
        do { return try JinjaJSON.parse(text) } catch {
            throw ChatTemplateLoadError("\(url.path): \(error)")
        }
    }
}
