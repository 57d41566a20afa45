// Decode matrix-vector kernel over f24 weights [k, n] (lpc_f24.h), AVX-512.
//
// The arithmetic is ksplit_f32_avx512's (lpc_kernels.c), operation for operation, so the sums
// are the float32 kernel's bits. What differs is memory: three bytes per weight make the float32
// shape bound by how many loads the core keeps in flight, not by bandwidth (measured: the same
// weights per second as float32, i.e. 25% fewer bytes per second), so each pass also prefetches
// its rows' bytes a fixed distance ahead into L2, as the 16-bit kernels do (lpc_gemv_half.c).
#include "lpc_kernels.h"
#include "f24_simd.h"
#include "gemv_f24.h"
#include <pthread.h>

#ifndef F24_PREFETCH_AHEAD
#define F24_PREFETCH_AHEAD 32768
#endif

// 64 weights of a row are 192 bytes, cut into four vectors of 16 floats by one vpermb each
// (AVX512-VBMI: each 3-byte group moved up over a zero low byte) from four loads at byte 0, 48,
// 96 and 128 (the last one aligned, so nothing past the 192 bytes is read). Index bytes: output
// byte 4i + b (b = 1…3) ← input byte offset + 3i + b − 1, offset 0 (first three) or 16 (last);
// bytes 4i are zeroed by the mask. Against three aligned loads cut by vpermt2b (which overwrites
// a source, so the compiler copies registers): 1.18–1.29× f32's weights/s streaming from memory
// on 2 threads, was 1.09–1.14× (3 interleaved runs of a 212 MB sweep).
#define KEEP_HIGH3 0xEEEEEEEEEEEEEEEEull
static uint8_t widen_index[2][64];
static void make_widen_index(void) {
    for (int v = 0; v < 2; v++)
        for (int d = 0; d < 64; d++) widen_index[v][d] = d % 4 == 0 ? 0 : (uint8_t)(16 * v + 3 * (d / 4) + d % 4 - 1);
}
#define WIDEN_AT(p, q) _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi8(KEEP_HIGH3, (q) == 3 ? i16 : i0, \
                                                                         _mm512_loadu_si512((p) + ((q) == 3 ? 128 : 48 * (q)))))

// 64 weights at a time as in the kernel below (WIDEN_AT: four loads, one shuffle per 16), each 16 floats
// stored to its strip.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))
void lpc_f24_widen_row_strips(const lpc_f24 *row, int64_t cols, float *dst, int64_t strip, int64_t stride) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_widen_index);
    const __m512i i0 = _mm512_loadu_si512(widen_index[0]), i16 = _mm512_loadu_si512(widen_index[1]);
    for (int64_t c = 0; c + 64 <= cols; c += 64) {
        const char *p = (const char *)(row + c);
        __m512 v[4] = {WIDEN_AT(p, 0), WIDEN_AT(p, 1), WIDEN_AT(p, 2), WIDEN_AT(p, 3)};
        for (int q = 0; q < 4; q++) {
            int64_t col = c + 16 * q;
            _mm512_storeu_ps(dst + col / strip * stride + col % strip, v[q]);
        }
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))
void lpc_ksplit4_f24_avx512(const float *x, const lpc_f24 *w, float *part, int64_t m, int64_t n, int64_t k,
                            int64_t j0, int64_t j1) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_widen_index);
    const __m512i i0 = _mm512_loadu_si512(widen_index[0]), i16 = _mm512_loadu_si512(widen_index[1]);
    int64_t n64 = n & ~(int64_t)63, nv = n & ~(int64_t)15;
    __mmask16 tail = (__mmask16)((1u << (n - nv)) - 1);
    memset(part, 0, (size_t)(m * n) * sizeof(float));
    const char *end = (const char *)(w + j1 * n);
    int64_t j = j0;
    for (; j + 4 <= j1; j += 4) {
        const lpc_f24 *w0 = w + j * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;
        for (int64_t i = 0; i < m; i++) {
            const float *xi = x + i * k + j;
            __m512 x0 = _mm512_set1_ps(xi[0]), x1 = _mm512_set1_ps(xi[1]);
            __m512 x2 = _mm512_set1_ps(xi[2]), x3 = _mm512_set1_ps(xi[3]);
            float *yi = part + i * n;
            int64_t c = 0;
            for (; c < n64; c += 64) {
                // The four rows are one block of memory: prefetch its bytes at the rate a step
                // consumes them (4 rows × 192 bytes), F24_PREFETCH_AHEAD further on, into L2.
                if (i == 0) {
                    const char *ahead = (const char *)w0 + 12 * c + F24_PREFETCH_AHEAD;
                    if (ahead + 768 <= end)
                        for (int q = 0; q < 768; q += 64) _mm_prefetch(ahead + q, _MM_HINT_T1);
                }
                const char *p0 = (const char *)(w0 + c), *p1 = (const char *)(w1 + c);
                const char *p2 = (const char *)(w2 + c), *p3 = (const char *)(w3 + c);
#define STEP(q) {                                                                               \
                    float *yc = yi + c + 16 * (q);                                              \
                    __m512 a = _mm512_fmadd_ps(WIDEN_AT(p0, q), x0, _mm512_loadu_ps(yc));       \
                    __m512 b = _mm512_mul_ps(WIDEN_AT(p1, q), x1);                              \
                    a = _mm512_fmadd_ps(WIDEN_AT(p2, q), x2, a);                                \
                    b = _mm512_fmadd_ps(WIDEN_AT(p3, q), x3, b);                                \
                    _mm512_storeu_ps(yc, _mm512_add_ps(a, b));                                  \
                }
                STEP(0) STEP(1) STEP(2) STEP(3)
#undef STEP
            }
            for (; c < nv; c += 16) { // 16-column steps up to the last whole one
                __m512 a = _mm512_fmadd_ps(LOAD512_F24(w0 + c), x0, _mm512_loadu_ps(yi + c));
                __m512 b = _mm512_mul_ps(LOAD512_F24(w1 + c), x1);
                a = _mm512_fmadd_ps(LOAD512_F24(w2 + c), x2, a);
                b = _mm512_fmadd_ps(LOAD512_F24(w3 + c), x3, b);
                _mm512_storeu_ps(yi + c, _mm512_add_ps(a, b));
            }
            if (nv < n) {
                __m512 a = _mm512_fmadd_ps(MLOAD512_F24(tail, w0 + nv), x0, _mm512_maskz_loadu_ps(tail, yi + nv));
                __m512 b = _mm512_mul_ps(MLOAD512_F24(tail, w1 + nv), x1);
                a = _mm512_fmadd_ps(MLOAD512_F24(tail, w2 + nv), x2, a);
                b = _mm512_fmadd_ps(MLOAD512_F24(tail, w3 + nv), x3, b);
                _mm512_mask_storeu_ps(yi + nv, tail, _mm512_add_ps(a, b));
            }
        }
    }
    for (; j < j1; j++) {
        const lpc_f24 *w0 = w + j * n;
        for (int64_t i = 0; i < m; i++) {
            __m512 x0 = _mm512_set1_ps(x[i * k + j]);
            float *yi = part + i * n;
            int64_t c = 0;
            for (; c < nv; c += 16) _mm512_storeu_ps(yi + c, _mm512_fmadd_ps(LOAD512_F24(w0 + c), x0, _mm512_loadu_ps(yi + c)));
            if (nv < n)
                _mm512_mask_storeu_ps(yi + nv, tail, _mm512_fmadd_ps(MLOAD512_F24(tail, w0 + nv), x0, _mm512_maskz_loadu_ps(tail, yi + nv)));
        }
    }
}
