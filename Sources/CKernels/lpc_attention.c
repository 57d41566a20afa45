#include "lpc_attention.h"
#include "lpc_kernels.h"
#include <immintrin.h>
#include <math.h>
#include "lpc_simd_math.h"

// Decode attention, one query row at a time (the caller spreads rows over the thread pool).

void lpc_attention_row_reference(const float *q, const float *k, const float *v, int64_t t, int64_t d, int64_t dv,
                                 const float *mask, int64_t mask_stride, float scale, float *out, float *scratch, int nan_to_zero) {
    float best = -INFINITY;
    for (int64_t i = 0; i < t; i++) {
        float s = 0;
        for (int64_t j = 0; j < d; j++) s += q[j] * k[i * d + j];
        s *= scale;
        if (mask) s += mask[i * mask_stride];
        scratch[i] = s;
        if (s > best) best = s;
    }
    for (int64_t j = 0; j < dv; j++) out[j] = 0;
    if (best == -INFINITY) {
        for (int64_t j = 0; j < dv; j++) out[j] = nan_to_zero ? 0 : NAN;
        return;
    }
    float sum = 0;
    for (int64_t i = 0; i < t; i++) { scratch[i] = expf(scratch[i] - best); sum += scratch[i]; }
    float inv = 1 / sum;
    for (int64_t i = 0; i < t; i++) {
        float w = scratch[i] * inv;
        if (w != w && nan_to_zero) w = 0;
        for (int64_t j = 0; j < dv; j++) out[j] += w * v[i * dv + j];
    }
}

__attribute__((target("avx512f")))
static void attention_row_avx512(const float *q, const float *k, const float *v, int64_t t, int64_t d, int64_t dv,
                                 const float *mask, int64_t mask_stride, float scale, float *out, float *scratch, int nan_to_zero) {
    int64_t dq = d / 16, dvq = dv / 16;
    __m512 qv[16];
    for (int64_t j = 0; j < dq; j++) qv[j] = _mm512_mul_ps(_mm512_loadu_ps(q + 16 * j), _mm512_set1_ps(scale));
    // Scores, four positions at a time (independent dependency chains).
    float best = -INFINITY;
    int64_t i = 0;
    for (; i + 4 <= t; i += 4) {
        const float *k0 = k + i * d;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t j = 0; j < dq; j++) {
            a0 = _mm512_fmadd_ps(qv[j], _mm512_loadu_ps(k0 + 16 * j), a0);
            a1 = _mm512_fmadd_ps(qv[j], _mm512_loadu_ps(k0 + d + 16 * j), a1);
            a2 = _mm512_fmadd_ps(qv[j], _mm512_loadu_ps(k0 + 2 * d + 16 * j), a2);
            a3 = _mm512_fmadd_ps(qv[j], _mm512_loadu_ps(k0 + 3 * d + 16 * j), a3);
        }
        float s0 = _mm512_reduce_add_ps(a0), s1 = _mm512_reduce_add_ps(a1);
        float s2 = _mm512_reduce_add_ps(a2), s3 = _mm512_reduce_add_ps(a3);
        if (mask) {
            s0 += mask[i * mask_stride]; s1 += mask[(i + 1) * mask_stride];
            s2 += mask[(i + 2) * mask_stride]; s3 += mask[(i + 3) * mask_stride];
        }
        scratch[i] = s0; scratch[i + 1] = s1; scratch[i + 2] = s2; scratch[i + 3] = s3;
        if (s0 > best) best = s0;
        if (s1 > best) best = s1;
        if (s2 > best) best = s2;
        if (s3 > best) best = s3;
    }
    for (; i < t; i++) {
        __m512 a0 = _mm512_setzero_ps();
        for (int64_t j = 0; j < dq; j++) a0 = _mm512_fmadd_ps(qv[j], _mm512_loadu_ps(k + i * d + 16 * j), a0);
        float s = _mm512_reduce_add_ps(a0);
        if (mask) s += mask[i * mask_stride];
        scratch[i] = s;
        if (s > best) best = s;
    }
    if (best == -INFINITY) {
        for (int64_t j = 0; j < dv; j++) out[j] = nan_to_zero ? 0 : NAN;
        return;
    }
    // exp(s - best) in place, and the sum.
    __m512 bv = _mm512_set1_ps(best), sumv = _mm512_setzero_ps();
    int64_t tv = t & ~(int64_t)15;
    for (i = 0; i < tv; i += 16) {
        __m512 e = lpc_exp512(_mm512_sub_ps(_mm512_loadu_ps(scratch + i), bv));
        _mm512_storeu_ps(scratch + i, e);
        sumv = _mm512_add_ps(sumv, e);
    }
    if (tv < t) {
        __mmask16 tail = (__mmask16)((1u << (t - tv)) - 1);
        __m512 e = lpc_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, scratch + tv), bv));
        e = _mm512_maskz_mov_ps(tail, e);
        _mm512_mask_storeu_ps(scratch + tv, tail, e);
        sumv = _mm512_add_ps(sumv, e);
    }
    float inv = 1 / _mm512_reduce_add_ps(sumv);
    // out = Σ w_i v_i, accumulators in registers.
    __m512 acc[16];
    for (int64_t j = 0; j < dvq; j++) acc[j] = _mm512_setzero_ps();
    for (i = 0; i < t; i++) {
        float wi = scratch[i] * inv;
        if (nan_to_zero && wi != wi) wi = 0;
        __m512 w = _mm512_set1_ps(wi);
        const float *vi = v + i * dv;
        for (int64_t j = 0; j < dvq; j++) acc[j] = _mm512_fmadd_ps(w, _mm512_loadu_ps(vi + 16 * j), acc[j]);
    }
    for (int64_t j = 0; j < dvq; j++) _mm512_storeu_ps(out + 16 * j, acc[j]);
}

void lpc_attention_row(const float *q, const float *k, const float *v, int64_t t, int64_t d, int64_t dv,
                       const float *mask, int64_t mask_stride, float scale, float *out, float *scratch, int nan_to_zero) {
    if (lpc_simd_level() == 3 && d % 16 == 0 && dv % 16 == 0 && d > 0 && dv > 0 && d <= 256 && dv <= 256) {
        attention_row_avx512(q, k, v, t, d, dv, mask, mask_stride, scale, out, scratch, nan_to_zero);
    } else {
        lpc_attention_row_reference(q, k, v, t, d, dv, mask, mask_stride, scale, out, scratch, nan_to_zero);
    }
}
