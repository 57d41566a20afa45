import Dispatch
import Foundation
import Graph
import ONNXImport
import Runtime
import TensorCore

/// How the backbone is run over training sequences.
public struct FeatureOptions: Sendable, Hashable {
    public enum Padding: String, Sendable, Codable { case right, left }
    public enum Storage: String, Sendable, Codable { case float32, float16 }

    /// Sequences per batched prefill.
    public var batchSize: Int = 8
    /// At most batch × padded length tokens per prefill (bounds the [batch, seq, vocab] logits).
    public var tokenBudget: Int = 2048
    /// Right padding (default) keeps position ids 0… for every sequence; left padding uses
    /// cumsum(mask) − 1, as transformers does. Both give the same features within float error.
    public var padding: Padding = .right
    /// How hidden states are stored on disk. Loaded features are always float32.
    public var storage: Storage = .float32
    /// Progress (sequences/s, tokens/s, ETA) on stderr.
    public var progress: Bool = true

    public init(batchSize: Int = 8, tokenBudget: Int = 2048, padding: Padding = .right,
                storage: Storage = .float32, progress: Bool = true) {
        self.batchSize = batchSize
        self.tokenBudget = tokenBudget
        self.padding = padding
        self.storage = storage
        self.progress = progress
    }
}

/// The backbone's output for one full sequence (prompt + response).
public struct SequenceOutput: @unchecked Sendable {
    /// [T, d] float32: the final hidden state (the LM head's input) at every position.
    public var hidden: Tensor
    /// log π_ref(token[t] | tokens before t) for t = promptLength ..< T (position t−1 predicts t),
    /// from a log-softmax over the real logits.
    public var responseLogps: [Float]
    public var responseLogp: Double { responseLogps.reduce(0) { $0 + Double($1) } }
}

/// Runs a frozen decoder over token sequences: batched prefill with an empty cache, padding
/// through attention_mask (and position_ids), tapping the LM head's input (`LMHeadTap`).
public final class FeatureExtractor {
    public let graph: Graph
    public let tap: LMHeadTap
    /// The model file, for cache keys (nil for an in-memory graph: no caching).
    public let modelFile: String?
    public let session: Session

    public convenience init(modelFile: String) throws {
        try self.init(graph: ONNXLoader.load(path: modelFile).graph, modelFile: modelFile)
    }

    public init(graph: Graph, modelFile: String? = nil) throws {
        self.graph = graph
        self.modelFile = modelFile
        tap = try LMHeadTap.find(in: graph)
        guard graph.inputs.contains(where: { $0.name == "input_ids" }) else {
            throw FeatureError("the model has no 'input_ids' input; inputs are \(graph.inputs.map(\.name))")
        }
        // The passes must keep the tapped hidden state (else the session falls back to the
        // unoptimized graph to produce it).
        session = try Session(graph: graph, options: SessionOptions(keep: [tap.hiddenValue, tap.logitsValue]))
    }

    public var hiddenSize: Int { tap.hiddenSize }

    /// Seconds per op type across runs while `profiling` is on (measured between the runtime's
    /// per-node trace callbacks), to say where extraction time goes.
    public private(set) var opSeconds: [String: Double] = [:]
    public private(set) var logSoftmaxSeconds = 0.0
    public var profiling = false {
        didSet {
            guard profiling else { session.trace = nil; return }
            var last = DispatchTime.now().uptimeNanoseconds
            session.trace = { [unowned self] node, _ in
                let now = DispatchTime.now().uptimeNanoseconds
                opSeconds[node.qualifiedOpType, default: 0] += Double(now - last) / 1e9
                last = now
            }
        }
    }

    /// Runs `sequences` (each prompt + response; `promptLengths[i]` ≥ 1 of them are prompt) in
    /// batches and returns each sequence's hidden states and response log-probs, in input order.
    /// `onBatch` is told after each batch how many sequences and tokens it held.
    public func run(_ sequences: [[Int]], promptLengths: [Int], options: FeatureOptions = FeatureOptions(),
                    onBatch: ((_ sequences: Int, _ tokens: Int) -> Void)? = nil,
                    consume: (_ index: Int, _ output: SequenceOutput) throws -> Void) throws {
        precondition(sequences.count == promptLengths.count)
        for (i, sequence) in sequences.enumerated() {
            guard !sequence.isEmpty, promptLengths[i] >= 1, promptLengths[i] <= sequence.count else {
                throw FeatureError("sequence \(i): prompt length \(promptLengths[i]) for \(sequence.count) tokens; each sequence needs at least one prompt token")
            }
        }
        for batch in Self.batches(lengths: sequences.map(\.count), options: options) {
            let outputs = try runBatch(batch.map { sequences[$0] }, promptLengths: batch.map { promptLengths[$0] }, padding: options.padding)
            for (index, output) in zip(batch, outputs) { try consume(index, output) }
            onBatch?(batch.count, batch.reduce(0) { $0 + sequences[$1].count })
        }
    }

    /// Groups sequence indices, longest first, so that each batch has ≤ batchSize sequences and
    /// ≤ tokenBudget padded tokens (a single longer sequence still gets a batch of its own).
    static func batches(lengths: [Int], options: FeatureOptions) -> [[Int]] {
        let order = lengths.indices.sorted { lengths[$0] != lengths[$1] ? lengths[$0] > lengths[$1] : $0 < $1 }
        var result: [[Int]] = []
        var current: [Int] = []
        for index in order {
            let padded = (current.first.map { lengths[$0] } ?? lengths[index]) * (current.count + 1)
            if !current.isEmpty && (current.count >= max(1, options.batchSize) || padded > options.tokenBudget) {
                result.append(current)
                current = []
            }
            current.append(index)
        }
        if !current.isEmpty { result.append(current) }
        return result
    }

    func runBatch(_ sequences: [[Int]], promptLengths: [Int], padding: FeatureOptions.Padding) throws -> [SequenceOutput] {
        let batch = sequences.count
        let width = sequences.map(\.count).max()!
        var ids = [Int64](repeating: 0, count: batch * width)
        var mask = [Int64](repeating: 0, count: batch * width)
        var positions = [Int64](repeating: 0, count: batch * width)
        var offsets: [Int] = []  // where each sequence starts inside its padded row
        for (b, sequence) in sequences.enumerated() {
            let offset = padding == .right ? 0 : width - sequence.count
            offsets.append(offset)
            for (t, id) in sequence.enumerated() {
                ids[b * width + offset + t] = Int64(id)
                mask[b * width + offset + t] = 1
                positions[b * width + offset + t] = Int64(t)
            }
            if padding == .right {  // pads continue the positions (never attended to)
                for t in sequence.count..<width { positions[b * width + t] = Int64(t) }
            } else {  // transformers: cumsum(mask) − 1, pads at 1 (masked_fill)
                for t in 0..<offset { positions[b * width + t] = 1 }
            }
        }
        var feeds: [String: Tensor] = ["input_ids": Tensor(ids, shape: [batch, width])]
        for input in session.requiredInputs where input.name != "input_ids" {
            switch input.name {
            case "attention_mask":
                feeds[input.name] = Tensor(mask, shape: [batch, width])
            case "position_ids":
                feeds[input.name] = Tensor(positions, shape: [batch, width])
            default:
                guard let shape = input.shape, shape.count == 4, case let .fixed(heads) = shape[1], case let .fixed(dim) = shape[3] else {
                    throw FeatureError("cannot feed input '\(input.name)' (\(input.typeDescription)): feature extraction feeds input_ids, attention_mask, position_ids and empty KV caches [batch, kv_heads, 0, head_dim]")
                }
                feeds[input.name] = Tensor(zeros: input.dtype ?? .float32, shape: [batch, heads, 0, dim])
            }
        }
        if profiling { session.trace?(Node(name: "", opType: "(feeds)", inputs: [], outputs: []), []) }
        let results = try session.run(feeds, outputs: [tap.hiddenValue, tap.logitsValue])
        let softmaxStart = DispatchTime.now().uptimeNanoseconds
        defer { logSoftmaxSeconds += Double(DispatchTime.now().uptimeNanoseconds - softmaxStart) / 1e9 }
        let hidden = float32(results[tap.hiddenValue]!)
        let logits = float32(results[tap.logitsValue]!)
        let d = tap.hiddenSize
        guard hidden.count == batch * width * d else {
            throw FeatureError("the tapped hidden state '\(tap.hiddenValue)' has shape \(hidden.shape); expected \(batch)×\(width)×\(d)")
        }
        let vocab = logits.count / (batch * width)
        guard logits.count == batch * width * vocab, vocab > 0 else {
            throw FeatureError("logits have shape \(logits.shape) for a batch of \(batch)×\(width)")
        }
        let h = hidden.pointer(Float.self), z = logits.pointer(Float.self)
        var outputs: [SequenceOutput] = []
        for (b, sequence) in sequences.enumerated() {
            let length = sequence.count
            let row0 = b * width + offsets[b]
            let own = Tensor(uninitialized: .float32, shape: [length, d])
            own.pointer(Float.self).update(from: h + row0 * d, count: length * d)
            var logps: [Float] = []
            logps.reserveCapacity(length - promptLengths[b])
            for t in promptLengths[b]..<length {
                guard sequence[t] >= 0 && sequence[t] < vocab else {
                    throw FeatureError("token id \(sequence[t]) is outside the model's vocabulary of \(vocab)")
                }
                logps.append(Self.logSoftmax(z + (row0 + t - 1) * vocab, count: vocab, at: sequence[t]))
            }
            outputs.append(SequenceOutput(hidden: own, responseLogps: logps))
        }
        return outputs
    }

    /// log softmax(row)[index], accumulated in Double.
    static func logSoftmax(_ row: UnsafePointer<Float>, count: Int, at index: Int) -> Float {
        var maximum = -Float.infinity
        for i in 0..<count where row[i] > maximum { maximum = row[i] }
        var sum = 0.0
        for i in 0..<count { sum += Double(expf(row[i] - maximum)) }
        return Float(Double(row[index] - maximum) - log(sum))
    }
}

public struct FeatureError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
