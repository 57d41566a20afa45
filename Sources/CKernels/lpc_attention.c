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
    float inv = 1 / lpc_exp_shifted_sum512(scratch, t, best); // exp(s - best) in place, and the sum
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

// MARK: - Grouped partial attention (GQA decode, split over positions)

void lpc_attention_partial_reference(lpc_attention_partial_row *rows, int64_t nrows, const float *k, const float *v,
                                     int64_t t, int64_t d, int64_t dv, int64_t mask_stride, float scale, float *scratch) {
    for (int64_t r = 0; r < nrows; r++) {
        lpc_attention_partial_row *row = &rows[r];
        float *s = scratch + r * t;
        float best = -INFINITY;
        for (int64_t i = 0; i < t; i++) {
            float dot = 0;
            for (int64_t j = 0; j < d; j++) dot += row->q[j] * k[i * d + j];
            s[i] = dot * scale + (row->mask ? row->mask[i * mask_stride] : 0);
            if (s[i] > best) best = s[i];
        }
        for (int64_t j = 0; j < dv; j++) row->acc[j] = 0;
        row->max = best;
        row->sum = 0;
        if (best == -INFINITY) continue;
        for (int64_t i = 0; i < t; i++) {
            float e = expf(s[i] - best);
            row->sum += e;
            for (int64_t j = 0; j < dv; j++) row->acc[j] += e * v[i * dv + j];
        }
    }
}

// Sums each of 16 vectors: the sum of a[4m + l] lands in lane 4l + m (so callers store the dot
// of position p at index 4·(p % 4) + p / 4 to get the sums in position order). 15 adds and 30
// lane shuffles instead of 16 full horizontal reductions.
__attribute__((target("avx512f")))
static inline __m512 sum16_transposed(const __m512 a[16]) {
    __m512 b[8], c[4];
    for (int i = 0; i < 8; i++)
        b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44), _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xEE));
    for (int i = 0; i < 4; i++)
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88), _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xDD));
    __m512 d0 = _mm512_add_ps(_mm512_unpacklo_ps(c[0], c[1]), _mm512_unpackhi_ps(c[0], c[1]));
    __m512 d1 = _mm512_add_ps(_mm512_unpacklo_ps(c[2], c[3]), _mm512_unpackhi_ps(c[2], c[3]));
    return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(d0), _mm512_castps_pd(d1))),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(d0), _mm512_castps_pd(d1))));
}

// Scores of one query row over t positions into s[t] (scaled, masked); returns their max.
__attribute__((target("avx512f")))
static float scores_avx512(const float *q, const float *mask, int64_t mask_stride, const float *k, int64_t t, int64_t d,
                           float scale, float *s) {
    int64_t dq = d / 16;
    __m512 qv[8];
    for (int64_t j = 0; j < dq; j++) qv[j] = _mm512_mul_ps(_mm512_loadu_ps(q + 16 * j), _mm512_set1_ps(scale));
    __m512 best = _mm512_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 16 <= t; i += 16) {
        __m512 a[16];
        for (int p = 0; p < 16; p++) {
            const float *kp = k + (i + p) * d;
            __m512 acc = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kp));
            for (int64_t j = 1; j < dq; j++) acc = _mm512_fmadd_ps(qv[j], _mm512_loadu_ps(kp + 16 * j), acc);
            a[4 * (p & 3) + (p >> 2)] = acc;
        }
        __m512 sv = sum16_transposed(a);
        if (mask) {
            __m512 mv;
            if (mask_stride == 1) mv = _mm512_loadu_ps(mask + i);
            else {
                float m[16];
                for (int p = 0; p < 16; p++) m[p] = mask[(i + p) * mask_stride];
                mv = _mm512_loadu_ps(m);
            }
            sv = _mm512_add_ps(sv, mv);
        }
        _mm512_storeu_ps(s + i, sv);
        best = _mm512_max_ps(sv, best); // max_ps returns its second operand for a NaN: a NaN score is not the max (as in the reference)
    }
    float m = _mm512_reduce_max_ps(best);
    for (; i < t; i++) {
        const float *kp = k + i * d;
        __m512 acc = _mm512_mul_ps(qv[0], _mm512_loadu_ps(kp));
        for (int64_t j = 1; j < dq; j++) acc = _mm512_fmadd_ps(qv[j], _mm512_loadu_ps(kp + 16 * j), acc);
        float v = _mm512_reduce_add_ps(acc) + (mask ? mask[i * mask_stride] : 0);
        s[i] = v;
        if (v > m) m = v;
    }
    return m;
}

#define PARTIAL_V_ROWS 4 // query rows sharing each V load: 4 rows × up to 8 accumulators + V fit 32 zmm registers

// acc_r = Σ_i w_r[i] v_i for N query rows (weights w_r = scratch + r·t), each V row loaded once.
// N and DVQ (dv / 16) are compile-time constants at every call (always inlined into a switch),
// so the accumulators live in registers; with run-time bounds the compiler keeps them on the stack.
__attribute__((target("avx512f"), always_inline))
static inline void accumulate_v(lpc_attention_partial_row *rows, const float *v, const float *scratch, int64_t t, int64_t dv,
                                const int N, const int DVQ) {
    __m512 acc[PARTIAL_V_ROWS][8];
    for (int r = 0; r < N; r++) for (int j = 0; j < DVQ; j++) acc[r][j] = _mm512_setzero_ps();
    for (int64_t i = 0; i < t; i++) {
        const float *vi = v + i * dv;
        __m512 vv[8];
        for (int j = 0; j < DVQ; j++) vv[j] = _mm512_loadu_ps(vi + 16 * j);
        for (int r = 0; r < N; r++) {
            __m512 w = _mm512_set1_ps(scratch[r * t + i]);
            for (int j = 0; j < DVQ; j++) acc[r][j] = _mm512_fmadd_ps(w, vv[j], acc[r][j]);
        }
    }
    for (int r = 0; r < N; r++) for (int j = 0; j < DVQ; j++) _mm512_storeu_ps(rows[r].acc + 16 * j, acc[r][j]);
}

#define ACCUMULATE_V_CASES(DVQ)                                                                  \
    switch (n) {                                                                                 \
    case 1: accumulate_v(rows + r0, v, scratch + r0 * t, t, dv, 1, DVQ); break;                  \
    case 2: accumulate_v(rows + r0, v, scratch + r0 * t, t, dv, 2, DVQ); break;                  \
    case 3: accumulate_v(rows + r0, v, scratch + r0 * t, t, dv, 3, DVQ); break;                  \
    default: accumulate_v(rows + r0, v, scratch + r0 * t, t, dv, 4, DVQ); break;                 \
    }

__attribute__((target("avx512f")))
static void attention_partial_avx512(lpc_attention_partial_row *rows, int64_t nrows, const float *k, const float *v, int64_t t,
                                     int64_t d, int64_t dv, int64_t mask_stride, float scale, float *scratch) {
    for (int64_t r = 0; r < nrows; r++) {
        float *s = scratch + r * t;
        float m = scores_avx512(rows[r].q, rows[r].mask, mask_stride, k, t, d, scale, s);
        rows[r].max = m;
        rows[r].sum = m == -INFINITY ? 0 : lpc_exp_shifted_sum512(s, t, m);
        if (m == -INFINITY) for (int64_t i = 0; i < t; i++) s[i] = 0; // every weight 0 (not NaN)
    }
    for (int64_t r0 = 0; r0 < nrows; r0 += PARTIAL_V_ROWS) {
        int64_t n = nrows - r0 < PARTIAL_V_ROWS ? nrows - r0 : PARTIAL_V_ROWS;
        switch (dv / 16) {
        case 1: ACCUMULATE_V_CASES(1) break;
        case 2: ACCUMULATE_V_CASES(2) break;
        case 3: ACCUMULATE_V_CASES(3) break;
        case 4: ACCUMULATE_V_CASES(4) break;
        case 5: ACCUMULATE_V_CASES(5) break;
        case 6: ACCUMULATE_V_CASES(6) break;
        case 7: ACCUMULATE_V_CASES(7) break;
        default: ACCUMULATE_V_CASES(8) break;
        }
    }
}

void lpc_attention_partial(lpc_attention_partial_row *rows, int64_t nrows, const float *k, const float *v, int64_t t,
                           int64_t d, int64_t dv, int64_t mask_stride, float scale, float *scratch) {
    if (lpc_simd_level() == 3 && d % 16 == 0 && dv % 16 == 0 && d > 0 && dv > 0 && d <= 128 && dv <= 128) {
        attention_partial_avx512(rows, nrows, k, v, t, d, dv, mask_stride, scale, scratch);
    } else {
        lpc_attention_partial_reference(rows, nrows, k, v, t, d, dv, mask_stride, scale, scratch);
    }
}

void lpc_attention_merge(const lpc_attention_partial_row *parts, int64_t nparts, int64_t dv, float *out, int nan_to_zero) {
    float best = -INFINITY;
    for (int64_t c = 0; c < nparts; c++) if (parts[c].max > best) best = parts[c].max;
    float sum = 0;
    for (int64_t j = 0; j < dv; j++) out[j] = 0;
    if (best == -INFINITY) {
        for (int64_t j = 0; j < dv; j++) out[j] = nan_to_zero ? 0 : NAN;
        return;
    }
    for (int64_t c = 0; c < nparts; c++) {
        if (parts[c].sum == 0 && parts[c].max == -INFINITY) continue; // a fully masked block adds nothing
        float f = expf(parts[c].max - best);
        sum += f * parts[c].sum;
        for (int64_t j = 0; j < dv; j++) out[j] += f * parts[c].acc[j];
    }
    float inv = 1 / sum;
    for (int64_t j = 0; j < dv; j++) {
        float o = out[j] * inv;
        out[j] = (nan_to_zero && o != o) ? 0 : o;
    }
}
