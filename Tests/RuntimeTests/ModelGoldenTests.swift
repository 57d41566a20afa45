import Foundation
import ONNXImport
import Runtime
import TensorCore
import Testing
import TestSupport

/// Every exported tiny Llama/Mistral fixture (optimum, dynamo opset 18 and 23) against
/// onnxruntime's outputs, made by tools/make_fixtures.py. Tolerance: atol 1e-4 + rtol 1e-4.
@Suite("Model goldens vs onnxruntime")
struct ModelGoldenTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let model: String
        let name: String
        let inputs: [String: String]
        let outputs: [String: String]
        var testDescription: String { "\(model)/\(name)" }
    }

    static func cases() throws -> [Case] {
        let manifest = try Fixtures.json("models/manifest.json") as? [String: Any]
        let models = manifest?["models"] as? [[String: Any]] ?? []
        var result: [Case] = []
        for model in models {
            let dir = model["dir"] as? String ?? ""
            for entry in model["cases"] as? [[String: Any]] ?? [] {
                result.append(Case(model: dir, name: entry["name"] as? String ?? "",
                                   inputs: entry["inputs"] as? [String: String] ?? [:],
                                   outputs: entry["outputs"] as? [String: String] ?? [:]))
            }
        }
        return result
    }

    @Test func manifestCoversEveryExporterAndCase() throws {
        let cases = try Self.cases()
        let models = Set(cases.map(\.model))
        for family in ["llama", "mistral"] {
            for exporter in ["optimum", "dynamo18", "dynamo23"] {
                #expect(models.contains("\(family)-\(exporter)"), "missing fixture \(family)-\(exporter)")
            }
        }
        for model in models {
            let names = Set(cases.filter { $0.model == model }.map(\.name))
            #expect(names.isSuperset(of: ["prefill", "batch2_leftpad_past", "decode_1"]), "\(model) has cases \(names.sorted())")
        }
    }

    @Test(arguments: try cases())
    func matchesOnnxRuntime(_ testCase: Case) throws {
        let dir = "models/\(testCase.model)"
        let model = try ONNXLoader.load(path: Fixtures.path(dir + "/model.onnx"))
        let session = try Session(graph: model.graph)
        var feeds: [String: Tensor] = [:]
        for (name, file) in testCase.inputs { feeds[name] = try NPY.read(path: Fixtures.path(dir + "/" + file)) }
        let results = try session.run(feeds)
        #expect(!testCase.outputs.isEmpty)
        for (name, file) in testCase.outputs.sorted(by: { $0.key < $1.key }) {
            let expected = try NPY.read(path: Fixtures.path(dir + "/" + file))
            let actual = try #require(results[name], "no output \(name)")
            let report = closeness(actual, expected, atol: 1e-4, rtol: 1e-4)
            #expect(report.isClose, "\(testCase.testDescription) output \(name): \(report)")
        }
    }
}
