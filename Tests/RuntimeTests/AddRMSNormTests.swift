import Foundation
import Graph
@testable import Runtime
import TensorCore
import Testing
import TestSupport

/// `AddRMSNormFusion` and `lpc:AddRMSNorm` against the two nodes it replaces (its reference:
/// `Add` then `lpc:RMSNorm`), on swept odd shapes. The fused kernel does the same float
/// operations, so the outputs must be bit-identical.
@Suite("Add + RMSNorm fusion")
struct AddRMSNormTests {
    /// h2 = h + x (read again by `next`), n = RMSNorm(h2, w); outputs n and next = h2 + n.
    static func graph(d: Int, bShape: [Dim]? = nil, sumIsOutput: Bool = false) -> Graph {
        let dims: [Dim] = [.symbolic("B"), .symbolic("S"), .fixed(d)]
        var outputs = [ValueInfo(name: "n", dtype: .float32, shape: nil), ValueInfo(name: "next", dtype: .float32, shape: nil)]
        if sumIsOutput { outputs.append(ValueInfo(name: "h2", dtype: .float32, shape: nil)) }
        var rng = SplitMix(seed: 9)
        return Graph(inputs: [ValueInfo(name: "h", dtype: .float32, shape: dims),
                              ValueInfo(name: "x", dtype: .float32, shape: bShape ?? dims)],
                     outputs: outputs,
                     initializers: ["w": Tensor((0..<d).map { _ in rng.normal() }, shape: [d])],
                     nodes: [Node(name: "add", opType: "Add", inputs: ["h", "x"], outputs: ["h2"]),
                             Node(name: "norm", opType: "RMSNorm", domain: "lpc", inputs: ["h2", "w"], outputs: ["n"],
                                  attributes: ["epsilon": .float(1e-5)]),
                             Node(name: "next", opType: "Add", inputs: ["h2", "n"], outputs: ["next"])],
                     opsets: ["": 17, "lpc": 1])
    }

    static func fused(_ graph: Graph) throws -> Graph {
        var after = graph
        #expect(try AddRMSNormFusion().apply(to: &after, context: PassContext(graph: graph)))
        return after
    }

    @Test(arguments: [(1, 1, 576), (1, 7, 17), (2, 128, 64), (2, 3, 1), (1, 2, 1000)])
    func fusedEqualsAddThenNorm(_ shape: (Int, Int, Int)) throws {
        let (b, s, d) = shape
        for sumIsOutput in [false, true] {
            let before = Self.graph(d: d, sumIsOutput: sumIsOutput)
            let after = try Self.fused(before)
            let ops = after.nodes.map(\.qualifiedOpType)
            #expect(ops.filter { $0 == "lpc:AddRMSNorm" }.count == 1 && !ops.contains("lpc:RMSNorm") && ops.filter { $0 == "Add" }.count == 1, "\(ops)")
            var rng = SplitMix(seed: UInt64(b * 1000 + s * 10 + d))
            let feeds = ["h": Tensor((0..<b * s * d).map { _ in rng.normal() }, shape: [b, s, d]),
                         "x": Tensor((0..<b * s * d).map { _ in rng.normal() }, shape: [b, s, d])]
            let expected = try Session(graph: before, options: SessionOptions(optimize: false)).run(feeds)
            let actual = try Session(graph: after, options: SessionOptions(optimize: false)).run(feeds)
            for (name, want) in expected {
                let got = try #require(actual[name])
                #expect(got.shape == want.shape && got.array(Float.self) == want.array(Float.self), "\(shape) \(name)")
            }
        }
    }

    /// A broadcast operand takes the plain Add, then the norm: still the reference's values.
    @Test func broadcastOperandMatches() throws {
        let d = 24
        let before = Self.graph(d: d, bShape: [.fixed(1), .fixed(1), .fixed(d)])
        let after = try Self.fused(before)
        var rng = SplitMix(seed: 4)
        let feeds = ["h": Tensor((0..<2 * 5 * d).map { _ in rng.normal() }, shape: [2, 5, d]),
                     "x": Tensor((0..<d).map { _ in rng.normal() }, shape: [1, 1, d])]
        let expected = try Session(graph: before, options: SessionOptions(optimize: false)).run(feeds)
        let actual = try Session(graph: after, options: SessionOptions(optimize: false)).run(feeds)
        for (name, want) in expected {
            let report = closeness(try #require(actual[name]), want, atol: 0, rtol: 0)
            #expect(report.isClose, "\(name): \(report)")
        }
    }

    /// No RMSNorm reads the sum, or the sum is not float32: nothing to fuse.
    @Test func leavesOtherAddsAlone() throws {
        var graph = Self.graph(d: 8)
        graph.nodes[1].inputs[0] = "h" // the norm reads h, not the sum
        var copy = graph
        #expect(try !AddRMSNormFusion().apply(to: &copy, context: PassContext(graph: graph)))
        var ints = Self.graph(d: 8)
        ints.inputs = ints.inputs.map { ValueInfo(name: $0.name, dtype: .int64, shape: $0.shape) }
        copy = ints
        #expect(try !AddRMSNormFusion().apply(to: &copy, context: PassContext(graph: ints)))
    }

    @Test func mismatchedWeightThrows() throws {
        let a = Tensor([Float](repeating: 1, count: 6), shape: [1, 2, 3])
        #expect(throws: KernelError.self) { try AddRMSNormKernel.run(a, a, Tensor([Float](repeating: 1, count: 4), shape: [4]), epsilon: 1e-5) }
    }
}
