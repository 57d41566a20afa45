import Graph
import TensorCore

/// RMSNorm written out by exporters:
///   y = w * Cast(x * (1 / Sqrt(ReduceMean(Pow(x, 2), axes=[-1], keepdims=1) + eps)))
/// (optional Cast, `Div(1, ·)` or `Reciprocal`, `Pow(x, 2)` or `Mul(x, x)`, either operand order)
/// becomes `lpc:RMSNorm(x, w)`. Matches only when x is float32 and w a 1-D float32 constant.
public struct RMSNormFusion: GraphPass {
    public var name: String { "RMSNorm fusion" }
    public init() {}

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        let m = Matcher(graph, context)
        let types = DTypeInference.infer(graph)
        var removed = Set<Int>(), added: [Node] = []
        for (iw, mulW) in graph.nodes.enumerated() where mulW.opType == "Mul" && mulW.domain.isEmpty && mulW.inputs.count == 2 {
            guard !removed.contains(iw) else { continue }
            // Which operand is the weight?
            var weight: String?, normed: String?
            for (a, b) in [(0, 1), (1, 0)] {
                if let w = m.constant(mulW.inputs[a]), w.rank == 1, w.dtype == .float32 { weight = mulW.inputs[a]; normed = mulW.inputs[b] }
            }
            guard let weight, var normed else { continue }
            var nodes: Set<Int> = [iw]
            if let (ic, cast) = m.producer(normed, "Cast"), cast.int("to") == Int(DType.float32.rawValue) {
                nodes.insert(ic); normed = cast.inputs[0]
            }
            guard let (imul, mul) = m.producer(normed, "Mul") else { continue }
            nodes.insert(imul)
            // One operand is x, the other 1/sqrt(...).
            var x: String?, inv: (Int, Node)?, eps: Double?
            for (a, b) in [(0, 1), (1, 0)] {
                let candidate = mul.inputs[b]
                var recip: (Int, Node)?, sqrtValue: String?
                if let (id, div) = m.producer(candidate, "Div"), m.scalar(div.inputs[0]) == 1 {
                    recip = (id, div); sqrtValue = div.inputs[1]
                } else if let (ir, r) = m.producer(candidate, "Reciprocal") {
                    recip = (ir, r); sqrtValue = r.inputs[0]
                }
                guard let recip, let sqrtValue, let (isq, sq) = m.producer(sqrtValue, "Sqrt"),
                      let (iadd, add) = m.producer(sq.inputs[0], "Add") else { continue }
                for (p, q) in [(0, 1), (1, 0)] {
                    guard let e = m.scalar(add.inputs[q]), let (irm, rm) = m.producer(add.inputs[p], "ReduceMean") else { continue }
                    guard (rm.int("keepdims") ?? 1) == 1 else { continue }
                    let axes: [Int]? = rm.inputs.count > 1 && !rm.inputs[1].isEmpty
                        ? m.constant(rm.inputs[1])?.ints() : rm.ints("axes")
                    guard axes == [-1] else { continue }
                    var xValue: String?
                    var ipow = -1
                    if let (i, pow) = m.producer(rm.inputs[0], "Pow"), m.scalar(pow.inputs[1]) == 2 { xValue = pow.inputs[0]; ipow = i }
                    else if let (i, sqm) = m.producer(rm.inputs[0], "Mul"), sqm.inputs[0] == sqm.inputs[1] { xValue = sqm.inputs[0]; ipow = i }
                    guard let xValue, xValue == mul.inputs[a] else { continue }
                    x = xValue; eps = e; inv = recip
                    nodes.formUnion([recip.0, isq, iadd, irm, ipow])
                }
                if x != nil { break }
            }
            guard let x, let eps, inv != nil, types[x] == .float32 else { continue }
            guard nodes.isDisjoint(with: removed), m.isClosed(nodes, exits: [mulW.outputs[0]]) else { continue }
            removed.formUnion(nodes)
            added.append(Node(name: mulW.name + "/lpc_rmsnorm", opType: "RMSNorm", domain: GraphOptimizer.domain,
                              inputs: [x, weight], outputs: [mulW.outputs[0]], attributes: ["epsilon": .float(Float(eps))]))
        }
        guard !added.isEmpty else { return false }
        graph.rewrite(removing: removed, adding: added)
        return true
    }
}

/// The SiLU-gated MLP's activation: `Mul(g, Sigmoid(g))` (either order) becomes `lpc:SiLU(g)`,
/// and `Mul(SiLU(g), u)` (either order) becomes `lpc:SwiGLU(g, u)` (broadcasting as Mul does).
public struct SiLUFusion: GraphPass {
    public var name: String { "SiLU/SwiGLU fusion" }
    public init() {}

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        let m = Matcher(graph, context)
        let types = DTypeInference.infer(graph)
        var removed = Set<Int>(), added: [Node] = []
        for (i, mul) in graph.nodes.enumerated() where mul.opType == "Mul" && mul.domain.isEmpty && mul.inputs.count == 2 {
            guard !removed.contains(i) else { continue }
            for (a, b) in [(0, 1), (1, 0)] {
                guard let (isg, sg) = m.producer(mul.inputs[b], "Sigmoid"), sg.inputs[0] == mul.inputs[a],
                      types[mul.inputs[a]] == .float32 else { continue }
                let nodes: Set<Int> = [i, isg]
                guard nodes.isDisjoint(with: removed), m.isClosed(nodes, exits: [mul.outputs[0]]) else { continue }
                removed.formUnion(nodes)
                added.append(Node(name: mul.name + "/lpc_silu", opType: "SiLU", domain: GraphOptimizer.domain,
                                  inputs: [mul.inputs[a]], outputs: mul.outputs))
                break
            }
        }
        var changed = !added.isEmpty
        if changed { graph.rewrite(removing: removed, adding: added) }

        // SwiGLU: a Mul with a SiLU operand used only there.
        let m2 = Matcher(graph, context)
        let types2 = DTypeInference.infer(graph)
        removed = []; added = []
        for (i, mul) in graph.nodes.enumerated() where mul.opType == "Mul" && mul.domain.isEmpty && mul.inputs.count == 2 {
            guard !removed.contains(i) else { continue }
            for (a, b) in [(0, 1), (1, 0)] {
                guard let is_ = m2.index.producer[mul.inputs[a]], graph.nodes[is_].opType == "SiLU",
                      graph.nodes[is_].domain == GraphOptimizer.domain, types2[mul.inputs[b]] == .float32 else { continue }
                let nodes: Set<Int> = [i, is_]
                guard nodes.isDisjoint(with: removed), m2.isClosed(nodes, exits: [mul.outputs[0]]) else { continue }
                removed.formUnion(nodes)
                added.append(Node(name: mul.name + "/lpc_swiglu", opType: "SwiGLU", domain: GraphOptimizer.domain,
                                  inputs: [graph.nodes[is_].inputs[0], mul.inputs[b]], outputs: mul.outputs))
                break
            }
        }
        if !added.isEmpty {
            graph.rewrite(removing: removed, adding: added)
            changed = true
        }
        return changed
    }
}

/// `MatMul(x, Transpose(W))` with W a 2-D float32 constant (tied LM heads) becomes
/// `lpc:MatMulNT(x, W)`, which reads W as stored ([N, K]) instead of materialising Wᵀ.
public struct MatMulTransposedWeightFusion: GraphPass {
    public var name: String { "MatMul transposed-weight fusion" }
    public init() {}

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        let m = Matcher(graph, context)
        let types = DTypeInference.infer(graph)
        var removed = Set<Int>(), added: [Node] = []
        for (i, mm) in graph.nodes.enumerated() where mm.opType == "MatMul" && mm.domain.isEmpty {
            guard let (it, tr) = m.producer(mm.inputs[1], "Transpose"), let w = m.constant(tr.inputs[0]),
                  w.rank == 2, w.dtype == .float32, types[mm.inputs[0]] == .float32 else { continue }
            let perm = tr.ints("perm") ?? [1, 0]
            guard perm == [1, 0] else { continue }
            var nodes: Set<Int> = [i]
            if m.isInternal(tr.outputs[0], to: [i]) { nodes.insert(it) }
            guard nodes.isDisjoint(with: removed) else { continue }
            removed.formUnion(nodes)
            added.append(Node(name: mm.name + "/lpc_matmul_nt", opType: "MatMulNT", domain: GraphOptimizer.domain,
                              inputs: [mm.inputs[0], tr.inputs[0]], outputs: mm.outputs))
        }
        guard !added.isEmpty else { return false }
        graph.rewrite(removing: removed, adding: added)
        graph.pruneInitializers()
        return true
    }
}

/// Scaled dot-product attention with grouped KV heads, as exported from eager/sdpa PyTorch:
///   S = MatMul([Mul](Q, c1), [Mul](Transpose(Kr, [0,1,3,2]), c2)); [S = S·c3 or S / c3];
///   [S = S + M]; P = Softmax(S, -1); [P = Where(IsNaN(P), 0, P)]; O = MatMul(P, Vr)
/// where Kr/Vr are K/V or their repeat `Reshape(Expand(Unsqueeze(K, 2), e), r)`. Becomes
/// `lpc:GQAttention(Q, K, V, M, eK, rK, eV, rV)`; the repeat shapes are checked when it runs, and
/// K/V heads are shared by index instead of being copied.
public struct AttentionFusion: GraphPass {
    public var name: String { "attention fusion" }
    public init() {}

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        let m = Matcher(graph, context)
        let types = DTypeInference.infer(graph)
        var removed = Set<Int>(), added: [Node] = []
        for (isoft, soft) in graph.nodes.enumerated() where soft.opType == "Softmax" && soft.domain.isEmpty {
            let axis = soft.int("axis") ?? (graph.opset(for: soft) ?? 13 >= 13 ? -1 : 1)
            guard axis == -1 || axis == 3 else { continue }
            var nodes: Set<Int> = [isoft]
            // After the softmax: optional NaN guard, then MatMul with V.
            var probs = soft.outputs[0]
            var nanToZero = 0
            let softUsers = m.index.consumers[probs] ?? []
            if softUsers.count == 2 {
                let isnan = softUsers.first { graph.nodes[$0].opType == "IsNaN" }
                let whereIndex = softUsers.first { graph.nodes[$0].opType == "Where" }
                guard let isnan, let whereIndex else { continue }
                let w = graph.nodes[whereIndex]
                guard w.inputs[0] == graph.nodes[isnan].outputs[0], w.inputs[2] == probs,
                      let zero = m.constant(w.inputs[1]), zero.count == 1, zero.doubles()[0] == 0 else { continue }
                nodes.formUnion([isnan, whereIndex]); probs = w.outputs[0]; nanToZero = 1
            }
            guard let pvUsers = m.index.consumers[probs], pvUsers.count == 1 else { continue }
            let ipv = pvUsers[0]
            let pv = graph.nodes[ipv]
            guard pv.opType == "MatMul", pv.domain.isEmpty, pv.inputs[0] == probs else { continue }
            nodes.insert(ipv)
            // Before the softmax: optional mask add, optional scale, QKᵀ.
            var scores = soft.inputs[0]
            var mask = ""
            var scale = 1.0
            if let (ia, add) = m.producer(scores, "Add") {
                let leadsToQK = { (value: String) -> Bool in
                    if m.producer(value, "MatMul") != nil { return true }
                    for op in ["Mul", "Div"] {
                        if let (_, sc) = m.producer(value, op), m.scalar(sc.inputs[1]) != nil || (op == "Mul" && m.scalar(sc.inputs[0]) != nil) {
                            let other = m.scalar(sc.inputs[1]) != nil ? sc.inputs[0] : sc.inputs[1]
                            if m.producer(other, "MatMul") != nil { return true }
                        }
                    }
                    return false
                }
                if leadsToQK(add.inputs[0]) { scores = add.inputs[0]; mask = add.inputs[1] }
                else if leadsToQK(add.inputs[1]) { scores = add.inputs[1]; mask = add.inputs[0] }
                else { continue }
                nodes.insert(ia)
            }
            if let (isc, sc) = m.producer(scores, "Mul"), let c = m.scalar(sc.inputs[1]) ?? m.scalar(sc.inputs[0]) {
                scores = m.scalar(sc.inputs[1]) != nil ? sc.inputs[0] : sc.inputs[1]; scale *= c; nodes.insert(isc)
            } else if let (isc, sc) = m.producer(scores, "Div"), let c = m.scalar(sc.inputs[1]), c != 0 {
                scores = sc.inputs[0]; scale /= c; nodes.insert(isc)
            }
            guard let (iqk, qk) = m.producer(scores, "MatMul") else { continue }
            nodes.insert(iqk)
            var q = qk.inputs[0], kt = qk.inputs[1]
            if let (iq, mq) = m.producer(q, "Mul"), let c = m.scalar(mq.inputs[1]) {
                q = mq.inputs[0]; scale *= c; nodes.insert(iq)
            }
            if let (ik, mk) = m.producer(kt, "Mul"), let c = m.scalar(mk.inputs[1]) {
                kt = mk.inputs[0]; scale *= c; nodes.insert(ik)
            }
            guard let (itr, tr) = m.producer(kt, "Transpose"), tr.ints("perm") == [0, 1, 3, 2] else { continue }
            nodes.insert(itr)
            guard let (k, kRepeat) = repeatSource(tr.inputs[0], m, &nodes),
                  let (v, vRepeat) = repeatSource(pv.inputs[1], m, &nodes) else { continue }
            guard types[q] == .float32, types[k] == .float32, types[v] == .float32,
                  mask.isEmpty || types[mask] == .float32 else { continue }
            // Shape nodes reading a repeated K/V read its shape from the repeat's shapes instead.
            var shapeNodes: [(Int, Node, Repeat, String)] = []
            for (source, rep, repeated) in [(k, kRepeat, tr.inputs[0]), (v, vRepeat, pv.inputs[1])] where !rep.expand.isEmpty {
                for user in m.index.consumers[repeated] ?? [] where !nodes.contains(user) {
                    let shapeNode = graph.nodes[user]
                    if shapeNode.opType == "Shape" && shapeNode.domain.isEmpty { shapeNodes.append((user, shapeNode, rep, source)) }
                }
            }
            let allNodes = nodes.union(shapeNodes.map(\.0))
            guard allNodes.isDisjoint(with: removed), m.isClosed(allNodes, exits: Set([pv.outputs[0]] + shapeNodes.map { $0.1.outputs[0] })) else { continue }
            removed.formUnion(allNodes)
            for (_, shapeNode, rep, source) in shapeNodes {
                var attributes: [String: AttributeValue] = ["allowzero": .int(rep.allowzero)]
                if let start = shapeNode.int("start") { attributes["start"] = .int(start) }
                if let end = shapeNode.int("end") { attributes["end"] = .int(end) }
                added.append(Node(name: shapeNode.name + "/lpc_repeat_shape", opType: "RepeatKVShape", domain: GraphOptimizer.domain,
                                  inputs: [source, rep.expand, rep.reshape], outputs: shapeNode.outputs, attributes: attributes))
            }
            added.append(Node(name: pv.name + "/lpc_attention", opType: "GQAttention", domain: GraphOptimizer.domain,
                              inputs: [q, k, v, mask, kRepeat.expand, kRepeat.reshape, vRepeat.expand, vRepeat.reshape],
                              outputs: pv.outputs,
                              attributes: ["scale": .float(Float(scale)), "nan_to_zero": .int(nanToZero),
                                           "k_allowzero": .int(kRepeat.allowzero), "v_allowzero": .int(vRepeat.allowzero)]))
        }
        guard !added.isEmpty else { return false }
        graph.rewrite(removing: removed, adding: added)
        return true
    }

    struct Repeat { var expand = "", reshape = "", allowzero = 0 }

    /// K itself, or the K of `Reshape(Expand(Unsqueeze(K, axes=[2]), e), r)` with its shapes.
    private func repeatSource(_ value: String, _ m: Matcher, _ nodes: inout Set<Int>) -> (String, Repeat)? {
        guard let (ir, reshape) = m.producer(value, "Reshape") else { return (value, Repeat()) }
        guard let (ie, expand) = m.producer(reshape.inputs[0], "Expand"),
              let (iu, unsqueeze) = m.producer(expand.inputs[0], "Unsqueeze") else { return (value, Repeat()) }
        let axes: [Int]? = unsqueeze.inputs.count > 1 ? m.constant(unsqueeze.inputs[1])?.ints() : unsqueeze.ints("axes")
        guard axes == [2] else { return nil }
        nodes.formUnion([ir, ie, iu])
        return (unsqueeze.inputs[0], Repeat(expand: expand.inputs[1], reshape: reshape.inputs[1],
                                            allowzero: reshape.int("allowzero") ?? 0))
    }
}

/// Rotary embedding in rotate-half form:
///   Add(Mul(x, cos), Mul(Concat(Neg(Slice(x, h:)), Slice(x, :h), axis=-1), sin))
/// (operands in either order) becomes `lpc:Rotary(x, cos, sin)` with attribute `half` = h.
public struct RotaryFusion: GraphPass {
    public var name: String { "rotary fusion" }
    public init() {}

    /// Slice(x, [start], [end], [axis], [1]) on the last axis with constant bounds.
    private func lastAxisSlice(_ value: String, _ m: Matcher) -> (index: Int, source: String, start: Int, end: Int, axis: Int)? {
        guard let (i, slice) = m.producer(value, "Slice"), slice.inputs.count >= 4,
              let starts = m.constant(slice.inputs[1])?.ints(), let ends = m.constant(slice.inputs[2])?.ints(),
              let axes = m.constant(slice.inputs[3])?.ints(), starts.count == 1, ends.count == 1, axes.count == 1 else { return nil }
        if slice.inputs.count > 4 && !slice.inputs[4].isEmpty {
            guard m.constant(slice.inputs[4])?.ints() == [1] else { return nil }
        }
        return (i, slice.inputs[0], starts[0], ends[0], axes[0])
    }

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        let m = Matcher(graph, context)
        let types = DTypeInference.infer(graph)
        var removed = Set<Int>(), added: [Node] = []
        for (ia, add) in graph.nodes.enumerated() where add.opType == "Add" && add.domain.isEmpty && add.inputs.count == 2 {
            for (p, r) in [(0, 1), (1, 0)] {
                guard let (imc, mc) = m.producer(add.inputs[p], "Mul"), let (ims, ms) = m.producer(add.inputs[r], "Mul") else { continue }
                // The sin term multiplies the rotated x.
                var found: (x: String, half: Int, sin: String, nodes: Set<Int>, axis: Int)?
                for (a, b) in [(0, 1), (1, 0)] {
                    guard let (ic, concat) = m.producer(ms.inputs[a], "Concat"), concat.inputs.count == 2,
                          concat.int("axis") == -1, let (ineg, neg) = m.producer(concat.inputs[0], "Neg"),
                          let upper = lastAxisSlice(neg.inputs[0], m), let lower = lastAxisSlice(concat.inputs[1], m),
                          upper.source == lower.source, upper.axis == lower.axis, lower.start == 0, upper.start == lower.end, lower.end > 0,
                          upper.end >= Int(Int32.max) else { continue }
                    found = (upper.source, lower.end, ms.inputs[b], [ims, ic, ineg, upper.index, lower.index], upper.axis)
                }
                guard let found else { continue }
                // The cos term multiplies x itself.
                let cosOperand: String
                if mc.inputs[0] == found.x { cosOperand = mc.inputs[1] } else if mc.inputs[1] == found.x { cosOperand = mc.inputs[0] } else { continue }
                guard types[found.x] == .float32, types[cosOperand] == .float32, types[found.sin] == .float32 else { continue }
                let nodes = found.nodes.union([ia, imc])
                guard nodes.isDisjoint(with: removed), m.isClosed(nodes, exits: [add.outputs[0]]) else { continue }
                removed.formUnion(nodes)
                added.append(Node(name: add.name + "/lpc_rotary", opType: "Rotary", domain: GraphOptimizer.domain,
                                  inputs: [found.x, cosOperand, found.sin], outputs: add.outputs,
                                  attributes: ["half": .int(found.half), "axis": .int(found.axis)]))
                break
            }
        }
        guard !added.isEmpty else { return false }
        graph.rewrite(removing: removed, adding: added)
        return true
    }
}
