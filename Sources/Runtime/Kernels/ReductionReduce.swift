import TensorCore

/// Reduce{Sum,Mean,Max,Min} over a set of axes.
///
/// Semantics: `axes` is an attribute before opset 13 (ReduceSum) / 18 (the others) and an
/// optional int64 input from then on. No axes (or an empty axes tensor) reduces everything,
/// unless `noop_with_empty_axes` = 1, which makes the op an identity. Negative axes count from
/// the end; a repeated axis is an error. Reducing an empty set gives 0 (Sum), NaN (Mean of
/// floats, as numpy; an error for integers), and for Max/Min the lowest/highest value of the
/// type (-inf/+inf for floats), as the ONNX spec (opset 18+ text) says. NaN propagates through
/// Max and Min. Float sums accumulate in double; integer sums wrap.
enum Reduction {
    enum Op: Sendable { case sum, mean, max, min }

    static func run(_ op: Op, _ ctx: KernelContext, axesInputSince: Int) throws(KernelError) -> Tensor {
        let x = try ctx.input(0)
        let keepDims = (ctx.node.int("keepdims") ?? 1) != 0
        var axes: [Int] = []
        if ctx.opset >= axesInputSince {
            if let given = ctx.optionalInput(1) {
                guard given.dtype == .int64 || given.dtype == .int32 else {
                    throw KernelError("axes input must be int64, got \(given.dtype)")
                }
                guard given.rank <= 1 else { throw KernelError("axes input must be 1-D, got shape \(given.shape)") }
                axes = given.ints()
            }
            if axes.isEmpty && (ctx.node.int("noop_with_empty_axes") ?? 0) != 0 { return x }
        } else {
            axes = ctx.node.ints("axes") ?? []
        }
        let reduced = try reducedMask(axes, rank: x.rank)
        return try reduce(op, x, reduced: reduced, keepDims: keepDims)
    }

    /// Which axes are reduced: all when `axes` is empty.
    static func reducedMask(_ axes: [Int], rank: Int) throws(KernelError) -> [Bool] {
        if axes.isEmpty { return [Bool](repeating: true, count: rank) }
        var mask = [Bool](repeating: false, count: rank)
        for axis in axes {
            guard axis >= -rank && axis < rank else {
                throw KernelError("reduction axis \(axis) is out of range for rank \(rank)")
            }
            let a = axis < 0 ? axis + rank : axis
            guard !mask[a] else { throw KernelError("reduction axes \(axes) name axis \(a) more than once") }
            mask[a] = true
        }
        return mask
    }

    /// - Parameters:
    ///   - x: any shape.
    ///   - reduced: one flag per axis of `x`.
    /// - Returns: `x`'s shape with reduced axes set to 1 (keepDims) or removed.
    static func reduce(_ op: Op, _ x: Tensor, reduced: [Bool], keepDims: Bool) throws(KernelError) -> Tensor {
        let outShape = keepDims
            ? zip(x.shape, reduced).map { $1 ? 1 : $0 }
            : zip(x.shape, reduced).filter { !$1 }.map(\.0)
        let plan = ReducePlan(shape: x.shape, reduced: reduced)
        let result: Tensor
        switch x.dtype {
        case .float32: result = floating(op, x, plan, Float.self)
        case .float64: result = floating(op, x, plan, Double.self)
        case .float16, .bfloat16, .float24:
            result = Conversion.convert(floating(op, Conversion.convert(x, to: .float32), plan, Float.self), to: x.dtype)
        case .int64: result = try integer(op, x, plan, Int64.self)
        case .int32: result = try integer(op, x, plan, Int32.self)
        case .int8: result = try integer(op, x, plan, Int8.self)
        case .int16: result = try integer(op, x, plan, Int16.self)
        case .uint8: result = try integer(op, x, plan, UInt8.self)
        case .bool:
            switch op {
            case .max: result = plan.run(x, Bool.self, initial: false) { $0 || $1 }
            case .min: result = plan.run(x, Bool.self, initial: true) { $0 && $1 }
            case .sum, .mean: throw KernelError("ReduceSum and ReduceMean do not take bool inputs")
            }
        }
        return result.reshaped(outShape)
    }

    private static func floating<T: BinaryFloatingPoint & TensorElement>(
        _ op: Op, _ x: Tensor, _ plan: ReducePlan, _: T.Type
    ) -> Tensor {
        switch op {
        case .sum, .mean:
            let scale = op == .sum ? 1 : 1 / Double(plan.reductionSize)  // 1/0 = inf, and 0·inf = NaN
            let sums = plan.accumulate(x, T.self, initial: 0.0) { $0 + Double($1) }
            let out = Tensor(uninitialized: T.dtype, shape: [plan.outputCount])
            let po = out.pointer(T.self)
            for i in 0..<plan.outputCount { po[i] = T(op == .sum ? sums[i] : sums[i] * scale) }
            if op == .mean && plan.reductionSize == 0 { for i in 0..<plan.outputCount { po[i] = .nan } }
            return out
        case .max: return plan.run(x, T.self, initial: -.infinity) { acc, v in v > acc || v.isNaN ? v : acc }
        case .min: return plan.run(x, T.self, initial: .infinity) { acc, v in v < acc || v.isNaN ? v : acc }
        }
    }

    private static func integer<T: FixedWidthInteger & TensorElement>(
        _ op: Op, _ x: Tensor, _ plan: ReducePlan, _: T.Type
    ) throws(KernelError) -> Tensor {
        switch op {
        case .sum, .mean:
            if op == .mean && plan.reductionSize == 0 && plan.outputCount > 0 {
                throw KernelError("ReduceMean over an empty set of \(x.dtype) values has no value")
            }
            let sums = plan.accumulate(x, T.self, initial: Int64(0)) { $0 &+ Int64(truncatingIfNeeded: $1) }
            let n = Int64(max(plan.reductionSize, 1))
            let out = Tensor(uninitialized: T.dtype, shape: [plan.outputCount])
            let po = out.pointer(T.self)
            for i in 0..<plan.outputCount {
                po[i] = T(truncatingIfNeeded: op == .sum ? sums[i] : sums[i] / n)
            }
            return out
        case .max: return plan.run(x, T.self, initial: T.min) { Swift.max($0, $1) }
        case .min: return plan.run(x, T.self, initial: T.max) { Swift.min($0, $1) }
        }
    }
}

/// The input shape regrouped into alternating runs of kept and reduced axes (extent-1 axes
/// dropped, neighbours of one kind merged), so a reduction is an odometer over the outer groups
/// and one tight contiguous loop over the innermost group.
struct ReducePlan {
    /// Collapsed extents, innermost last; at least one group.
    let extents: [Int]
    /// Whether each group is reduced.
    let reduced: [Bool]
    /// Output element stride of each group (0 for reduced groups).
    let outStrides: [Int]
    let inputCount: Int
    let outputCount: Int
    /// Input elements folded into each output element.
    let reductionSize: Int

    init(shape: [Int], reduced mask: [Bool]) {
        var extents: [Int] = [], reduced: [Bool] = []
        for (extent, isReduced) in zip(shape, mask) where extent != 1 {
            if let last = reduced.last, last == isReduced {
                extents[extents.count - 1] *= extent
            } else {
                extents.append(extent)
                reduced.append(isReduced)
            }
        }
        if extents.isEmpty { extents = [1]; reduced = [true] }
        var outStrides = [Int](repeating: 0, count: extents.count)
        var running = 1
        for g in stride(from: extents.count - 1, through: 0, by: -1) where !reduced[g] {
            outStrides[g] = running
            running *= extents[g]
        }
        self.extents = extents
        self.reduced = reduced
        self.outStrides = outStrides
        inputCount = Tensor.elementCount(shape)
        outputCount = zip(shape, mask).reduce(1) { $1.1 ? $0 : $0 * $1.0 }
        reductionSize = zip(shape, mask).reduce(1) { $1.1 ? $0 * $1.0 : $0 }
    }

    /// Folds every input element into its output slot's accumulator, starting from `initial`.
    /// - Parameters:
    ///   - x: the input, element type `T`, shape as planned.
    /// - Returns: `outputCount` accumulators in output order.
    @inline(__always)
    func accumulate<T: TensorElement, A>(_ x: Tensor, _: T.Type, initial: A, _ combine: (A, T) -> A) -> [A] {
        var acc = [A](repeating: initial, count: outputCount)
        guard inputCount > 0 else { return acc }
        let px = x.pointer(T.self)
        let inner = extents.count - 1
        let n = extents[inner]
        let runs = inputCount / n
        var position = [Int](repeating: 0, count: max(inner, 1))
        var outOffset = 0
        acc.withUnsafeMutableBufferPointer { acc in
            for run in 0..<runs {
                let source = px + run * n
                if reduced[inner] {
                    var a = acc[outOffset]
                    for i in 0..<n { a = combine(a, source[i]) }
                    acc[outOffset] = a
                } else {
                    for i in 0..<n { acc[outOffset + i] = combine(acc[outOffset + i], source[i]) }
                }
                var axis = inner - 1
                while axis >= 0 {
                    position[axis] += 1
                    outOffset += outStrides[axis]
                    if position[axis] < extents[axis] { break }
                    outOffset -= outStrides[axis] * extents[axis]
                    position[axis] = 0
                    axis -= 1
                }
            }
        }
        return acc
    }

    /// A reduction whose accumulator is the element type (Max, Min), as a flat output tensor.
    @inline(__always)
    func run<T: TensorElement>(_ x: Tensor, _: T.Type, initial: T, _ combine: (T, T) -> T) -> Tensor {
        let values = accumulate(x, T.self, initial: initial, combine)
        return Tensor(values, shape: [outputCount])
    }
}
