#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorCore

/// Softmax and LogSoftmax.
///
/// Opset < 13: the input is seen as 2-D, [prod(shape[..<axis]), prod(shape[axis...])], and each
/// row is normalised as a whole (default axis 1). Opset ≥ 13: normalised along the single axis
/// `axis` (default -1). The row maximum is subtracted first so large logits do not overflow.
/// A row that is entirely -inf (or holds +inf) gives NaN everywhere in that row, as onnxruntime
/// does: max is -inf (+inf) and x - max is NaN.
enum Softmax {
    static func run(_ ctx: KernelContext, log: Bool) throws(KernelError) -> Tensor {
        let x = try ctx.input(0)
        let name = log ? "LogSoftmax" : "Softmax"
        guard x.rank >= 1 else { throw KernelError("\(name) needs an input of rank ≥ 1, got a scalar") }
        let legacy = ctx.opset < 13
        let axis = try normalizedAxis(ctx.node.int("axis") ?? (legacy ? 1 : -1), rank: x.rank)
        let outer = Tensor.elementCount(Array(x.shape[..<axis]))
        let length = legacy ? Tensor.elementCount(Array(x.shape[axis...])) : x.shape[axis]
        let inner = legacy ? 1 : Tensor.elementCount(Array(x.shape[(axis + 1)...]))
        return try apply(x, outer: outer, length: length, inner: inner, log: log)
    }

    /// - Parameters:
    ///   - x: float tensor viewed as [outer, length, inner]; normalised along `length`.
    /// - Returns: same shape and dtype.
    static func apply(_ x: Tensor, outer: Int, length: Int, inner: Int, log: Bool) throws(KernelError) -> Tensor {
        switch x.dtype {
        case .float32:
            let out = Tensor(uninitialized: .float32, shape: x.shape)
            normalise(x.pointer(Float.self), out.pointer(Float.self), outer: outer, length: length, inner: inner,
                      log: log, exp: { expf($0) }, ln: { logf($0) })
            return out
        case .float64:
            let out = Tensor(uninitialized: .float64, shape: x.shape)
            normalise(x.pointer(Double.self), out.pointer(Double.self), outer: outer, length: length, inner: inner,
                      log: log, exp: { (v: Double) in exp(v) }, ln: { (v: Double) in Softmax.ln(v) })
            return out
        case .float16, .bfloat16:
            let wide = try apply(Conversion.convert(x, to: .float32), outer: outer, length: length, inner: inner, log: log)
            return Conversion.convert(wide, to: x.dtype)
        default:
            throw KernelError("\(log ? "LogSoftmax" : "Softmax") needs a floating-point input, got \(x.dtype)")
        }
    }

    @inline(__always) private static func ln(_ v: Double) -> Double { log(v) }

    /// One pass per row for the max, one for exp and the sum (kept in `y`), one to scale.
    /// Rows are strided by `inner`; the common last-axis case has inner = 1.
    @inline(__always)
    private static func normalise<T: BinaryFloatingPoint>(
        _ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>,
        outer: Int, length: Int, inner: Int, log: Bool,
        exp: (T) -> T, ln: (T) -> T
    ) {
        guard length > 0 else { return }
        for o in 0..<outer {
            for j in 0..<inner {
                let xs = x + o * length * inner + j, ys = y + o * length * inner + j
                var maximum = -T.infinity
                for i in 0..<length {
                    let v = xs[i * inner]
                    if v > maximum || v.isNaN { maximum = v }
                }
                var sum: T = 0
                if log {
                    for i in 0..<length { sum += exp(xs[i * inner] - maximum) }
                    let logSum = ln(sum)
                    for i in 0..<length { ys[i * inner] = (xs[i * inner] - maximum) - logSum }
                } else {
                    for i in 0..<length {
                        let e = exp(xs[i * inner] - maximum)
                        ys[i * inner] = e
                        sum += e
                    }
                    let scale = 1 / sum
                    for i in 0..<length { ys[i * inner] *= scale }
                }
            }
        }
    }
}
