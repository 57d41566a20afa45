import CKernels
import Graph
import TensorCore

/// `lpc:AddRMSNorm(a, b, w) -> (sum, normed)` (`AddRMSNormFusion`): the residual add and the
/// RMSNorm that reads it, in one pass over each row (the row just summed is normalised while it
/// is in cache, and one node instead of two per norm in a decode step):
///   sum = a + b;  normed[..., D] = w[D] · sum · 1/sqrt(mean(sum²) + ε) over the last axis.
/// Same operations as `Add` then `lpc:RMSNorm` (`lpc_add_f32`, `SIMDMath.sumOfSquares`,
/// `lpc_scale_by_weight_row`), so the same bits. Operands of different shapes broadcast through
/// the plain Add first.
enum AddRMSNormKernel {
    static func register(into table: inout [String: Kernel]) {
        table["lpc:AddRMSNorm"] = { ctx in
            try run(ctx.input(0, dtype: .float32), ctx.input(1, dtype: .float32), ctx.input(2, dtype: .float32),
                    epsilon: ctx.node.float("epsilon") ?? 1e-5)
        }
    }

    static func run(_ a: Tensor, _ b: Tensor, _ w: Tensor, epsilon: Float) throws(KernelError) -> [Tensor] {
        guard a.shape == b.shape else {
            let sum = try Arithmetic.apply(.add, a, b)
            return [sum, try FusedKernels.rmsNorm(sum, w, epsilon: epsilon)]
        }
        guard let d = a.shape.last, w.rank == 1, w.shape[0] == d else {
            throw KernelError("AddRMSNorm weight of shape \(w.shape) does not match input \(a.shape)")
        }
        let sum = Tensor(uninitialized: .float32, shape: a.shape), normed = Tensor(uninitialized: .float32, shape: a.shape)
        let rows = d == 0 ? 0 : a.count / d
        let pa = a.pointer(Float.self), pb = b.pointer(Float.self), pw = w.pointer(Float.self)
        let ps = sum.pointer(Float.self), pn = normed.pointer(Float.self)
        // Rows in chunks over the pool, as RMSNorm does.
        let chunk = max(1, (1 << 14) / max(d, 1))
        RuntimeThreads.parallelFor((rows + chunk - 1) / chunk) { t in
            for r in (t * chunk)..<min(rows, (t + 1) * chunk) {
                let row = ps + r * d
                lpc_add_f32(pa + r * d, pb + r * d, row, Int64(d))
                let mean = SIMDMath.sumOfSquares(row, d) / Float(d)
                let inv = 1 / (mean + epsilon).squareRoot()
                lpc_scale_by_weight_row(row, pw, inv, pn + r * d, Int64(d))
            }
        }
        return [sum, normed]
    }
}
