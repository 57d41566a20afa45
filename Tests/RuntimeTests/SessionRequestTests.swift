import Foundation
import Graph
@testable import Runtime
import TensorCore
import Testing

/// A request for some of the graph outputs runs only the steps they need (a logits head asks for
/// the hidden state only, and the LM head is skipped); a full request runs everything.
@Suite("Session requests")
struct SessionRequestTests {
    @Test func runsOnlyTheStepsARequestNeeds() throws {
        // x → Relu → a (output); x → Neg → Abs → b (output).
        let graph = Graph(inputs: [ValueInfo(name: "x", dtype: .float32, shape: [.fixed(4)])],
                          outputs: [ValueInfo(name: "a", dtype: .float32, shape: nil), ValueInfo(name: "b", dtype: .float32, shape: nil)],
                          initializers: [:],
                          nodes: [Node(name: "relu", opType: "Relu", inputs: ["x"], outputs: ["a"]),
                                  Node(name: "neg", opType: "Neg", inputs: ["x"], outputs: ["n"]),
                                  Node(name: "abs", opType: "Abs", inputs: ["n"], outputs: ["b"])],
                          opsets: ["": 17])
        let session = try Session(graph: graph, options: SessionOptions(optimize: false))
        var ran: [String] = []
        session.trace = { node, _ in ran.append(node.name) }
        let x = Tensor([-1, 2, -3, 4] as [Float], shape: [4])

        let onlyA = try session.run(["x": x], outputs: ["a"])
        #expect(ran == ["relu"])
        #expect(onlyA["a"]!.array(Float.self) == [0, 2, 0, 4])

        ran = []
        let onlyB = try session.run(["x": x], outputs: ["b"])
        #expect(ran == ["neg", "abs"])
        #expect(onlyB["b"]!.array(Float.self) == [1, 2, 3, 4])

        ran = []
        let both = try session.run(["x": x])
        #expect(ran.sorted() == ["abs", "neg", "relu"])
        #expect(both["a"]!.array(Float.self) == [0, 2, 0, 4] && both["b"]!.array(Float.self) == [1, 2, 3, 4])
    }
}
