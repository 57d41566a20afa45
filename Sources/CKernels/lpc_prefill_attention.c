#include "lpc_prefill_attention.h"
#include "lpc_attention.h"
#include "lpc_kernels.h"
#include "lpc_simd_math.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

// Prefill attention on register tiles: a block of query rows of one head shares K/V, so scores
// are computed 4 rows × 32 keys at a time against K transposed (a broadcast query element times
// 32 keys' element per FMA pair, no horizontal sums), and the weighted sum 4 rows × 64 values
// at a time. lpc_attention_row (its twin, tested against it) computes one row alone.

void lpc_transpose_keys(const float *k, int64_t t, int64_t d, float *kt, int64_t ldkt) {
    for (int64_t c = 0; c < d; c++) {
        float *row = kt + c * ldkt;
        for (int64_t j = 0; j < t; j++) row[j] = k[j * d + c];
        for (int64_t j = t; j < ldkt; j++) row[j] = 0;
    }
}

// s[i][j] = scale · q_i·k_j for rows r0 ..< r0+nr (nr ≤ 4), keys j0 ..< j1 (j1 - j0 a multiple of
// 32 within ldkt: kt is zero-padded).
__attribute__((target("avx512f")))
static void scores_tile(const float *q, int64_t d, const float *kt, int64_t ldkt, int64_t nr, int64_t j0, int64_t j1,
                        float scale, float *s, int64_t lds) {
    const __m512 sc = _mm512_set1_ps(scale);
    for (int64_t j = j0; j < j1; j += 32) {
        __m512 a00 = _mm512_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        const float *kc = kt + j;
        if (nr == 4) {
            for (int64_t c = 0; c < d; c++, kc += ldkt) {
                __m512 k0 = _mm512_loadu_ps(kc), k1 = _mm512_loadu_ps(kc + 16);
                __m512 q0 = _mm512_set1_ps(q[c]), q1 = _mm512_set1_ps(q[d + c]);
                __m512 q2 = _mm512_set1_ps(q[2 * d + c]), q3 = _mm512_set1_ps(q[3 * d + c]);
                a00 = _mm512_fmadd_ps(q0, k0, a00); a01 = _mm512_fmadd_ps(q0, k1, a01);
                a10 = _mm512_fmadd_ps(q1, k0, a10); a11 = _mm512_fmadd_ps(q1, k1, a11);
                a20 = _mm512_fmadd_ps(q2, k0, a20); a21 = _mm512_fmadd_ps(q2, k1, a21);
                a30 = _mm512_fmadd_ps(q3, k0, a30); a31 = _mm512_fmadd_ps(q3, k1, a31);
            }
        } else {
            for (int64_t c = 0; c < d; c++, kc += ldkt) {
                __m512 k0 = _mm512_loadu_ps(kc), k1 = _mm512_loadu_ps(kc + 16);
                __m512 q0 = _mm512_set1_ps(q[c]);
                a00 = _mm512_fmadd_ps(q0, k0, a00); a01 = _mm512_fmadd_ps(q0, k1, a01);
                if (nr > 1) { __m512 q1 = _mm512_set1_ps(q[d + c]); a10 = _mm512_fmadd_ps(q1, k0, a10); a11 = _mm512_fmadd_ps(q1, k1, a11); }
                if (nr > 2) { __m512 q2 = _mm512_set1_ps(q[2 * d + c]); a20 = _mm512_fmadd_ps(q2, k0, a20); a21 = _mm512_fmadd_ps(q2, k1, a21); }
            }
        }
        _mm512_storeu_ps(s + j, _mm512_mul_ps(a00, sc)); _mm512_storeu_ps(s + j + 16, _mm512_mul_ps(a01, sc));
        if (nr > 1) { _mm512_storeu_ps(s + lds + j, _mm512_mul_ps(a10, sc)); _mm512_storeu_ps(s + lds + j + 16, _mm512_mul_ps(a11, sc)); }
        if (nr > 2) { _mm512_storeu_ps(s + 2 * lds + j, _mm512_mul_ps(a20, sc)); _mm512_storeu_ps(s + 2 * lds + j + 16, _mm512_mul_ps(a21, sc)); }
        if (nr > 3) { _mm512_storeu_ps(s + 3 * lds + j, _mm512_mul_ps(a30, sc)); _mm512_storeu_ps(s + 3 * lds + j + 16, _mm512_mul_ps(a31, sc)); }
    }
}

// Row of scores over [j0, j1) → softmax weights over [lo, hi) (mask added), zeros elsewhere in
// [j0, j1). Returns 0 if every score is -inf (the row's output is then NaN or 0).
__attribute__((target("avx512f")))
static int softmax_span(float *s, int64_t j0, int64_t j1, int64_t lo, int64_t hi, const float *mask, int64_t mask_stride,
                        int nan_to_zero) {
    float best = -INFINITY;
    for (int64_t j = lo; j < hi; j++) {
        float x = s[j];
        if (mask) { x += mask[j * mask_stride]; s[j] = x; }
        if (x > best) best = x;
    }
    for (int64_t j = j0; j < lo; j++) s[j] = 0;
    for (int64_t j = hi; j < j1; j++) s[j] = 0;
    if (best == -INFINITY) return 0;
    int64_t j;
    __m512 inv = _mm512_set1_ps(1 / lpc_exp_shifted_sum512(s + lo, hi - lo, best));
    for (j = lo; j + 16 <= hi; j += 16) _mm512_storeu_ps(s + j, _mm512_mul_ps(_mm512_loadu_ps(s + j), inv));
    if (j < hi) {
        __mmask16 m = (__mmask16)((1u << (hi - j)) - 1);
        _mm512_mask_storeu_ps(s + j, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, s + j), inv));
    }
    if (nan_to_zero) for (j = lo; j < hi; j++) if (s[j] != s[j]) s[j] = 0;
    return 1;
}

// out[i, c0 ..< c0+16·nc] = Σ_j p[i][j] · v[j, c0 ...] for rows i < nr (≤ 4), j in [j0, j1), nc ≤ 4.
__attribute__((target("avx512f")))
static void weighted_sum_tile(const float *p, int64_t lds, const float *v, int64_t dv, int64_t j0, int64_t j1,
                              int64_t nr, int64_t c0, int64_t nc, float *out) {
    __m512 acc[4][4];
    for (int i = 0; i < 4; i++) for (int c = 0; c < 4; c++) acc[i][c] = _mm512_setzero_ps();
    if (nr == 4 && nc == 4) {
        for (int64_t j = j0; j < j1; j++) {
            const float *vj = v + j * dv + c0;
            __m512 v0 = _mm512_loadu_ps(vj), v1 = _mm512_loadu_ps(vj + 16), v2 = _mm512_loadu_ps(vj + 32), v3 = _mm512_loadu_ps(vj + 48);
            for (int i = 0; i < 4; i++) {
                __m512 w = _mm512_set1_ps(p[i * lds + j]);
                acc[i][0] = _mm512_fmadd_ps(w, v0, acc[i][0]); acc[i][1] = _mm512_fmadd_ps(w, v1, acc[i][1]);
                acc[i][2] = _mm512_fmadd_ps(w, v2, acc[i][2]); acc[i][3] = _mm512_fmadd_ps(w, v3, acc[i][3]);
            }
        }
    } else {
        for (int64_t j = j0; j < j1; j++) {
            const float *vj = v + j * dv + c0;
            for (int64_t i = 0; i < nr; i++) {
                __m512 w = _mm512_set1_ps(p[i * lds + j]);
                for (int64_t c = 0; c < nc; c++) acc[i][c] = _mm512_fmadd_ps(w, _mm512_loadu_ps(vj + 16 * c), acc[i][c]);
            }
        }
    }
    for (int64_t i = 0; i < nr; i++) for (int64_t c = 0; c < nc; c++) _mm512_storeu_ps(out + i * dv + c0 + 16 * c, acc[i][c]);
}

__attribute__((target("avx512f")))
static void attention_rows_avx512(const float *q, int64_t rows, const float *kt, int64_t ldkt, const float *v,
                                  int64_t d, int64_t dv, const float *mask, int64_t mask_row_stride, int64_t mask_stride,
                                  const int64_t *lo, const int64_t *hi, float scale, float *out, float *scratch, int nan_to_zero) {
    for (int64_t r0 = 0; r0 < rows; r0 += 4) {
        int64_t nr = rows - r0 < 4 ? rows - r0 : 4;
        // Key span of these rows, in whole 32-key tiles for the scores (kt is zero-padded).
        int64_t j0 = lo[r0], j1 = hi[r0];
        for (int64_t i = 1; i < nr; i++) { if (lo[r0 + i] < j0) j0 = lo[r0 + i]; if (hi[r0 + i] > j1) j1 = hi[r0 + i]; }
        int64_t t0 = j0 & ~(int64_t)31, t1 = (j1 + 31) & ~(int64_t)31;
        float *s = scratch + r0 * ldkt;
        scores_tile(q + r0 * d, d, kt, ldkt, nr, t0, t1, scale, s, ldkt);
        int live[4];
        for (int64_t i = 0; i < nr; i++) {
            const float *m = mask ? mask + (r0 + i) * mask_row_stride : 0;
            live[i] = softmax_span(s + i * ldkt, j0, j1, lo[r0 + i], hi[r0 + i], m, mask_stride, nan_to_zero);
        }
        for (int64_t c0 = 0; c0 < dv; c0 += 64) {
            int64_t nc = (dv - c0) / 16 < 4 ? (dv - c0) / 16 : 4;
            weighted_sum_tile(s, ldkt, v, dv, j0, j1, nr, c0, nc, out + r0 * dv);
        }
        for (int64_t i = 0; i < nr; i++) if (!live[i])
            for (int64_t c = 0; c < dv; c++) out[(r0 + i) * dv + c] = nan_to_zero ? 0 : NAN;
    }
}

void lpc_attention_rows(const float *q, int64_t rows, const float *k, const float *kt, int64_t ldkt, const float *v,
                        int64_t t, int64_t d, int64_t dv, const float *mask, int64_t mask_row_stride, int64_t mask_stride,
                        const int64_t *lo, const int64_t *hi, float scale, float *out, float *scratch, int nan_to_zero) {
    if (lpc_simd_level() == 3 && dv % 16 == 0 && dv > 0 && d > 0 && ldkt % 32 == 0 && ldkt >= t) {
        attention_rows_avx512(q, rows, kt, ldkt, v, d, dv, mask, mask_row_stride, mask_stride, lo, hi, scale, out, scratch, nan_to_zero);
        return;
    }
    for (int64_t i = 0; i < rows; i++) {
        const float *m = mask ? mask + i * mask_row_stride + lo[i] * mask_stride : 0;
        lpc_attention_row(q + i * d, k + lo[i] * d, v + lo[i] * dv, hi[i] - lo[i], d, dv, m, mask_stride, scale,
                          out + i * dv, scratch, nan_to_zero);
    }
}
