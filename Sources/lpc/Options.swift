import ArgumentParser
import Foundation
import Generation
import Runtime

/// Where the model is: shared by every command that runs one.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Model folder: model.onnx, tokenizer.json, tokenizer_config.json, config.json, generation_config.json.", valueName: "DIR"))
    var model: String = "models/SmolLM2-135M-Instruct"
}

/// How the product weights are stored in memory, shared by `generate` and `chat` (`run` and `bench`
/// have their own `--weights`).
struct WeightOptions: ParsableArguments {
    @Option(help: "Weight storage: auto (f32 at load, then packed to f24 where exact by a background thread: f32's output, faster decode), f32 (as exported, used in place), f24 (packed before the first run: ~0.3 s more load, or use an `lpc optimize --weights f24` folder), f16, bf16 or i16 (rounded to 16 bits; converted at load).")
    var weights: WeightStorage = .auto
}

/// Sampling and stopping controls, shared by `generate` and `chat`.
struct GenerationOptions: ParsableArguments {
    @Option(name: .customLong("max-tokens"), help: "Maximum number of new tokens.")
    var maxTokens: Int = 256

    @Option(help: "Sampling temperature; 0 is greedy. Default: greedy, unless generation_config.json sets do_sample.")
    var temperature: Float?

    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (0: off).")
    var topK: Int?

    @Option(name: .customLong("top-p"), help: "Nucleus sampling: keep the most likely tokens up to this probability mass (1: off).")
    var topP: Float?

    @Option(name: .customLong("min-p"), help: "Drop tokens below this fraction of the top token's probability (0: off).")
    var minP: Float = 0

    @Option(name: .customLong("repetition-penalty"), help: "CTRL repetition penalty (1: off).")
    var repetitionPenalty: Float?

    @Option(name: .customLong("presence-penalty"), help: "Subtracted once from every generated token's logit.")
    var presencePenalty: Float = 0

    @Option(name: .customLong("frequency-penalty"), help: "Subtracted per occurrence of a generated token.")
    var frequencyPenalty: Float = 0

    @Option(name: .customLong("logit-bias"), help: ArgumentHelp("Add BIAS to token ID's logit (repeatable; -inf bans it).", valueName: "ID=BIAS"))
    var logitBias: [String] = []

    @Option(help: "Random seed: the same seed and options give the same tokens.")
    var seed: UInt64 = 0

    @Flag(help: "Greedy decoding (argmax), whatever the temperature.")
    var greedy = false

    @Option(name: .customLong("stop"), help: ArgumentHelp("Stop when the output contains this text (repeatable).", valueName: "TEXT"))
    var stopStrings: [String] = []

    @Flag(name: .customLong("ignore-eos"), help: "Do not stop at the end-of-sequence token.")
    var ignoreEOS = false

    func validate() throws {
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be ≥ 0") }
        _ = try parsedLogitBias()
        do { try samplingOptions(folder: nil).validate() } catch let error as GenerationError { throw ValidationError(error.description) }
    }

    func parsedLogitBias() throws -> [Int: Float] {
        var bias: [Int: Float] = [:]
        for entry in logitBias {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let id = Int(parts[0]), let value = Float(parts[1]) else {
                throw ValidationError("--logit-bias '\(entry)' must look like ID=BIAS, e.g. 42=-inf or 7=2.5")
            }
            bias[id] = value
        }
        return bias
    }

    /// The request's options: command-line values over generation_config.json's defaults.
    func samplingOptions(folder: ModelFolder?) throws -> SamplingOptions {
        var options = SamplingOptions()
        options.temperature = temperature ?? folder?.defaultTemperature ?? 1
        options.topK = topK ?? folder?.defaultTopK ?? 0
        options.topP = topP ?? folder?.defaultTopP ?? 1
        options.minP = minP
        options.repetitionPenalty = repetitionPenalty ?? folder?.defaultRepetitionPenalty ?? 1
        options.presencePenalty = presencePenalty
        options.frequencyPenalty = frequencyPenalty
        options.logitBias = try parsedLogitBias()
        options.seed = seed
        // transformers' rule: sample only when asked (do_sample); here, when a temperature is given.
        options.greedy = greedy || (temperature == nil && !(folder?.doSample ?? false))
        return options
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, jsonl
}

/// One JSON object per line on stdout.
func printJSONLine(_ object: [String: Any]) {
    guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}

/// A value as a JSON fragment (string, array).
func jsonFragment(_ value: Any) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .withoutEscapingSlashes])) ?? Data()
    return String(decoding: data, as: UTF8.self)
}
