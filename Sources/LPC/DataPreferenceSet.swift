import Foundation
import Tokenizers

/// Length limits in tokens, with TRL's DPO truncation policy:
/// - a prompt longer than `maxPromptLength` keeps its END (the last `maxPromptLength` tokens: the
///   question and the template's generation prompt survive, the start of a long context goes);
/// - a pair whose (possibly truncated) prompt alone leaves no room for one response token under
///   `maxLength` is SKIPPED and counted;
/// - each response longer than `maxLength − prompt` keeps its START (the end of the response goes,
///   end-of-turn included).
public struct LengthOptions: Sendable, Hashable, Codable {
    /// Prompt + response, in tokens. nil: no limit.
    public var maxLength: Int?
    /// Prompt alone, in tokens. nil: no separate prompt limit.
    public var maxPromptLength: Int?

    /// TRL's DPOConfig defaults.
    public static let `default` = LengthOptions(maxLength: 1024, maxPromptLength: 512)
    public static let unlimited = LengthOptions(maxLength: nil, maxPromptLength: nil)

    public init(maxLength: Int?, maxPromptLength: Int?) {
        self.maxLength = maxLength
        self.maxPromptLength = maxPromptLength
    }

    public func validate() throws(DataError) {
        if let maxLength, maxLength < 2 {
            throw .badOption("--max-length must be at least 2 (one prompt and one response token), got \(maxLength)")
        }
        if let maxPromptLength, maxPromptLength < 1 {
            throw .badOption("--max-prompt-length must be at least 1, got \(maxPromptLength)")
        }
        if let maxLength, let maxPromptLength, maxPromptLength >= maxLength {
            throw .badOption("--max-prompt-length (\(maxPromptLength)) must be less than --max-length (\(maxLength)) to leave room for the response")
        }
    }
}

/// Turns pairs into text with the model's chat template. Policy:
/// - prompt: a string is one user message; a message list is used as is; rendered with the
///   generation prompt (`add_generation_prompt=True`);
/// - response: a string is one assistant message; a message list is the assistant turn(s) (a list
///   that starts with the prompt's messages, TRL's implicit-prompt form, has them removed);
///   the response text is the template's rendering of prompt + response messages MINUS the
///   rendering of the prompt — so it carries the template's end of turn (SmolLM2/ChatML:
///   "answer<|im_end|>\n"), as TRL's `maybe_apply_chat_template` does.
public struct PairRenderer: @unchecked Sendable {
    public let template: ChatTemplateConfig

    public init(template: ChatTemplateConfig) {
        self.template = template
    }

    public struct Rendered: Sendable, Equatable {
        public var prompt: String
        public var chosen: String
        public var rejected: String
    }

    public func render(_ pair: PreferencePair, file: String = "<data>") throws(DataError) -> Rendered {
        let promptMessages: [PairText.Message]
        switch pair.prompt {
        case let .text(text): promptMessages = [.init(role: "user", content: text)]
        case let .messages(list): promptMessages = list
        }
        let prompt = try render(promptMessages, generationPrompt: true, pair: pair, file: file, field: "prompt")
        func response(_ side: PairText, field: String) throws(DataError) -> String {
            var messages: [PairText.Message]
            switch side {
            case let .text(text): messages = [.init(role: "assistant", content: text)]
            case let .messages(list):
                messages = list
                if messages.count > promptMessages.count, Array(messages.prefix(promptMessages.count)) == promptMessages {
                    messages.removeFirst(promptMessages.count)
                }
            }
            let full = try render(promptMessages + messages, generationPrompt: false, pair: pair, file: file, field: field)
            guard full.hasPrefix(prompt) else {
                throw .badLine(file: file, line: pair.line, field: field,
                               reason: "the chat template renders prompt + \(field) as text that does not start with its rendering of the prompt alone, so the response cannot be separated (the template changes earlier turns when a reply follows); give prompt and \(field) as plain strings, or use a template that renders turns independently")
            }
            let text = String(full.dropFirst(prompt.count))
            guard !text.isEmpty else {
                throw .badLine(file: file, line: pair.line, field: field, reason: "empty response after rendering with the chat template")
            }
            return text
        }
        return Rendered(prompt: prompt, chosen: try response(pair.chosen, field: "chosen"),
                        rejected: try response(pair.rejected, field: "rejected"))
    }

    private func render(_ messages: [PairText.Message], generationPrompt: Bool, pair: PreferencePair,
                        file: String, field: String) throws(DataError) -> String {
        let list: [JinjaValue] = messages.map { m in
            var entries: [(String, JinjaValue)] = [("role", .string(m.role)), ("content", .string(m.content))]
            for key in m.extra.keys.sorted() {
                let value = (try? JSONSerialization.jsonObject(with: Data(m.extra[key]!.utf8), options: [.fragmentsAllowed])) ?? NSNull()
                entries.append((key, JinjaValue(any: value)))
            }
            return .dict(JinjaDict(entries))
        }
        do {
            return try template.render(messages: .list(list), addGenerationPrompt: generationPrompt)
        } catch {
            throw .badLine(file: file, line: pair.line, field: field, reason: "the chat template (\(template.origin)) failed: \(error)")
        }
    }
}

/// A pair ready for the backbone: token ids of the prompt and of each response (response ids do
/// not repeat the prompt). The model sees prompt + chosen and prompt + rejected.
public struct TokenizedPair: Sendable, Equatable, Hashable {
    public var prompt: [Int]
    public var chosen: [Int]
    public var rejected: [Int]
    public var source: String?
    public var line: Int

    public init(prompt: [Int], chosen: [Int], rejected: [Int], source: String? = nil, line: Int = 0) {
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
        self.source = source
        self.line = line
    }
}

/// What loading did: counts for the report.
public struct DataStats: Sendable, Equatable, Codable, CustomStringConvertible {
    public var lines = 0
    public var pairs = 0
    /// Pairs dropped because the prompt alone reaches `maxLength`.
    public var skippedPromptTooLong = 0
    public var truncatedPrompts = 0
    public var truncatedResponses = 0
    /// Pairs whose chosen and rejected ids are identical after truncation (no signal; kept).
    public var identicalResponses = 0
    public var bySource: [String: Int] = [:]
    public var promptTokens = 0
    public var responseTokens = 0

    public var description: String {
        var text = "\(pairs) pairs from \(lines) lines"
        if skippedPromptTooLong > 0 { text += ", \(skippedPromptTooLong) skipped (prompt alone reaches --max-length)" }
        if truncatedPrompts > 0 { text += ", \(truncatedPrompts) prompts truncated (kept the end)" }
        if truncatedResponses > 0 { text += ", \(truncatedResponses) responses truncated (kept the start)" }
        if identicalResponses > 0 { text += ", \(identicalResponses) with identical responses" }
        if pairs > 0 {
            text += String(format: "; mean prompt %.1f tokens, mean response %.1f tokens",
                           Double(promptTokens) / Double(pairs), Double(responseTokens) / Double(2 * pairs))
        }
        if !bySource.isEmpty {
            text += "; sources: " + bySource.keys.sorted().map { "\($0) \(bySource[$0]!)" }.joined(separator: ", ")
        }
        return text
    }
}

/// A preference file rendered, tokenized and truncated.
public struct PreferenceDataset: Sendable {
    public var file: String
    public var pairs: [TokenizedPair]
    public var stats: DataStats
    public var lengths: LengthOptions

    /// Reads `file`, renders every pair with `renderer`, tokenizes (no special tokens added: the
    /// template writes them) and applies `lengths`. Throws `DataError` naming file, line and field.
    public static func load(file: String, renderer: PairRenderer, tokenizer: Tokenizer,
                            lengths: LengthOptions = .default) throws(DataError) -> PreferenceDataset {
        try make(pairs: PreferencePair.read(file: file), file: file, renderer: renderer, tokenizer: tokenizer, lengths: lengths)
    }

    public static func make(pairs raw: [PreferencePair], file: String, renderer: PairRenderer, tokenizer: Tokenizer,
                            lengths: LengthOptions) throws(DataError) -> PreferenceDataset {
        try lengths.validate()
        var stats = DataStats()
        stats.lines = raw.count
        var pairs: [TokenizedPair] = []
        for pair in raw {
            let text = try renderer.render(pair, file: file)
            func encode(_ s: String, field: String) throws(DataError) -> [Int] {
                do {
                    return try tokenizer.encode(s, addSpecialTokens: false)
                } catch {
                    throw .badLine(file: file, line: pair.line, field: field, reason: "cannot tokenize: \(error)")
                }
            }
            var prompt = try encode(text.prompt, field: "prompt")
            var chosen = try encode(text.chosen, field: "chosen")
            var rejected = try encode(text.rejected, field: "rejected")
            if let limit = lengths.maxPromptLength, prompt.count > limit {
                prompt = Array(prompt.suffix(limit))
                stats.truncatedPrompts += 1
            }
            if let limit = lengths.maxLength {
                if prompt.count >= limit {
                    stats.skippedPromptTooLong += 1
                    continue
                }
                let room = limit - prompt.count
                if chosen.count > room { chosen = Array(chosen.prefix(room)); stats.truncatedResponses += 1 }
                if rejected.count > room { rejected = Array(rejected.prefix(room)); stats.truncatedResponses += 1 }
            }
            if chosen == rejected { stats.identicalResponses += 1 }
            stats.pairs += 1
            stats.promptTokens += prompt.count
            stats.responseTokens += chosen.count + rejected.count
            if let source = pair.source { stats.bySource[source, default: 0] += 1 }
            pairs.append(TokenizedPair(prompt: prompt, chosen: chosen, rejected: rejected, source: pair.source, line: pair.line))
        }
        guard !pairs.isEmpty else {
            throw .noPairs(file: file, reason: "all \(stats.lines) pairs were skipped because their prompt alone reaches --max-length \(lengths.maxLength ?? 0); raise --max-length or set --max-prompt-length to truncate prompts")
        }
        return PreferenceDataset(file: file, pairs: pairs, stats: stats, lengths: lengths)
    }
}

extension PreferenceDataset {
    /// Loads `file` with the tokenizer and chat template of a model folder (tokenizer.json,
    /// tokenizer_config.json or chat_template.jinja).
    public static func load(file: String, modelDirectory: String, lengths: LengthOptions = .default) throws -> PreferenceDataset {
        let tokenizer = try Tokenizer(contentsOfFile: modelDirectory + "/tokenizer.json")
        let template = try ChatTemplateConfig.load(modelDirectory: modelDirectory)
        return try load(file: file, renderer: PairRenderer(template: template), tokenizer: tokenizer, lengths: lengths)
    }

    /// The first `count` pairs (statistics recounted), e.g. for a quick run.
    public func prefix(_ count: Int) -> PreferenceDataset {
        var copy = self
        copy.pairs = Array(pairs.prefix(count))
        var stats = DataStats()
        stats.lines = self.stats.lines
        stats.skippedPromptTooLong = self.stats.skippedPromptTooLong
        for pair in copy.pairs {
            stats.pairs += 1
            stats.promptTokens += pair.prompt.count
            stats.responseTokens += pair.chosen.count + pair.rejected.count
            if pair.chosen == pair.rejected { stats.identicalResponses += 1 }
            if let source = pair.source { stats.bySource[source, default: 0] += 1 }
        }
        stats.truncatedPrompts = self.stats.truncatedPrompts
        stats.truncatedResponses = self.stats.truncatedResponses
        copy.stats = stats
        return copy
    }
}
