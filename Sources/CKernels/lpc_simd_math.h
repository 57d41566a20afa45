#ifndef LPC_SIMD_MATH_H
#define LPC_SIMD_MATH_H
#include <immintrin.h>
#include <stdint.h>

// Shared AVX-512 math for the C kernels (internal header).

// exp(x): 2^n · p(r), x = n·ln2 + r, |r| ≤ ln2/2, a degree-6 polynomial (relative error
// ~1.1e-7); x below -87 gives 0 (-inf too), above ~88.7 +inf, NaN stays NaN.
__attribute__((target("avx512f")))
static inline __m512 lpc_exp512(__m512 x) {
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    const __m512 ln2hi = _mm512_set1_ps(0.693359375f), ln2lo = _mm512_set1_ps(-2.12194440e-4f);
    __m512 xc = _mm512_max_ps(_mm512_set1_ps(-87.0f), x); // NaN stays NaN
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, ln2hi, xc);
    r = _mm512_fnmadd_ps(n, ln2lo, r);
    // Cephes' expf coefficients, all six: max relative error 1.1e-7 on [-20, 20] (2.5e-7 with
    // the first dropped, which put tools/check_smollm2.py's prefill logits 1.3e-5 past tolerance).
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512 result = _mm512_scalef_ps(p, n);
    // Inputs below the clamp (including -inf) underflow to 0.
    __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.0f), _CMP_LT_OQ);
    return _mm512_mask_mov_ps(result, tiny, _mm512_setzero_ps());
}

// s[i] = exp(s[i] - m) in place for i < n; returns Σ s[i] (the softmax numerators and their sum).
__attribute__((target("avx512f")))
static inline float lpc_exp_shifted_sum512(float *s, int64_t n, float m) {
    __m512 bv = _mm512_set1_ps(m), sumv = _mm512_setzero_ps();
    int64_t nv = n & ~(int64_t)15;
    for (int64_t i = 0; i < nv; i += 16) {
        __m512 e = lpc_exp512(_mm512_sub_ps(_mm512_loadu_ps(s + i), bv));
        _mm512_storeu_ps(s + i, e);
        sumv = _mm512_add_ps(sumv, e);
    }
    if (nv < n) {
        __mmask16 tail = (__mmask16)((1u << (n - nv)) - 1);
        __m512 e = _mm512_maskz_mov_ps(tail, lpc_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, s + nv), bv)));
        _mm512_mask_storeu_ps(s + nv, tail, e);
        sumv = _mm512_add_ps(sumv, e);
    }
    return _mm512_reduce_add_ps(sumv);
}

#endif
