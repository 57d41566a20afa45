// Decoders, as HF's `decode_chain` over token strings, and their streaming counterparts.
//
// A streaming stage sees the same token list as `decode_chain` would, but as events: pieces of the
// current token's text (`.text`) and token ends (`.end`). Stages that fuse tokens (ByteLevel, Fuse)
// emit their one output token piece by piece and end it at `finish`, so the concatenated output of
// a stream always equals the batch decode.

enum DecodeEvent {
    case text(String)
    case end
}

protocol DecodeStage: AnyObject {
    func feed(_ e: DecodeEvent, _ out: inout [DecodeEvent])
    func finish(_ out: inout [DecodeEvent])
}

protocol Decoder: Sendable {
    func decodeChain(_ tokens: [String]) -> [String]
    func makeStages() -> [any DecodeStage]
}

// MARK: - UTF-8 helpers

/// Lossy UTF-8 decoding; like Rust's `String::from_utf8_lossy`, each maximal invalid subpart
/// becomes one U+FFFD.
func lossyString(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

/// Where the trailing incomplete-but-still-valid UTF-8 sequence of `b` starts (b.count if none).
func incompleteTailStart(_ b: [UInt8]) -> Int {
    let n = b.count
    var k = n - 1
    var back = 0
    while k >= 0 && back < 3 {
        let x = b[k]
        if x & 0xC0 != 0x80 {
            // A lead byte at k followed by n-1-k continuation bytes.
            let need: Int
            switch x {
            case 0xC2...0xDF: need = 2
            case 0xE0...0xEF: need = 3
            case 0xF0...0xF4: need = 4
            default: return n
            }
            let have = n - k
            if have >= need { return n }
            // Check the second byte's restricted range.
            if have >= 2 {
                let y = b[k + 1]
                switch x {
                case 0xE0: if y < 0xA0 { return n }
                case 0xED: if y > 0x9F { return n }
                case 0xF0: if y < 0x90 { return n }
                case 0xF4: if y > 0x8F { return n }
                default: break
                }
            }
            return k
        }
        k -= 1
        back += 1
    }
    return n
}

/// HF ByteFallback's `<0xNN>` test (`u8::from_str_radix`, which also accepts a leading '+').
func byteFallbackValue(_ token: String) -> UInt8? {
    let u = Array(token.utf8)
    guard u.count == 6, u[0] == UInt8(ascii: "<"), u[1] == UInt8(ascii: "0"), u[2] == UInt8(ascii: "x"), u[5] == UInt8(ascii: ">") else {
        return nil
    }
    func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }
    if u[3] == UInt8(ascii: "+") { return hex(u[4]) }
    guard let h = hex(u[3]), let l = hex(u[4]) else { return nil }
    return h << 4 | l
}

/// A ByteLevel token's bytes: each character's byte, or the raw UTF-8 when any character is not a
/// byte-level character (HF falls back per token).
func byteLevelBytes(_ token: String) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(token.utf8.count)
    for u in token.unicodeScalars {
        guard let b = ByteLevelMap.byte(for: u.value) else { return Array(token.utf8) }
        out.append(b)
    }
    return out
}

// MARK: - Decoders

struct ByteLevelDecoder: Decoder {
    func decodeChain(_ tokens: [String]) -> [String] {
        var bytes: [UInt8] = []
        for t in tokens { bytes.append(contentsOf: byteLevelBytes(t)) }
        return [lossyString(bytes)]
    }

    func makeStages() -> [any DecodeStage] { [ByteLevelStage()] }
}

final class ByteLevelStage: DecodeStage {
    var token = ""
    var pending: [UInt8] = []

    func feed(_ e: DecodeEvent, _ out: inout [DecodeEvent]) {
        switch e {
        case .text(let s): token += s
        case .end:
            pending.append(contentsOf: byteLevelBytes(token))
            token = ""
            let cut = incompleteTailStart(pending)
            if cut > 0 {
                out.append(.text(lossyString(Array(pending[..<cut]))))
                pending.removeFirst(cut)
            }
        }
    }

    func finish(_ out: inout [DecodeEvent]) {
        if !token.isEmpty { pending.append(contentsOf: byteLevelBytes(token)); token = "" }
        if !pending.isEmpty { out.append(.text(lossyString(pending))); pending = [] }
        out.append(.end)
    }
}

struct ByteFallbackDecoder: Decoder {
    func decodeChain(_ tokens: [String]) -> [String] {
        var out: [String] = []
        var run: [UInt8] = []
        func flush() {
            guard !run.isEmpty else { return }
            if let s = String(validating: run, as: UTF8.self) {
                out.append(s)
            } else {
                for _ in run { out.append("\u{FFFD}") }
            }
            run = []
        }
        for t in tokens {
            if let b = byteFallbackValue(t) { run.append(b) } else { flush(); out.append(t) }
        }
        flush()
        return out
    }

    func makeStages() -> [any DecodeStage] { [ByteFallbackStage()] }
}

final class ByteFallbackStage: DecodeStage {
    var token = ""
    var run: [UInt8] = []

    private func flush(_ out: inout [DecodeEvent]) {
        guard !run.isEmpty else { return }
        if let s = String(validating: run, as: UTF8.self) {
            out.append(.text(s)); out.append(.end)
        } else {
            for _ in run { out.append(.text("\u{FFFD}")); out.append(.end) }
        }
        run = []
    }

    func feed(_ e: DecodeEvent, _ out: inout [DecodeEvent]) {
        switch e {
        case .text(let s): token += s
        case .end:
            if let b = byteFallbackValue(token) {
                run.append(b)
            } else {
                flush(&out)
                out.append(.text(token)); out.append(.end)
            }
            token = ""
        }
    }

    func finish(_ out: inout [DecodeEvent]) {
        if !token.isEmpty { feed(.end, &out) }
        flush(&out)
    }
}

struct FuseDecoder: Decoder {
    func decodeChain(_ tokens: [String]) -> [String] { [tokens.joined()] }
    func makeStages() -> [any DecodeStage] { [FuseStage()] }
}

final class FuseStage: DecodeStage {
    func feed(_ e: DecodeEvent, _ out: inout [DecodeEvent]) {
        if case .text = e { out.append(e) }
    }
    func finish(_ out: inout [DecodeEvent]) { out.append(.end) }
}

struct ReplaceDecoder: Decoder {
    let pattern: any SplitPattern
    let content: String

    static func replace(_ token: String, _ pattern: any SplitPattern, _ content: String) -> String {
        let bytes = Array(token.utf8)
        var matches: [PatternMatch] = []
        bytes.withUnsafeBufferPointer { pattern.findMatches($0, 0, $0.count, into: &matches) }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for m in matches {
            if m.isMatch { out.append(contentsOf: content.utf8) } else { out.append(contentsOf: bytes[m.start..<m.end]) }
        }
        return string(fromValidUTF8: out)
    }

    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.map { ReplaceDecoder.replace($0, pattern, content) }
    }

    func makeStages() -> [any DecodeStage] { [ReplaceStage(pattern: pattern, content: content)] }
}

final class ReplaceStage: DecodeStage {
    let pattern: any SplitPattern
    let content: String
    /// Literal needle, when the pattern is a literal: lets text stream with a short hold-back.
    let literal: [UInt8]?
    var buffer: [UInt8] = []

    init(pattern: any SplitPattern, content: String) {
        self.pattern = pattern
        self.content = content
        literal = (pattern as? LiteralPattern)?.needle
    }

    func feed(_ e: DecodeEvent, _ out: inout [DecodeEvent]) {
        switch e {
        case .text(let s):
            buffer.append(contentsOf: s.utf8)
            guard let needle = literal, !needle.isEmpty else { return }
            // Replace the complete matches; keep back what could still start a match.
            var matches: [PatternMatch] = []
            buffer.withUnsafeBufferPointer { pattern.findMatches($0, 0, $0.count, into: &matches) }
            var lastMatchEnd = 0
            for m in matches where m.isMatch { lastMatchEnd = m.end }
            var cut = max(lastMatchEnd, buffer.count - (needle.count - 1))
            while cut < buffer.count && cut > 0 && buffer[cut] & 0xC0 == 0x80 { cut -= 1 }
            if cut <= 0 { return }
            var emitted: [UInt8] = []
            for m in matches {
                if m.start >= cut { break }
                if m.isMatch { emitted.append(contentsOf: content.utf8) } else { emitted.append(contentsOf: buffer[m.start..<min(m.end, cut)]) }
            }
            buffer.removeFirst(cut)
            if !emitted.isEmpty { out.append(.text(string(fromValidUTF8: emitted))) }
        case .end:
            if !buffer.isEmpty {
                out.append(.text(ReplaceDecoder.replace(string(fromValidUTF8: buffer), pattern, content)))
                buffer = []
            }
            out.append(.end)
        }
    }

    func finish(_ out: inout [DecodeEvent]) {
        if !buffer.isEmpty {
            out.append(.text(ReplaceDecoder.replace(string(fromValidUTF8: buffer), pattern, content)))
            buffer = []
        }
    }
}

struct StripDecoder: Decoder {
    let content: UInt32
    let start: Int
    let stop: Int

    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.map { token in
            let chars = token.unicodeScalars.map(\.value)
            var startCut = 0
            for (i, c) in chars.prefix(start).enumerated() {
                if c == content { startCut = i + 1 } else { break }
            }
            var stopCut = chars.count
            for i in 0..<min(stop, chars.count) {
                let index = chars.count - i - 1
                if chars[index] == content { stopCut = index } else { break }
            }
            if startCut >= stopCut { return "" }
            return string(fromScalars: chars[startCut..<stopCut])
        }
    }

    func makeStages() -> [any DecodeStage] { [StripStage(content: content, start: start, stop: stop)] }
}

final class StripStage: DecodeStage {
    let content: UInt32
    let start: Int
    let stop: Int
    var position = 0        // scalars seen in the current token
    var stripping = true    // still inside the leading run being stripped
    var heldContent = 0     // trailing run of `content` scalars not yet emitted

    init(content: UInt32, start: Int, stop: Int) {
        self.content = content
        self.start = start
        self.stop = stop
    }

    func feed(_ e: DecodeEvent, _ out: inout [DecodeEvent]) {
        switch e {
        case .text(let s):
            var emit = String.UnicodeScalarView()
            for u in s.unicodeScalars {
                defer { position += 1 }
                if stripping && position < start && u.value == content { continue }
                stripping = false
                if stop > 0 && u.value == content {
                    heldContent += 1
                    continue
                }
                for _ in 0..<heldContent { emit.append(Unicode.Scalar(content)!) }
                heldContent = 0
                emit.append(u)
            }
            if !emit.isEmpty { out.append(.text(String(emit))) }
        case .end:
            let keep = max(0, heldContent - stop)
            if keep > 0 { out.append(.text(String(repeating: String(Unicode.Scalar(content)!), count: keep))) }
            heldContent = 0
            position = 0
            stripping = true
            out.append(.end)
        }
    }

    func finish(_ out: inout [DecodeEvent]) {
        if heldContent > 0 || position > 0 {
            let keep = max(0, heldContent - stop)
            if keep > 0 { out.append(.text(String(repeating: String(Unicode.Scalar(content)!), count: keep))) }
            heldContent = 0
        }
    }
}

struct MetaspaceDecoder: Decoder {
    let replacement: UInt32
    let prependScheme: PrependScheme

    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { i, token in
            var out = String.UnicodeScalarView()
            for u in token.unicodeScalars {
                if u.value == replacement {
                    if i == 0 && prependScheme != .never { continue }
                    out.append(" ")
                } else {
                    out.append(u)
                }
            }
            return String(out)
        }
    }

    func makeStages() -> [any DecodeStage] { [MetaspaceStage(replacement: replacement, prependScheme: prependScheme)] }
}

final class MetaspaceStage: DecodeStage {
    let replacement: UInt32
    let prependScheme: PrependScheme
    var index = 0

    init(replacement: UInt32, prependScheme: PrependScheme) {
        self.replacement = replacement
        self.prependScheme = prependScheme
    }

    func feed(_ e: DecodeEvent, _ out: inout [DecodeEvent]) {
        switch e {
        case .text(let s):
            var r = String.UnicodeScalarView()
            for u in s.unicodeScalars {
                if u.value == replacement {
                    if index == 0 && prependScheme != .never { continue }
                    r.append(" ")
                } else {
                    r.append(u)
                }
            }
            out.append(.text(String(r)))
        case .end:
            index += 1
            out.append(.end)
        }
    }

    func finish(_ out: inout [DecodeEvent]) {}
}

/// HF BPEDecoder: the suffix becomes a space, except in the last token where it is removed.
struct BPESuffixDecoder: Decoder {
    let suffix: String

    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { i, t in
            ReplaceDecoder.replace(t, LiteralPattern(needle: Array(suffix.utf8)), i == tokens.count - 1 ? "" : " ")
        }
    }

    func makeStages() -> [any DecodeStage] { [BPESuffixStage(suffix: suffix)] }
}

final class BPESuffixStage: DecodeStage {
    let suffix: String
    var previous: String? = nil
    var current = ""

    init(suffix: String) { self.suffix = suffix }

    func feed(_ e: DecodeEvent, _ out: inout [DecodeEvent]) {
        switch e {
        case .text(let s): current += s
        case .end:
            if let p = previous {
                out.append(.text(ReplaceDecoder.replace(p, LiteralPattern(needle: Array(suffix.utf8)), " ")))
                out.append(.end)
            }
            previous = current
            current = ""
        }
    }

    func finish(_ out: inout [DecodeEvent]) {
        if !current.isEmpty { feed(.end, &out) }
        if let p = previous {
            out.append(.text(ReplaceDecoder.replace(p, LiteralPattern(needle: Array(suffix.utf8)), "")))
            out.append(.end)
            previous = nil
        }
    }
}

struct SequenceDecoder: Decoder {
    let decoders: [any Decoder]
    func decodeChain(_ tokens: [String]) -> [String] { decoders.reduce(tokens) { $1.decodeChain($0) } }
    func makeStages() -> [any DecodeStage] { decoders.flatMap { $0.makeStages() } }
}

/// Without a decoder HF joins the tokens with spaces.
final class JoinWithSpaceStage: DecodeStage {
    var index = 0
    var started = false

    func feed(_ e: DecodeEvent, _ out: inout [DecodeEvent]) {
        if !started {
            if index > 0 { out.append(.text(" ")) }
            started = true
        }
        switch e {
        case .text: out.append(e)
        case .end:
            index += 1
            started = false
        }
    }

    func finish(_ out: inout [DecodeEvent]) {}
}

func makeDecoder(_ node: JSONNode) throws(TokenizerError) -> any Decoder {
    let type = try node.typeTag()
    switch type {
    case "ByteLevel": return ByteLevelDecoder()
    case "ByteFallback": return ByteFallbackDecoder()
    case "Fuse": return FuseDecoder()
    case "Replace":
        return ReplaceDecoder(pattern: try makePattern(try node.field("pattern")), content: try node.string("content"))
    case "Strip":
        let c = try node.field("content")
        let content = try c.string()
        guard content.unicodeScalars.count == 1 else { throw .invalidField(path: c.path, "expected a single character") }
        return StripDecoder(content: content.unicodeScalars.first!.value, start: try node.field("start").int(), stop: try node.field("stop").int())
    case "Metaspace":
        let r = try node.field("replacement")
        let replacement = try r.string()
        guard replacement.unicodeScalars.count == 1 else { throw .invalidField(path: r.path, "expected a single character") }
        var scheme = PrependScheme.always
        if let s = try node.optionalField("prepend_scheme") {
            switch try s.string() {
            case "first": scheme = .first
            case "always": scheme = .always
            case "never": scheme = .never
            case let other: throw .invalidField(path: s.path, "unknown prepend_scheme '\(other)' (expected first, always or never)")
            }
        } else if try node.optionalField("add_prefix_space")?.bool() == false {
            scheme = .never
        }
        return MetaspaceDecoder(replacement: replacement.unicodeScalars.first!.value, prependScheme: scheme)
    case "BPEDecoder":
        return BPESuffixDecoder(suffix: try node.optionalString("suffix") ?? "</w>")
    case "Sequence":
        return SequenceDecoder(decoders: try node.field("decoders").array().map { n throws(TokenizerError) in try makeDecoder(n) })
    default:
        throw .unsupportedType(path: node.childPath("type"), kind: "decoder", type: type,
                               supported: ["ByteLevel", "ByteFallback", "Fuse", "Replace", "Strip", "Metaspace", "BPEDecoder", "Sequence"])
    }
}
