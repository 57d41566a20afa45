import Graph
import TensorCore

/// An affine expression over the graph's symbolic dimensions: constant + Σ coef·symbol.
struct Affine: Hashable, CustomStringConvertible {
    var constant: Int
    var terms: [Int: Int] // symbol index → coefficient (never 0)

    static func const(_ c: Int) -> Affine { Affine(constant: c, terms: [:]) }
    static func symbol(_ s: Int) -> Affine { Affine(constant: 0, terms: [s: 1]) }
    var isConstant: Bool { terms.isEmpty }
    /// Every symbol is ≥ 0, so an expression with non-negative coefficients is ≥ its constant.
    var lowerBound: Int? { terms.values.allSatisfy { $0 > 0 } ? constant : nil }

    static func + (a: Affine, b: Affine) -> Affine {
        var terms = a.terms
        for (s, c) in b.terms { terms[s, default: 0] += c; if terms[s] == 0 { terms[s] = nil } }
        return Affine(constant: a.constant &+ b.constant, terms: terms)
    }
    static prefix func - (a: Affine) -> Affine { Affine(constant: 0 &- a.constant, terms: a.terms.mapValues { -$0 }) }
    static func - (a: Affine, b: Affine) -> Affine { a + (-b) }
    static func * (a: Affine, b: Affine) -> Affine? {
        if a.isConstant { return b.scaled(a.constant) }
        if b.isConstant { return a.scaled(b.constant) }
        return nil
    }
    func scaled(_ k: Int) -> Affine {
        k == 0 ? .const(0) : Affine(constant: constant &* k, terms: terms.mapValues { $0 * k })
    }
    /// Exact division by a constant (ONNX integer Div truncates; only exact quotients are symbolic).
    func divided(by k: Int) -> Affine? {
        guard k != 0 else { return nil }
        if isConstant { return .const(constant / k) }
        guard constant % k == 0, terms.values.allSatisfy({ $0 % k == 0 }) else { return nil }
        return Affine(constant: constant / k, terms: terms.mapValues { $0 / k })
    }
    var description: String {
        ([String(constant)] + terms.sorted { $0.key < $1.key }.map { "\($0.value)·s\($0.key)" }).joined(separator: "+")
    }
}

/// Removes shape plumbing (Shape → Gather → Unsqueeze → Concat → Reshape chains and the like):
/// propagates shapes and small integer values symbolically in the graph's named dimensions
/// (batch, sequence, past length, …), folds what is constant, and computes each remaining
/// symbolic value with one `lpc:SymbolicValue` node that reads the symbols from the input shapes.
public struct ShapePlumbingElimination: GraphPass {
    public var name: String { "shape plumbing" }
    public init() {}

    struct Symbols {
        var names: [String] = []
        var sources: [(input: String, axis: Int)] = []
        var index: [String: Int] = [:]

        mutating func dim(_ dim: Dim) -> Affine? {
            switch dim {
            case let .fixed(size): return .const(size)
            case .unknown: return nil
            case let .symbolic(name):
                let parts = name.split(separator: "+").map { $0.trimmingCharacters(in: .whitespaces) }
                var sum = Affine.const(0)
                for part in parts {
                    if let value = Int(part) { sum = sum + .const(value); continue }
                    guard !part.isEmpty, part.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { return nil }
                    if index[part] == nil { index[part] = names.count; names.append(part); sources.append(("", -1)) }
                    sum = sum + .symbol(index[part]!)
                }
                return sum
            }
        }
    }

    public func apply(to graph: inout Graph, context: PassContext) throws -> Bool {
        var symbols = Symbols()
        var shapes: [String: [Affine?]] = [:]
        var values: [String: [Affine]] = [:] // small integer tensors known element by element
        var bools: Set<String> = []
        for info in graph.inputs where graph.initializers[info.name] == nil {
            guard let dims = info.shape else { continue }
            var shape: [Affine?] = []
            for (axis, dim) in dims.enumerated() {
                let affine = symbols.dim(dim)
                if case let .symbolic(name) = dim, let s = symbols.index[name], symbols.sources[s].axis < 0 {
                    symbols.sources[s] = (info.name, axis) // a plain symbol: readable from this axis
                }
                shape.append(affine)
            }
            shapes[info.name] = shape
        }
        // A symbol only ever seen inside a sum has no input axis to read it from.
        let bound = Set(symbols.sources.enumerated().filter { $0.element.axis >= 0 }.map(\.offset))
        for (name, tensor) in graph.initializers {
            shapes[name] = tensor.shape.map { .const($0) }
            if context.inputs.contains(name) { shapes[name] = nil; continue }
            if tensor.dtype.isInteger || tensor.dtype == .bool, tensor.count <= 64, tensor.rank <= 1 {
                values[name] = tensor.ints().map { .const($0) }
                if tensor.dtype == .bool { bools.insert(name) }
            }
        }
        let types = DTypeInference.infer(graph)

        for node in graph.nodes {
            let inShapes = node.inputs.map { $0.isEmpty ? nil : shapes[$0] }
            let inValues = node.inputs.map { $0.isEmpty ? nil : values[$0] }
            guard let out = node.outputs.first, !out.isEmpty else { continue }
            var shape: [Affine?]?
            var value: [Affine]?
            let op = node.domain.isEmpty ? node.opType : node.qualifiedOpType
            switch op {
            case "Shape":
                if let s = inShapes.first ?? nil {
                    let rank = s.count
                    var start = node.int("start") ?? 0, end = node.int("end") ?? rank
                    if start < 0 { start += rank }
                    if end < 0 { end += rank }
                    start = min(max(start, 0), rank); end = min(max(end, start), rank)
                    let slice = Array(s[start..<end])
                    shape = [.const(slice.count)]
                    if slice.allSatisfy({ $0 != nil }) { value = slice.map { $0! } }
                }
            case "Gather":
                let axis = node.int("axis") ?? 0
                if let data = inShapes[0], let idx = inShapes.count > 1 ? inShapes[1] : nil, axis < data.count, axis >= -data.count {
                    let a = axis < 0 ? axis + data.count : axis
                    shape = Array(data[..<a]) + idx + Array(data[(a + 1)...])
                }
                if let v = inValues[0], let idx = inValues.count > 1 ? inValues[1] : nil, idx.allSatisfy(\.isConstant),
                   (inShapes[0]?.count ?? 0) == 1 {
                    var picked: [Affine] = []
                    for i in idx {
                        let j = i.constant < 0 ? i.constant + v.count : i.constant
                        guard j >= 0 && j < v.count else { picked = []; break }
                        picked.append(v[j])
                    }
                    if picked.count == idx.count { value = picked }
                }
            case "Unsqueeze", "Squeeze":
                let axes: [Int]? = node.inputs.count > 1 && !node.inputs[1].isEmpty ? inValues[1].flatMap { v in v.allSatisfy(\.isConstant) ? v.map(\.constant) : nil } : node.ints("axes")
                if let s = inShapes[0], let axes {
                    if op == "Unsqueeze" {
                        let rank = s.count + axes.count
                        let normalized = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
                        var result: [Affine?] = [], it = s.makeIterator()
                        for i in 0..<rank { result.append(normalized.contains(i) ? .const(1) : it.next() ?? nil) }
                        shape = result
                    } else {
                        let normalized = Set(axes.map { $0 < 0 ? $0 + s.count : $0 })
                        shape = s.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
                    }
                }
                value = inValues[0]
            case "Concat":
                let axis = node.int("axis") ?? 0
                if inShapes.allSatisfy({ $0 != nil }), let first = inShapes[0] {
                    let a = axis < 0 ? axis + first.count : axis
                    if a >= 0 && a < first.count {
                        var result = first
                        var total: Affine? = .const(0)
                        for s in inShapes {
                            if let t = total, s!.count == first.count, let d = s![a] { total = t + d } else { total = nil }
                        }
                        result[a] = total
                        shape = result
                    }
                }
                if inValues.allSatisfy({ $0 != nil }), inShapes.allSatisfy({ ($0?.count ?? 0) == 1 }) {
                    value = inValues.flatMap { $0! }
                }
            case "Cast":
                shape = inShapes[0]
                if let to = node.int("to"), let dtype = DType(onnx: Int32(to)), dtype == .int64 || dtype == .int32 {
                    value = inValues[0]
                }
            case "Identity":
                shape = inShapes[0]; value = inValues[0]
            case "Add", "Sub", "Mul", "Div", "Equal", "And", "Where", "Pow", "Or", "Less", "Greater", "LessOrEqual", "Max", "Min", "Mod":
                shape = broadcast(inShapes)
                if node.opType != "Where", inValues.count == 2, let a = inValues[0], let b = inValues[1] {
                    value = binary(node.opType, a, b)
                    if value != nil && ["Equal", "And", "Less", "Greater", "LessOrEqual", "Or"].contains(node.opType) { bools.insert(out) }
                } else if node.opType == "Where", inValues.count == 3, let c = inValues[0], let a = inValues[1], let b = inValues[2] {
                    let n = max(c.count, a.count, b.count)
                    if [c.count, a.count, b.count].allSatisfy({ $0 == n || $0 == 1 }), c.allSatisfy(\.isConstant) {
                        value = (0..<n).map { i in c[c.count == 1 ? 0 : i].constant != 0 ? a[a.count == 1 ? 0 : i] : b[b.count == 1 ? 0 : i] }
                    }
                }
            case "ConstantOfShape":
                if let v = inValues[0] { shape = v.map { Optional($0) } }
                let t = node.tensor("value") ?? Tensor(scalar: Float(0))
                if let v = inValues[0], v.allSatisfy(\.isConstant), v.count <= 1, t.dtype.isInteger || t.dtype == .bool {
                    let n = v.reduce(1) { $0 * $1.constant }
                    if n <= 64 { value = [Affine](repeating: .const(t.ints()[0]), count: n) }
                }
            case "Expand":
                if let target = inValues.count > 1 ? inValues[1] : nil { shape = broadcast([inShapes[0], target.map { Optional($0) }]) }
                if let v = inValues[0], v.count == 1, let target = inValues.count > 1 ? inValues[1] : nil, target.count == 1, target[0].isConstant {
                    value = [Affine](repeating: v[0], count: target[0].constant)
                }
            case "Reshape":
                if let target = inValues.count > 1 ? inValues[1] : nil, let s = inShapes[0] {
                    shape = reshape(s, target, allowzero: (node.int("allowzero") ?? 0) != 0)
                }
                if let v = inValues[0], let target = inValues.count > 1 ? inValues[1] : nil, target.allSatisfy(\.isConstant),
                   target.count <= 1 { value = v }
            case "Range":
                if inValues.count == 3, let s = inValues[0], let l = inValues[1], let d = inValues[2], s.count == 1, l.count == 1, d == [.const(1)] {
                    let length = l[0] - s[0]
                    if let lb = length.lowerBound, lb >= 0 { shape = [length] }
                }
            case "Transpose":
                if let s = inShapes[0] {
                    let perm = node.ints("perm") ?? Array((0..<s.count).reversed())
                    if perm.count == s.count { shape = perm.map { s[$0] } }
                }
            case "MatMul", "lpc:MatMulKN", "lpc:MatMulNT":
                if var a = inShapes[0], var b = inShapes[1] {
                    if op == "lpc:MatMulNT" { b = [b.last ?? nil, b.first ?? nil] }
                    if a.count >= 2 && b.count >= 2 {
                        let n = b.last!
                        let m = a[a.count - 2]
                        a.removeLast(2); b.removeLast(2)
                        if let batch = broadcast([a, b]) { shape = batch + [m, n] }
                    }
                }
            case "Softmax", "Neg", "Sqrt", "Cos", "Sin", "Sigmoid", "IsNaN", "Not", "Reciprocal", "Exp", "Tanh",
                 "lpc:RMSNorm", "lpc:SiLU", "Trilu", "CumSum":
                shape = inShapes[0]
            case "lpc:SwiGLU":
                shape = broadcast(inShapes)
            case "lpc:AddRMSNorm":
                // Both outputs (the sum and its norm) have the broadcast shape of a and b.
                shape = broadcast(Array(inShapes.prefix(2)))
                if let shape, node.outputs.count > 1 { shapes[node.outputs[1]] = shape }
            case "lpc:GQAttention":
                // Absorbed head split of Q / merge of the output (HeadLayoutAbsorption): their Reshapes.
                var q = inShapes[0]
                if (node.int("q_split_heads") ?? 0) != 0 {
                    q = nil
                    if let x = inShapes[0], inValues.count > 8, let target = inValues[8], target.count == 4 {
                        let split = reshape(x, target, allowzero: (node.int("q_split_allowzero") ?? 0) != 0)
                        q = [split[0], split[2], split[1], split[3]]
                    }
                }
                if let q, let v = inShapes[2], q.count == 4, v.count == 4 {
                    shape = [q[0], q[1], q[2], v[3]]
                    if (node.int("merge_heads") ?? 0) != 0 {
                        shape = nil
                        if inValues.count > 9, let target = inValues[9] {
                            shape = reshape([q[0], q[2], q[1], v[3]], target, allowzero: (node.int("merge_allowzero") ?? 0) != 0)
                        }
                    }
                }
            case "Slice":
                shape = slice(inShapes[0], inValues)
            case "lpc:RepeatKVShape":
                if let k = inShapes[0], k.count == 4, let e = inValues[1], e.count == 5, e[2].isConstant,
                   k.allSatisfy({ $0 != nil }), let heads = k[1]! * e[2] {
                    let dims = [k[0]!, heads, k[2]!, k[3]!]
                    var start = node.int("start") ?? 0, end = node.int("end") ?? 4
                    if start < 0 { start += 4 }
                    if end < 0 { end += 4 }
                    start = min(max(start, 0), 4); end = min(max(end, start), 4)
                    value = Array(dims[start..<end])
                    shape = [.const(end - start)]
                }
            default:
                break
            }
            if let shape { shapes[out] = shape }
            if let value, value.count <= 64 { values[out] = value }
        }

        // Replace every node whose (single) integer output value is known.
        var removed = Set<Int>(), added: [Node] = []
        var symbolNodeInputs: [String] = []
        for s in symbols.sources.indices where bound.contains(s) && !symbolNodeInputs.contains(symbols.sources[s].input) {
            symbolNodeInputs.append(symbols.sources[s].input)
        }
        for (i, node) in graph.nodes.enumerated() {
            guard node.outputs.count == 1, let out = node.outputs.first, let value = values[out], !bools.contains(out),
                  !(node.domain == GraphOptimizer.domain && node.opType == "SymbolicValue"),
                  let dtype = types[out], dtype == .int64 || dtype == .int32,
                  let outShape = shapes[out], outShape.count <= 1, outShape.allSatisfy({ $0?.isConstant == true }) else { continue }
            let count = outShape.first.map { $0!.constant } ?? 1
            guard count == value.count else { continue }
            if node.opType == "Constant" { continue }
            let tensorShape = outShape.map { $0!.constant }
            if value.allSatisfy(\.isConstant) {
                let ints = value.map { Int64($0.constant) }
                let tensor = dtype == .int64 ? Tensor(ints, shape: tensorShape) : Tensor(ints.map { Int32(truncatingIfNeeded: $0) }, shape: tensorShape)
                graph.initializers[out] = tensor
                removed.insert(i)
                continue
            }
            let used = Set(value.flatMap { $0.terms.keys })
            guard used.isSubset(of: bound) else { continue }
            var symInput: [Int] = [], symAxis: [Int] = []
            for s in 0..<symbols.names.count {
                let source = symbols.sources[s]
                symInput.append(bound.contains(s) ? symbolNodeInputs.firstIndex(of: source.input)! : -1)
                symAxis.append(source.axis)
            }
            var exprs: [Int] = []
            for v in value { exprs.append(v.constant); for s in 0..<symbols.names.count { exprs.append(v.terms[s] ?? 0) } }
            removed.insert(i)
            added.append(Node(name: node.name + "/lpc_symbolic", opType: "SymbolicValue", domain: GraphOptimizer.domain,
                              inputs: symbolNodeInputs, outputs: [out],
                              attributes: ["sym_input": .ints(symInput), "sym_axis": .ints(symAxis), "exprs": .ints(exprs),
                                           "shape": .ints(tensorShape), "to": .int(Int(dtype.rawValue))]))
        }
        guard !removed.isEmpty else { return false }
        graph.rewrite(removing: removed, adding: added)
        return true
    }

    private func broadcast(_ shapes: [[Affine?]?]) -> [Affine?]? {
        guard shapes.allSatisfy({ $0 != nil }) else { return nil }
        let rank = shapes.map { $0!.count }.max() ?? 0
        var result = [Affine?](repeating: .const(1), count: rank)
        for s in shapes {
            let padded = [Affine?](repeating: .const(1), count: rank - s!.count) + s!
            for i in 0..<rank {
                let a = result[i], b = padded[i]
                // A known dim other than 1 decides (a valid graph broadcasts to it).
                if a == .const(1) { result[i] = b }
                else if b == .const(1) || a == b || b == nil { continue }
                else if a == nil { result[i] = b }
                else { result[i] = nil }
            }
        }
        return result
    }

    private func binary(_ op: String, _ a: [Affine], _ b: [Affine]) -> [Affine]? {
        let n = max(a.count, b.count)
        guard a.count == n || a.count == 1, b.count == n || b.count == 1 else { return nil }
        var result: [Affine] = []
        for i in 0..<n {
            let x = a[a.count == 1 ? 0 : i], y = b[b.count == 1 ? 0 : i]
            var r: Affine?
            switch op {
            case "Add": r = x + y
            case "Sub": r = x - y
            case "Mul": r = x * y
            case "Div": r = y.isConstant ? x.divided(by: y.constant) : nil
            case "Equal":
                if x.isConstant && y.isConstant { r = .const(x.constant == y.constant ? 1 : 0) }
                else if x == y { r = .const(1) }
                else if y.isConstant, let lb = x.lowerBound, lb > y.constant { r = .const(0) }
                else if x.isConstant, let lb = y.lowerBound, lb > x.constant { r = .const(0) }
            default:
                if x.isConstant && y.isConstant {
                    switch op {
                    case "And": r = .const(x.constant != 0 && y.constant != 0 ? 1 : 0)
                    case "Or": r = .const(x.constant != 0 || y.constant != 0 ? 1 : 0)
                    case "Less": r = .const(x.constant < y.constant ? 1 : 0)
                    case "Greater": r = .const(x.constant > y.constant ? 1 : 0)
                    case "LessOrEqual": r = .const(x.constant <= y.constant ? 1 : 0)
                    case "Max": r = .const(max(x.constant, y.constant))
                    case "Min": r = .const(min(x.constant, y.constant))
                    default: r = nil
                    }
                }
            }
            guard let r else { return nil }
            result.append(r)
        }
        return result
    }

    /// Reshape's output shape: 0 copies the input dim (unless allowzero), one -1 is inferred when
    /// the known dims cancel against the input's.
    private func reshape(_ input: [Affine?], _ target: [Affine], allowzero: Bool) -> [Affine?] {
        var result: [Affine?] = target.map { Optional($0) }
        var inferred: Int?
        for (i, t) in target.enumerated() {
            if t == .const(0) && !allowzero { result[i] = i < input.count ? input[i] : nil }
            if t == .const(-1) { inferred = i; result[i] = nil }
        }
        if let inferred, input.allSatisfy({ $0 != nil }) {
            var remaining = input.map { $0! }
            var divisor = 1
            for (i, r) in result.enumerated() where i != inferred {
                guard let r else { return result }
                if let j = remaining.firstIndex(of: r) { remaining.remove(at: j) }
                else if r.isConstant { divisor *= r.constant }
                else { return result }
            }
            guard remaining.allSatisfy(\.isConstant), divisor != 0 else { return result }
            let product = remaining.reduce(1) { $0 * $1.constant }
            if product % divisor == 0 { result[inferred] = .const(product / divisor) }
        }
        return result
    }

    private func slice(_ input: [Affine?]?, _ values: [[Affine]?]) -> [Affine?]? {
        guard let input, values.count >= 3, let starts = values[1], let ends = values[2] else { return nil }
        let axes = values.count > 3 ? values[3] : nil
        let steps = values.count > 4 ? values[4] : nil
        if values.count > 3 && axes == nil && values[3] != nil { return nil }
        var result = input
        for (n, start) in starts.enumerated() {
            guard n < ends.count else { return nil }
            var axis = axes.map { $0[n].isConstant ? $0[n].constant : -999 } ?? n
            if axis < 0 { axis += input.count }
            guard axis >= 0 && axis < input.count else { return nil }
            if let steps, !(steps.count > n && steps[n] == .const(1)) { result[axis] = nil; continue }
            let end = ends[n]
            guard start.isConstant, start.constant >= 0 else { result[axis] = nil; continue }
            if let dim = input[axis] {
                if end.isConstant && end.constant >= (1 << 31) { result[axis] = dim - .const(start.constant) }
                else if end == dim { result[axis] = dim - .const(start.constant) }
                else if end.isConstant && dim.isConstant { result[axis] = .const(max(0, min(end.constant, dim.constant) - min(start.constant, dim.constant))) }
                else { result[axis] = nil }
            } else { result[axis] = nil }
        }
        return result
    }
}
