import CKernels

/// Prefill products (more rows than the gemv kernels take) over bfloat16 weights: the weights are
/// widened to float32 in slices (exact: a bfloat16 is a float32's high half) and multiplied with
/// sgemm, as `MatMulBLAS.sgemmHalfB` and `Gemv.matMulNTHalf` do for float16.
enum BF16Weights {
    /// c[m, n] = a[m, k] · b[k, n], b bfloat16 bits [k, n] (row-major).
    static func sgemmKN(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<UInt16>,
                        c: UnsafeMutablePointer<Float>, ldc: Int, maxScratch: Int = 1 << 18) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            for row in 0..<m { (c + row * ldc).update(repeating: 0, count: n) }
            return
        }
        let depth = max(1, min(k, maxScratch / n))
        HalfScratch.shared.with(count: depth * n) { staging in
            var k0 = 0
            while k0 < k {
                let slice = min(depth, k - k0)
                lpc_bf16_to_f32_n(b + k0 * n, staging, Int64(slice * n))
                MatMulBLAS.sgemm(m: m, n: n, k: slice, a: a + k0, lda: lda, b: staging, ldb: n, beta: k0 == 0 ? 0 : 1,
                                 c: c, ldc: ldc)
                k0 += slice
            }
        }
    }

    /// y[m, n] = x[m, k] · w[n, k]ᵀ, w bfloat16 bits [n, k]: blocks of 256 weight rows at a time.
    static func sgemmNT(_ x: UnsafePointer<Float>, _ w: UnsafePointer<UInt16>, _ y: UnsafeMutablePointer<Float>,
                        m: Int, n: Int, k: Int) {
        if m == 0 || n == 0 { return }
        let block = 256
        HalfScratch.shared.with(count: block * max(k, 1)) { staging in
            var r0 = 0
            while r0 < n {
                let rows = min(block, n - r0)
                lpc_bf16_to_f32_n(w + r0 * k, staging, Int64(rows * k))
                // y[:, r0..<r0+rows] = x · stagingᵀ
                MatMulBLAS.sgemm(transB: true, m: m, n: rows, k: k, a: x, lda: max(k, 1), b: staging, ldb: max(k, 1),
                                 c: y + r0, ldc: max(n, 1))
                r0 += rows
            }
        }
    }
}
