import ArgumentParser
import Foundation
import Generation
import Tokenizers

struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat interactively: type a message, get the reply streamed; the KV cache is reused across turns.",
        discussion: "Commands at the prompt: /reset starts a new conversation, /quit (or end of input) leaves."
    )

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var generation: GenerationOptions
    @OptionGroup var headOptions: HeadOptions
    @OptionGroup var weightOptions: WeightOptions

    @Option(help: ArgumentHelp("System message (the template's default otherwise).", valueName: "TEXT"))
    var system: String?

    func run() throws {
        do {
            let folder = try ModelFolder(path: modelOptions.model)
            let tokenizer = try Tokenizer(contentsOfFile: folder.tokenizerFile)
            let (model, head) = try headOptions.load(folder: folder, seed: generation.seed, weights: weightOptions.weights)
            let options = try generation.samplingOptions(folder: folder)
            var messages: [ChatMessage] = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
            var cache = model.emptyCache()
            var cachedIDs: [Int] = []
            let interactive = isatty(STDIN_FILENO) != 0
            while true {
                if interactive { FileHandle.standardOutput.write(Data("> ".utf8)) }
                guard let line = readLine(strippingNewline: true) else { break }
                let text = line.trimmingCharacters(in: .whitespaces)
                if text.isEmpty { continue }
                if text == "/quit" { break }
                if text == "/reset" {
                    messages = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
                    continue
                }
                messages.append(ChatMessage(role: "user", content: text))
                let prompt = try renderChat(.list(messages.map(\.jinjaValue)), folder: folder, tokenizer: tokenizer)
                // Reuse the cache up to the first token where this prompt differs from what it holds.
                let shared = zip(cachedIDs, prompt).prefix { $0 == $1 }.count
                cache.truncate(to: min(shared, prompt.count - 1))
                let detokenizer = tokenizer.makeStreamingDetokenizer(skipSpecialTokens: true)
                let generator = try TokenGenerator(
                    model: model, prompt: prompt, options: options, maxNewTokens: generation.maxTokens,
                    eosIDs: folder.eosTokenIDs, stopStrings: generation.stopStrings, cache: cache,
                    head: head, decode: { (try? detokenizer.push($0)) ?? "" })
                var reply = ""
                var announced = false
                while let token = try generator.next() {
                    if !announced, let choice = generator.headChoice {
                        announced = true
                        FileHandle.standardError.write(Data((choice.summary + "\n").utf8))
                    }
                    reply += token.text
                    FileHandle.standardOutput.write(Data(token.text.utf8))
                }
                let rest = detokenizer.finish()
                reply += rest
                FileHandle.standardOutput.write(Data((rest + "\n").utf8))
                messages.append(ChatMessage(role: "assistant", content: reply))
                cache = generator.cache
                cachedIDs = Array(generator.history.prefix(cache.length))
            }
        } catch {
            exitWithError(error)
        }
    }
}
