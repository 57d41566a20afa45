// Decode matrix-vector kernels over tiled f24 weights [k, n] (lpc_f24.h).
//
// The arithmetic is the float32 kernels' (lpc_kernels.c: ksplit_f32_avx512 for the K-split,
// kn_f32_* for column bands), operation for operation, so the sums are the float32 kernels' bits.
// What differs is memory: the K-split walks a task's rows block by block and, in a block, strip
// by strip (the order they are stored in, so a task is one sequential stream), keeping a strip's
// 48 sums in registers over the block's rows where the row-major kernel loaded and stored y every
// four rows. Three bytes per weight make the stream bound by how many loads the core keeps in
// flight, not by bandwidth, so each pass also prefetches a fixed distance ahead into L2, as the
// 16-bit kernels do (lpc_gemv_half.c).
#include "lpc_kernels.h"
#include "f24_simd.h"
#include "gemv_f24.h"
#include <pthread.h>

#ifndef F24_PREFETCH_AHEAD
#define F24_PREFETCH_AHEAD 16384
#endif

// A strip's row, 48 weights, is 144 bytes, cut into three vectors of 16 floats by one vpermb each
// (AVX512-VBMI: each 3-byte group moved up over a zero low byte) from loads at byte 0, 48 and 80
// (the last one ending at the row's end, so nothing past the 144 bytes is read). Index bytes:
// output byte 4i + b (b = 1…3) ← input byte offset + 3i + b − 1, offset 0 (first two) or 16
// (last); bytes 4i are zeroed by the mask. Against three aligned loads cut by vpermt2b (which overwrites
// a source, so the compiler copies registers): 1.18–1.29× f32's weights/s streaming from memory
// on 2 threads, was 1.09–1.14× (3 interleaved runs of a 212 MB sweep, row-major f24); on the tiles,
// nine aligned loads per four-row pass cut by vpermb/vpermt2b were level with these loads (six
// interleaved rounds of every SmolLM2 decode product: 12.7 vs 13.1 ms, within noise).
#define KEEP_HIGH3 0xEEEEEEEEEEEEEEEEull
static uint8_t widen_index[2][64];
static void make_widen_index(void) {
    for (int v = 0; v < 2; v++)
        for (int d = 0; d < 64; d++) widen_index[v][d] = d % 4 == 0 ? 0 : (uint8_t)(16 * v + 3 * (d / 4) + d % 4 - 1);
}
#define WIDEN_AT(p, q) _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi8(KEEP_HIGH3, (q) == 3 ? i16 : i0, \
                                                                         _mm512_loadu_si512((p) + ((q) == 3 ? 128 : 48 * (q)))))
#define STRIP_AT(p, q) _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi8(KEEP_HIGH3, (q) == 2 ? i16 : i0, \
                                                                          _mm512_loadu_si512((p) + ((q) == 2 ? 80 : 48 * (q)))))

// 64 weights at a time (WIDEN_AT: four loads, one shuffle per 16), the rest 16 at a time.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))
static void widen_vbmi(const lpc_f24 *src, float *dst, int64_t count) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_widen_index);
    const __m512i i0 = _mm512_loadu_si512(widen_index[0]), i16 = _mm512_loadu_si512(widen_index[1]);
    int64_t c = 0;
    for (; c + 64 <= count; c += 64) {
        const char *p = (const char *)(src + c);
        _mm512_storeu_ps(dst + c, WIDEN_AT(p, 0));
        _mm512_storeu_ps(dst + c + 16, WIDEN_AT(p, 1));
        _mm512_storeu_ps(dst + c + 32, WIDEN_AT(p, 2));
        _mm512_storeu_ps(dst + c + 48, WIDEN_AT(p, 3));
    }
    lpc_f24_to_f32_n(src + c, dst + c, count - c);
}

void lpc_f24_widen_contiguous(const lpc_f24 *src, float *dst, int64_t count) {
    if (lpc_f24_supported()) widen_vbmi(src, dst, count);
    else lpc_f24_to_f32_n(src, dst, count);
}

// Rows j0 ..< j1 (multiples of 4 but at k, as the float32 K-split's passes; multiples of 16 make
// the task one contiguous range). Per block of the range, per strip: the strip's sums of each x
// row come from `part`, take the block's rows in passes of four (the float32 kernel's pass: two
// chains joined by an add), then single rows at the range's end, and go back to `part`.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))
void lpc_ksplit4_f24_avx512(const float *x, const lpc_f24 *w, float *part, int64_t m, int64_t n, int64_t k,
                            int64_t j0, int64_t j1) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_widen_index);
    const __m512i i0 = _mm512_loadu_si512(widen_index[0]), i16 = _mm512_loadu_si512(widen_index[1]);
    memset(part, 0, (size_t)(m * n) * sizeof(float));
    const char *end = (const char *)(w + j1 * n); // prefetches stay inside the range (its end when j1 ends a block)
    for (int64_t r = j0; r < j1;) {
        int64_t b0 = r / LPC_F24_BLOCK_ROWS * LPC_F24_BLOCK_ROWS;
        int64_t h = k - b0 < LPC_F24_BLOCK_ROWS ? k - b0 : LPC_F24_BLOCK_ROWS;
        int64_t r1 = b0 + h < j1 ? b0 + h : j1;
        for (int64_t s0 = 0; s0 < n; s0 += LPC_F24_STRIP) {
            int64_t width = n - s0 < LPC_F24_STRIP ? n - s0 : LPC_F24_STRIP;
            const char *rows = (const char *)(w + b0 * n + s0 * h + (r - b0) * width); // row r of the strip
            for (int64_t i = 0; i < m; i++) {
                const float *xi = x + i * k;
                float *yi = part + i * n + s0;
                if (width == LPC_F24_STRIP) {
                    __m512 y[3] = {_mm512_loadu_ps(yi), _mm512_loadu_ps(yi + 16), _mm512_loadu_ps(yi + 32)};
                    const char *p = rows;
                    int64_t j = r;
                    for (; j + 4 <= r1; j += 4, p += 4 * 144) {
                        // The pass's 576 bytes, F24_PREFETCH_AHEAD further on, into L2: spread over
                        // the passes (a burst per piece, the whole 2304 bytes at once, was ~7% slower).
                        if (i == 0)
                            for (int q = 0; q < 576; q += 64)
                                if (p + q + F24_PREFETCH_AHEAD < end) _mm_prefetch(p + q + F24_PREFETCH_AHEAD, _MM_HINT_T1);
                        __m512 x0 = _mm512_set1_ps(xi[j]), x1 = _mm512_set1_ps(xi[j + 1]);
                        __m512 x2 = _mm512_set1_ps(xi[j + 2]), x3 = _mm512_set1_ps(xi[j + 3]);
                        for (int q = 0; q < 3; q++) {
                            __m512 a = _mm512_fmadd_ps(STRIP_AT(p, q), x0, y[q]);
                            __m512 b = _mm512_mul_ps(STRIP_AT(p + 144, q), x1);
                            a = _mm512_fmadd_ps(STRIP_AT(p + 288, q), x2, a);
                            b = _mm512_fmadd_ps(STRIP_AT(p + 432, q), x3, b);
                            y[q] = _mm512_add_ps(a, b);
                        }
                    }
                    for (; j < r1; j++, p += 144) {
                        __m512 x0 = _mm512_set1_ps(xi[j]);
                        for (int q = 0; q < 3; q++) y[q] = _mm512_fmadd_ps(STRIP_AT(p, q), x0, y[q]);
                    }
                    for (int q = 0; q < 3; q++) _mm512_storeu_ps(yi + 16 * q, y[q]);
                } else { // the narrow last strip: 16-column vectors, the last one masked
                    if (i == 0)
                        for (int64_t q = 0; q < (r1 - r) * 3 * width; q += 64)
                            if (rows + q + F24_PREFETCH_AHEAD < end) _mm_prefetch(rows + q + F24_PREFETCH_AHEAD, _MM_HINT_T1);
                    for (int64_t c = 0; c < width; c += 16) {
                        __mmask16 mask = width - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (width - c)) - 1);
                        const lpc_f24 *p = (const lpc_f24 *)rows + c;
                        __m512 y = _mm512_maskz_loadu_ps(mask, yi + c);
                        int64_t j = r;
                        for (; j + 4 <= r1; j += 4, p += 4 * width) {
                            __m512 a = _mm512_fmadd_ps(MLOAD512_F24(mask, p), _mm512_set1_ps(xi[j]), y);
                            __m512 b = _mm512_mul_ps(MLOAD512_F24(mask, p + width), _mm512_set1_ps(xi[j + 1]));
                            a = _mm512_fmadd_ps(MLOAD512_F24(mask, p + 2 * width), _mm512_set1_ps(xi[j + 2]), a);
                            b = _mm512_fmadd_ps(MLOAD512_F24(mask, p + 3 * width), _mm512_set1_ps(xi[j + 3]), b);
                            y = _mm512_add_ps(a, b);
                        }
                        for (; j < r1; j++, p += width) y = _mm512_fmadd_ps(MLOAD512_F24(mask, p), _mm512_set1_ps(xi[j]), y);
                        _mm512_mask_storeu_ps(yi + c, mask, y);
                    }
                }
            }
        }
        r = r1;
    }
}

// Columns c0 ..< c1, every row: y = 0, then y = fma(w[j], x[j], y) for j in order (kn_f32_avx512's
// chain). Per strip the band's columns (16 at a time, masked at the band's and the strip's edges)
// go down the blocks with the sums in a register.
__attribute__((target("avx512f,avx512bw,avx512vl")))
void lpc_band_f24_avx512(const float *x, const lpc_f24 *w, float *y, int64_t m, int64_t n, int64_t k,
                         int64_t c0, int64_t c1) {
    for (int64_t s0 = c0 / LPC_F24_STRIP * LPC_F24_STRIP; s0 < c1; s0 += LPC_F24_STRIP) {
        int64_t width = n - s0 < LPC_F24_STRIP ? n - s0 : LPC_F24_STRIP;
        int64_t from = c0 > s0 ? c0 : s0, to = c1 < s0 + width ? c1 : s0 + width;
        for (int64_t c = from; c < to; c += 16) {
            __mmask16 mask = to - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (to - c)) - 1);
            for (int64_t i = 0; i < m; i++) {
                const float *xi = x + i * k;
                __m512 acc = _mm512_setzero_ps();
                for (int64_t b0 = 0; b0 < k; b0 += LPC_F24_BLOCK_ROWS) {
                    int64_t h = k - b0 < LPC_F24_BLOCK_ROWS ? k - b0 : LPC_F24_BLOCK_ROWS;
                    const lpc_f24 *p = w + b0 * n + s0 * h + (c - s0);
                    for (int64_t j = b0; j < b0 + h; j++, p += width)
                        acc = _mm512_fmadd_ps(MLOAD512_F24(mask, p), _mm512_set1_ps(xi[j]), acc);
                }
                _mm512_mask_storeu_ps(y + i * n + c, mask, acc);
            }
        }
    }
}

// kn_f32_scalar's arithmetic on the tiles (float sums, j in order).
void lpc_band_f24_scalar(const float *x, const lpc_f24 *w, float *y, int64_t m, int64_t n, int64_t k,
                         int64_t c0, int64_t c1) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t c = c0; c < c1; c++) {
            float s = 0;
            for (int64_t j = 0; j < k; j++) s += x[i * k + j] * lpc_f24_to_f32(w[lpc_f24_tile_index(k, n, j, c)]);
            y[i * n + c] = s;
        }
}

void lpc_gemv_kn_f24_reference(const float *x, const lpc_f24 *w, float *y, int64_t m, int64_t n, int64_t k) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t c = 0; c < n; c++) {
            double s = 0;
            for (int64_t j = 0; j < k; j++) s += (double)x[i * k + j] * lpc_f24_to_f32(w[lpc_f24_tile_index(k, n, j, c)]);
            y[i * n + c] = (float)s;
        }
}
