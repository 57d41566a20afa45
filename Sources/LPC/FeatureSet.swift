import Foundation
import TensorCore

/// Cached backbone features of one response (prompt + response run through the frozen model).
///
/// With P prompt tokens and n response tokens y_0…y_{n−1} (absolute positions P…P+n−1):
/// `hidden` row i is the final hidden state at position P−1+i, for i = 0…n. So row 0 is h at the
/// last prompt token (the prior's input), row i < n predicts `tokens[i]`, and row n is h at the
/// last token of prompt + response (the posterior's input).
public struct SequenceFeatures: @unchecked Sendable {
    public let promptLength: Int
    /// [n] response token ids.
    public let tokens: [Int32]
    /// [n + 1, d] float32 (a read-only view on the cache file's memory map; do not write).
    public let hidden: Tensor
    /// [n] log π_ref(y_i | x, y_<i) from the model's own logits.
    public let refLogps: [Float]

    public var count: Int { tokens.count }
    /// Σ refLogps (summed reference log-prob of the response).
    public var refLogp: Double { refLogps.reduce(0) { $0 + Double($1) } }
    /// [d] h at the last prompt token.
    public var promptHidden: UnsafeBufferPointer<Float> { row(0) }
    /// [d] h at the last token of prompt + response.
    public var lastHidden: UnsafeBufferPointer<Float> { row(count) }

    public func row(_ i: Int) -> UnsafeBufferPointer<Float> {
        let d = hidden.shape[1]
        return UnsafeBufferPointer(start: hidden.pointer(Float.self) + i * d, count: d)
    }
}

/// Features of one preference pair. `chosen.promptHidden` and `rejected.promptHidden` are the
/// same state (equal up to float error from batching); `promptHidden` is the chosen side's.
public struct PairFeatures: Sendable {
    public let chosen: SequenceFeatures
    public let rejected: SequenceFeatures
    public let source: String?
    /// Line of the pair in the data file.
    public let line: Int

    public var promptHidden: UnsafeBufferPointer<Float> { chosen.promptHidden }
}

/// The on-disk index of a cache entry (`index.json`); arrays live in binary files beside it:
/// `hidden.f32` or `hidden.f16` [rows, d], `tokens.i32` and `logps.f32` [response tokens].
struct FeatureIndex: Codable {
    struct Sequence: Codable {
        var row: Int
        var token: Int
        var count: Int
    }
    struct Pair: Codable {
        var line: Int
        var source: String?
        var promptLength: Int
        var chosen: Sequence
        var rejected: Sequence
    }
    var format = "lpc-features"
    var version = FeatureSet.formatVersion
    var key: String
    var hiddenSize: Int
    var storage: FeatureOptions.Storage
    var padding: FeatureOptions.Padding
    var rows: Int
    var tokens: Int
    var model: String
    var data: String
    var lengths: LengthOptions
    var stats: DataStats
    var hiddenValue: String
    var extractionSeconds: Double
    var created: String
    var pairs: [Pair]
}

/// Every pair's backbone features, loaded from (or written to) a cache folder
/// `<cacheRoot>/<key>/`. The key is a SHA-256 of the model's fingerprint (model.onnx and its
/// external data: size, mtime, first MiB), the tokenized pairs (which is what the tokenizer,
/// chat template, data file and length options produce — any change to them changes the ids),
/// the storage type and the padding side. Written into a temporary folder and renamed into place,
/// so a cache entry is either complete or absent.
public final class FeatureSet: @unchecked Sendable {
    static let formatVersion = 1

    public let hiddenSize: Int
    public let pairs: [PairFeatures]
    /// The cache folder the features live in.
    public let directory: String
    public let key: String
    /// Whether they were read from an existing cache entry (false: extracted in this run).
    public let fromCache: Bool
    public let stats: DataStats
    /// Wall time of the extraction that made the cache entry.
    public let extractionSeconds: Double
    public let storage: FeatureOptions.Storage

    private init(index: FeatureIndex, directory: String, fromCache: Bool) throws {
        self.directory = directory
        self.fromCache = fromCache
        key = index.key
        hiddenSize = index.hiddenSize
        stats = index.stats
        extractionSeconds = index.extractionSeconds
        storage = index.storage
        let d = index.hiddenSize

        let hiddenFile = directory + "/hidden." + (index.storage == .float32 ? "f32" : "f16")
        let mapped = try MappedFile(path: hiddenFile)
        let elementSize = index.storage == .float32 ? 4 : 2
        guard mapped.byteCount == index.rows * d * elementSize else {
            throw FeatureError("\(hiddenFile) has \(mapped.byteCount) bytes; the index says \(index.rows) rows of \(d)")
        }
        let hiddenAll: Tensor
        if index.storage == .float32 {
            hiddenAll = Tensor(dtype: .float32, shape: [index.rows, d],
                               storage: TensorStorage(viewOf: mapped.pointer ?? UnsafeMutableRawPointer(bitPattern: 16)!, byteCount: mapped.byteCount, owner: mapped))
        } else {
            hiddenAll = Tensor(uninitialized: .float32, shape: [index.rows, d])
            let src = mapped.pointer!.assumingMemoryBound(to: UInt16.self), dst = hiddenAll.pointer(Float.self)
            for i in 0..<(index.rows * d) { dst[i] = Float(Float16(bitPattern: src[i])) }
        }
        let tokens = try Self.readArray(directory + "/tokens.i32", as: Int32.self, count: index.tokens)
        let logps = try Self.readArray(directory + "/logps.f32", as: Float.self, count: index.tokens)

        func sequence(_ s: FeatureIndex.Sequence, promptLength: Int) throws -> SequenceFeatures {
            guard s.count >= 1, s.row + s.count + 1 <= index.rows, s.token + s.count <= index.tokens else {
                throw FeatureError("\(directory)/index.json: a sequence lies outside the stored arrays")
            }
            let view = Tensor(dtype: .float32, shape: [s.count + 1, d],
                              storage: TensorStorage(viewOf: hiddenAll.raw + s.row * d * 4, byteCount: (s.count + 1) * d * 4, owner: hiddenAll.storage))
            return SequenceFeatures(promptLength: promptLength, tokens: Array(tokens[s.token..<(s.token + s.count)]),
                                    hidden: view, refLogps: Array(logps[s.token..<(s.token + s.count)]))
        }
        pairs = try index.pairs.map { p in
            PairFeatures(chosen: try sequence(p.chosen, promptLength: p.promptLength),
                         rejected: try sequence(p.rejected, promptLength: p.promptLength), source: p.source, line: p.line)
        }
    }

    static func readArray<T>(_ path: String, as: T.Type, count: Int) throws -> [T] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        guard data.count == count * MemoryLayout<T>.stride else {
            throw FeatureError("\(path) has \(data.count) bytes; expected \(count) values")
        }
        return data.withUnsafeBytes { Array($0.bindMemory(to: T.self)) }
    }

    /// The cache key for `dataset` under `extractor`'s model and `options`.
    public static func cacheKey(dataset: PreferenceDataset, modelFingerprint: String, hiddenValue: String,
                                options: FeatureOptions) -> String {
        var hash = SHA256()
        hash.update("lpc-features v\(formatVersion)")
        hash.update(modelFingerprint)
        hash.update(hiddenValue)
        hash.update(options.storage.rawValue)
        hash.update(options.padding.rawValue)
        hash.update(dataset.pairs.count)
        for pair in dataset.pairs {
            for ids in [pair.prompt, pair.chosen, pair.rejected] {
                hash.update(ids.count)
                for id in ids { hash.update(id) }
            }
            hash.update(pair.source ?? "\u{1}none")
            hash.update(pair.line)
        }
        return hash.finalize()
    }

    /// Loads the features of `dataset` from `cacheRoot` (default `.lpc-cache` in the current
    /// folder), or extracts them with `extractor` and writes the cache entry first.
    public static func load(dataset: PreferenceDataset, extractor: FeatureExtractor, cacheRoot: String = ".lpc-cache",
                            options: FeatureOptions = FeatureOptions()) throws -> FeatureSet {
        guard let modelFile = extractor.modelFile else {
            throw FeatureError("the extractor has no model file to key the cache on; create it with FeatureExtractor(modelFile:)")
        }
        let key = cacheKey(dataset: dataset, modelFingerprint: try ModelFingerprint.of(modelFile: modelFile),
                           hiddenValue: extractor.tap.hiddenValue, options: options)
        let directory = cacheRoot + "/" + key
        if let index = try? readIndex(directory), index.key == key, index.version == formatVersion {
            if let set = try? FeatureSet(index: index, directory: directory, fromCache: true) {
                if options.progress {
                    FileHandle.standardError.write(Data("features: \(set.pairs.count) pairs from cache \(directory)\n".utf8))
                }
                return set
            }
            FileHandle.standardError.write(Data("features: cache entry \(directory) is damaged; extracting again\n".utf8))
        }
        let index = try extract(dataset: dataset, extractor: extractor, key: key, modelFile: modelFile,
                                cacheRoot: cacheRoot, options: options)
        return try FeatureSet(index: index, directory: directory, fromCache: false)
    }

    static func readIndex(_ directory: String) throws -> FeatureIndex {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(FeatureIndex.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/index.json")))
    }

    private static func extract(dataset: PreferenceDataset, extractor: FeatureExtractor, key: String, modelFile: String,
                                cacheRoot: String, options: FeatureOptions) throws -> FeatureIndex {
        let d = extractor.hiddenSize
        var sequences: [[Int]] = []
        var promptLengths: [Int] = []
        for pair in dataset.pairs {
            sequences.append(pair.prompt + pair.chosen)
            sequences.append(pair.prompt + pair.rejected)
            promptLengths += [pair.prompt.count, pair.prompt.count]
        }
        // Row and token offsets in dataset order.
        var rowOffsets: [Int] = [], tokenOffsets: [Int] = []
        var rows = 0, tokens = 0
        for (sequence, prompt) in zip(sequences, promptLengths) {
            rowOffsets.append(rows)
            tokenOffsets.append(tokens)
            rows += sequence.count - prompt + 1
            tokens += sequence.count - prompt
        }
        let elementSize = options.storage == .float32 ? 4 : 2
        var hiddenBytes = [UInt8](repeating: 0, count: rows * d * elementSize)
        var tokenArray = [Int32](repeating: 0, count: tokens)
        var logpArray = [Float](repeating: 0, count: tokens)

        let progress = FeatureProgress(total: sequences.count, totalTokens: sequences.reduce(0) { $0 + $1.count }, enabled: options.progress)
        let start = Date()
        try extractor.run(sequences, promptLengths: promptLengths, options: options,
                          onBatch: { progress.advance(sequences: $0, tokens: $1) }) { index, output in
            let prompt = promptLengths[index], n = sequences[index].count - prompt
            let src = output.hidden.pointer(Float.self) + (prompt - 1) * d
            hiddenBytes.withUnsafeMutableBytes { raw in
                let base = rowOffsets[index] * d
                if options.storage == .float32 {
                    let dst = raw.bindMemory(to: Float.self).baseAddress! + base
                    dst.update(from: src, count: (n + 1) * d)
                } else {
                    let dst = raw.bindMemory(to: UInt16.self).baseAddress! + base
                    for i in 0..<((n + 1) * d) { dst[i] = Float16(src[i]).bitPattern }
                }
            }
            for i in 0..<n {
                tokenArray[tokenOffsets[index] + i] = Int32(sequences[index][prompt + i])
                logpArray[tokenOffsets[index] + i] = output.responseLogps[i]
            }
        }
        progress.finish()
        let seconds = Date().timeIntervalSince(start)

        var pairs: [FeatureIndex.Pair] = []
        for (p, pair) in dataset.pairs.enumerated() {
            func entry(_ i: Int) -> FeatureIndex.Sequence {
                .init(row: rowOffsets[i], token: tokenOffsets[i], count: sequences[i].count - promptLengths[i])
            }
            pairs.append(.init(line: pair.line, source: pair.source, promptLength: pair.prompt.count,
                               chosen: entry(2 * p), rejected: entry(2 * p + 1)))
        }
        let index = FeatureIndex(key: key, hiddenSize: d, storage: options.storage, padding: options.padding, rows: rows,
                                 tokens: tokens, model: modelFile, data: dataset.file, lengths: dataset.lengths,
                                 stats: dataset.stats, hiddenValue: extractor.tap.hiddenValue, extractionSeconds: seconds,
                                 created: ISO8601DateFormatter().string(from: Date()), pairs: pairs)

        // Write into a temporary folder, then rename it into place (atomic on one file system).
        let fm = FileManager.default
        try fm.createDirectory(atPath: cacheRoot, withIntermediateDirectories: true)
        let temporary = cacheRoot + "/.\(key).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try fm.createDirectory(atPath: temporary, withIntermediateDirectories: false)
        do {
            try Data(hiddenBytes).write(to: URL(fileURLWithPath: temporary + "/hidden." + (options.storage == .float32 ? "f32" : "f16")))
            try tokenArray.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: temporary + "/tokens.i32")) }
            try logpArray.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: temporary + "/logps.f32")) }
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(index).write(to: URL(fileURLWithPath: temporary + "/index.json"))
            let directory = cacheRoot + "/" + key
            if rename(temporary, directory) != 0 {
                // Another run finished the same entry first (or a damaged one is in the way).
                if (try? readIndex(directory))?.key == key {
                    try? fm.removeItem(atPath: temporary)
                } else {
                    try? fm.removeItem(atPath: directory)
                    guard rename(temporary, directory) == 0 else {
                        throw FeatureError("cannot move the feature cache into \(directory): \(String(cString: strerror(errno)))")
                    }
                }
            }
        } catch {
            try? fm.removeItem(atPath: temporary)
            throw error
        }
        return index
    }
}

/// Progress on stderr: rewritten in place on a terminal, a line every 10 s otherwise.
final class FeatureProgress {
    let total: Int, totalTokens: Int, enabled: Bool
    let start = Date()
    var done = 0, tokens = 0
    var lastPrint = Date.distantPast
    let terminal = isatty(STDERR_FILENO) != 0

    init(total: Int, totalTokens: Int, enabled: Bool) {
        self.total = total
        self.totalTokens = totalTokens
        self.enabled = enabled
    }

    func advance(sequences: Int, tokens: Int) {
        done += sequences
        self.tokens += tokens
        guard enabled else { return }
        let now = Date()
        if terminal || now.timeIntervalSince(lastPrint) >= 10 || done == total {
            lastPrint = now
            let line = status()
            FileHandle.standardError.write(Data((terminal ? "\r\u{1B}[K" + line : line + "\n").utf8))
        }
    }

    func status() -> String {
        let elapsed = max(Date().timeIntervalSince(start), 1e-9)
        let rate = Double(done) / elapsed, tokenRate = Double(tokens) / elapsed
        let eta = tokenRate > 0 ? Double(totalTokens - tokens) / tokenRate : 0
        return "features: \(done)/\(total) sequences, " + String(format: "%.2f seq/s, %.0f tok/s", rate, tokenRate)
            + ", elapsed \(Self.clock(elapsed)), ETA \(Self.clock(eta))"
    }

    func finish() {
        if enabled && terminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%dh%02dm%02ds", s / 3600, s / 60 % 60, s % 60)
            : s >= 60 ? String(format: "%dm%02ds", s / 60, s % 60) : "\(s)s"
    }
}

extension FeatureSet {
    /// The trainer's packed batch of the given pairs (indices into `pairs`), in that order: each
    /// response contributes its predicting rows 0..<n and ids, row 0 is the prompt's h_x, row n
    /// the posterior's h, and the summed reference log-probs.
    public func batch(pairs indices: [Int]) throws -> PreferenceBatch {
        var batch = PreferenceBatch(hiddenSize: hiddenSize)
        batch.reserve(pairs: indices.count, rows: indices.reduce(0) { $0 + pairs[$1].chosen.count + pairs[$1].rejected.count })
        for i in indices {
            guard i >= 0 && i < pairs.count else { throw FeatureError("pair index \(i) outside 0..<\(pairs.count)") }
            let (w, l) = (pairs[i].chosen, pairs[i].rejected)
            try w.tokens.withUnsafeBufferPointer { wIds in
                try l.tokens.withUnsafeBufferPointer { lIds in
                    try batch.append(promptHidden: w.promptHidden, chosenLastHidden: w.lastHidden, rejectedLastHidden: l.lastHidden,
                                     chosenTokens: w.predictingRows, chosenIds: wIds, chosenReferenceLogProb: Float(w.refLogp),
                                     rejectedTokens: l.predictingRows, rejectedIds: lIds, rejectedReferenceLogProb: Float(l.refLogp))
                }
            }
        }
        return batch
    }

    /// Every pair, in file order.
    public func batch() throws -> PreferenceBatch { try batch(pairs: Array(pairs.indices)) }
}

extension SequenceFeatures {
    /// [n, d] rows 0..<n: the states that predict `tokens`.
    public var predictingRows: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: hidden.pointer(Float.self), count: count * hidden.shape[1])
    }
}

extension LMHeadTap {
    /// The trainer's frozen head over this model's LM head weight ([vocab, d]; no copy for tied
    /// optimum exports, a transposed copy for [d, vocab] weights).
    public func frozenHead() throws -> FrozenLMHead {
        guard bias == nil else { throw FeatureError("the LM head has a bias, which FrozenLMHead does not model") }
        return try FrozenLMHead(weight: weightVocabByHidden())
    }
}
