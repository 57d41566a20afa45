// Internal to CKernels: the f24 decode kernel of lpc_gemv_f24.c, called by the dispatch in
// lpc_kernels.c (AVX-512 only; callers check lpc_simd_level() == 3).
#ifndef LPC_GEMV_F24_H
#define LPC_GEMV_F24_H
#include "lpc_f24.h"

/// Weights [k, n]: part [m, n] = x[:, j0..<j1] · w[j0..<j1, :] (x [m, k]); part is written whole.
void lpc_ksplit4_f24_avx512(const float *x, const lpc_f24 *w, float *part, int64_t m, int64_t n, int64_t k, int64_t j0, int64_t j1);

/// The prefill sgemm's copy of B (lpc_sgemm.c): widens `cols` (a multiple of 64) f24 values of one
/// row, column c to dst[(c / strip) · stride + c % strip] (`strip` a multiple of 16). Needs VBMI.
void lpc_f24_widen_row_strips(const lpc_f24 *row, int64_t cols, float *dst, int64_t strip, int64_t stride);

#endif
