import TensorCore

/// ReduceSum, ReduceMean, ReduceMax, ReduceMin; Softmax and LogSoftmax; CumSum. The loops live in
/// the `Reduction*.swift` and `Softmax*.swift` files beside this one.
enum ReductionKernels {
    static func register(into table: inout [String: Kernel]) {
        // The opset from which `axes` is an input instead of an attribute.
        let reductions: [(String, Reduction.Op, Int)] = [
            ("ReduceSum", .sum, 13), ("ReduceMean", .mean, 18), ("ReduceMax", .max, 18), ("ReduceMin", .min, 18),
        ]
        for (name, op, axesInputSince) in reductions {
            table[name] = { ctx in [try Reduction.run(op, ctx, axesInputSince: axesInputSince)] }
        }
        table["Softmax"] = { ctx in [try Softmax.run(ctx, log: false)] }
        table["LogSoftmax"] = { ctx in [try Softmax.run(ctx, log: true)] }
        table["CumSum"] = { ctx in [try CumulativeSum.run(ctx)] }
    }
}
