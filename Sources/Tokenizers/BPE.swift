import Foundation

/// Scratch memory reused across the words of one encode call.
struct BPEScratch {
    struct Symbol {
        var c: Int32
        var prev: Int32
        var next: Int32
        var len: Int32
    }

    struct HeapEntry {
        var key: UInt64  // rank << 32 | pos: smaller pops first (HF orders by rank, then position)
        var newId: Int32
    }

    var symbols: [Symbol] = []
    var heap: [HeapEntry] = []
    var bytes: [UInt8] = []

    init() {
        symbols.reserveCapacity(64)
        heap.reserveCapacity(64)
    }

    @inline(__always)
    mutating func push(_ e: HeapEntry) {
        heap.append(e)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) >> 1
            if heap[parent].key <= e.key { break }
            heap[i] = heap[parent]
            i = parent
        }
        heap[i] = e
    }

    @inline(__always)
    mutating func pop() -> HeapEntry? {
        guard let last = heap.popLast() else { return nil }
        if heap.isEmpty { return last }
        let top = heap[0]
        let n = heap.count
        var i = 0
        while true {
            let l = 2 * i + 1
            if l >= n { break }
            let r = l + 1
            let c = (r < n && heap[r].key < heap[l].key) ? r : l
            if heap[c].key >= last.key { break }
            heap[i] = heap[c]
            i = c
        }
        heap[i] = last
        return top
    }
}

/// HF's word cache: words shorter than 256 bytes, until it holds `capacity` words.
final class WordCache: @unchecked Sendable {
    private var map = BytesMap(capacity: 4096)
    private var entries: [(offset: Int32, count: Int32)] = []
    private var ids: [Int32] = []
    private let lock = NSLock()
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    /// Appends the cached ids of `word` to `out`; false when absent.
    @inline(__always)
    func lookup(_ word: UnsafeBufferPointer<UInt8>, into out: inout [Int32]) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard let e = map.get(word) else { return false }
        let entry = entries[Int(e)]
        out.append(contentsOf: ids[Int(entry.offset)..<Int(entry.offset + entry.count)])
        return true
    }

    func insert(_ word: UnsafeBufferPointer<UInt8>, _ result: ArraySlice<Int32>) {
        guard word.count < 256 else { return }
        lock.lock()
        defer { lock.unlock() }
        guard entries.count < capacity, map.get(word) == nil else { return }
        map.set(word, Int32(entries.count))
        entries.append((Int32(ids.count), Int32(result.count)))
        ids.append(contentsOf: result)
    }
}

/// HF tokenizers' BPE model (no dropout).
final class BPEModel: @unchecked Sendable {
    let vocab: BytesMap
    /// id -> token bytes (nil for holes).
    let idToToken: [[UInt8]?]
    let merges: PairMap
    let unkToken: String?
    let continuingSubwordPrefix: [UInt8]?
    let endOfWordSuffix: [UInt8]?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    let vocabCount: Int

    /// ByteLevel fast path: id of each byte's mapped character (-1 when absent), and the
    /// vocabulary keyed by raw bytes for tokens made only of byte-level characters.
    let byteLevelIds: [Int32]
    let rawVocab: BytesMap
    /// `<0xNN>` ids (-1 when absent).
    let byteFallbackIds: [Int32]

    let cache = WordCache(capacity: 100_000)
    let byteLevelCache = WordCache(capacity: 100_000)

    init(_ node: JSONNode) throws(TokenizerError) {
        if let d = try node.optionalField("dropout") {
            let p = try d.double()
            if p != 0 { throw .invalidField(path: d.path, "BPE dropout is not supported (must be null)") }
        }
        unkToken = try node.optionalString("unk_token")
        continuingSubwordPrefix = try node.optionalString("continuing_subword_prefix").map { Array($0.utf8) }
        endOfWordSuffix = try node.optionalString("end_of_word_suffix").map { Array($0.utf8) }
        fuseUnk = try node.bool("fuse_unk", default: false)
        byteFallback = try node.bool("byte_fallback", default: false)
        ignoreMerges = try node.bool("ignore_merges", default: false)

        let vocabNode = try node.field("vocab")
        let pairs = try vocabNode.objectPairs()
        var vocab = BytesMap(capacity: pairs.count)
        var maxId = -1
        var entries: [([UInt8], Int)] = []
        entries.reserveCapacity(pairs.count)
        for (token, value) in pairs {
            let id: Int
            if case .number(let d) = value, d >= 0, d <= Double(Int32.max), d.rounded() == d {
                id = Int(d)
            } else {
                id = try JSONNode(value, path: "\(vocabNode.path)[\(jsonQuoted(token))]").int()  // throws, naming the entry
            }
            let bytes = Array(token.utf8)
            vocab.set(bytes, Int32(id))
            entries.append((bytes, id))
            maxId = max(maxId, id)
        }
        var idToToken = [[UInt8]?](repeating: nil, count: maxId + 1)
        for (bytes, id) in entries where idToToken[id] == nil { idToToken[id] = bytes }
        self.vocab = vocab
        self.idToToken = idToToken
        self.vocabCount = vocab.count

        let mergesNode = try node.field("merges")
        guard case .array(let mergeItems) = mergesNode.value else {
            throw .invalidField(path: mergesNode.path, "expected an array, found \(mergesNode.value.kindName)")
        }
        var merges = PairMap(capacity: mergeItems.count)
        let prefixLength = continuingSubwordPrefix?.count ?? 0
        var merged: [UInt8] = []
        for (rank, item) in mergeItems.enumerated() {
            let path = { "\(mergesNode.path)[\(rank)]" }
            let ab: [UInt8], bb: [UInt8]
            switch item {
            case .string(let s):
                // Split on the space byte (not on Characters: " \u{301}" is one grapheme cluster).
                let u = Array(s.utf8)
                guard let space = u.firstIndex(of: 0x20), !u[(space + 1)...].contains(0x20) else {
                    throw .invalidField(path: path(), "expected a merge \"left right\" (two tokens separated by one space), found \(jsonQuoted(s))")
                }
                ab = Array(u[..<space]); bb = Array(u[(space + 1)...])
            case .array(let xs):
                guard xs.count == 2, case .string(let x) = xs[0], case .string(let y) = xs[1] else {
                    throw .invalidField(path: path(), "expected a merge [\"left\", \"right\"]")
                }
                ab = Array(x.utf8); bb = Array(y.utf8)
            default:
                throw .invalidField(path: path(), "expected a merge as \"left right\" or [\"left\", \"right\"], found \(item.kindName)")
            }
            guard let aId = vocab.get(ab) else { throw .invalidField(path: path(), "merge token \(jsonQuoted(string(fromValidUTF8: ab))) is not in the vocabulary") }
            guard let bId = vocab.get(bb) else { throw .invalidField(path: path(), "merge token \(jsonQuoted(string(fromValidUTF8: bb))) is not in the vocabulary") }
            guard bb.count >= prefixLength else { throw .invalidField(path: path(), "merge token \(jsonQuoted(string(fromValidUTF8: bb))) is shorter than the continuing_subword_prefix") }
            merged.removeAll(keepingCapacity: true)
            merged.append(contentsOf: ab)
            merged.append(contentsOf: bb[prefixLength...])
            guard let newId = vocab.get(merged) else {
                throw .invalidField(path: path(), "merged token \(jsonQuoted(string(fromValidUTF8: merged))) is not in the vocabulary")
            }
            merges.set(aId, bId, rank: UInt32(rank), newId: newId)
        }
        self.merges = merges

        var byteLevelIds = [Int32](repeating: -1, count: 256)
        for b in 0..<256 { byteLevelIds[b] = vocab.get(ByteLevelMap.byteToUTF8[b]) ?? -1 }
        self.byteLevelIds = byteLevelIds
        var raw = BytesMap(capacity: entries.count)
        // Tokens made only of byte-level characters, keyed by the bytes they stand for.
        var rawBytes: [UInt8] = []
        // Only ignore_merges looks whole words up by their raw bytes.
        for (bytes, _) in entries where ignoreMerges {
            rawBytes.removeAll(keepingCapacity: true)
            let ok = bytes.withUnsafeBufferPointer { p -> Bool in
                var i = 0
                while i < p.count {
                    let (v, n) = decodeScalar(p, i)
                    guard let b = ByteLevelMap.byte(for: v) else { return false }
                    rawBytes.append(b)
                    i += n
                }
                return true
            }
            if ok && !rawBytes.isEmpty, let id = vocab.get(bytes) { raw.set(rawBytes, id) }
        }
        self.rawVocab = raw
        var fallback = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            let hex = String(b, radix: 16, uppercase: true)
            fallback[b] = vocab.get(Array("<0x\(hex.count == 1 ? "0" + hex : hex)>".utf8)) ?? -1
        }
        self.byteFallbackIds = fallback
    }

    func tokenToId(_ bytes: [UInt8]) -> Int32? { vocab.get(bytes) }

    func idToTokenBytes(_ id: Int) -> [UInt8]? {
        id >= 0 && id < idToToken.count ? idToToken[id] : nil
    }

    /// Tokenizes one pre-token (`byteLevel`: raw bytes that stand for their ByteLevel characters).
    func tokenize(_ word: UnsafeBufferPointer<UInt8>, byteLevel: Bool, scratch: inout BPEScratch, into out: inout [Int32]) throws(TokenizerError) {
        if word.isEmpty { return }
        let fast = byteLevel && continuingSubwordPrefix == nil && endOfWordSuffix == nil
        if byteLevel && !fast {
            // Materialize the mapped characters and take the general path.
            var mapped: [UInt8] = []
            for b in word { mapped.append(contentsOf: ByteLevelMap.byteToUTF8[Int(b)]) }
            try mapped.withUnsafeBufferPointer { p throws(TokenizerError) in
                try tokenize(p, byteLevel: false, scratch: &scratch, into: &out)
            }
            return
        }
        if ignoreMerges {
            if let id = fast ? rawVocab.get(word) : vocab.get(word) {
                out.append(id)
                return
            }
        }
        let cache = fast ? byteLevelCache : self.cache
        if cache.lookup(word, into: &out) { return }

        scratch.symbols.removeAll(keepingCapacity: true)
        if fast {
            var ok = true
            for b in word {
                let id = byteLevelIds[Int(b)]
                if id < 0 { ok = false; break }
                let n = Int32(scratch.symbols.count)
                scratch.symbols.append(.init(c: id, prev: n - 1, next: n + 1, len: 1))
            }
            if !ok {
                var mapped: [UInt8] = []
                for b in word { mapped.append(contentsOf: ByteLevelMap.byteToUTF8[Int(b)]) }
                scratch.symbols.removeAll(keepingCapacity: true)
                try mapped.withUnsafeBufferPointer { p throws(TokenizerError) in try initialSymbols(p, &scratch) }
            }
        } else {
            try initialSymbols(word, &scratch)
        }
        if !scratch.symbols.isEmpty { scratch.symbols[scratch.symbols.count - 1].next = -1 }
        mergeAll(&scratch)
        let start = out.count
        for s in scratch.symbols where s.len != 0 { out.append(s.c) }
        cache.insert(word, out[start...])
    }

    /// HF BPE::merge_word's initial symbols: one per character (with prefix / suffix), `<0xNN>`
    /// bytes for unknown characters when byte_fallback is on, otherwise the (fused) unk token.
    private func initialSymbols(_ w: UnsafeBufferPointer<UInt8>, _ scratch: inout BPEScratch) throws(TokenizerError) {
        var unk: (id: Int32, len: Int32)? = nil
        func add(_ id: Int32, _ len: Int32, _ scratch: inout BPEScratch) {
            let n = Int32(scratch.symbols.count)
            scratch.symbols.append(.init(c: id, prev: n - 1, next: n + 1, len: len))
        }
        var i = 0
        while i < w.count {
            let n = utf8Length(leadByte: w[i])
            let isFirst = i == 0, isLast = i + n >= w.count
            scratch.bytes.removeAll(keepingCapacity: true)
            if !isFirst, let p = continuingSubwordPrefix { scratch.bytes.append(contentsOf: p) }
            scratch.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: w[i..<(i + n)]))
            if isLast, let s = endOfWordSuffix { scratch.bytes.append(contentsOf: s) }
            let byteLen = Int32(n)
            i += n
            if let id = scratch.bytes.withUnsafeBufferPointer({ vocab.get($0) }) {
                if let u = unk { add(u.id, u.len, &scratch); unk = nil }
                add(id, byteLen, &scratch)
                continue
            }
            if byteFallback {
                var ids: [Int32] = []
                var all = true
                for b in scratch.bytes {
                    let id = byteFallbackIds[Int(b)]
                    if id < 0 { all = false; break }
                    ids.append(id)
                }
                if all {
                    for id in ids { add(id, 1, &scratch) }
                    continue
                }
            }
            if let unkToken {
                guard let unkId = vocab.get(Array(unkToken.utf8)) else { throw .unknownTokenNotInVocabulary(unkToken) }
                if let u = unk {
                    if fuseUnk {
                        unk = (u.id, u.len + byteLen)
                    } else {
                        add(u.id, u.len, &scratch)
                        unk = (unkId, byteLen)
                    }
                } else {
                    unk = (unkId, byteLen)
                }
            }
        }
        if let u = unk { add(u.id, u.len, &scratch) }
    }

    /// HF Word::merge_all without dropout.
    @inline(__always)
    private func mergeAll(_ scratch: inout BPEScratch) {
        let n = scratch.symbols.count
        if n < 2 { return }
        scratch.heap.removeAll(keepingCapacity: true)
        for i in 0..<(n - 1) {
            if let m = merges.get(scratch.symbols[i].c, scratch.symbols[i + 1].c) {
                scratch.push(.init(key: UInt64(m.rank) << 32 | UInt64(i), newId: m.newId))
            }
        }
        while let top = scratch.pop() {
            let pos = Int(top.key & 0xFFFF_FFFF)
            let cur = scratch.symbols[pos]
            if cur.len == 0 || cur.next == -1 { continue }
            let nextPos = Int(cur.next)
            let right = scratch.symbols[nextPos]
            guard let m = merges.get(cur.c, right.c), m.newId == top.newId else { continue }
            scratch.symbols[pos].c = top.newId
            scratch.symbols[pos].len += right.len
            scratch.symbols[pos].next = right.next
            scratch.symbols[nextPos].len = 0
            if right.next > -1 && Int(right.next) < n { scratch.symbols[Int(right.next)].prev = Int32(pos) }
            let current = scratch.symbols[pos]
            if current.prev >= 0 {
                let prev = Int(current.prev)
                if let m2 = merges.get(scratch.symbols[prev].c, current.c) {
                    scratch.push(.init(key: UInt64(m2.rank) << 32 | UInt64(prev), newId: m2.newId))
                }
            }
            if current.next >= 0 && Int(current.next) < n {
                if let m2 = merges.get(current.c, scratch.symbols[Int(current.next)].c) {
                    scratch.push(.init(key: UInt64(m2.rank) << 32 | UInt64(pos), newId: m2.newId))
                }
            }
        }
    }
}

func jsonQuoted(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if u.value < 0x20 || u.value == 0x7F {
                out += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16)
            } else {
                out.unicodeScalars.append(u)
            }
        }
    }
    return out + "\""
}
