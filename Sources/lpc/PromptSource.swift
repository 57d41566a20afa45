import ArgumentParser
import Foundation
import Generation
import Tokenizers

/// The three ways to give a prompt: text (rendered as one user turn with the chat template),
/// a chat message list, or token ids as they are.
struct PromptOptions: ParsableArguments {
    @Option(help: "Prompt text, sent as one user message through the model's chat template.")
    var prompt: String?

    @Option(help: ArgumentHelp("A JSON file with a list of chat messages [{\"role\": …, \"content\": …}, …].", valueName: "FILE.json"))
    var messages: String?

    @Option(name: .customLong("prompt-ids-file"), help: ArgumentHelp("A JSON file with an array of token ids, used as they are (no template).", valueName: "FILE"))
    var promptIDsFile: String?

    @Flag(name: .customLong("no-chat-template"), help: "Encode --prompt as plain text, without the chat template.")
    var noChatTemplate = false

    @Option(help: ArgumentHelp("System message put before --prompt (the template's default otherwise).", valueName: "TEXT"))
    var system: String?

    func validate() throws {
        let given = [prompt != nil, messages != nil, promptIDsFile != nil].filter { $0 }.count
        guard given == 1 else { throw ValidationError("give exactly one of --prompt, --messages or --prompt-ids-file") }
    }

    /// The prompt's token ids.
    func tokenIDs(folder: ModelFolder, tokenizer: Tokenizer) throws -> [Int] {
        if let promptIDsFile {
            let data = try readFile(promptIDsFile)
            guard let ids = (try? JSONSerialization.jsonObject(with: data)) as? [NSNumber] else {
                throw CLIError("\(promptIDsFile): expected a JSON array of token ids, e.g. [1, 2, 3]")
            }
            return ids.map(\.intValue)
        }
        var chat: [JinjaValue]
        if let messages {
            let data = try readFile(messages)
            // Validate the shape with Foundation, then keep the file's key order for the template.
            guard let list = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else {
                throw CLIError("\(messages): expected a JSON array of messages [{\"role\": \"user\", \"content\": \"…\"}]")
            }
            for (index, message) in list.enumerated() where !(message["role"] is String) || message["content"] == nil {
                throw CLIError("\(messages): message \(index) needs a string 'role' and a 'content'")
            }
            guard case let .list(parsed) = try JinjaJSON.parse([UInt8](data)) else {
                throw CLIError("\(messages): expected a JSON array of messages")
            }
            chat = parsed
        } else {
            if noChatTemplate { return try tokenizer.encode(prompt ?? "", addSpecialTokens: true) }
            chat = [ChatMessage(role: "user", content: prompt ?? "").jinjaValue]
        }
        if let system { chat.insert(ChatMessage(role: "system", content: system).jinjaValue, at: 0) }
        return try renderChat(.list(chat), folder: folder, tokenizer: tokenizer)
    }
}

/// Renders messages with the folder's chat template (generation prompt added, the tokenizer
/// config's special tokens in scope, as transformers does) and encodes them without adding special
/// tokens again (the template writes them).
func renderChat(_ messages: JinjaValue, folder: ModelFolder, tokenizer: Tokenizer) throws -> [Int] {
    let config = try ChatTemplateConfig.load(modelDirectory: folder.path)
    let text = try config.render(messages: messages, addGenerationPrompt: true)
    return try tokenizer.encode(text, addSpecialTokens: false)
}

func readFile(_ path: String) throws -> Data {
    do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
        throw CLIError("cannot read '\(path)': \((error as NSError).localizedDescription)")
    }
}

struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
