import ArgumentParser
import Foundation
import LPC

/// `lpc features`: computes (or finds in the cache) the frozen backbone's features of a
/// preference file — what `lpc train` reads — and reports data counts and throughput.
struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Compute and cache backbone features (final hidden states, reference log-probs) of preference pairs.",
        discussion: """
        Data: JSONL, one pair per line: "prompt", "chosen", "rejected" (strings or chat message lists), optional "source".
        Truncation (TRL's): prompts longer than --max-prompt-length keep their end; responses are cut at the end to fit
        --max-length; pairs whose prompt alone reaches --max-length are skipped and counted.
        """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: ArgumentHelp("Preference pairs (JSONL).", valueName: "FILE")) var data: String
    @Option(name: .customLong("max-length"), help: "Prompt + response tokens at most.") var maxLength: Int = 1024
    @Option(name: .customLong("max-prompt-length"), help: "Prompt tokens at most (the end is kept).") var maxPromptLength: Int = 512
    @Option(name: .customLong("batch-size"), help: "Sequences per batched prefill.") var batchSize: Int = 8
    @Option(name: .customLong("token-budget"), help: "Padded tokens per batched prefill at most.") var tokenBudget: Int = 2048
    @Option(help: "Padding side: right or left.") var padding: String = "right"
    @Option(help: "Hidden-state storage on disk: float32 or float16.") var storage: String = "float32"
    @Option(name: .customLong("cache-dir"), help: ArgumentHelp("Feature cache folder.", valueName: "DIR")) var cacheDir: String = ".lpc-cache"
    @Option(help: "Use only the first N pairs.") var limit: Int?

    func validate() throws {
        guard FeatureOptions.Padding(rawValue: padding) != nil else { throw ValidationError("--padding must be right or left, not '\(padding)'") }
        guard FeatureOptions.Storage(rawValue: storage) != nil else { throw ValidationError("--storage must be float32 or float16, not '\(storage)'") }
        guard batchSize >= 1, tokenBudget >= 1 else { throw ValidationError("--batch-size and --token-budget must be at least 1") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
    }

    func run() throws {
        do {
            let lengths = LengthOptions(maxLength: maxLength, maxPromptLength: maxPromptLength)
            var dataset = try PreferenceDataset.load(file: data, modelDirectory: modelOptions.model, lengths: lengths)
            if let limit { dataset = dataset.prefix(limit) }
            print("data: \(dataset.stats)")
            let start = Date()
            let extractor = try FeatureExtractor(modelFile: modelOptions.model + "/model.onnx")
            let loadSeconds = Date().timeIntervalSince(start)
            print("model: LM head \(extractor.tap.weightDescription) [\(extractor.tap.layout.rawValue)], hidden state '\(extractor.tap.hiddenValue)', d = \(extractor.hiddenSize), loaded in \(String(format: "%.1f", loadSeconds)) s")
            let options = FeatureOptions(batchSize: batchSize, tokenBudget: tokenBudget, padding: .init(rawValue: padding)!,
                                         storage: .init(rawValue: storage)!)
            let set = try FeatureSet.load(dataset: dataset, extractor: extractor, cacheRoot: cacheDir, options: options)
            let sequences = 2 * set.pairs.count
            let tokens = dataset.pairs.reduce(0) { $0 + 2 * $1.prompt.count + $1.chosen.count + $1.rejected.count }
            print("features: \(set.pairs.count) pairs in \(set.directory) (\(set.fromCache ? "from cache" : "extracted"), \(set.storage.rawValue))")
            print(String(format: "extraction: %.1f s, %.2f sequences/s, %.0f tokens/s (%d sequences, %d tokens)",
                         set.extractionSeconds, Double(sequences) / set.extractionSeconds, Double(tokens) / set.extractionSeconds,
                         sequences, tokens))
        } catch {
            exitWithError(error)
        }
    }
}
