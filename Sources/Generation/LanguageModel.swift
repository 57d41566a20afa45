import Foundation
import Graph
import ONNXImport
import Runtime
import TensorCore

/// A decoder-only language model behind the optimum-style I/O convention: `input_ids`,
/// `attention_mask`, `position_ids`, `past_key_values.N.key|value` in; `logits`,
/// `present.N.key|value` out. Batch size 1; the cache is carried between calls.
public final class LanguageModel {
    public let session: Session
    public let layerCount: Int
    /// KV heads and head size, read from the declared past inputs [batch, kv_heads, past, head_dim].
    public let kvHeads: Int
    public let headDim: Int
    public let vocabularySize: Int?
    private let hasAttentionMask: Bool
    private let hasPositionIDs: Bool
    private let pastDType: DType
    /// Whether every cache input is appended in place (`KVStore`) instead of copied per step.
    public let inPlaceCache: Bool
    /// The value holding the final hidden state (the LM head's input), when asked to tap it.
    public let hiddenStateValue: String?
    /// The final hidden state at the last position of the latest `forward`: [d]; empty unless
    /// `hiddenStateValue` is set.
    public private(set) var lastHiddenState: [Float] = []

    public convenience init(path: String) throws {
        try self.init(graph: ONNXLoader.load(path: path).graph)
    }

    public convenience init(graph: Graph) throws {
        try self.init(graph: graph, options: SessionOptions())
    }

    /// A model whose session is built with `options` (passes, weight storage). With
    /// `hiddenStateValue`, every forward also reads that value (kept through the passes) and
    /// exposes its last position as `lastHiddenState`.
    public init(graph: Graph, options: SessionOptions, hiddenStateValue: String? = nil) throws {
        var options = options
        if let hiddenStateValue { options.keep.insert(hiddenStateValue) }
        self.hiddenStateValue = hiddenStateValue
        session = try Session(graph: graph, options: options)
        let names = Set(graph.inputs.map(\.name))
        guard names.contains("input_ids") else {
            throw LanguageModelError("the model has no 'input_ids' input; inputs are \(graph.inputs.map(\.name).sorted())")
        }
        guard graph.outputs.contains(where: { $0.name == "logits" }) else {
            throw LanguageModelError("the model has no 'logits' output; outputs are \(graph.outputs.map(\.name))")
        }
        hasAttentionMask = names.contains("attention_mask")
        hasPositionIDs = names.contains("position_ids")
        var layers = 0
        while names.contains("past_key_values.\(layers).key") && names.contains("past_key_values.\(layers).value") {
            layers += 1
        }
        guard layers > 0, let past = graph.inputs.first(where: { $0.name == "past_key_values.0.key" }) else {
            throw LanguageModelError("the model has no KV-cache inputs 'past_key_values.N.key|value'; export it with a past (optimum: --task text-generation-with-past)")
        }
        guard let shape = past.shape, shape.count == 4, case let .fixed(heads) = shape[1], case let .fixed(dim) = shape[3] else {
            throw LanguageModelError("past_key_values.0.key is declared \(past.typeDescription); expected [batch, kv_heads, past, head_dim] with fixed kv_heads and head_dim")
        }
        layerCount = layers
        kvHeads = heads
        headDim = dim
        pastDType = past.dtype ?? .float32
        let cacheNames = Set((0..<layers).flatMap { ["past_key_values.\($0).key", "past_key_values.\($0).value"] })
        inPlaceCache = cacheNames.isSubset(of: session.inPlaceCacheInputs)
        if let logits = graph.outputs.first(where: { $0.name == "logits" }), let last = logits.shape?.last, case let .fixed(vocab) = last {
            vocabularySize = vocab
        } else {
            vocabularySize = nil
        }
    }

    /// Bytes the KV cache holds for `tokens` positions (batch 1).
    public func kvCacheBytes(tokens: Int) -> Int {
        layerCount * 2 * kvHeads * tokens * headDim * pastDType.size
    }

    /// An empty cache (past length 0) for a new sequence.
    public func emptyCache() -> KVCache {
        var tensors: [String: Tensor] = [:]
        for layer in 0..<layerCount {
            for kind in ["key", "value"] {
                tensors["past_key_values.\(layer).\(kind)"] = Tensor(zeros: pastDType, shape: [1, kvHeads, 0, headDim])
            }
        }
        return KVCache(tensors: tensors, length: 0)
    }

    /// Runs `tokens` after what `cache` holds, appends them to the cache, and returns the logits
    /// for every new position: [1, tokens.count, vocab].
    public func forward(_ tokens: [Int], cache: inout KVCache) throws -> Tensor {
        try run(tokens, cache: &cache, logits: true)!
    }

    /// As `forward`, for a caller that only needs `lastHiddenState` (a logits head computes its
    /// own logits): the graph's LM head is not run.
    public func advance(_ tokens: [Int], cache: inout KVCache) throws {
        guard hiddenStateValue != nil else { throw LanguageModelError("advance needs the model's hidden state: create the LanguageModel with hiddenStateValue") }
        _ = try run(tokens, cache: &cache, logits: false)
    }

    private func run(_ tokens: [Int], cache: inout KVCache, logits wantLogits: Bool) throws -> Tensor? {
        precondition(!tokens.isEmpty, "forward needs at least one token")
        let total = cache.length + tokens.count
        var feeds: [String: Tensor] = [:]
        feeds["input_ids"] = Tensor(tokens.map(Int64.init), shape: [1, tokens.count])
        if hasAttentionMask {
            feeds["attention_mask"] = Tensor([Int64](repeating: 1, count: total), shape: [1, total])
        }
        if hasPositionIDs {
            feeds["position_ids"] = Tensor((cache.length..<total).map(Int64.init), shape: [1, tokens.count])
        }
        var wanted = wantLogits ? ["logits"] : []
        if let hiddenStateValue { wanted.append(hiddenStateValue) }
        let outputs: [String: Tensor]
        if inPlaceCache {
            // Appends into the cache's store: the past is never copied (copy-on-write when
            // another KVCache value shares the store).
            let store = try cache.uniqueStore()
            outputs = try session.run(feeds, outputs: wanted, kvStore: store)
        } else {
            feeds.merge(cache.tensors) { new, _ in new }
            wanted += (0..<layerCount).flatMap { ["present.\($0).key", "present.\($0).value"] }
            outputs = try session.run(feeds, outputs: wanted)
            for layer in 0..<layerCount {
                for kind in ["key", "value"] {
                    cache.tensors["past_key_values.\(layer).\(kind)"] = outputs["present.\(layer).\(kind)"]
                }
            }
        }
        if let hiddenStateValue, let hidden = outputs[hiddenStateValue] {
            // [1, seq, d] (or [seq, d]): the last row.
            let size = hidden.shape.last ?? 0
            lastHiddenState = Array(UnsafeBufferPointer(start: hidden.pointer(Float.self) + hidden.count - size, count: size))
        }
        cache.length = total
        return outputs["logits"]
    }
}

/// The keys and values of every layer for the tokens seen so far. A value type: copies are
/// independent (a model with an in-place cache shares the store between copies until one of
/// them runs, then copies it once).
public struct KVCache: @unchecked Sendable {
    /// The cache as contiguous tensors (copy mode, or a cache not yet run in place).
    private var storedTensors: [String: Tensor]
    /// The in-place store, once a model with an in-place cache has run on this cache.
    private var store: KVStore?
    public var length: Int

    init(tensors: [String: Tensor], length: Int) {
        storedTensors = tensors
        self.length = length
    }

    /// By input name: past_key_values.N.key|value, each [1, kv_heads, length, head_dim]. Reading
    /// an in-place cache copies it out; assigning switches the cache back to these tensors.
    public var tensors: [String: Tensor] {
        get {
            guard let store else { return storedTensors }
            var result: [String: Tensor] = [:]
            for name in store.names { result[name] = store.tensor(name, length: min(length, store.length)) }
            return result
        }
        set {
            if let store {
                // Keep every other entry when one is replaced.
                storedTensors = [:]
                for name in store.names { storedTensors[name] = store.tensor(name, length: min(length, store.length)) }
                self.store = nil
                for (name, tensor) in newValue { storedTensors[name] = tensor }
            } else {
                storedTensors = newValue
            }
        }
    }

    /// Whether the cache lives in an in-place store (after a run on a model that supports it).
    public var isInPlace: Bool { store != nil }

    /// The store to run on, holding exactly `length` positions: made from the tensors on first
    /// use, copied when another KVCache value shares it.
    mutating func uniqueStore() throws -> KVStore {
        if store == nil {
            let made = KVStore()
            if length > 0 {
                try made.load(storedTensors)
                guard made.length >= length else {
                    throw LanguageModelError("the cache says \(length) positions but its tensors hold \(made.length)")
                }
            }
            store = made
            storedTensors = [:]
        } else if !isKnownUniquelyReferenced(&store) {
            store = store!.copy()
        }
        let store = store!
        guard length <= store.length else {
            throw LanguageModelError("the cache says \(length) positions but its store holds \(store.length)")
        }
        store.truncate(to: length)
        return store
    }

    /// Keeps only the first `newLength` positions (a chat turn that diverges from what is cached).
    public mutating func truncate(to newLength: Int) {
        guard newLength < length else { return }
        if store != nil {
            // The store drops the rest when it next runs (after copy-on-write if shared).
            length = max(newLength, 0)
            return
        }
        for (name, tensor) in storedTensors {
            let (batchHeads, old, dim) = (tensor.shape[0] * tensor.shape[1], tensor.shape[2], tensor.shape[3])
            let result = Tensor(uninitialized: tensor.dtype, shape: [tensor.shape[0], tensor.shape[1], newLength, dim])
            let rowBytes = newLength * dim * tensor.dtype.size
            for head in 0..<batchHeads where rowBytes > 0 {
                result.raw.advanced(by: head * rowBytes)
                    .copyMemory(from: tensor.raw.advanced(by: head * old * dim * tensor.dtype.size), byteCount: rowBytes)
            }
            storedTensors[name] = result
        }
        length = newLength
    }
}

public struct LanguageModelError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
