import ArgumentParser
import Foundation
import Generation
import Tokenizers

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a prompt, streamed to stdout as it is produced.",
        discussion: """
        Examples:
          lpc generate --prompt "What is the capital of France?"
          lpc generate --model DIR --messages chat.json --temperature 0.7 --top-p 0.9 --seed 1
          lpc generate --prompt-ids-file ids.json --greedy --max-tokens 32 --format jsonl
          lpc generate --prompt "Tell me about Paris." --head models/lpc-head --code auto
        With --head, generation is conditioned on a latent preference code chosen once at prefill
        (--code auto|sample|mix|K); jsonl then starts with {"type":"code","mode","code","top":[…]}.
        With --format jsonl, each token is one line {"type":"token","id","text","logprob"}
        (logprob: log-softmax of the model's raw logits) and a last line {"type":"stats",…}.
        """
    )

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var promptOptions: PromptOptions
    @OptionGroup var generation: GenerationOptions
    @OptionGroup var headOptions: HeadOptions
    @OptionGroup var weightOptions: WeightOptions

    @Option(help: "Output: text (streamed) or jsonl (one object per token, then stats).")
    var format: OutputFormat = .text

    func run() throws {
        do {
            let folder = try ModelFolder(path: modelOptions.model)
            let tokenizer = try Tokenizer(contentsOfFile: folder.tokenizerFile)
            let prompt = try promptOptions.tokenIDs(folder: folder, tokenizer: tokenizer)
            let (model, head) = try headOptions.load(folder: folder, seed: generation.seed, weights: weightOptions.weights)
            let detokenizer = tokenizer.makeStreamingDetokenizer(skipSpecialTokens: true)
            let generator = try TokenGenerator(
                model: model, prompt: prompt, options: try generation.samplingOptions(folder: folder),
                maxNewTokens: generation.maxTokens, eosIDs: generation.ignoreEOS ? [] : folder.eosTokenIDs,
                stopStrings: generation.stopStrings, head: head, decode: { (try? detokenizer.push($0)) ?? "" })
            try stream(generator, finish: detokenizer.finish)
        } catch {
            exitWithError(error)
        }
    }

    private func stream(_ generator: TokenGenerator, finish: () -> String) throws {
        var announced = false
        while let token = try generator.next() {
            if !announced, let choice = generator.headChoice {
                announced = true
                switch format {
                case .text: FileHandle.standardError.write(Data((choice.summary + "\n").utf8))
                case .jsonl: printJSONLine(choice.jsonObject)
                }
            }
            switch format {
            case .text:
                FileHandle.standardOutput.write(Data(token.text.utf8))
            case .jsonl:
                printJSONLine(["type": "token", "id": token.id, "text": token.text, "logprob": Double(token.logprob)])
            }
        }
        let rest = finish()
        let stats = generator.stats
        switch format {
        case .text:
            FileHandle.standardOutput.write(Data((rest + "\n").utf8))
            let decodeRate = stats.generatedTokens > 1 ? stats.decodeSeconds * 1000 / Double(stats.generatedTokens - 1) : 0
            FileHandle.standardError.write(Data(String(
                format: "[%d prompt tokens in %.2f s, %d generated at %.1f ms/token, stop: %@]\n",
                stats.promptTokens, stats.prefillSeconds, stats.generatedTokens, decodeRate, stats.stopReason).utf8))
        case .jsonl:
            if !rest.isEmpty { printJSONLine(["type": "text", "text": rest]) }
            printJSONLine(["type": "stats", "prompt_tokens": stats.promptTokens, "generated_tokens": stats.generatedTokens,
                           "stop_reason": stats.stopReason, "prefill_s": stats.prefillSeconds, "decode_s": stats.decodeSeconds])
        }
    }
}
