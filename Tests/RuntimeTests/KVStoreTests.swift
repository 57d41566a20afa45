import Foundation
import Graph
import ONNXImport
@testable import Runtime
import TensorCore
import Testing
import TestSupport

/// The in-place KV cache (`KVAppendRewrite` + `KVStore`) against the copying path (feeding each
/// step's `present` back as `past`), on the optimum fixtures: batch 2 with the second row
/// left-padded, prefill then many decode steps (and a multi-token step), with a store whose
/// initial capacity is far too small so it grows several times. Both paths run the same kernels
/// in the same order, so logits must agree to atol 1e-6.
@Suite("In-place KV cache (session)")
struct KVStoreTests {
    static let models = ["llama-optimum", "mistral-optimum"]

    struct Step { var tokens: Int }

    /// Feeds for `tokens` new tokens after `past` positions, batch 2, row 1 left-padded by `pad`.
    static func feeds(step: Int, tokens: Int, past: Int, pad: Int, batch: Int = 2) -> [String: Tensor] {
        var rng = SplitMix(seed: UInt64(100 + step))
        let total = past + tokens
        var mask = [Int64](repeating: 1, count: batch * total)
        for j in 0..<min(pad, total) { mask[(batch - 1) * total + j] = 0 }
        var positions: [Int64] = []
        for b in 0..<batch {
            let offset = b == batch - 1 ? pad : 0
            for t in 0..<tokens { positions.append(Int64(max(0, past + t - offset))) }
        }
        return ["input_ids": Tensor((0..<batch * tokens).map { _ in Int64(rng.next() % 128) }, shape: [batch, tokens]),
                "attention_mask": Tensor(mask, shape: [batch, total]),
                "position_ids": Tensor(positions, shape: [batch, tokens])]
    }

    @Test(arguments: models)
    func inPlaceEqualsCopyingOverManySteps(_ model: String) throws {
        let graph = try ONNXLoader.load(path: Fixtures.path("models/\(model)/model.onnx")).graph
        let session = try Session(graph: graph)
        let cacheInputs = Set(graph.inputs.map(\.name).filter { $0.hasPrefix("past_key_values.") })
        #expect(session.inPlaceCacheInputs == cacheInputs)
        #expect(session.graph.nodes.contains { $0.qualifiedOpType == "lpc:KVAppend" })
        #expect(!session.graph.nodes.contains { $0.opType == "Concat" && $0.inputs.contains(where: cacheInputs.contains) })

        var pasts: [String: Tensor] = [:]
        for name in cacheInputs {
            let shape = graph.inputs.first { $0.name == name }!.shape!
            guard case let .fixed(heads) = shape[1], case let .fixed(dim) = shape[3] else { Issue.record("\(name) dims"); return }
            pasts[name] = Tensor(zeros: .float32, shape: [2, heads, 0, dim])
        }
        let store = KVStore(initialCapacity: 2)
        let steps = [5, 1, 1, 3, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1, 1]
        var past = 0
        for (index, tokens) in steps.enumerated() {
            let feeds = Self.feeds(step: index, tokens: tokens, past: past, pad: 2)
            let copying = try session.run(feeds.merging(pasts) { a, _ in a })
            let last = index == steps.count - 1
            let wanted = last ? ["logits"] + cacheInputs.map { $0.replacingOccurrences(of: "past_key_values", with: "present") } : ["logits"]
            let inPlace = try session.run(feeds, outputs: wanted, kvStore: store)
            past += tokens
            #expect(store.length == past)
            let report = closeness(try #require(inPlace["logits"]), try #require(copying["logits"]), atol: 1e-6, rtol: 1e-6)
            #expect(report.isClose, "\(model) step \(index): \(report)")
            for name in cacheInputs {
                pasts[name] = copying[name.replacingOccurrences(of: "past_key_values", with: "present")]
            }
            if last {
                for name in cacheInputs {
                    let present = name.replacingOccurrences(of: "past_key_values", with: "present")
                    let got = try #require(inPlace[present]), expected = try #require(copying[present])
                    #expect(got.shape == expected.shape && got.array(Float.self) == expected.array(Float.self), "\(model) \(present)")
                    #expect(store.tensor(name)!.array(Float.self) == expected.array(Float.self), "\(model) \(name) in the store")
                }
            }
        }
        // Grown from a capacity of 2 to hold every position.
        #expect(store.reservedBytes >= past * cacheInputs.count * 2 * 4)
    }

    @Test func truncateRewindsTheStore() throws {
        let graph = try ONNXLoader.load(path: Fixtures.path("models/llama-optimum/model.onnx")).graph
        let session = try Session(graph: graph)
        let store = KVStore(initialCapacity: 4)
        _ = try session.run(Self.feeds(step: 0, tokens: 6, past: 0, pad: 1), outputs: ["logits"], kvStore: store)
        _ = try session.run(Self.feeds(step: 1, tokens: 1, past: 6, pad: 1), outputs: ["logits"], kvStore: store)
        store.truncate(to: 6)
        let rewound = try session.run(Self.feeds(step: 2, tokens: 1, past: 6, pad: 1), outputs: ["logits"], kvStore: store)
        let fresh = KVStore(initialCapacity: 4)
        _ = try session.run(Self.feeds(step: 0, tokens: 6, past: 0, pad: 1), outputs: ["logits"], kvStore: fresh)
        let expected = try session.run(Self.feeds(step: 2, tokens: 1, past: 6, pad: 1), outputs: ["logits"], kvStore: fresh)
        #expect(store.length == 7)
        #expect(rewound["logits"]!.array(Float.self) == expected["logits"]!.array(Float.self))
        // A copy is independent of its source.
        let copy = store.copy()
        _ = try session.run(Self.feeds(step: 3, tokens: 1, past: 7, pad: 1), outputs: ["logits"], kvStore: store)
        #expect(copy.length == 7 && store.length == 8)
        #expect(copy.tensor("past_key_values.0.key")!.array(Float.self) == store.tensor("past_key_values.0.key", length: 7)!.array(Float.self))
    }

    @Test func misuseGivesClearErrors() throws {
        let graph = try ONNXLoader.load(path: Fixtures.path("models/llama-optimum/model.onnx")).graph
        let session = try Session(graph: graph)
        let store = KVStore()
        var feeds = Self.feeds(step: 0, tokens: 2, past: 0, pad: 0)
        feeds["past_key_values.0.key"] = Tensor(zeros: .float32, shape: [2, 2, 0, 8])
        #expect(throws: RuntimeError.self) { _ = try session.run(feeds, outputs: ["logits"], kvStore: store) }
        // A store for batch 2 cannot run batch 1.
        _ = try session.run(Self.feeds(step: 0, tokens: 2, past: 0, pad: 0), outputs: ["logits"], kvStore: store)
        #expect(throws: RuntimeError.self) {
            _ = try session.run(Self.feeds(step: 1, tokens: 1, past: 2, pad: 0, batch: 1), outputs: ["logits"], kvStore: store)
        }
        // Without the passes there is nothing to append in place.
        let plain = try Session(graph: graph, options: SessionOptions(optimize: false))
        #expect(plain.inPlaceCacheInputs.isEmpty)
        #expect(throws: RuntimeError.self) { _ = try plain.run(Self.feeds(step: 0, tokens: 2, past: 0, pad: 0), kvStore: KVStore()) }
    }
}
