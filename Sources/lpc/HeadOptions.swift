import ArgumentParser
import Generation
import LPC
import ONNXImport
import Runtime

/// Generation conditioned on a trained LPC head, shared by `generate` and `chat`.
struct HeadOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A head trained by `lpc train` (safetensors + config): generate conditioned on its latent code.", valueName: "HEAD_DIR"))
    var head: String?

    @Option(help: ArgumentHelp("With --head: auto (the prior's most likely code), sample (a draw from the prior, --seed), mix (the prior-weighted blend), or a code index K.", valueName: "auto|sample|mix|K"))
    var code: String = "auto"

    func validate() throws {
        guard CodeMode(argument: code, seed: 0) != nil else {
            throw ValidationError("--code must be auto, sample, mix or a code index ≥ 0, not '\(code)'")
        }
        if head == nil && code != "auto" { throw ValidationError("--code needs --head") }
    }

    /// The language model (tapping the LM head's input when a head is given; product weights stored
    /// as `weights`) and the head.
    func load(folder: ModelFolder, seed: UInt64, weights: WeightStorage = .f32) throws -> (LanguageModel, LatentCodeHead?) {
        let graph = try ONNXLoader.load(path: folder.modelFile).graph
        // Generation samples from the last position only: the LM head runs on one row at prefill.
        let options = SessionOptions(weightStorage: weights, lastPositionOutputs: ["logits"])
        guard let head else { return (try LanguageModel(graph: graph, options: options), nil) }
        let tap = try LMHeadTap.find(in: graph)
        let model = try LanguageModel(graph: graph, options: options, hiddenStateValue: tap.hiddenValue)
        let lmHead = try FrozenLMHead(tap: tap)
        let lpc = try LPCCheckpoint.loadHead(from: head, lmHead: lmHead)
        let mode = CodeMode(argument: code, seed: seed)!
        return (model, try LatentCodeHead(model: lpc, lmHead: lmHead, mode: mode))
    }
}

extension HeadChoice {
    /// The `--format jsonl` object announcing the code.
    var jsonObject: [String: Any] {
        var object: [String: Any] = ["type": "code", "mode": mode,
                                     "top": top.map { ["code": $0.code, "probability": Double($0.probability)] }]
        object["code"] = code ?? NSNull()
        return object
    }

    /// One line for stderr in text mode.
    var summary: String {
        let shown = top.prefix(3).map { "\($0.code) (p=\(String(format: "%.2f", $0.probability)))" }.joined(separator: ", ")
        switch mode {
        case "none": return "[head without latent codes: adapter only]"
        case "mix": return "[latent code: mix of all codes; prior's top: \(shown)]"
        default: return "[latent code \(code.map(String.init) ?? "?") (\(mode)); prior's top: \(shown)]"
        }
    }
}

import Foundation
