import Graph
import TensorCore

/// A graph rewrite. `apply` returns whether it changed anything; the optimizer runs the passes
/// until none does (a fixed point). A pass must preserve the value of every graph output and
/// every protected value, on every input the graph accepts.
public protocol GraphPass {
    var name: String { get }
    func apply(to graph: inout Graph, context: PassContext) throws -> Bool
}

/// What passes must respect.
public struct PassContext {
    /// Values that must keep their name and value: graph outputs and names the caller asked for.
    public var protected: Set<String>
    /// Graph inputs: never constant even when an initializer gives them a default.
    public var inputs: Set<String>

    public init(graph: Graph, keep: Set<String> = []) {
        protected = keep.union(graph.outputs.map(\.name))
        inputs = Set(graph.inputs.map(\.name))
    }
}

/// The standard pipeline: fold constants, remove dead code and shape plumbing, fuse the
/// transformer blocks; then, if asked, convert large MatMul weights to f16/bf16.
public enum GraphOptimizer {
    /// The lpc-specific op domain of fused ops.
    public static let domain = "lpc"
    /// Version of the pass pipeline and of the fused ops' meaning. `lpc optimize` records it in
    /// the model's metadata (`optimizedKey`); a graph carrying this version skips the passes at
    /// load. Bump it whenever a pass or an `lpc` op changes what it produces.
    public static let passVersion = "3" // 3: f24 weights in tiles (lpc_f24.h)
    public static let optimizedKey = "lpc.optimized"

    /// True when `graph` was written by `lpc optimize` with the current pass version.
    public static func isOptimized(_ graph: Graph) -> Bool {
        graph.metadata[optimizedKey] == passVersion
    }

    public static func defaultPasses() -> [GraphPass] {
        [ConstantFolding(), DeadCodeElimination(), NoOpElimination(),
         RMSNormFusion(), SiLUFusion(), MatMulTransposedWeightFusion(), AttentionFusion(), ShapePlumbingElimination(), RotaryFusion(), HeadLayoutAbsorption(), CommonSubexpressionElimination(),
         MatMulWeightFusion(), AddRMSNormFusion()]
    }

    /// Runs `passes` to a fixed point (at most 8 rounds). Returns the graph and a line per change.
    public static func optimize(_ graph: Graph, keep: Set<String> = [], weights: WeightStorage = .f32,
                                lastPositionOutputs: Set<String> = [],
                                passes: [GraphPass]? = nil) throws -> (Graph, [String]) {
        var graph = graph
        graph.opsets[domain] = graph.opsets[domain] ?? 1
        let context = PassContext(graph: graph, keep: keep)
        var report: [String] = []
        let pipeline = passes ?? defaultPasses()
        // An `lpc optimize` output is at the passes' fixed point already: loading it costs no pass.
        let rounds = passes == nil && isOptimized(graph) ? 0 : 8
        if rounds == 0 { report.append("passes skipped: the graph was written by lpc optimize (pass version \(passVersion))") }
        // A pass is a function of the graph: one that changed nothing need not run again until
        // another pass changes the graph (the last round would otherwise rerun every pass).
        var changes = 0
        var idleAt = [Int?](repeating: nil, count: pipeline.count) // `changes` when the pass last found nothing
        for round in 0..<rounds {
            var changed = false
            for (p, pass) in pipeline.enumerated() where idleAt[p] != changes {
                let before = graph.nodes.count
                if try pass.apply(to: &graph, context: context) {
                    changed = true
                    changes += 1
                    report.append("round \(round): \(pass.name): \(before) → \(graph.nodes.count) nodes")
                } else {
                    idleAt[p] = changes
                }
            }
            if !changed { break }
        }
        // Session-time choices, applied after the fixed point (so also to `lpc optimize` output).
        if !lastPositionOutputs.isEmpty {
            if try LastPositionOutputs(outputs: lastPositionOutputs).apply(to: &graph, context: context) {
                report.append("last position only: \(lastPositionOutputs.sorted().joined(separator: ", "))")
            }
        }
        // After the fusions reached their fixed point (it needs the fused attention; the other
        // passes do not know its op): the in-place KV append.
        if passes == nil, try KVAppendRewrite().apply(to: &graph, context: context) {
            report.append("in-place KV append")
            // The V head split feeds the new KVAppend now: absorb it too.
            let before = graph.nodes.count
            if try HeadLayoutAbsorption().apply(to: &graph, context: context) {
                report.append("head layout absorption into KV appends: \(before) → \(graph.nodes.count) nodes")
            }
        }
        if ![.f32, .f24, .auto].contains(weights) {
            if try WeightConversion(storage: weights).apply(to: &graph, context: context) {
                report.append("weights converted to \(weights.rawValue)")
            }
        }
        if passes == nil, try MatMulGrouping().apply(to: &graph, context: context) {
            report.append("MatMul grouping: \(graph.nodes.count) nodes")
        }
        // After grouping: f24 only changes how float32 values are stored, so the float32 graph stays.
        if weights == .f24, try F24Packing().apply(to: &graph, context: context) {
            report.append("weights packed to f24 where exact")
        }
        return (graph, report)
    }
}

/// Producers and consumers of every value, for pattern matching.
struct GraphIndex {
    var producer: [String: Int] = [:]
    var consumers: [String: [Int]] = [:]

    init(_ graph: Graph) {
        for (index, node) in graph.nodes.enumerated() {
            for output in node.outputs where !output.isEmpty { producer[output] = index }
            // Each distinct input once (a scan is cheaper than a Set per node: 7,426 nodes in SmolLM2's export).
            for (j, input) in node.inputs.enumerated() where !input.isEmpty && !node.inputs[..<j].contains(input) {
                consumers[input, default: []].append(index)
            }
        }
    }

    func uses(_ value: String) -> Int { consumers[value]?.count ?? 0 }
}

/// Helpers shared by the fusion passes.
struct Matcher {
    let graph: Graph
    let index: GraphIndex
    let context: PassContext

    init(_ graph: Graph, _ context: PassContext) {
        self.graph = graph
        index = GraphIndex(graph)
        self.context = context
    }

    /// The node producing `value`, if it has op type `op` (and the default domain).
    func producer(_ value: String, _ op: String) -> (Int, Node)? {
        guard let i = index.producer[value], graph.nodes[i].opType == op, graph.nodes[i].domain.isEmpty else { return nil }
        return (i, graph.nodes[i])
    }

    /// A constant (initializer that is not a graph input).
    func constant(_ value: String) -> Tensor? {
        guard !context.inputs.contains(value) else { return nil }
        return graph.initializers[value]
    }

    /// The single value of a one-element float/integer constant.
    func scalar(_ value: String) -> Double? {
        guard let t = constant(value), t.count == 1, t.dtype != .bool else { return nil }
        return t.doubles()[0]
    }

    /// True when every consumer of `value` is in `nodes` and it is not protected.
    func isInternal(_ value: String, to nodes: Set<Int>) -> Bool {
        if context.protected.contains(value) { return false }
        return (index.consumers[value] ?? []).allSatisfy { nodes.contains($0) }
    }

    /// True when all outputs of `nodes` except `exits` are used only inside `nodes`.
    func isClosed(_ nodes: Set<Int>, exits: Set<String>) -> Bool {
        for i in nodes {
            for output in graph.nodes[i].outputs where !output.isEmpty && !exits.contains(output) {
                if !isInternal(output, to: nodes) { return false }
            }
        }
        return true
    }
}

extension Graph {
    /// Removes the nodes at `removed` and inserts `added` (topological order is restored by
    /// `verified()` afterwards), then drops initializers nothing reads any more.
    mutating func rewrite(removing removed: Set<Int>, adding added: [Node]) {
        var kept: [Node] = []
        kept.reserveCapacity(nodes.count - removed.count + added.count)
        for (i, node) in nodes.enumerated() where !removed.contains(i) { kept.append(node) }
        kept.append(contentsOf: added)
        nodes = kept
        if let sorted = try? verified() { nodes = sorted.nodes }
    }

    /// Drops initializers no node reads and no graph output names (graph inputs stay).
    mutating func pruneInitializers() {
        var used = Set(outputs.map(\.name)).union(inputs.map(\.name))
        for node in nodes { for input in node.inputs { used.insert(input) } }
        for name in initializers.keys where !used.contains(name) { initializers[name] = nil }
    }
}

/// Element types of values, propagated forward for the ops whose rule is simple.
enum DTypeInference {
    static let sameAsFirst: Set<String> = [
        "Add", "Sub", "Mul", "Div", "Pow", "Neg", "Abs", "Sqrt", "Exp", "Log", "Sigmoid", "Tanh", "Relu",
        "Sin", "Cos", "Reciprocal", "Erf", "Softmax", "LogSoftmax", "MatMul", "Gemm", "ReduceMean", "ReduceSum",
        "ReduceMax", "ReduceMin", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Expand", "Tile", "Concat",
        "Slice", "Gather", "GatherElements", "GatherND", "Flatten", "Identity", "Split", "Pad", "Range", "Trilu",
        "ScatterND", "Min", "Max", "Floor", "Ceil", "CumSum", "Mod",
    ]
    static let boolOps: Set<String> = ["Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or",
                                       "Not", "Xor", "IsNaN", "IsInf"]

    static func infer(_ graph: Graph) -> [String: DType] {
        var types: [String: DType] = [:]
        for info in graph.inputs { if let dtype = info.dtype { types[info.name] = dtype } }
        for (name, tensor) in graph.initializers { types[name] = tensor.dtype }
        for node in graph.nodes {
            var result: DType?
            if node.domain == GraphOptimizer.domain {
                result = node.opType == "SymbolicValue" ? node.int("to").flatMap { DType(onnx: Int32($0)) }
                    : node.opType == "RepeatKVShape" ? .int64 : .float32
            } else if !node.domain.isEmpty {
                result = nil
            } else if node.opType == "Cast" {
                result = node.int("to").flatMap { DType(onnx: Int32(truncatingIfNeeded: $0)) }
            } else if node.opType == "Shape" || node.opType == "Size" {
                result = .int64
            } else if boolOps.contains(node.opType) {
                result = .bool
            } else if node.opType == "Where" {
                result = node.inputs.count > 1 ? types[node.inputs[1]] : nil
            } else if node.opType == "Constant" {
                if let t = node.tensor("value") { result = t.dtype }
                else if node.attributes["value_float"] != nil || node.attributes["value_floats"] != nil { result = .float32 }
                else if node.attributes["value_int"] != nil || node.attributes["value_ints"] != nil { result = .int64 }
            } else if node.opType == "ConstantOfShape" {
                result = node.tensor("value")?.dtype ?? .float32
            } else if sameAsFirst.contains(node.opType), let first = node.inputs.first {
                result = types[first]
            }
            if let result { for output in node.outputs where !output.isEmpty { types[output] = result } }
        }
        return types
    }
}
