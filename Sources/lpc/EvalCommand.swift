import ArgumentParser
import Foundation
import LPC

enum EvalFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Held-out preference accuracy of a trained head: with the prior's code, the posterior's code and no code.",
        discussion: """
        For each pair the policy scores both responses; a pair counts as correct when the chosen
        response's implicit reward β·(log π_θ − log π_ref) (summed log-probs) is higher, ½ on a tie
        (|margin| ≤ 1e-4 nats; an untrained head ties every pair). Reports reward margins, KL(q‖p),
        entropies, code usage (perplexity of the mean posterior and argmax histograms), and per-source
        accuracy and code histograms when the data has "source" fields. Heads trained with --no-lpc
        have no codes: only "none" is reported. --pairs-out writes one JSON line per pair: its
        index, line and source, the prior's and the posterior's code (argmax), and per code choice
        the rewards [chosen, rejected] and the accuracy (1, 0.5, 0).

        Examples:
          lpc eval --head heads/dpo --data prefs/eval.jsonl
          lpc eval --model DIR --head heads/simpo --data eval.jsonl --format json > report.json
          lpc eval --head heads/dpo --data eval.jsonl --pairs-out pairs.jsonl
        """
    )

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: ArgumentHelp("Head folder written by lpc train (head.safetensors, config.json).", valueName: "HEAD_DIR"))
    var head: String

    @Option(help: ArgumentHelp("Preference pairs (JSONL).", valueName: "FILE"))
    var data: String

    @Option(help: "Output: table (readable) or json.")
    var format: EvalFormat = .table

    @Option(name: .customLong("batch-size"), help: "Pairs per evaluation batch.")
    var batchSize: Int = 16

    @Option(name: .customLong("pairs-out"), help: ArgumentHelp("Also write per-pair records (JSON Lines) to this file.", valueName: "FILE"))
    var pairsOut: String?

    @OptionGroup var features: DataOptions

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be ≥ 1, got \(batchSize)") }
        guard !head.isEmpty else { throw ValidationError("--head must name a head folder") }
        if let pairsOut, pairsOut.isEmpty { throw ValidationError("--pairs-out must name a file") }
    }

    func run() throws {
        do {
            let say: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
            // Check the head first: a wrong folder should fail before the features are extracted.
            _ = try LPCCheckpoint.loadConfig(from: head)
            let store = try PairFeatureStore(modelDir: modelOptions.model, options: features, say: say)
            let model = try LPCCheckpoint.loadHead(from: head, lmHead: store.lmHead)
            let data = try store.features(for: self.data, role: "evaluation")
            let report = try evaluatePreferences(model, on: data, batchSize: batchSize, records: pairsOut != nil)
            if let pairsOut {
                do {
                    try report.pairRecordsJSONL().write(to: URL(fileURLWithPath: pairsOut), options: .atomic)
                } catch {
                    throw ValidationError("cannot write --pairs-out \(pairsOut): \(error.localizedDescription)")
                }
                say("wrote \(report.pairRecords.count) pair records to \(pairsOut)")
            }
            switch format {
            case .table:
                FileHandle.standardOutput.write(Data((report.table + "\n").utf8))
            case .json:
                let json = try JSONSerialization.data(withJSONObject: report.json, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
                FileHandle.standardOutput.write(json + Data("\n".utf8))
            }
        } catch {
            exitWithError(error)
        }
    }
}
