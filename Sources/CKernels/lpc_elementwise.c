#include "lpc_elementwise.h"
#include "lpc_kernels.h"
#include "lpc_simd_math.h"
#include <math.h>

void lpc_swiglu_reference(const float *g, const float *u, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = g[i] / (1 + expf(-g[i])) * u[i];
}

__attribute__((target("avx512f")))
static void swiglu_avx512(const float *g, const float *u, float *out, int64_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 gv = _mm512_loadu_ps(g + i);
        __m512 e = lpc_exp512(_mm512_sub_ps(_mm512_setzero_ps(), gv));
        _mm512_storeu_ps(out + i, _mm512_div_ps(_mm512_mul_ps(gv, _mm512_loadu_ps(u + i)), _mm512_add_ps(one, e)));
    }
    if (i < n) {
        __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
        __m512 gv = _mm512_maskz_loadu_ps(tail, g + i);
        __m512 e = lpc_exp512(_mm512_sub_ps(_mm512_setzero_ps(), gv));
        _mm512_mask_storeu_ps(out + i, tail, _mm512_div_ps(_mm512_mul_ps(gv, _mm512_maskz_loadu_ps(tail, u + i)), _mm512_add_ps(one, e)));
    }
}

void lpc_swiglu(const float *g, const float *u, float *out, int64_t n) {
    if (lpc_simd_level() == 3) swiglu_avx512(g, u, out, n);
    else lpc_swiglu_reference(g, u, out, n);
}
