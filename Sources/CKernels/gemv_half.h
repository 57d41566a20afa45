// Internal to CKernels: the 16-bit-weight decode kernels of lpc_gemv_half.c, called by the
// dispatch in lpc_kernels.c (AVX-512 only; callers check lpc_simd_level() == 3).
#ifndef LPC_GEMV_HALF_H
#define LPC_GEMV_HALF_H
#include <stdint.h>

/// Weights [k, n]: part [m, n] = x[:, j0..<j1] · w[j0..<j1, :] (x [m, k]); part is written whole.
void lpc_ksplit8_f16_avx512(const float *x, const uint16_t *w, float *part, int64_t m, int64_t n, int64_t k, int64_t j0, int64_t j1);
void lpc_ksplit8_bf16_avx512(const float *x, const uint16_t *w, float *part, int64_t m, int64_t n, int64_t k, int64_t j0, int64_t j1);
void lpc_ksplit8_i16_avx512(const float *x, const uint16_t *w, float *part, int64_t m, int64_t n, int64_t k, int64_t j0, int64_t j1);
/// Weights [n, k]: y[i, r] = x[i, :] · w[r, :] for r0 ≤ r < r1 (x [m, k], y [m, n]).
void lpc_rows8_f16_avx512(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k, int64_t r0, int64_t r1);
void lpc_rows8_bf16_avx512(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k, int64_t r0, int64_t r1);
void lpc_rows8_i16_avx512(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k, int64_t r0, int64_t r1);

#endif
