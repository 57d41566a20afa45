import CBLAS
import Foundation
import Runtime

// Small numeric kernels with their explicit backward. Row-major everywhere; pointers are
// [rows, cols] contiguous unless a leading dimension is given.

/// Row-major C[m, n] = alpha·op(A)·op(B) + beta·C, op(A) [m, k], op(B) [k, n] (OpenBLAS sgemm).
@inline(__always)
func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
          _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
          beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m == 0 || n == 0 { return }
    if k == 0 {
        if beta == 0 { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
        else if beta != 1 { for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } } }
        return
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// out[n, o] = x[n, i] · Wᵀ (+ bias), W [o, i] (nn.Linear).
func linearForward(_ x: UnsafePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int,
                   weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, out: UnsafeMutablePointer<Float>) {
    if let bias {
        for r in 0..<rows { (out + r * outFeatures).update(from: bias, count: outFeatures) }
    }
    gemm(transB: true, m: rows, n: outFeatures, k: inFeatures, x, lda: inFeatures, weight, ldb: inFeatures,
         beta: bias == nil ? 0 : 1, out, ldc: outFeatures)
}

/// Backward of `linearForward`: dW += dyᵀ·x, db += Σ_rows dy, dx = dy·W (or += when accumulateDx).
func linearBackward(_ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int,
                    weight: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>?,
                    dx: UnsafeMutablePointer<Float>?, accumulateDx: Bool = false) {
    gemm(transA: true, m: outFeatures, n: inFeatures, k: rows, dy, lda: outFeatures, x, ldb: inFeatures,
         beta: 1, dWeight, ldc: inFeatures)
    if let dBias {
        for r in 0..<rows {
            let row = dy + r * outFeatures
            for j in 0..<outFeatures { dBias[j] += row[j] }
        }
    }
    if let dx {
        gemm(m: rows, n: inFeatures, k: outFeatures, dy, lda: outFeatures, weight, ldb: inFeatures,
             beta: accumulateDx ? 1 : 0, dx, ldc: inFeatures)
    }
}

// MARK: GELU (exact erf form, PyTorch's default)

@inline(__always) func geluScalar(_ x: Float) -> Float {
    0.5 * x * (1 + erf(x * 0.70710678118654752))
}

/// d gelu / dx = Φ(x) + x·φ(x).
@inline(__always) func geluDerivative(_ x: Float) -> Float {
    0.5 * (1 + erf(x * 0.70710678118654752)) + x * 0.39894228040143268 * exp(-0.5 * x * x)
}

func geluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { y[i] = geluScalar(x[i]) }
}

/// dx = dy ⊙ gelu'(x) (in place on dy allowed: dx may equal dy).
func geluBackward(_ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>, count: Int) {
    for i in 0..<count { dx[i] = dy[i] * geluDerivative(x[i]) }
}

// MARK: softmax family over rows of `cols`

/// w = softmax((logits + noise)/τ) per row; noise nil means none (Gumbel-softmax when noise is
/// Gumbel, plain softmax for τ = 1 and no noise).
func softmaxRows(_ logits: UnsafePointer<Float>, noise: UnsafePointer<Float>?, temperature: Float,
                 out: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    let invT = 1 / temperature
    for r in 0..<rows {
        let l = logits + r * cols, o = out + r * cols
        var mx = -Float.infinity
        for j in 0..<cols {
            let v = (l[j] + (noise?[r * cols + j] ?? 0)) * invT
            o[j] = v
            mx = max(mx, v)
        }
        var s: Float = 0
        for j in 0..<cols { o[j] = exp(o[j] - mx); s += o[j] }
        let inv = 1 / s
        for j in 0..<cols { o[j] *= inv }
    }
}

/// Backward of w = softmax(y/τ): dlogits (+)= (1/τ)·w ⊙ (dw − ⟨w, dw⟩).
func softmaxBackward(w: UnsafePointer<Float>, dw: UnsafePointer<Float>, temperature: Float,
                     dLogits: UnsafeMutablePointer<Float>, rows: Int, cols: Int, accumulate: Bool) {
    let invT = 1 / temperature
    for r in 0..<rows {
        let wr = w + r * cols, dwr = dw + r * cols, d = dLogits + r * cols
        var dot: Float = 0
        for j in 0..<cols { dot += wr[j] * dwr[j] }
        for j in 0..<cols {
            let g = invT * wr[j] * (dwr[j] - dot)
            d[j] = accumulate ? d[j] + g : g
        }
    }
}

/// log-softmax per row.
func logSoftmaxRows(_ logits: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    for r in 0..<rows {
        let l = logits + r * cols, o = out + r * cols
        var mx = -Float.infinity
        for j in 0..<cols { mx = max(mx, l[j]) }
        var s: Float = 0
        for j in 0..<cols { s += exp(l[j] - mx) }
        let lse = mx + log(s)
        for j in 0..<cols { o[j] = l[j] - lse }
    }
}

/// Backward of log-softmax: dl (+)= dy − softmax·Σ dy.
func logSoftmaxBackward(logProbs: UnsafePointer<Float>, dy: UnsafePointer<Float>, dLogits: UnsafeMutablePointer<Float>,
                        rows: Int, cols: Int, accumulate: Bool) {
    for r in 0..<rows {
        let lp = logProbs + r * cols, d = dy + r * cols, o = dLogits + r * cols
        var s: Float = 0
        for j in 0..<cols { s += d[j] }
        for j in 0..<cols {
            let g = d[j] - exp(lp[j]) * s
            o[j] = accumulate ? o[j] + g : g
        }
    }
}

// MARK: the LM head's softmax over the vocabulary (exp: Runtime's VectorMath, inlined)

/// In place over one row of `count` logits: returns (max, Σ exp(l − max)) and leaves exp(l − max).
/// Three simple loops the optimiser vectorises (max, exp, sum with 16 partial sums).
@inline(__always)
func expShiftedRow(_ row: UnsafeMutablePointer<Float>, count: Int) -> (max: Float, sum: Float) {
    var m0 = -Float.infinity, m1 = -Float.infinity, m2 = -Float.infinity, m3 = -Float.infinity
    var j = 0
    while j + 4 <= count {
        m0 = row[j] > m0 ? row[j] : m0
        m1 = row[j + 1] > m1 ? row[j + 1] : m1
        m2 = row[j + 2] > m2 ? row[j + 2] : m2
        m3 = row[j + 3] > m3 ? row[j + 3] : m3
        j += 4
    }
    while j < count { m0 = row[j] > m0 ? row[j] : m0; j += 1 }
    let mx = max(max(m0, m1), max(m2, m3))
    for i in 0..<count { row[i] = VectorMath.exp(row[i] - mx) }
    let vecCount = count / 16
    let raw = UnsafeMutableRawPointer(row)
    var s = SIMD16<Float>(repeating: 0)
    for i in 0..<vecCount { s += raw.loadUnaligned(fromByteOffset: i * 64, as: SIMD16<Float>.self) }
    var total: Float = 0
    for i in 0..<16 { total += s[i] }
    for i in (vecCount * 16)..<count { total += row[i] }
    return (mx, total)
}

@inline(__always)
func scaleRow(_ row: UnsafeMutablePointer<Float>, count: Int, by s: Float) {
    for i in 0..<count { row[i] *= s }
}
