import Foundation
import TensorCore

/// One case of `Tests/Fixtures/models/manifest.json` (tools/make_fixtures.py): a tiny exported
/// model folder, its input `.npy` files and onnxruntime's output goldens.
public struct ModelFixtureCase: Sendable, CustomStringConvertible {
    public let model: String
    public let name: String
    public let inputs: [String: String]
    public let outputs: [String: String]
    public var description: String { "\(model)/\(name)" }

    /// Every case of the manifest; throws when the manifest is missing, so tests never pass empty.
    public static func all() throws -> [ModelFixtureCase] {
        let manifest = try Fixtures.json("models/manifest.json") as? [String: Any]
        var result: [ModelFixtureCase] = []
        for model in manifest?["models"] as? [[String: Any]] ?? [] {
            let dir = model["dir"] as? String ?? ""
            for entry in model["cases"] as? [[String: Any]] ?? [] {
                result.append(ModelFixtureCase(model: dir, name: entry["name"] as? String ?? "",
                                               inputs: entry["inputs"] as? [String: String] ?? [:],
                                               outputs: entry["outputs"] as? [String: String] ?? [:]))
            }
        }
        return result
    }

    /// The case `name` of `model`; throws when the manifest has none.
    public static func named(_ model: String, _ name: String) throws -> ModelFixtureCase {
        guard let found = try all().first(where: { $0.model == model && $0.name == name }) else {
            throw FixtureError("no fixture case \(model)/\(name) in models/manifest.json")
        }
        return found
    }

    /// The case's inputs, read from their `.npy` files.
    public func feeds() throws -> [String: Tensor] {
        try inputs.mapValues { try NPY.read(path: Fixtures.path("models/\(model)/\($0)")) }
    }

    /// onnxruntime's value of `output`.
    public func golden(_ output: String) throws -> Tensor {
        guard let file = outputs[output] else {
            throw FixtureError("fixture case \(self) has no golden for \(output)")
        }
        return try NPY.read(path: Fixtures.path("models/\(model)/\(file)"))
    }
}
