import Foundation
import Testing
import TestSupport
@testable import Tokenizers

@Suite("streaming detokenizer")
struct StreamingDetokenizerTests {
    /// ByteLevel: an emoji split over several byte tokens appears only once complete.
    @Test func byteLevelHoldsIncompleteCharacters() throws {
        let tok = try TokenizerGoldens.tokenizer("llama3_bpe")
        let ids = try tok.encode("a🦩b𓀀", addSpecialTokens: false)
        #expect(ids.count >= 8)  // both symbols are split into byte tokens
        let d = tok.makeStreamingDetokenizer()
        var pieces: [String] = []
        for id in ids { pieces.append(try d.push(id)) }
        pieces.append(d.finish())
        #expect(pieces.joined() == "a🦩b𓀀")
        #expect(!pieces.contains { $0.unicodeScalars.contains { $0.value == 0xFFFD } })
        // Every piece is made of whole scalars of the text, in order.
        var rest = Substring("a🦩b𓀀").unicodeScalars
        for p in pieces {
            #expect(rest.starts(with: p.unicodeScalars))
            rest = rest.dropFirst(p.unicodeScalars.count)
        }
    }

    /// Byte fallback: `<0xNN>` runs are held until the run ends, since HF decodes a whole run at once.
    @Test func byteFallbackRuns() throws {
        let tok = try TokenizerGoldens.tokenizer("sp_llama2")
        let e2 = tok.tokenToId("<0xE2>")!, x82 = tok.tokenToId("<0x82>")!, xAC = tok.tokenToId("<0xAC>")!
        let a = tok.tokenToId("▁a") ?? tok.tokenToId("a")!
        let d = tok.makeStreamingDetokenizer()
        #expect(try d.push(e2) == "")
        #expect(try d.push(x82) == "")
        #expect(try d.push(xAC) == "")
        let afterRun = try d.push(a)
        #expect(afterRun.hasPrefix("€"))
        #expect(afterRun + d.finish() == (try tok.decode([e2, x82, xAC, a])))
        // An invalid run decodes to one U+FFFD per byte, as HF does.
        let d2 = tok.makeStreamingDetokenizer()
        let text = try d2.push([e2, x82, a]) + d2.finish()
        #expect(TokenizerGoldens.same(text, try tok.decode([e2, x82, a])))
        #expect(text.hasPrefix("\u{FFFD}\u{FFFD}"))
    }

    /// An unfinished sequence at the end becomes U+FFFD, exactly like a full decode.
    @Test func finishFlushesIncompleteBytes() throws {
        let tok = try TokenizerGoldens.tokenizer("smollm2")
        let ids = try tok.encode("😀", addSpecialTokens: false)
        guard ids.count >= 2 else { return }
        let partial = Array(ids.dropLast())
        let d = tok.makeStreamingDetokenizer()
        #expect(try d.push(partial) == "")
        let tail = d.finish()
        #expect(TokenizerGoldens.same(tail, try tok.decode(partial)))
        // finish() resets: the detokenizer can be reused.
        #expect(try d.push(ids) + d.finish() == "😀")
    }

    /// Metaspace decoders drop the replacement only in the first token, as HF's decode of the prefix.
    @Test func metaspaceLeadingSpace() throws {
        let tok = try TokenizerGoldens.tokenizer("sp_metaspace")
        let ids = try tok.encode("Hello world  again", addSpecialTokens: true)
        for skip in [false, true] {
            let d = tok.makeStreamingDetokenizer(skipSpecialTokens: skip)
            var text = ""
            for id in ids { text += try d.push(id) }
            text += d.finish()
            #expect(TokenizerGoldens.same(text, try tok.decode(ids, skipSpecialTokens: skip)))
        }
    }

    /// Ids from a sampler need not be a valid encoding: random sequences still match a full decode.
    @Test(arguments: TokenizerGoldens.names)
    func randomIdSequencesMatchBatchDecode(name: String) throws {
        let tok = try TokenizerGoldens.tokenizer(name)
        var rng = SplitMix(seed: 42)
        let n = tok.vocabularySize
        let byteish = (0..<n).filter { id in
            guard let t = tok.idToToken(id) else { return false }
            return t.hasPrefix("<0x") || (t.unicodeScalars.count == 1 && t.unicodeScalars.first!.value >= 0x80)
        }
        for _ in 0..<200 {
            var ids: [Int] = []
            for _ in 0..<Int(rng.next() % 16) {
                let r = rng.next() % 10
                if r < 5 && !byteish.isEmpty { ids.append(byteish[Int(rng.next() % UInt64(byteish.count))]) } else {
                    let id = Int(rng.next() % UInt64(n))
                    if tok.idToToken(id) != nil { ids.append(id) }
                }
            }
            for skip in [false, true] {
                let pieces = try TokenizerGoldens.stream(tok, ids, skip: skip)
                let want = try tok.decode(ids, skipSpecialTokens: skip)
                #expect(TokenizerGoldens.same(pieces.joined(), want), "\(name) \(ids) skip=\(skip)")
            }
        }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
