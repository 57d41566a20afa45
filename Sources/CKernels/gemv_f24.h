// Internal to CKernels: the f24 kernels of lpc_gemv_f24.c, called by the dispatch in lpc_kernels.c
// and by lpc_sgemm.c (AVX-512 ones: callers check lpc_simd_level() == 3).
#ifndef LPC_GEMV_F24_H
#define LPC_GEMV_F24_H
#include "lpc_f24.h"

/// Tiled weights [k, n]: part [m, n] = x[:, j0..<j1] · w[j0..<j1, :] (x [m, k]); part is written whole. Needs VBMI.
void lpc_ksplit4_f24_avx512(const float *x, const lpc_f24 *w, float *part, int64_t m, int64_t n, int64_t k, int64_t j0, int64_t j1);

/// Tiled weights: column band c0 ..< c1 of y [m, n], kn_f32_avx512's sums (the scalar band is in lpc_f24.h).
void lpc_band_f24_avx512(const float *x, const lpc_f24 *w, float *y, int64_t m, int64_t n, int64_t k, int64_t c0, int64_t c1);

/// The prefill sgemm's copy of B (lpc_sgemm.c): widens `count` contiguous f24 values (VBMI where
/// available, else lpc_f24_to_f32_n).
void lpc_f24_widen_contiguous(const lpc_f24 *src, float *dst, int64_t count);

#endif
