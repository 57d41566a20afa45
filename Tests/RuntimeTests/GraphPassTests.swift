import Foundation
import Graph
import ONNXImport
@testable import Runtime
import TensorCore
import Testing
import TestSupport

/// Every graph pass, run on every model fixture: the graph before and after the pass must give the
/// same outputs on random inputs (batch 2 with left padding and a random past). Tolerance: atol
/// 1e-4 + rtol 1e-4 (fused kernels reorder float sums). All model goldens also run on the fully
/// optimized graphs (ModelGoldenTests uses the default, optimized, session; this suite repeats
/// them with optimization off, and checks the optimizer really fused the optimum exports).
@Suite("Graph passes")
struct GraphPassTests {
    static let models = ["llama-optimum", "mistral-optimum", "llama-dynamo18", "mistral-dynamo18",
                         "llama-dynamo23", "mistral-dynamo23"]

    struct PassCase: CustomTestStringConvertible, Sendable {
        let model: String
        let pass: String
        var testDescription: String { "\(model): \(pass)" }
    }

    static func passes() -> [String: [GraphPass]] {
        [
            "constant folding": [ConstantFolding()],
            "dead-code elimination": [DeadCodeElimination()],
            "common subexpressions": [ConstantFolding(), CommonSubexpressionElimination()],
            "no-op elimination": [ConstantFolding(), NoOpElimination()],
            "RMSNorm fusion": [ConstantFolding(), RMSNormFusion()],
            "SiLU/SwiGLU fusion": [ConstantFolding(), SiLUFusion()],
            "MatMul transposed weights": [ConstantFolding(), MatMulTransposedWeightFusion()],
            "attention fusion": [ConstantFolding(), AttentionFusion()],
            "MatMul weight kernels": [ConstantFolding(), MatMulWeightFusion(minBytes: 0)],
            "all passes": GraphOptimizer.defaultPasses(),
            "in-place KV append": [ConstantFolding(), AttentionFusion(), KVAppendRewrite()],
            "MatMul grouping": [ConstantFolding(), MatMulWeightFusion(minBytes: 0), MatMulGrouping()],
            "Add + RMSNorm fusion": [ConstantFolding(), RMSNormFusion(), AddRMSNormFusion()],
            "head layout absorption": [ConstantFolding(), AttentionFusion(), ShapePlumbingElimination(), RotaryFusion(),
                                       KVAppendRewrite(), HeadLayoutAbsorption()],
        ]
    }

    static func cases() -> [PassCase] {
        models.flatMap { model in passes().keys.sorted().map { PassCase(model: model, pass: $0) } }
    }

    static func load(_ model: String) throws -> Graph {
        try ONNXLoader.load(path: Fixtures.path("models/\(model)/model.onnx")).graph
    }

    /// Random feeds for an optimum-style decoder: batch 2, 3 new tokens, past 4, row 1 left-padded by 2.
    static func randomFeeds(_ graph: Graph, seed: UInt64, batch: Int = 2, tokens: Int = 3, past: Int = 4, pad: Int = 2) -> [String: Tensor] {
        var rng = SplitMix(seed: seed)
        var feeds: [String: Tensor] = [:]
        let total = past + tokens
        for info in graph.inputs where graph.initializers[info.name] == nil {
            switch info.name {
            case "input_ids":
                feeds[info.name] = Tensor((0..<batch * tokens).map { _ in Int64(rng.next() % 128) }, shape: [batch, tokens])
            case "attention_mask":
                var mask = [Int64](repeating: 1, count: batch * total)
                for j in 0..<pad { mask[(batch - 1) * total + j] = 0 }
                feeds[info.name] = Tensor(mask, shape: [batch, total])
            case "position_ids":
                var ids: [Int64] = []
                for b in 0..<batch {
                    let offset = b == batch - 1 ? pad : 0
                    for t in 0..<tokens { ids.append(Int64(max(0, past + t - offset))) }
                }
                feeds[info.name] = Tensor(ids, shape: [batch, tokens])
            default:
                guard let shape = info.shape, shape.count == 4, case let .fixed(heads) = shape[1], case let .fixed(dim) = shape[3] else { continue }
                let count = batch * heads * past * dim
                feeds[info.name] = Tensor((0..<count).map { _ in rng.normal() }, shape: [batch, heads, past, dim])
            }
        }
        return feeds
    }

    @Test(arguments: cases())
    func passPreservesOutputs(_ testCase: PassCase) throws {
        let before = try Self.load(testCase.model)
        let (after, _) = try GraphOptimizer.optimize(before, passes: Self.passes()[testCase.pass]!)
        let reference = try Session(graph: before, options: SessionOptions(optimize: false))
        let optimized = try Session(graph: after, options: SessionOptions(optimize: false))
        for seed: UInt64 in [1, 2] {
            let feeds = Self.randomFeeds(before, seed: seed)
            let expected = try reference.run(feeds)
            let actual = try optimized.run(feeds)
            for (name, tensor) in expected.sorted(by: { $0.key < $1.key }) {
                let got = try #require(actual[name], "\(name) missing after \(testCase.pass)")
                let report = closeness(got, tensor, atol: 1e-4, rtol: 1e-4)
                #expect(report.isClose, "\(testCase.testDescription) seed \(seed) output \(name): \(report)")
            }
        }
    }

    /// Constant folding: a small Transpose of a constant folds, one over the size limit stays a node
    /// (it is now skipped before being computed, which saved a 113 MB copy per load: a load-time
    /// gain measured with `lpc bench`, not here), and the graph gives the same output either way.
    @Test func constantFoldingSkipsLargeSizePreservingOps() throws {
        for (rows, folds) in [(4, true), (600, false)] { // 4×512 floats = 8 KiB; 600×512 = 1.2 MB > 1 MiB
            let w = Tensor((0..<(rows * 512)).map { Float($0 % 97) }, shape: [rows, 512])
            let graph = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(1), .fixed(512)])],
                              outputs: [ValueInfo(name: "y", dtype: .float32, shape: nil)],
                              initializers: ["w": w],
                              nodes: [Node(name: "t", opType: "Transpose", inputs: ["w"], outputs: ["wt"], attributes: ["perm": .ints([1, 0])]),
                                      Node(name: "mm", opType: "MatMul", inputs: ["x", "wt"], outputs: ["y"])],
                              opsets: ["": 17])
            var folded = graph
            let changed = try ConstantFolding().apply(to: &folded, context: PassContext(graph: graph))
            #expect(changed == folds, "rows \(rows)")
            #expect(folded.nodes.contains { $0.opType == "Transpose" } == !folds, "rows \(rows)")
            let x = Tensor((0..<512).map { Float($0) * 0.01 }, shape: [1, 512]) // y = x·wᵀ: [1, rows]
            let before = try Session(graph: graph, options: SessionOptions(optimize: false)).run(["x": x])["y"]!
            let after = try Session(graph: folded, options: SessionOptions(optimize: false)).run(["x": x])["y"]!
            #expect(closeness(after, before, atol: 0, rtol: 0).isClose)
        }
    }

    /// Nodes merge only when op, inputs and every attribute are equal (floats by bit pattern);
    /// small constants merge only when dtype, shape and bytes are equal.
    @Test func commonSubexpressionsMergeOnlyEqualNodes() throws {
        let x = ValueInfo(name: "x", dtype: .float32, shape: [.fixed(2), .fixed(3)])
        func transpose(_ name: String, _ perm: [Int]) -> Node {
            Node(name: name, opType: "Transpose", inputs: ["x"], outputs: [name], attributes: ["perm": .ints(perm)])
        }
        func norm(_ name: String, _ epsilon: Float) -> Node {
            Node(name: name, opType: "RMSNormalization", inputs: ["x", "scale"], outputs: [name], attributes: ["epsilon": .float(epsilon)])
        }
        func add(_ name: String, _ a: String, _ b: String) -> Node { Node(name: name, opType: "Add", inputs: [a, b], outputs: [name]) }
        let outputs = ["a", "b", "c", "d", "e", "f"]
        let graph = Graph(inputs: [x], outputs: outputs.map { ValueInfo(name: $0, dtype: .float32, shape: nil) },
                          initializers: ["one": Tensor([Float(1)], shape: [1]), "one'": Tensor([Float(1)], shape: [1]),
                                         "oneBits": Tensor([Int32(1_065_353_216)], shape: [1]), // Float(1)'s bytes as int32
                                         "scale": Tensor([Float(1), 2, 3], shape: [3])],
                          nodes: [transpose("t1", [1, 0]), transpose("t2", [1, 0]), transpose("t3", [0, 1]),
                                  norm("l1", 0.5), norm("l2", 2), norm("l3", 0.5),
                                  add("a", "t1", "one"), add("b", "t2", "one'"), add("c", "t3", "one"),
                                  add("d", "l1", "l2"), add("e", "l3", "l3"),
                                  Node(name: "f", opType: "Cast", inputs: ["oneBits"], outputs: ["f"], attributes: ["to": .int(1)])],
                          opsets: ["": 23])
        var merged = graph
        #expect(try CommonSubexpressionElimination().apply(to: &merged, context: PassContext(graph: graph)))
        // t2 and l3 repeat t1 and l1; the outputs are protected, so their Adds stay (reading the survivors).
        #expect(merged.nodes.map(\.name).sorted() == ["a", "b", "c", "d", "e", "f", "l1", "l2", "t1", "t3"])
        #expect(merged.nodes.first { $0.name == "b" }?.inputs == ["t1", "one"])
        #expect(merged.nodes.first { $0.name == "e" }?.inputs == ["l1", "l1"])
        #expect(merged.initializers["one'"] == nil && merged.initializers["oneBits"] != nil)
        let feeds = ["x": Tensor((0..<6).map { Float($0) - 2.5 }, shape: [2, 3])]
        let before = try Session(graph: graph, options: SessionOptions(optimize: false)).run(feeds)
        let after = try Session(graph: merged, options: SessionOptions(optimize: false)).run(feeds)
        for name in outputs { #expect(closeness(after[name]!, before[name]!, atol: 0, rtol: 0).isClose, "\(name)") }
    }

    @Test func optimumExportsAreFused() throws {
        for model in ["llama-optimum", "mistral-optimum"] {
            let graph = try Self.load(model)
            let (optimized, _) = try GraphOptimizer.optimize(graph)
            let ops = Dictionary(grouping: optimized.nodes, by: \.qualifiedOpType).mapValues(\.count)
            #expect(ops["lpc:GQAttention"] == 2, "\(model): \(ops)")
            // Five norms: the first reads the embeddings, the other four a residual Add (fused with it).
            #expect(ops["lpc:RMSNorm"] == 1 && ops["lpc:AddRMSNorm"] == 4, "\(model): \(ops)")
            #expect(ops["lpc:SwiGLU"] == 2, "\(model): \(ops)")
            #expect(ops["Softmax"] == nil && ops["Constant"] == nil, "\(model): \(ops)")
            #expect(optimized.nodes.count < graph.nodes.count / 2, "\(model): \(graph.nodes.count) → \(optimized.nodes.count)")
        }
    }

    @Test func goldensMatchWithoutOptimization() throws {
        for testCase in try ModelGoldenTests.cases() {
            let dir = "models/\(testCase.model)"
            let graph = try ONNXLoader.load(path: Fixtures.path(dir + "/model.onnx")).graph
            let session = try Session(graph: graph, options: SessionOptions(optimize: false))
            let results = try session.run(testCase.feeds())
            for name in testCase.outputs.keys.sorted() {
                let report = closeness(try #require(results[name]), try testCase.golden(name), atol: 1e-4, rtol: 1e-4)
                #expect(report.isClose, "\(testCase) \(name): \(report)")
            }
        }
    }

    @Test(arguments: [WeightStorage.f16, .bf16])
    func goldensMatchWithHalfWeights(weights: WeightStorage) throws {
        // Logits against the float32 goldens (tiny random models, |logit| < 1): f16 weights within
        // 2e-2; bf16 within 5e-2, its rounding step being 8× f16's (8 vs 11 significant bits: these
        // models measure max |Δ| 0.022 with bf16, ~0.003 with f16).
        for testCase in try ModelGoldenTests.cases() where testCase.model.hasSuffix("optimum") {
            let dir = "models/\(testCase.model)"
            let graph = try ONNXLoader.load(path: Fixtures.path(dir + "/model.onnx")).graph
            var options = SessionOptions()
            options.weightStorage = weights
            let session = try Session(graph: graph, options: options)
            let dtype: DType = weights == .f16 ? .float16 : .bfloat16
            #expect(session.graph.initializers.values.contains { $0.dtype == dtype })
            let results = try session.run(testCase.feeds(), outputs: ["logits"])
            let report = closeness(try #require(results["logits"]), try testCase.golden("logits"),
                                   atol: weights == .f16 ? 2e-2 : 5e-2, rtol: 0)
            #expect(report.isClose, "\(testCase) logits with \(weights) weights: \(report)")
        }
    }

    @Test func removedIntermediatesCanStillBeRequested() throws {
        let graph = try Self.load("llama-optimum")
        let session = try Session(graph: graph)
        let feeds = Self.randomFeeds(graph, seed: 3)
        // A value inside a fused RMSNorm: gone from the optimized graph, served by the source graph.
        let name = try #require(graph.nodes.first { $0.opType == "ReduceMean" }?.outputs[0])
        #expect(!session.graph.nodes.contains { $0.outputs.contains(name) })
        let results = try session.run(feeds, outputs: [name, "logits"])
        let reference = try Session(graph: graph, options: SessionOptions(optimize: false)).run(feeds, outputs: [name, "logits"])
        #expect(closeness(try #require(results[name]), reference[name]!, atol: 1e-5, rtol: 1e-5).isClose)
        // Kept values survive the passes.
        let kept = try Session(graph: graph, options: SessionOptions(keep: [name]))
        #expect(kept.graph.nodes.contains { $0.outputs.contains(name) })
    }
}

/// Deterministic random numbers for test inputs.
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
    mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) }
    mutating func normal() -> Float {
        let u1 = max(uniform(), 1e-7), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}
