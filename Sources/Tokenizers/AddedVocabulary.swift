/// An added (possibly special) token from tokenizer.json's `added_tokens`.
public struct AddedToken: Sendable, Equatable {
    public let id: Int
    public let content: String
    public let singleWord: Bool
    public let lstrip: Bool
    public let rstrip: Bool
    public let normalized: Bool
    public let special: Bool

    public static func == (a: AddedToken, b: AddedToken) -> Bool {
        a.id == b.id && Array(a.content.utf8) == Array(b.content.utf8) && a.singleWord == b.singleWord
            && a.lstrip == b.lstrip && a.rstrip == b.rstrip && a.normalized == b.normalized && a.special == b.special
    }

    func sameFlags(_ o: AddedToken) -> Bool {
        Array(content.utf8) == Array(o.content.utf8) && singleWord == o.singleWord && lstrip == o.lstrip
            && rstrip == o.rstrip && normalized == o.normalized && special == o.special
    }
}

/// Leftmost-longest multi-pattern matcher over bytes (HF uses Aho-Corasick, MatchKind::LeftmostLongest).
struct TokenTrie: Sendable {
    private var children: [[(UInt8, Int32)]] = [[]]
    /// Index of the pattern ending at each node, or -1.
    private var terminal: [Int32] = [-1]
    private var firstByte = [Bool](repeating: false, count: 256)
    private(set) var isEmpty = true

    mutating func insert(_ pattern: [UInt8], index: Int32) {
        guard !pattern.isEmpty else { return }
        isEmpty = false
        firstByte[Int(pattern[0])] = true
        var node = 0
        for b in pattern {
            if let next = children[node].first(where: { $0.0 == b }) {
                node = Int(next.1)
            } else {
                children.append([])
                terminal.append(-1)
                children[node].append((b, Int32(children.count - 1)))
                node = children.count - 1
            }
        }
        if terminal[node] < 0 { terminal[node] = index }  // the first pattern wins ties
    }

    /// Non-overlapping leftmost-longest matches: (start, end, pattern index).
    func findAll(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> [(Int, Int, Int32)] {
        var out: [(Int, Int, Int32)] = []
        if isEmpty { return out }
        var i = start
        while i < end {
            if !firstByte[Int(p[i])] { i += 1; continue }
            var node = 0, j = i
            var best: (Int, Int32)? = nil
            while j < end {
                guard let next = children[node].first(where: { $0.0 == p[j] }) else { break }
                node = Int(next.1)
                j += 1
                if terminal[node] >= 0 { best = (j, terminal[node]) }
            }
            if let (e, idx) = best {
                out.append((i, e, idx))
                i = e
            } else {
                i += 1
            }
        }
        return out
    }
}

/// HF AddedVocabulary: ids for added tokens and the two splitting passes (tokens matched on the
/// raw text, then tokens matched on the normalized text).
struct AddedVocabulary: Sendable {
    private(set) var tokens: [AddedToken] = []
    private(set) var byId: [Int: AddedToken] = [:]
    private var contentToId = BytesMap()
    private var specialContents = BytesMap()
    private var rawTrie = TokenTrie()
    private var normalizedTrie = TokenTrie()
    /// Trie pattern index -> token.
    private var rawPatterns: [AddedToken] = []
    private var normalizedPatterns: [AddedToken] = []

    var isEmpty: Bool { tokens.isEmpty }
    var hasRawPatterns: Bool { !rawTrie.isEmpty }
    var hasNormalizedPatterns: Bool { !normalizedTrie.isEmpty }

    init() {}

    /// Loads `added_tokens`, assigning ids the way HF's AddedVocabulary::add_tokens does (the `id`
    /// field is only a hint there: a token already in the model keeps the model's id, others get
    /// the next free id after the model vocabulary).
    init(_ node: JSONNode?, model: BPEModel, normalizer: (any Normalizer)?) throws(TokenizerError) {
        guard let node else { return }
        var protos: [AddedToken] = []
        for item in try node.array() {
            _ = try item.field("id").int()
            protos.append(AddedToken(id: -1, content: try item.string("content"),
                                     singleWord: try item.bool("single_word", default: false),
                                     lstrip: try item.bool("lstrip", default: false),
                                     rstrip: try item.bool("rstrip", default: false),
                                     normalized: try item.bool("normalized", default: true),
                                     special: try item.bool("special", default: false)))
        }
        var specialOrder: [AddedToken] = [], classicOrder: [AddedToken] = []
        for proto in protos where proto.special && !proto.content.isEmpty {
            let bytes = Array(proto.content.utf8)
            if specialContents.get(bytes) == nil {
                specialContents.set(bytes, 1)
                specialOrder.append(proto)
            }
        }
        var maxAdded: Int? = nil
        for proto in protos {
            let bytes = Array(proto.content.utf8)
            if bytes.isEmpty || byId.values.contains(where: { $0.sameFlags(proto) }) { continue }
            let id: Int
            if let existing = contentToId.get(bytes) {
                id = Int(existing)
            } else if let m = model.tokenToId(bytes) {
                id = Int(m)
            } else if let mx = maxAdded, mx >= model.vocabCount || model.vocabCount == 0 {
                id = mx + 1
            } else {
                id = model.vocabCount
            }
            contentToId.set(bytes, Int32(id))
            byId[id] = AddedToken(id: id, content: proto.content, singleWord: proto.singleWord, lstrip: proto.lstrip,
                                  rstrip: proto.rstrip, normalized: proto.normalized, special: proto.special)
            maxAdded = max(maxAdded ?? id, id)
            if specialContents.get(bytes) == nil { classicOrder.append(proto) }
        }
        // Matching order as HF: special tokens first, then the others.
        for proto in specialOrder + classicOrder {
            guard let id = contentToId.get(Array(proto.content.utf8)) else { continue }
            tokens.append(AddedToken(id: Int(id), content: proto.content, singleWord: proto.singleWord, lstrip: proto.lstrip,
                                     rstrip: proto.rstrip, normalized: proto.normalized, special: proto.special))
        }
        for t in tokens {
            if t.normalized {
                var s = NormString(bytes: Array(t.content.utf8), origins: [])
                normalizer?.normalize(&s, track: false)
                normalizedTrie.insert(s.bytes, index: Int32(normalizedPatterns.count))
                normalizedPatterns.append(t)
            } else {
                rawTrie.insert(Array(t.content.utf8), index: Int32(rawPatterns.count))
                rawPatterns.append(t)
            }
        }
    }

    func id(of content: [UInt8]) -> Int? { contentToId.get(content).map(Int.init) }

    func isSpecial(_ content: [UInt8]) -> Bool { specialContents.get(content) != nil }

    /// Splits `p[start..<end]` on the raw (`normalized == false`) or normalized added tokens.
    /// Appends spans relative to `base` (token spans carry the token id).
    func split(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, normalizedPass: Bool, into out: inout [Span]) {
        let trie = normalizedPass ? normalizedTrie : rawTrie
        let patterns = normalizedPass ? normalizedPatterns : rawPatterns
        var offset = start
        for (mStart, mEnd, idx) in trie.findAll(p, start, end) {
            let tokenId = Int32(patterns[Int(idx)].id)
            // Flags come from the token currently registered under that id (HF added_tokens_map_r).
            let token = byId[Int(tokenId)] ?? patterns[Int(idx)]
            var s = mStart, e = mEnd
            if token.singleWord {
                let startSpace = s == start || !endsWithWord(p, start, s)
                let stopSpace = e == end || !startsWithWord(p, e, end)
                if !startSpace || !stopSpace { continue }
            }
            if token.lstrip {
                // Start of the whitespace run ending at s, but never before the previous match.
                var k = s
                while k > start {
                    var j = k - 1
                    while j > start && p[j] & 0xC0 == 0x80 { j -= 1 }
                    let (v, _) = decodeScalar(p, j)
                    if !CharClass.isWhitespace(v) { break }
                    k = j
                }
                s = max(k, offset)
            }
            if token.rstrip {
                while e < end {
                    let (v, n) = decodeScalar(p, e)
                    if !CharClass.isWhitespace(v) { break }
                    e += n
                }
            }
            if offset < s { out.append(Span(start: offset, end: s)) }
            out.append(Span(start: s, end: e, token: tokenId))
            offset = e
        }
        if offset < end { out.append(Span(start: offset, end: end)) }
    }

    private func endsWithWord(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        guard end > start else { return false }
        var j = end - 1
        while j > start && p[j] & 0xC0 == 0x80 { j -= 1 }
        return CharClass.isWord(decodeScalar(p, j).0)
    }

    private func startsWithWord(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        guard end > start else { return false }
        return CharClass.isWord(decodeScalar(p, start).0)
    }
}
