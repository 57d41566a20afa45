import Foundation
import Runtime
import ONNXImport
import TensorCore
import Testing
import TestSupport
@testable import Generation

/// `LanguageModel` with the in-place cache against the same model run as exported (no passes:
/// the cache is copied through Concat every step). Tolerance atol/rtol 1e-4: the fused kernels
/// reorder float sums.
@Suite("In-place KV cache (language model)")
struct InPlaceKVCacheTests {
    static func models() throws -> (inPlace: LanguageModel, copying: LanguageModel) {
        let graph = try ONNXLoader.load(path: Fixtures.path("models/llama-optimum/model.onnx")).graph
        return (try LanguageModel(graph: graph), try LanguageModel(graph: graph, options: SessionOptions(optimize: false)))
    }

    static func expectClose(_ a: Tensor, _ b: Tensor, _ what: String) {
        let report = closeness(a, b, atol: 1e-4, rtol: 1e-4)
        #expect(report.isClose, "\(what): \(report)")
    }

    @Test func manyStepsMatchTheCopyingPath() throws {
        let (fast, slow) = try Self.models()
        #expect(fast.inPlaceCache && !slow.inPlaceCache)
        var a = fast.emptyCache(), b = slow.emptyCache()
        Self.expectClose(try fast.forward([1, 5, 9, 17], cache: &a), try slow.forward([1, 5, 9, 17], cache: &b), "prefill")
        #expect(a.isInPlace && !b.isInPlace)
        // Far past the store's initial capacity of 256 positions.
        for step in 0..<300 {
            let token = (step * 37 + 11) % 128
            let x = try fast.forward([token], cache: &a), y = try slow.forward([token], cache: &b)
            if step % 25 == 0 || step == 299 { Self.expectClose(x, y, "step \(step)") }
        }
        #expect(a.length == 304 && b.length == 304)
        let ta = a.tensors, tb = b.tensors
        #expect(Set(ta.keys) == Set(tb.keys) && ta.count == 2 * fast.layerCount)
        for (name, tensor) in tb { Self.expectClose(try #require(ta[name]), tensor, name) }
    }

    @Test func truncateAndRewindLikeAChatTurn() throws {
        let (fast, _) = try Self.models()
        var cache = fast.emptyCache()
        _ = try fast.forward([1, 5, 9, 17, 3, 4, 8, 2], cache: &cache)
        for token in [7, 19, 23] { _ = try fast.forward([token], cache: &cache) }
        cache.truncate(to: 5)
        #expect(cache.length == 5)
        let rewound = try fast.forward([40, 41], cache: &cache)
        var fresh = fast.emptyCache()
        let reference = try fast.forward([1, 5, 9, 17, 3, 40, 41], cache: &fresh)
        // The last two positions of the 7-token prefill.
        let vocab = reference.shape[2]
        let tail = Tensor(Array(reference.array(Float.self).suffix(2 * vocab)), shape: [1, 2, vocab])
        Self.expectClose(rewound, tail, "after rewinding to 5")
        #expect(cache.length == 7)
    }

    @Test func copiesOfACacheStayIndependent() throws {
        let (fast, _) = try Self.models()
        var cache = fast.emptyCache()
        _ = try fast.forward([1, 5, 9], cache: &cache)
        let snapshot = cache
        let first = try fast.forward([4], cache: &cache)
        for token in [6, 7, 8] { _ = try fast.forward([token], cache: &cache) }
        var branch = snapshot
        let again = try fast.forward([4], cache: &branch)
        #expect(again.array(Float.self) == first.array(Float.self))
        #expect(snapshot.length == 3 && branch.length == 4 && cache.length == 7)
    }

    @Test func assignedTensorsAreLoadedIntoTheStore() throws {
        let (fast, slow) = try Self.models()
        var b = slow.emptyCache()
        _ = try slow.forward([1, 5, 9, 17], cache: &b)
        var a = fast.emptyCache()
        a.tensors = b.tensors
        a.length = b.length
        Self.expectClose(try fast.forward([21], cache: &a), try slow.forward([21], cache: &b), "after loading tensors")
        #expect(a.isInPlace)
        // Assigning one tensor of an in-place cache keeps the others.
        var key = a.tensors["past_key_values.0.key"]!
        a.tensors["past_key_values.0.key"] = key
        #expect(!a.isInPlace && a.tensors.count == 2 * fast.layerCount)
        key = a.tensors["past_key_values.1.value"]!
        #expect(key.shape == [1, fast.kvHeads, 5, fast.headDim])
    }
}
