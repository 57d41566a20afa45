import Foundation

/// A tokenizer loaded from a Hugging Face `tokenizer.json`, encoding and decoding exactly like the
/// `tokenizers` library (BPE models; see the README of this module for the supported components).
///
/// Thread-safe: encode / decode may be called concurrently.
public final class Tokenizer: @unchecked Sendable {
    let normalizer: (any Normalizer)?
    let preTokenizer: (any PreTokenizer)?
    let model: BPEModel
    let postProcessor: (any PostProcessor)?
    let decoder: (any Decoder)?
    let added: AddedVocabulary
    let truncation: Truncation?
    let padding: Padding?
    /// Original offsets are only needed by Metaspace(prepend_scheme: first).
    let trackOrigins: Bool

    struct Truncation {
        let maxLength: Int
        let left: Bool
    }

    struct Padding {
        let fixed: Int?
        let multipleOf: Int?
        let padId: Int32
        let left: Bool
    }

    /// Loads a tokenizer.json file.
    public convenience init(contentsOfFile path: String) throws(TokenizerError) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .io(path: path, (error as NSError).localizedDescription)
        }
        try self.init(json: [UInt8](data))
    }

    public convenience init(contentsOf url: URL) throws(TokenizerError) {
        try self.init(contentsOfFile: url.path)
    }

    /// Parses tokenizer.json text.
    public convenience init(jsonString: String) throws(TokenizerError) {
        try self.init(json: Array(jsonString.utf8))
    }

    public init(json: [UInt8]) throws(TokenizerError) {
        let root = JSONNode(try JSONValue.parse(json), path: "")
        guard case .object = root.value else { throw .invalidField(path: "(root)", "expected an object, found \(root.value.kindName)") }

        let modelNode = try root.field("model")
        if modelNode.isNull { throw .missingField(path: "model") }
        let modelType: String
        if let t = try modelNode.optionalField("type") {
            modelType = try t.string()
        } else if try modelNode.optionalField("merges") != nil {
            modelType = "BPE"
        } else {
            throw .missingField(path: "model.type")
        }
        guard modelType == "BPE" else {
            throw .unsupportedType(path: "model.type", kind: "model", type: modelType, supported: ["BPE"])
        }
        model = try BPEModel(modelNode)

        normalizer = try root.optionalField("normalizer").map { n throws(TokenizerError) in try makeNormalizer(n) }
        preTokenizer = try root.optionalField("pre_tokenizer").map { n throws(TokenizerError) in try makePreTokenizer(n) }
        postProcessor = try root.optionalField("post_processor").map { n throws(TokenizerError) in try makePostProcessor(n) }
        decoder = try root.optionalField("decoder").map { n throws(TokenizerError) in try makeDecoder(n) }
        added = try AddedVocabulary(try root.optionalField("added_tokens"), model: model, normalizer: normalizer)
        trackOrigins = preTokenizer?.needsOrigins ?? false

        if let t = try root.optionalField("truncation") {
            let direction = try t.optionalString("direction") ?? "Right"
            truncation = Truncation(maxLength: try t.field("max_length").int(), left: direction == "Left")
        } else {
            truncation = nil
        }
        if let p = try root.optionalField("padding") {
            var fixed: Int? = nil
            let strategy = try p.field("strategy")
            if case .object = strategy.value, let f = try strategy.optionalField("Fixed") { fixed = try f.int() }
            let multiple = try p.optionalField("pad_to_multiple_of").map { n throws(TokenizerError) in try n.int() }
            padding = Padding(fixed: fixed, multipleOf: multiple, padId: Int32(try p.optionalField("pad_id")?.int() ?? 0),
                              left: (try p.optionalString("direction") ?? "Right") == "Left")
        } else {
            padding = nil
        }
    }

    // MARK: - Vocabulary

    /// One more than the largest valid id (model vocabulary and added tokens).
    public var vocabularySize: Int {
        max(model.idToToken.count, (added.byId.keys.max() ?? -1) + 1)
    }

    /// The added tokens (special and not), in HF's matching order.
    public var addedTokens: [AddedToken] { added.tokens }

    /// The id of a token string (added tokens first, then the model vocabulary).
    public func tokenToId(_ token: String) -> Int? {
        let bytes = Array(token.utf8)
        if let id = added.id(of: bytes) { return id }
        return model.tokenToId(bytes).map(Int.init)
    }

    /// The token string of an id, or nil when the id is out of range.
    public func idToToken(_ id: Int) -> String? {
        if let t = added.byId[id] { return t.content }
        return model.idToTokenBytes(id).map { string(fromValidUTF8: $0) }
    }

    /// Whether the id is an added token marked special (skipped by `skipSpecialTokens`).
    public func isSpecial(_ id: Int) -> Bool {
        guard let t = idToToken(id) else { return false }
        return added.isSpecial(Array(t.utf8))
    }

    // MARK: - Encoding

    /// Token ids for `text`, as HF `Tokenizer.encode(text, add_special_tokens=...).ids`.
    public func encode(_ text: String, addSpecialTokens: Bool = true) throws(TokenizerError) -> [Int] {
        var ids = try encodeWithoutPostProcessing(text)
        if let t = truncation {
            let limit = max(0, t.maxLength - (addSpecialTokens ? (postProcessor?.addedTokenCount ?? 0) : 0))
            if ids.count > limit { ids = t.left ? Array(ids.suffix(limit)) : Array(ids.prefix(limit)) }
        }
        if let postProcessor { ids = postProcessor.process(ids, addSpecialTokens: addSpecialTokens) }
        if let p = padding {
            var target = p.fixed ?? ids.count
            if let m = p.multipleOf, m > 0, target % m != 0 { target += m - target % m }
            if ids.count < target {
                let pad = [Int32](repeating: p.padId, count: target - ids.count)
                ids = p.left ? pad + ids : ids + pad
            }
        }
        return ids.map(Int.init)
    }

    /// Normalization, added-token extraction, pre-tokenization and the model.
    func encodeWithoutPostProcessing(_ text: String) throws(TokenizerError) -> [Int32] {
        var pt = preTokenize(text)
        if let preTokenizer { preTokenizer.preTokenize(&pt) }
        var ids: [Int32] = []
        ids.reserveCapacity(pt.buf.count / 3 + 8)
        var scratch = BPEScratch()
        let spans = pt.spans
        try pt.buf.withUnsafeBufferPointer { p throws(TokenizerError) in
            for s in spans {
                if s.token >= 0 { ids.append(s.token); continue }
                try model.tokenize(UnsafeBufferPointer(rebasing: p[s.start..<s.end]), byteLevel: s.byteLevel, scratch: &scratch, into: &ids)
            }
        }
        return ids
    }

    /// HF AddedVocabulary::extract_and_normalize.
    func preTokenize(_ text: String) -> PreTokenized {
        var bytes = Array(text.utf8)
        let track = trackOrigins
        // 1. Added tokens matched on the raw text.
        var spans: [Span] = []
        if added.hasRawPatterns {
            bytes.withUnsafeBufferPointer { added.split($0, 0, $0.count, normalizedPass: false, into: &spans) }
        } else if !bytes.isEmpty {
            spans.append(Span(start: 0, end: bytes.count))
        }
        // 2. Normalize the text pieces, then match the normalized added tokens.
        if normalizer == nil && !track {
            if added.hasNormalizedPatterns {
                var out: [Span] = []
                bytes.withUnsafeBufferPointer { p in
                    for s in spans {
                        if s.token >= 0 { out.append(s) } else { added.split(p, s.start, s.end, normalizedPass: true, into: &out) }
                    }
                }
                spans = out
            }
            return PreTokenized(buf: bytes, origins: [], spans: spans, track: false)
        }
        var buf: [UInt8] = []
        buf.reserveCapacity(bytes.count + 16)
        var origins: [Int32] = []
        var out: [Span] = []
        for s in spans {
            if s.token >= 0 { out.append(Span(start: 0, end: 0, token: s.token)); continue }
            var ns = NormString(bytes: Array(bytes[s.start..<s.end]), origins: track ? (s.start..<s.end).map { Int32($0) } : [])
            normalizer?.normalize(&ns, track: track)
            if ns.bytes.isEmpty { continue }
            let base = buf.count
            buf.append(contentsOf: ns.bytes)
            if track { origins.append(contentsOf: ns.origins) }
            if added.hasNormalizedPatterns {
                buf.withUnsafeBufferPointer { p in added.split(p, base, buf.count, normalizedPass: true, into: &out) }
            } else {
                out.append(Span(start: base, end: buf.count))
            }
        }
        bytes = []
        return PreTokenized(buf: buf, origins: origins, spans: out, track: track)
    }

    // MARK: - Decoding

    /// The token strings `decode` feeds to the decoder.
    func tokensForDecoding(_ ids: [Int], skipSpecialTokens: Bool) throws(TokenizerError) -> [String] {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let t = idToToken(id) else { throw .idOutOfRange(id: id, vocabularySize: vocabularySize) }
            if skipSpecialTokens && added.isSpecial(Array(t.utf8)) { continue }
            tokens.append(t)
        }
        return tokens
    }

    /// Text for token ids, as HF `Tokenizer.decode(ids, skip_special_tokens=...)`. Throws on ids that
    /// are in neither the vocabulary nor the added tokens (HF silently drops them).
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) throws(TokenizerError) -> String {
        let tokens = try tokensForDecoding(ids, skipSpecialTokens: skipSpecialTokens)
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decodeChain(tokens).joined()
    }

    /// A detokenizer for ids arriving one at a time (generation).
    public func makeStreamingDetokenizer(skipSpecialTokens: Bool = false) -> StreamingDetokenizer {
        StreamingDetokenizer(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
    }
}

/// Turns ids arriving one at a time into text. The concatenation of everything `push` and `finish`
/// return equals `Tokenizer.decode` of all the ids, and no returned piece ever splits a character:
/// incomplete UTF-8 (ByteLevel bytes, `<0xNN>` byte-fallback runs) is held back until it completes
/// or can never complete; Metaspace's first-token rule applies to the first token only.
public final class StreamingDetokenizer {
    let tokenizer: Tokenizer
    public let skipSpecialTokens: Bool
    private var stages: [any DecodeStage] = []

    init(tokenizer: Tokenizer, skipSpecialTokens: Bool) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
        reset()
    }

    /// Starts over (a new sequence).
    public func reset() {
        stages = tokenizer.decoder?.makeStages() ?? [JoinWithSpaceStage()]
    }

    /// Adds one id; returns the text that became final (often "", never a broken character).
    public func push(_ id: Int) throws(TokenizerError) -> String {
        let tokens = try tokenizer.tokensForDecoding([id], skipSpecialTokens: skipSpecialTokens)
        guard let token = tokens.first else { return "" }
        return run([.text(token), .end], finishing: false)
    }

    /// Adds several ids; returns the text that became final.
    public func push(_ ids: [Int]) throws(TokenizerError) -> String {
        var out = ""
        for id in ids { out += try push(id) }
        return out
    }

    /// Ends the sequence: returns what was held back (incomplete bytes become U+FFFD as in a full
    /// decode) and resets.
    public func finish() -> String {
        let text = run([], finishing: true)
        reset()
        return text
    }

    private func run(_ input: [DecodeEvent], finishing: Bool) -> String {
        var events = input
        for stage in stages {
            var out: [DecodeEvent] = []
            for e in events { stage.feed(e, &out) }
            if finishing { stage.finish(&out) }
            events = out
        }
        var text = ""
        for e in events { if case .text(let s) = e { text += s } }
        return text
    }
}
