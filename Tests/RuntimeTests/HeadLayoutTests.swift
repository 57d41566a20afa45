import Foundation
import Graph
@testable import Runtime
import TensorCore
import Testing
import TestSupport

/// `HeadLayoutAbsorption` and the split/merge layouts of `lpc:Rotary`, `lpc:KVAppend` and
/// `lpc:GQAttention`: one attention block (Q, K, V projections' outputs as inputs) with the head
/// split and merge plumbing is run before and after the pass, without and with a `KVStore`, on
/// swept odd shapes (prefill and decode attention paths, grouped K/V heads, past 0 and > 0).
/// The unabsorbed graph runs the reference path (Reshape, Transpose copy, the ops' plain layout).
/// Both sides do the same float operations in the same order, so they agree to atol 1e-5.
@Suite("Head layout absorption")
struct HeadLayoutTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var batch: Int, seq: Int, heads: Int, kvHeads: Int, past: Int
        var headSize = 16
        /// Q goes through Rotary (as in Llama) or straight into GQAttention (its Q split).
        var rotateQ = true
        /// The split shape from an `lpc:SymbolicValue` node instead of a constant [0, 0, -1, d].
        var symbolic = false
        var testDescription: String {
            "b\(batch) s\(seq) h\(heads)/\(kvHeads) past\(past) d\(headSize)\(rotateQ ? "" : " q-direct")\(symbolic ? " symbolic" : "")"
        }
    }

    static func cases() -> [Case] {
        var cases: [Case] = []
        for seq in [1, 2, 7, 128] {
            for (heads, kvHeads) in [(1, 1), (3, 1), (3, 3), (9, 3)] {
                for (batch, past) in [(1, 0), (2, 5)] {
                    cases.append(Case(batch: batch, seq: seq, heads: heads, kvHeads: kvHeads, past: past))
                }
            }
        }
        cases.append(Case(batch: 2, seq: 7, heads: 9, kvHeads: 3, past: 3, headSize: 64, rotateQ: false))
        cases.append(Case(batch: 2, seq: 128, heads: 3, kvHeads: 1, past: 0, headSize: 64, rotateQ: false, symbolic: true))
        cases.append(Case(batch: 1, seq: 1, heads: 9, kvHeads: 3, past: 9, headSize: 64, symbolic: true))
        cases.append(Case(batch: 2, seq: 9, heads: 3, kvHeads: 3, past: 2, headSize: 6)) // d not a multiple of 16
        return cases
    }

    /// Variations for the negative cases.
    struct Options {
        var qTransposeAlsoRead = false   // another node reads the Q Transpose's output
        var qPerm = [0, 2, 1, 3]
        var qShapeIsInput = false        // the Q split shape is a graph input (not known to the pass)
        var qHeadSizeInferred = false    // Q split shape [0, 0, heads, -1]: head size not constant
        var mergeTransposeIsOutput = false
    }

    /// The block: q [B, S, h·d], k and v [B, S, kvh·d] → heads → rotary on Q (optional) and K →
    /// KV append → grouped attention → merged heads y [B, S, h·d]; outputs y and the presents.
    static func graph(_ c: Case, _ o: Options = Options()) -> Graph {
        let d = c.headSize, rep = c.heads / c.kvHeads
        let dims = { (n: Int) -> [Dim] in [.symbolic("B"), .symbolic("S"), .fixed(n)] }
        var inputs = [ValueInfo(name: "q", dtype: .float32, shape: dims(c.heads * d)),
                      ValueInfo(name: "k", dtype: .float32, shape: dims(c.kvHeads * d)),
                      ValueInfo(name: "v", dtype: .float32, shape: dims(c.kvHeads * d)),
                      ValueInfo(name: "cos", dtype: .float32, shape: [.symbolic("B"), .fixed(1), .symbolic("S"), .fixed(d)]),
                      ValueInfo(name: "sin", dtype: .float32, shape: [.symbolic("B"), .fixed(1), .symbolic("S"), .fixed(d)]),
                      ValueInfo(name: "mask", dtype: .float32, shape: [.symbolic("B"), .fixed(1), .symbolic("S"), .symbolic("T")]),
                      ValueInfo(name: "past_k", dtype: .float32, shape: [.symbolic("B"), .fixed(c.kvHeads), .symbolic("P"), .fixed(d)]),
                      ValueInfo(name: "past_v", dtype: .float32, shape: [.symbolic("B"), .fixed(c.kvHeads), .symbolic("P"), .fixed(d)])]
        if rep > 1 {
            inputs.append(ValueInfo(name: "expand", dtype: .int64, shape: [.fixed(5)]))
            inputs.append(ValueInfo(name: "repeat", dtype: .int64, shape: [.fixed(4)]))
        }
        var initializers: [String: Tensor] = ["split": Tensor([0, 0, -1, Int64(d)], shape: [4]), "merge": Tensor([Int64(0), 0, -1], shape: [3])]
        var nodes: [Node] = []
        var qShape = "split", kvShape = "split"
        if c.symbolic {
            // [B, S, -1, d] from q's dims (B = s0, S = s1), as ShapePlumbingElimination writes it.
            nodes.append(Node(name: "sym", opType: "SymbolicValue", domain: "lpc", inputs: ["q"], outputs: ["sym_split"],
                              attributes: ["sym_input": .ints([0, 0]), "sym_axis": .ints([0, 1]), "shape": .ints([4]), "to": .int(7),
                                           "exprs": .ints([0, 1, 0, 0, 0, 1, -1, 0, 0, d, 0, 0])]))
            (qShape, kvShape) = ("sym_split", "sym_split")
        }
        if o.qShapeIsInput {
            inputs.append(ValueInfo(name: "q_split", dtype: .int64, shape: [.fixed(4)]))
            qShape = "q_split"
        }
        if o.qHeadSizeInferred {
            initializers["split_inferred"] = Tensor([0, 0, Int64(c.heads), -1], shape: [4])
            qShape = "split_inferred"
        }
        func heads(_ x: String, _ shape: String, perm: [Int] = [0, 2, 1, 3]) -> String {
            nodes.append(Node(name: "r\(x)", opType: "Reshape", inputs: [x, shape], outputs: ["\(x)_r"]))
            nodes.append(Node(name: "t\(x)", opType: "Transpose", inputs: ["\(x)_r"], outputs: ["\(x)_t"], attributes: ["perm": .ints(perm)]))
            return "\(x)_t"
        }
        func rotary(_ x: String) -> String {
            nodes.append(Node(name: "rot_\(x)", opType: "Rotary", domain: "lpc", inputs: [x, "cos", "sin"], outputs: ["\(x)_rot"],
                              attributes: ["half": .int(d / 2), "axis": .int(3)]))
            return "\(x)_rot"
        }
        let qt = heads("q", qShape, perm: o.qPerm)
        let qIn = c.rotateQ ? rotary(qt) : qt
        let kRot = rotary(heads("k", kvShape))
        let vt = heads("v", kvShape)
        nodes.append(Node(name: "append_k", opType: "KVAppend", domain: "lpc", inputs: ["past_k", kRot], outputs: ["present_k"],
                          attributes: ["axis": .int(2), "cache": .string("past_k")]))
        nodes.append(Node(name: "append_v", opType: "KVAppend", domain: "lpc", inputs: ["past_v", vt], outputs: ["present_v"],
                          attributes: ["axis": .int(2), "cache": .string("past_v")]))
        let repeats = rep > 1 ? ["expand", "repeat", "expand", "repeat"] : []
        nodes.append(Node(name: "attention", opType: "GQAttention", domain: "lpc",
                          inputs: [qIn, "present_k", "present_v", "mask"] + repeats, outputs: ["a"],
                          attributes: ["scale": .float(1 / Float(d).squareRoot()), "nan_to_zero": .int(0),
                                       "k_cache": .string("past_k"), "v_cache": .string("past_v")]))
        nodes.append(Node(name: "ta", opType: "Transpose", inputs: ["a"], outputs: ["a_t"], attributes: ["perm": .ints([0, 2, 1, 3])]))
        nodes.append(Node(name: "ra", opType: "Reshape", inputs: ["a_t", "merge"], outputs: ["y"]))
        var outputs = [ValueInfo(name: "y", dtype: .float32, shape: nil), ValueInfo(name: "present_k", dtype: .float32, shape: nil),
                       ValueInfo(name: "present_v", dtype: .float32, shape: nil)]
        if o.qTransposeAlsoRead {
            nodes.append(Node(name: "neg", opType: "Neg", inputs: [qt], outputs: ["q_neg"]))
            outputs.append(ValueInfo(name: "q_neg", dtype: .float32, shape: nil))
        }
        if o.mergeTransposeIsOutput { outputs.append(ValueInfo(name: "a_t", dtype: .float32, shape: nil)) }
        return Graph(inputs: inputs, outputs: outputs, initializers: initializers, nodes: nodes, opsets: ["": 17, "lpc": 1])
    }

    /// Feeds for `tokens` new positions after `past`; the mask is causal, and batch row 1 has its
    /// first position masked (left padding).
    static func feeds(_ c: Case, tokens: Int, past: Int, seed: UInt64, withPast: Bool) -> [String: Tensor] {
        var rng = SplitMix(seed: seed)
        let (b, d, t) = (c.batch, c.headSize, past + tokens)
        func random(_ shape: [Int]) -> Tensor { Tensor((0..<shape.reduce(1, *)).map { _ in rng.normal() }, shape: shape) }
        var feeds: [String: Tensor] = ["q": random([b, tokens, c.heads * d]), "k": random([b, tokens, c.kvHeads * d]),
                                       "v": random([b, tokens, c.kvHeads * d]), "cos": random([b, 1, tokens, d]),
                                       "sin": random([b, 1, tokens, d])]
        var mask = [Float](repeating: 0, count: b * tokens * t)
        for bi in 0..<b {
            for i in 0..<tokens {
                for j in 0..<t where j > past + i || (bi == 1 && j == 0 && past + i > 0) {
                    mask[(bi * tokens + i) * t + j] = -Float.greatestFiniteMagnitude
                }
            }
        }
        feeds["mask"] = Tensor(mask, shape: [b, 1, tokens, t])
        if withPast {
            feeds["past_k"] = random([b, c.kvHeads, past, d])
            feeds["past_v"] = random([b, c.kvHeads, past, d])
        }
        let rep = c.heads / c.kvHeads
        if rep > 1 {
            feeds["expand"] = Tensor([Int64(b), Int64(c.kvHeads), Int64(rep), Int64(t), Int64(d)], shape: [5])
            feeds["repeat"] = Tensor([Int64(b), Int64(c.heads), Int64(t), Int64(d)], shape: [4])
        }
        return feeds
    }

    static func absorbed(_ graph: Graph) throws -> (Graph, Bool) {
        var after = graph
        let changed = try HeadLayoutAbsorption().apply(to: &after, context: PassContext(graph: graph))
        return (after, changed)
    }

    static func session(_ graph: Graph) throws -> Session { try Session(graph: graph, options: SessionOptions(optimize: false)) }

    @Test(arguments: cases())
    func absorbedLayoutsMatchThePlumbing(_ c: Case) throws {
        let before = Self.graph(c)
        let (after, changed) = try Self.absorbed(before)
        #expect(changed)
        #expect(!after.nodes.contains { $0.opType == "Transpose" || $0.opType == "Reshape" }, "\(after.nodes.map(\.opType))")
        #expect(after.nodes.count == before.nodes.count - 8)
        let reference = try Self.session(before), fused = try Self.session(after)

        // Plain tensors (KVAppend is a Concat).
        let feeds = Self.feeds(c, tokens: c.seq, past: c.past, seed: 7, withPast: true)
        let expected = try reference.run(feeds), actual = try fused.run(feeds)
        for name in ["y", "present_k", "present_v"] {
            let got = try #require(actual[name]), want = try #require(expected[name])
            let report = closeness(got, want, atol: 1e-5, rtol: 1e-5)
            #expect(report.isClose, "\(c.testDescription) plain \(name): \(report)")
        }

        // A KV store: a first run of `past` positions (when > 0), then `seq` more; against the
        // reference graph fed its own presents.
        let store = KVStore(initialCapacity: 3)
        var pasts: [String: Tensor] = [:]
        var length = 0
        let steps: [Int] = c.past > 0 ? [c.past, c.seq] : [c.seq]
        for (step, tokens) in steps.enumerated() {
            var stepFeeds = Self.feeds(c, tokens: tokens, past: length, seed: 20 + UInt64(step), withPast: false)
            if length == 0 {
                for name in ["past_k", "past_v"] { pasts[name] = Tensor(zeros: .float32, shape: [c.batch, c.kvHeads, 0, c.headSize]) }
            }
            let inPlace = try fused.run(stepFeeds, outputs: ["y", "present_k", "present_v"], kvStore: store)
            stepFeeds.merge(pasts) { a, _ in a }
            let copying = try reference.run(stepFeeds)
            length += tokens
            #expect(store.length == length)
            for name in ["y", "present_k", "present_v"] {
                let got = try #require(inPlace[name]), want = try #require(copying[name])
                let report = closeness(got, want, atol: 1e-5, rtol: 1e-5)
                #expect(report.isClose, "\(c.testDescription) store step \(step) \(name): \(report)")
            }
            pasts = ["past_k": copying["present_k"]!, "past_v": copying["present_v"]!]
        }
    }

    /// Where the pass must leave the Q split (or the merge) alone, it does, and the rest of the
    /// graph still gives the reference's outputs.
    @Test func leavesWhatItCannotProve() throws {
        let c = Case(batch: 2, seq: 3, heads: 3, kvHeads: 1, past: 2)
        let qSplit: Set<String> = ["rq", "tq"], merge: Set<String> = ["ta", "ra"]
        var inferred = Options(); inferred.qHeadSizeInferred = true
        var wrongPerm = Options(); wrongPerm.qPerm = [0, 1, 2, 3]
        var input = Options(); input.qShapeIsInput = true
        var read = Options(); read.qTransposeAlsoRead = true
        var output = Options(); output.mergeTransposeIsOutput = true
        for (label, options, kept, runs) in [("other reader", read, qSplit, true), ("wrong perm", wrongPerm, qSplit, false),
                                              ("shape is an input", input, qSplit, true), ("head size inferred", inferred, qSplit, true),
                                              ("merge output protected", output, merge, true)] {
            let before = Self.graph(c, options)
            let (after, changed) = try Self.absorbed(before)
            #expect(changed, "\(label): the other splits are still absorbed")
            let names = Set(after.nodes.map(\.name))
            #expect(kept.isSubset(of: names), "\(label): \(kept.subtracting(names)) removed")
            let plumbing = after.nodes.filter { $0.opType == "Transpose" || $0.opType == "Reshape" }.count
            #expect(plumbing == kept.count, "\(label): \(plumbing) plumbing nodes left")
            guard runs else { continue }
            var feeds = Self.feeds(c, tokens: c.seq, past: c.past, seed: 3, withPast: true)
            if options.qShapeIsInput { feeds["q_split"] = Tensor([0, 0, -1, Int64(c.headSize)], shape: [4]) }
            let expected = try Self.session(before).run(feeds), actual = try Self.session(after).run(feeds)
            for (name, want) in expected {
                let report = closeness(try #require(actual[name]), want, atol: 1e-5, rtol: 1e-5)
                #expect(report.isClose, "\(label) \(name): \(report)")
            }
        }
    }

    /// A split shape that does not fit the input fails as the Reshape would, with a clear error.
    @Test func badSplitShapeThrows() throws {
        let c = Case(batch: 1, seq: 2, heads: 3, kvHeads: 3, past: 0)
        var options = Options(); options.qShapeIsInput = true
        let (after, _) = try Self.absorbed(Self.graph(c, options))
        // The pass kept the input-shaped split; absorb it by hand to reach the kernel's check.
        var graph = after
        let reshape = graph.nodes.firstIndex { $0.name == "rq" }!, transpose = graph.nodes.firstIndex { $0.name == "tq" }!
        let rotary = graph.nodes.firstIndex { $0.name == "rot_q_t" }!
        graph.nodes[rotary].inputs = ["q", "cos", "sin", "q_split"]
        graph.nodes[rotary].attributes["split_heads"] = .int(1)
        graph.rewrite(removing: [reshape, transpose], adding: [])
        var feeds = Self.feeds(c, tokens: c.seq, past: 0, seed: 5, withPast: true)
        feeds["q_split"] = Tensor([0, 0, 5, Int64(c.headSize)], shape: [4]) // 3·16 features are not 5 heads
        #expect(throws: (any Error).self) { try Self.session(graph).run(feeds) }
        feeds["q_split"] = Tensor([0, 0, -1], shape: [3]) // not a head split
        #expect(throws: (any Error).self) { try Self.session(graph).run(feeds) }
    }

    /// The real optimum fixtures: the default pipeline leaves no head plumbing around attention.
    @Test func optimumExportsLoseTheHeadPlumbing() throws {
        for model in ["llama-optimum", "mistral-optimum"] {
            let graph = try GraphPassTests.load(model)
            let (optimized, report) = try GraphOptimizer.optimize(graph)
            #expect(!optimized.nodes.contains { $0.opType == "Transpose" && $0.ints("perm") == [0, 2, 1, 3] }, "\(model): \(report)")
            let attention = optimized.nodes.filter { $0.qualifiedOpType == "lpc:GQAttention" }
            #expect(!attention.isEmpty && attention.allSatisfy { $0.int("merge_heads") == 1 }, "\(model)")
            let appends = optimized.nodes.filter { $0.qualifiedOpType == "lpc:KVAppend" }
            #expect(!appends.isEmpty && appends.contains { $0.int("split_heads") == 1 }, "\(model)")
        }
    }
}
