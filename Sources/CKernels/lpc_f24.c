#include "lpc_kernels.h"
#include "f24_simd.h"

// Conversions between float32 and f24 (lpc_f24.h), element runs and tiled matrices. The product
// kernels are in lpc_gemv_f24.c (decode) and lpc_sgemm.c (prefill).

int lpc_f24_supported(void) {
    static int supported = -1;
    if (supported < 0) { __builtin_cpu_init(); supported = lpc_simd_level() == 3 && __builtin_cpu_supports("avx512vbmi"); }
    return supported;
}

static uint32_t pack_scalar(const float *src, lpc_f24 *dst, int64_t n) {
    uint32_t dropped = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, src + i, sizeof bits);
        dropped |= bits & 0xff;
        dst[i].bytes[0] = (uint8_t)(bits >> 8);
        dst[i].bytes[1] = (uint8_t)(bits >> 16);
        dst[i].bytes[2] = (uint8_t)(bits >> 24);
    }
    return dropped;
}

// 16 floats → 48 bytes: vpshufb keeps bytes 1–3 of each float at the front of its 128-bit lane,
// vpermd joins the lanes' 12-byte groups.
__attribute__((target("avx512f,avx512bw")))
static uint32_t pack_avx512(const float *src, lpc_f24 *dst, int64_t n) {
    const __m512i gather = _mm512_broadcast_i32x4(_mm_setr_epi8(1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15, -1, -1, -1, -1));
    const __m512i join = _mm512_setr_epi32(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, 0, 0, 0, 0);
    const __m512i lowByte = _mm512_set1_epi32(0xff);
    __m512i dropped = _mm512_setzero_si512();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i v = _mm512_loadu_si512(src + i);
        dropped = _mm512_or_si512(dropped, _mm512_and_si512(v, lowByte));
        _mm512_mask_storeu_epi32(dst + i, 0x0FFF, _mm512_permutexvar_epi32(join, _mm512_shuffle_epi8(v, gather)));
    }
    return (uint32_t)_mm512_reduce_or_epi32(dropped) | pack_scalar(src + i, dst + i, n - i);
}

int lpc_f32_to_f24_n(const float *src, lpc_f24 *dst, int64_t n) {
    uint32_t dropped = lpc_simd_level() == 3 ? pack_avx512(src, dst, n) : pack_scalar(src, dst, n);
    return dropped == 0 ? 0 : -1;
}

__attribute__((target("avx512f,avx512bw")))
static void widen_avx512(const lpc_f24 *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, LOAD512_F24(src + i));
    if (i < n) {
        __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, tail, MLOAD512_F24(tail, src + i));
    }
}

void lpc_f24_to_f32_n(const lpc_f24 *src, float *dst, int64_t n) {
    if (lpc_simd_level() == 3) { widen_avx512(src, dst, n); return; }
    for (int64_t i = 0; i < n; i++) dst[i] = lpc_f24_to_f32(src[i]);
}

// Each row of a strip is a contiguous run in both layouts: one conversion call per run.
int lpc_f32_to_f24_tiles(const float *src, lpc_f24 *dst, int64_t k, int64_t n, int64_t r0, int64_t r1) {
    int vector = lpc_simd_level() == 3;
    uint32_t dropped = 0;
    for (int64_t j = r0; j < r1; j++)
        for (int64_t c = 0; c < n; c += LPC_F24_STRIP) {
            int64_t w = n - c < LPC_F24_STRIP ? n - c : LPC_F24_STRIP;
            lpc_f24 *out = dst + lpc_f24_tile_index(k, n, j, c);
            dropped |= vector ? pack_avx512(src + j * n + c, out, w) : pack_scalar(src + j * n + c, out, w);
        }
    return dropped == 0 ? 0 : -1;
}

// A row's columns are one contiguous run per strip: one widening call per run.
void lpc_f24_tiles_row_to_f32(const lpc_f24 *src, int64_t k, int64_t n, int64_t row, int64_t c0, int64_t count, float *dst) {
    for (int64_t c = c0; c < c0 + count;) {
        int64_t strip_end = c / LPC_F24_STRIP * LPC_F24_STRIP + LPC_F24_STRIP;
        int64_t end = strip_end < c0 + count ? strip_end : c0 + count;
        lpc_f24_to_f32_n(src + lpc_f24_tile_index(k, n, row, c), dst + (c - c0), end - c);
        c = end;
    }
}

void lpc_f24_tiles_to_f32(const lpc_f24 *src, float *dst, int64_t k, int64_t n, int64_t r0, int64_t r1) {
    for (int64_t j = r0; j < r1; j++) lpc_f24_tiles_row_to_f32(src, k, n, j, 0, n, dst + j * n);
}
