/// Adds special tokens around an encoded sequence (single-sequence encodings only).
protocol PostProcessor: Sendable {
    func process(_ ids: [Int32], addSpecialTokens: Bool) -> [Int32]
    /// How many tokens `process` adds to a single sequence with special tokens on.
    var addedTokenCount: Int { get }
}

struct TemplateProcessor: PostProcessor {
    enum Piece { case special([Int32]), sequence }
    let single: [Piece]

    init(_ node: JSONNode) throws(TokenizerError) {
        let specialsNode = try node.field("special_tokens")
        var specials: [String: [Int32]] = [:]
        for (key, value) in try specialsNode.objectPairs() {
            let entry = JSONNode(value, path: "\(specialsNode.path).\(key)")
            var ids: [Int32] = []
            for idNode in try entry.field("ids").array() { ids.append(Int32(try idNode.int())) }
            specials[key] = ids
        }
        var single: [Piece] = []
        let singleNode = try node.field("single")
        for item in try singleNode.array() {
            if let s = try item.optionalField("SpecialToken") {
                let name = try s.string("id")
                guard let ids = specials[name] else {
                    throw .invalidField(path: s.path, "special token '\(name)' is missing from \(specialsNode.path)")
                }
                single.append(.special(ids))
            } else if let s = try item.optionalField("Sequence") {
                let which = try s.string("id")
                guard which == "A" || which == "B" else { throw .invalidField(path: s.path, "sequence id must be A or B") }
                single.append(.sequence)
            } else {
                throw .invalidField(path: item.path, "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}")
            }
        }
        // The pair template must be well-formed too, even though only single sequences are encoded.
        if let pair = try node.optionalField("pair") {
            for item in try pair.array() {
                if let s = try item.optionalField("SpecialToken"), specials[try s.string("id")] == nil {
                    throw .invalidField(path: s.path, "special token '\(try s.string("id"))' is missing from \(specialsNode.path)")
                }
            }
        }
        self.single = single
    }

    func process(_ ids: [Int32], addSpecialTokens: Bool) -> [Int32] {
        guard addSpecialTokens else { return ids }
        var out: [Int32] = []
        out.reserveCapacity(ids.count + 4)
        for p in single {
            switch p {
            case .special(let s): out.append(contentsOf: s)
            case .sequence: out.append(contentsOf: ids)
            }
        }
        return out
    }

    var addedTokenCount: Int {
        single.reduce(0) { n, p in if case .special(let s) = p { return n + s.count } else { return n } }
    }
}

/// RobertaProcessing / BertProcessing: cls A sep.
struct ClsSepProcessor: PostProcessor {
    let cls: Int32
    let sep: Int32

    init(_ node: JSONNode) throws(TokenizerError) {
        func pair(_ key: String) throws(TokenizerError) -> Int32 {
            let f = try node.field(key)
            let items = try f.array()
            guard items.count == 2 else { throw .invalidField(path: f.path, "expected [token, id]") }
            _ = try items[0].string()
            return Int32(try items[1].int())
        }
        cls = try pair("cls")
        sep = try pair("sep")
    }

    func process(_ ids: [Int32], addSpecialTokens: Bool) -> [Int32] {
        addSpecialTokens ? [cls] + ids + [sep] : ids
    }

    var addedTokenCount: Int { 2 }
}

/// ByteLevel only adjusts offsets: ids are unchanged.
struct IdentityProcessor: PostProcessor {
    func process(_ ids: [Int32], addSpecialTokens: Bool) -> [Int32] { ids }
    var addedTokenCount: Int { 0 }
}

struct SequenceProcessor: PostProcessor {
    let items: [any PostProcessor]
    func process(_ ids: [Int32], addSpecialTokens: Bool) -> [Int32] {
        items.reduce(ids) { $1.process($0, addSpecialTokens: addSpecialTokens) }
    }
    var addedTokenCount: Int { items.reduce(0) { $0 + $1.addedTokenCount } }
}

func makePostProcessor(_ node: JSONNode) throws(TokenizerError) -> any PostProcessor {
    let type = try node.typeTag()
    switch type {
    case "TemplateProcessing": return try TemplateProcessor(node)
    case "RobertaProcessing", "BertProcessing": return try ClsSepProcessor(node)
    case "ByteLevel": return IdentityProcessor()
    case "Sequence":
        return SequenceProcessor(items: try node.field("processors").array().map { n throws(TokenizerError) in try makePostProcessor(n) })
    default:
        throw .unsupportedType(path: node.childPath("type"), kind: "post-processor", type: type,
                               supported: ["TemplateProcessing", "ByteLevel", "Sequence", "RobertaProcessing", "BertProcessing"])
    }
}
