// Internal to CKernels: the AVX-512 f24 → float32 widening shared by the product kernels
// (lpc_kernels.c) and the prefill widening (lpc_f24.c).
#ifndef LPC_F24_SIMD_H
#define LPC_F24_SIMD_H
#include <immintrin.h>

// 16 f24 weights are 48 bytes: vpermd gives each 128-bit lane its 12 bytes, vpshufb moves every
// 3-byte group up one byte over a zero low byte.
__attribute__((target("avx512f,avx512bw")))
static inline __m512 f24_widen512(__m512i packed) {
    const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 0, 3, 4, 5, 0, 6, 7, 8, 0, 9, 10, 11, 0);
    const __m512i spread = _mm512_broadcast_i32x4(_mm_setr_epi32(0x02010080, 0x05040380, 0x08070680, 0x0B0A0980));
    return _mm512_castsi512_ps(_mm512_shuffle_epi8(_mm512_permutexvar_epi32(lanes, packed), spread));
}
#ifdef F24_UNMASKED
#define LOAD512_F24(p) f24_widen512(_mm512_loadu_si512(p))
#else
#define LOAD512_F24(p) f24_widen512(_mm512_maskz_loadu_epi32(0x0FFF, p))
#endif
// Tail masks are prefixes: popcount elements are 3 · popcount bytes.
#define MLOAD512_F24(mask, p) f24_widen512(_mm512_maskz_loadu_epi8(((__mmask64)1 << (3 * __builtin_popcount(mask))) - 1, p))

#endif
