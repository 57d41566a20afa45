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

// ---- out = a + b (same length) ----

void lpc_add_f32_reference(const float *a, const float *b, float *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

__attribute__((target("avx512f")))
static void add_avx512(const float *a, const float *b, float *out, int64_t n) {
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 x0 = _mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 x1 = _mm512_add_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        __m512 x2 = _mm512_add_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
        __m512 x3 = _mm512_add_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
        _mm512_storeu_ps(out + i, x0);
        _mm512_storeu_ps(out + i + 16, x1);
        _mm512_storeu_ps(out + i + 32, x2);
        _mm512_storeu_ps(out + i + 48, x3);
    }
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, _mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
    if (i < n) {
        __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(out + i, tail, _mm512_add_ps(_mm512_maskz_loadu_ps(tail, a + i), _mm512_maskz_loadu_ps(tail, b + i)));
    }
}

void lpc_add_f32(const float *a, const float *b, float *out, int64_t n) {
    if (lpc_simd_level() == 3) add_avx512(a, b, out, n);
    else lpc_add_f32_reference(a, b, out, n);
}

// ---- rotate-half rotary embedding of one row ----

void lpc_rotate_half_row_reference(const float *x, const float *c, const float *s, float *out, int64_t d, int64_t h) {
    int64_t split = d - h;
    for (int64_t j = 0; j < d; j++) {
        float rotated = j < split ? -x[h + j] : x[j - split];
        out[j] = x[j] * c[j] + rotated * s[j];
    }
}

// out[a .. a+n) = x·c ∓ x[shifted]·s, 16 lanes at a time with a masked tail. Products and the
// sum are separate instructions (no FMA contraction), so results equal the scalar twin's bits:
// (-y)·s = -(y·s) and p + (-q) = p - q exactly in IEEE arithmetic.
__attribute__((target("avx512f")))
static inline void rotate_span_avx512(const float *x, const float *xs, const float *c, const float *s, float *out,
                                      int64_t n, int negate) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 p = _mm512_mul_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(c + i));
        __m512 q = _mm512_mul_ps(_mm512_loadu_ps(xs + i), _mm512_loadu_ps(s + i));
        _mm512_storeu_ps(out + i, negate ? _mm512_sub_ps(p, q) : _mm512_add_ps(p, q));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, c + i));
        __m512 q = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xs + i), _mm512_maskz_loadu_ps(m, s + i));
        _mm512_mask_storeu_ps(out + i, m, negate ? _mm512_sub_ps(p, q) : _mm512_add_ps(p, q));
    }
}

__attribute__((target("avx512f")))
static void rotate_half_rows_avx512(const float *x, const float *c, const float *s, float *out, int64_t d, int64_t h) {
    int64_t split = d - h;
    rotate_span_avx512(x, x + h, c, s, out, split, 1);                          // j < d-h: x·c - x[j+h]·s
    rotate_span_avx512(x + split, x, c + split, s + split, out + split, h, 0); // j ≥ d-h: x·c + x[j-(d-h)]·s
}

void lpc_rotate_half_row(const float *x, const float *c, const float *s, float *out, int64_t d, int64_t h) {
    if (lpc_simd_level() == 3) rotate_half_rows_avx512(x, c, s, out, d, h);
    else lpc_rotate_half_row_reference(x, c, s, out, d, h);
}

// ---- y = w · x / sqrt(mean(x²) + ε) scaling of one row, given 1/sqrt(...) ----

void lpc_scale_by_weight_row_reference(const float *x, const float *w, float inv, float *out, int64_t d) {
    for (int64_t i = 0; i < d; i++) out[i] = w[i] * (x[i] * inv);
}

__attribute__((target("avx512f")))
static void scale_by_weight_avx512(const float *x, const float *w, float inv, float *out, int64_t d) {
    __m512 iv = _mm512_set1_ps(inv);
    int64_t i = 0;
    for (; i + 16 <= d; i += 16)
        _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_loadu_ps(w + i), _mm512_mul_ps(_mm512_loadu_ps(x + i), iv)));
    if (i < d) {
        __mmask16 m = (__mmask16)((1u << (d - i)) - 1);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), iv)));
    }
}

void lpc_scale_by_weight_row(const float *x, const float *w, float inv, float *out, int64_t d) {
    if (lpc_simd_level() == 3) scale_by_weight_avx512(x, w, inv, out, d);
    else lpc_scale_by_weight_row_reference(x, w, inv, out, d);
}
