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
    static func cases() throws -> [ModelFixtureCase] { try ModelFixtureCase.all() }

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
    func matchesOnnxRuntime(_ testCase: ModelFixtureCase) throws {
        let dir = "models/\(testCase.model)"
        let model = try ONNXLoader.load(path: Fixtures.path(dir + "/model.onnx"))
        let session = try Session(graph: model.graph)
        let results = try session.run(testCase.feeds())
        #expect(!testCase.outputs.isEmpty)
        for name in testCase.outputs.keys.sorted() {
            let expected = try testCase.golden(name)
            let actual = try #require(results[name], "no output \(name)")
            let report = closeness(actual, expected, atol: 1e-4, rtol: 1e-4)
            #expect(report.isClose, "\(testCase) output \(name): \(report)")
        }
    }
}
