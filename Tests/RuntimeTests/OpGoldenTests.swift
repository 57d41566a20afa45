import Foundation
import ONNXImport
import Runtime
import TensorCore
import Testing
import TestSupport

/// Single-op models with edge-case inputs against onnxruntime (tools/make_op_cases.py), run
/// through the whole loader and executor. Each case states its own atol/rtol in the manifest.
@Suite("Op goldens vs onnxruntime")
struct OpGoldenTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let inputs: [String]
        let inputNames: [String]
        let outputs: [String]
        let outputNames: [String]
        let atol: Double
        let rtol: Double
        var testDescription: String { name }
    }

    static func cases() throws -> [Case] {
        let manifest = try Fixtures.json("ops/manifest.json") as? [String: Any]
        return (manifest?["cases"] as? [[String: Any]] ?? []).compactMap { entry in
            if entry["skipped_reason"] != nil { return nil }
            return Case(name: entry["name"] as? String ?? "",
                        inputs: entry["inputs"] as? [String] ?? [],
                        inputNames: entry["input_names"] as? [String] ?? [],
                        outputs: entry["outputs"] as? [String] ?? [],
                        outputNames: entry["output_names"] as? [String] ?? [],
                        atol: entry["atol"] as? Double ?? 1e-5, rtol: entry["rtol"] as? Double ?? 1e-5)
        }
    }

    @Test func manifestHasCases() throws {
        #expect(try Self.cases().count >= 100)
    }

    @Test(arguments: try cases())
    func matchesOnnxRuntime(_ testCase: Case) throws {
        let dir = "ops/\(testCase.name)"
        let model = try ONNXLoader.load(path: Fixtures.path(dir + "/model.onnx"))
        let session = try Session(graph: model.graph)
        var feeds: [String: Tensor] = [:]
        for (name, file) in zip(testCase.inputNames, testCase.inputs) {
            feeds[name] = try NPY.read(path: Fixtures.path(dir + "/" + file))
        }
        let results = try session.run(feeds)
        #expect(testCase.outputs.count == testCase.outputNames.count && !testCase.outputs.isEmpty)
        for (name, file) in zip(testCase.outputNames, testCase.outputs) {
            let expected = try NPY.read(path: Fixtures.path(dir + "/" + file))
            let actual = try #require(results[name], "no output \(name)")
            #expect(actual.dtype == expected.dtype, "\(testCase.name) output \(name): dtype \(actual.dtype) vs \(expected.dtype)")
            let report = closeness(actual, expected, atol: testCase.atol, rtol: testCase.rtol)
            #expect(report.isClose, "\(testCase.name) output \(name): \(report)")
        }
    }
}
