// Decode matrix-vector kernels over 16-bit weights (IEEE float16, bfloat16 or int16), AVX-512.
//
// Why separate kernels from the float32 ones: with half the bytes per weight, the float32
// kernels' shape (four weight rows per pass, one y load/store per four FMAs, one convert per
// FMA) becomes bound by instructions, not memory. Here each pass streams eight weight rows,
// so the y traffic per weight halves, and the conversion is the only extra work per FMA.
#include "gemv_half.h"
#include <immintrin.h>
#include <string.h>

// 16 weights → 16 floats. float16: vcvtph2ps. bfloat16: zero-extend to 32 bits and shift the
// bits into the high half (exact: a bfloat16 is the top half of a float32).
#define LOAD_F16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define MLOAD_F16(mask, p) _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p))
#define LOAD_BF16(p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
#define MLOAD_BF16(mask, p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, p)), 16))
// int16 (`--weights i16`, the per-output scale applied after the product): sign-extend, convert (exact).
#define LOAD_I16(p) _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)(p))))
#define MLOAD_I16(mask, p) _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(mask, p)))

#define ATTR512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

// How far ahead of a pass over a block of `block` bytes (eight rows) the next blocks are
// prefetched: two blocks, at least 32 KiB (measured best of 8 KiB…2 blocks on [576, 1536],
// [1536, 576], [576, 576] and [49152, 576] f16; one thread, memory-bound copies).
#define PREFETCH_AHEAD(block) ((block) * 2 > 32768 ? (block) * 2 : 32768)

// The four cache lines at p into L2 (a pass consumes four lines of its block per 16 columns).
static inline void prefetch4(const char *p, const char *end) {
    if (p + 192 < end) {
        _mm_prefetch(p, _MM_HINT_T1);
        _mm_prefetch(p + 64, _MM_HINT_T1);
        _mm_prefetch(p + 128, _MM_HINT_T1);
        _mm_prefetch(p + 192, _MM_HINT_T1);
    }
}

// K-split, weights [k, n]: part[i, :] = Σ_{j0 ≤ j < j1} x[i, j] · w[j, :] for i < m
// (x [m, k], part [m, n], written whole). Eight weight rows per pass: each 16-column step
// loads and stores its y slice once for eight FMAs; the eight row streams are adjacent memory.
#define DEFINE_KSPLIT8(NAME, LOAD, MLOAD)                                                        \
ATTR512 void NAME(const float *x, const uint16_t *w, float *part, int64_t m, int64_t n, int64_t k, \
                  int64_t j0, int64_t j1) {                                                     \
    int64_t nv = n & ~(int64_t)15;                                                              \
    __mmask16 tail = (__mmask16)((1u << (n - nv)) - 1);                                         \
    memset(part, 0, (size_t)(m * n) * sizeof(float));                                          \
    /* Software prefetch into L2, PREFETCH_AHEAD(8 rows) bytes ahead of the pass: eight short  \
       row streams per pass are too short for the hardware prefetchers to run ahead. */         \
    const char *end = (const char *)(w + j1 * n);                                               \
    int64_t ahead = PREFETCH_AHEAD(8 * n * 2);                                                   \
    int64_t j = j0;                                                                             \
    for (; j + 8 <= j1; j += 8) {                                                               \
        const uint16_t *w0 = w + j * n;                                                         \
        for (int64_t i = 0; i < m; i++) {                                                       \
            const float *xi = x + i * k + j;                                                    \
            __m512 x0 = _mm512_set1_ps(xi[0]), x1 = _mm512_set1_ps(xi[1]);                     \
            __m512 x2 = _mm512_set1_ps(xi[2]), x3 = _mm512_set1_ps(xi[3]);                     \
            __m512 x4 = _mm512_set1_ps(xi[4]), x5 = _mm512_set1_ps(xi[5]);                     \
            __m512 x6 = _mm512_set1_ps(xi[6]), x7 = _mm512_set1_ps(xi[7]);                     \
            float *yi = part + i * n;                                                           \
            for (int64_t c = 0; c < nv; c += 16) {                                              \
                const uint16_t *p = w0 + c;                                                     \
                if (i == 0) prefetch4((const char *)w0 + 16 * c + ahead, end);                  \
                __m512 a = _mm512_fmadd_ps(LOAD(p), x0, _mm512_loadu_ps(yi + c));               \
                __m512 b = _mm512_mul_ps(LOAD(p + n), x1);                                      \
                a = _mm512_fmadd_ps(LOAD(p + 2 * n), x2, a);                                    \
                b = _mm512_fmadd_ps(LOAD(p + 3 * n), x3, b);                                    \
                a = _mm512_fmadd_ps(LOAD(p + 4 * n), x4, a);                                    \
                b = _mm512_fmadd_ps(LOAD(p + 5 * n), x5, b);                                    \
                a = _mm512_fmadd_ps(LOAD(p + 6 * n), x6, a);                                    \
                b = _mm512_fmadd_ps(LOAD(p + 7 * n), x7, b);                                    \
                _mm512_storeu_ps(yi + c, _mm512_add_ps(a, b));                                  \
            }                                                                                   \
            if (nv < n) {                                                                       \
                const uint16_t *p = w0 + nv;                                                    \
                __m512 a = _mm512_fmadd_ps(MLOAD(tail, p), x0, _mm512_maskz_loadu_ps(tail, yi + nv)); \
                __m512 b = _mm512_mul_ps(MLOAD(tail, p + n), x1);                               \
                a = _mm512_fmadd_ps(MLOAD(tail, p + 2 * n), x2, a);                             \
                b = _mm512_fmadd_ps(MLOAD(tail, p + 3 * n), x3, b);                             \
                a = _mm512_fmadd_ps(MLOAD(tail, p + 4 * n), x4, a);                             \
                b = _mm512_fmadd_ps(MLOAD(tail, p + 5 * n), x5, b);                             \
                a = _mm512_fmadd_ps(MLOAD(tail, p + 6 * n), x6, a);                             \
                b = _mm512_fmadd_ps(MLOAD(tail, p + 7 * n), x7, b);                             \
                _mm512_mask_storeu_ps(yi + nv, tail, _mm512_add_ps(a, b));                      \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
    for (; j < j1; j++) { /* the last < 8 rows, one at a time */                                \
        const uint16_t *w0 = w + j * n;                                                         \
        for (int64_t i = 0; i < m; i++) {                                                       \
            __m512 x0 = _mm512_set1_ps(x[i * k + j]);                                           \
            float *yi = part + i * n;                                                           \
            for (int64_t c = 0; c < nv; c += 16)                                                \
                _mm512_storeu_ps(yi + c, _mm512_fmadd_ps(LOAD(w0 + c), x0, _mm512_loadu_ps(yi + c))); \
            if (nv < n)                                                                         \
                _mm512_mask_storeu_ps(yi + nv, tail, _mm512_fmadd_ps(MLOAD(tail, w0 + nv), x0, _mm512_maskz_loadu_ps(tail, yi + nv))); \
        }                                                                                       \
    }                                                                                           \
}

DEFINE_KSPLIT8(lpc_ksplit8_f16_avx512, LOAD_F16, MLOAD_F16)
DEFINE_KSPLIT8(lpc_ksplit8_bf16_avx512, LOAD_BF16, MLOAD_BF16)
DEFINE_KSPLIT8(lpc_ksplit8_i16_avx512, LOAD_I16, MLOAD_I16)

// Sums of eight 16-lane accumulators → one 8-float vector [Σa0, …, Σa7].
ATTR512 static inline __m256 sum8(__m512 a0, __m512 a1, __m512 a2, __m512 a3,
                                  __m512 a4, __m512 a5, __m512 a6, __m512 a7) {
#define HALVES(a) _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1))
    __m256 h0 = HALVES(a0), h1 = HALVES(a1), h2 = HALVES(a2), h3 = HALVES(a3);
    __m256 h4 = HALVES(a4), h5 = HALVES(a5), h6 = HALVES(a6), h7 = HALVES(a7);
#undef HALVES
    __m256 t0 = _mm256_hadd_ps(h0, h1), t1 = _mm256_hadd_ps(h2, h3);
    __m256 t2 = _mm256_hadd_ps(h4, h5), t3 = _mm256_hadd_ps(h6, h7);
    __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3); // [s0..s3 | s0..s3], [s4..s7 | s4..s7] partial
    return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// Rows, weights [n, k]: y[i, r] = x[i, :] · w[r, :] for r0 ≤ r < r1, i < m (x [m, k], y [m, n]).
// Eight weight rows per pass share each x load; one transpose-sum per eight outputs.
#define DEFINE_ROWS8(NAME, LOAD, MLOAD)                                                          \
ATTR512 void NAME(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k, \
                  int64_t r0, int64_t r1) {                                                     \
    int64_t kv = k & ~(int64_t)15;                                                              \
    __mmask16 tail = (__mmask16)((1u << (k - kv)) - 1);                                         \
    const char *end = (const char *)(w + r1 * k);                                               \
    int64_t ahead = PREFETCH_AHEAD(8 * k * 2);                                                   \
    int64_t r = r0;                                                                             \
    for (; r + 8 <= r1; r += 8) {                                                               \
        const uint16_t *w0 = w + r * k;                                                         \
        for (int64_t i = 0; i < m; i++) {                                                       \
            const float *xi = x + i * k;                                                        \
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0; \
            for (int64_t j = 0; j < kv; j += 16) {                                              \
                __m512 xv = _mm512_loadu_ps(xi + j);                                            \
                const uint16_t *p = w0 + j;                                                     \
                if (i == 0) prefetch4((const char *)w0 + 16 * j + ahead, end);                  \
                a0 = _mm512_fmadd_ps(LOAD(p), xv, a0);                                          \
                a1 = _mm512_fmadd_ps(LOAD(p + k), xv, a1);                                      \
                a2 = _mm512_fmadd_ps(LOAD(p + 2 * k), xv, a2);                                  \
                a3 = _mm512_fmadd_ps(LOAD(p + 3 * k), xv, a3);                                  \
                a4 = _mm512_fmadd_ps(LOAD(p + 4 * k), xv, a4);                                  \
                a5 = _mm512_fmadd_ps(LOAD(p + 5 * k), xv, a5);                                  \
                a6 = _mm512_fmadd_ps(LOAD(p + 6 * k), xv, a6);                                  \
                a7 = _mm512_fmadd_ps(LOAD(p + 7 * k), xv, a7);                                  \
            }                                                                                   \
            if (kv < k) {                                                                       \
                __m512 xv = _mm512_maskz_loadu_ps(tail, xi + kv);                               \
                const uint16_t *p = w0 + kv;                                                    \
                a0 = _mm512_fmadd_ps(MLOAD(tail, p), xv, a0);                                   \
                a1 = _mm512_fmadd_ps(MLOAD(tail, p + k), xv, a1);                               \
                a2 = _mm512_fmadd_ps(MLOAD(tail, p + 2 * k), xv, a2);                           \
                a3 = _mm512_fmadd_ps(MLOAD(tail, p + 3 * k), xv, a3);                           \
                a4 = _mm512_fmadd_ps(MLOAD(tail, p + 4 * k), xv, a4);                           \
                a5 = _mm512_fmadd_ps(MLOAD(tail, p + 5 * k), xv, a5);                           \
                a6 = _mm512_fmadd_ps(MLOAD(tail, p + 6 * k), xv, a6);                           \
                a7 = _mm512_fmadd_ps(MLOAD(tail, p + 7 * k), xv, a7);                           \
            }                                                                                   \
            _mm256_storeu_ps(y + i * n + r, sum8(a0, a1, a2, a3, a4, a5, a6, a7));              \
        }                                                                                       \
    }                                                                                           \
    for (; r < r1; r++) { /* the last < 8 rows, one at a time */                                \
        const uint16_t *w0 = w + r * k;                                                         \
        for (int64_t i = 0; i < m; i++) {                                                       \
            const float *xi = x + i * k;                                                        \
            __m512 a0 = _mm512_setzero_ps();                                                    \
            for (int64_t j = 0; j < kv; j += 16) a0 = _mm512_fmadd_ps(LOAD(w0 + j), _mm512_loadu_ps(xi + j), a0); \
            if (kv < k) a0 = _mm512_fmadd_ps(MLOAD(tail, w0 + kv), _mm512_maskz_loadu_ps(tail, xi + kv), a0); \
            y[i * n + r] = _mm512_reduce_add_ps(a0);                                            \
        }                                                                                       \
    }                                                                                           \
}

DEFINE_ROWS8(lpc_rows8_f16_avx512, LOAD_F16, MLOAD_F16)
DEFINE_ROWS8(lpc_rows8_bf16_avx512, LOAD_BF16, MLOAD_BF16)
DEFINE_ROWS8(lpc_rows8_i16_avx512, LOAD_I16, MLOAD_I16)
