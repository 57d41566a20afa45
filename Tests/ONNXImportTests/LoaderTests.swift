import Foundation
import Graph
import ONNXImport
import TensorCore
import Testing
import TestSupport

@Suite("ONNX loader")
struct LoaderTests {
    @Test func externalDataIsMappedNotCopied() throws {
        let model = try ONNXLoader.load(path: Fixtures.path("models/llama-optimum/model.onnx"))
        let large = model.graph.initializers.values.filter { $0.byteCount >= 1024 }
        #expect(!large.isEmpty)
        // Every sizeable weight views the mapped data file (an aligned offset) instead of owning a copy.
        #expect(large.allSatisfy { $0.storage.isView })
    }

    @Test func readsOpsetsAndSymbolicInputs() throws {
        let model = try ONNXLoader.load(path: Fixtures.path("models/llama-optimum/model.onnx"))
        #expect(model.graph.opsets[""] == 18)
        let ids = try #require(model.graph.inputs.first { $0.name == "input_ids" })
        #expect(ids.dtype == .int64)
        #expect(ids.shape?.count == 2)
        if case .symbolic = ids.shape?[0] {} else { Issue.record("batch dimension should be symbolic: \(ids.typeDescription)") }
        let past = try #require(model.graph.inputs.first { $0.name == "past_key_values.0.key" })
        #expect(past.shape?[1] == .fixed(2) && past.shape?[3] == .fixed(8))
    }

    @Test func aFolderMeansItsModelOnnx() throws {
        let viaFolder = try ONNXLoader.load(path: Fixtures.path("models/llama-dynamo18"))
        #expect(viaFolder.path.hasSuffix("llama-dynamo18/model.onnx"))
        #expect(viaFolder.graph.nodes.count > 0)
    }

    @Test func typedDataFieldsDecodeEveryDtype() throws {
        // tools/make_bad_models.py writes these initializers through float_data, int32_data (also for
        // int8/uint8/bool/float16/bfloat16 bit patterns), int64_data and double_data.
        let model = try ONNXLoader.load(path: Fixtures.path("ops/typed_initializers/model.onnx"))
        let dtypes = Set(model.graph.initializers.values.map(\.dtype))
        #expect(dtypes.isSuperset(of: [.float32, .int64, .int32, .int8, .uint8, .bool, .float16, .bfloat16]))
        #expect(model.graph.initializers.values.allSatisfy { !$0.storage.isView })
    }

    @Test func missingFileIsNamed() {
        #expect {
            try ONNXLoader.load(path: "/nonexistent/dir/model.onnx")
        } throws: { error in
            "\(error)".contains("/nonexistent/dir/model.onnx")
        }
    }
}
