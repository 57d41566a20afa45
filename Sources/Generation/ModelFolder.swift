import Foundation

/// A model folder as `lpc generate` expects it: `model.onnx` (+ external data), `tokenizer.json`,
/// `tokenizer_config.json`, `config.json`, `generation_config.json`.
public struct ModelFolder: Sendable {
    public let path: String
    /// Token ids that end generation: `generation_config.json`'s eos_token_id (a number or a list),
    /// else config.json's.
    public let eosTokenIDs: Set<Int>
    /// Defaults from generation_config.json (nil where it says nothing).
    public let defaultTemperature: Float?
    public let defaultTopK: Int?
    public let defaultTopP: Float?
    public let defaultRepetitionPenalty: Float?
    /// generation_config.json's do_sample: whether the model's authors meant it to be sampled.
    public let doSample: Bool

    public var modelFile: String { path + "/model.onnx" }
    public var tokenizerFile: String { path + "/tokenizer.json" }

    static let requiredFiles: [(name: String, purpose: String)] = [
        ("model.onnx", "the exported graph"),
        ("tokenizer.json", "the tokenizer (HF tokenizers format)"),
        ("tokenizer_config.json", "the chat template and special tokens"),
        ("config.json", "the model configuration"),
        ("generation_config.json", "end-of-sequence ids and sampling defaults"),
    ]

    public init(path: String) throws(ModelFolderError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .notAFolder(path)
        }
        self.path = path
        for file in Self.requiredFiles where !FileManager.default.fileExists(atPath: path + "/" + file.name) {
            throw .missingFile(folder: path, file: file.name, purpose: file.purpose)
        }
        let generation = try Self.json(path + "/generation_config.json")
        let config = try Self.json(path + "/config.json")
        eosTokenIDs = Self.ids(generation["eos_token_id"]) ?? Self.ids(config["eos_token_id"]) ?? []
        defaultTemperature = (generation["temperature"] as? NSNumber)?.floatValue
        defaultTopK = (generation["top_k"] as? NSNumber)?.intValue
        defaultTopP = (generation["top_p"] as? NSNumber)?.floatValue
        defaultRepetitionPenalty = (generation["repetition_penalty"] as? NSNumber)?.floatValue
        doSample = (generation["do_sample"] as? NSNumber)?.boolValue ?? false
    }

    static func json(_ file: String) throws(ModelFolderError) -> [String: Any] {
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: file))
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw ModelFolderError.invalidFile(file: file, reason: "the top level is not a JSON object")
            }
            return object
        } catch let error as ModelFolderError {
            throw error
        } catch {
            throw .invalidFile(file: file, reason: (error as NSError).localizedDescription)
        }
    }

    static func ids(_ value: Any?) -> Set<Int>? {
        if let number = value as? NSNumber { return [number.intValue] }
        if let list = value as? [NSNumber] { return Set(list.map(\.intValue)) }
        return nil
    }
}

public enum ModelFolderError: Error, CustomStringConvertible {
    case notAFolder(String)
    case missingFile(folder: String, file: String, purpose: String)
    case invalidFile(file: String, reason: String)

    public var description: String {
        switch self {
        case let .notAFolder(path):
            "'\(path)' is not a model folder; give the folder holding model.onnx and tokenizer.json (tools/make_smollm2.py makes one, see models/README.md)"
        case let .missingFile(folder, file, purpose):
            "the model folder '\(folder)' has no \(file) (\(purpose)); export the model with `optimum-cli export onnx --task text-generation-with-past`, which writes it, or run tools/make_smollm2.py for the default model"
        case let .invalidFile(file, reason):
            "cannot read '\(file)': \(reason)"
        }
    }
}
