#ifndef LPC_SGEMM_H
#define LPC_SGEMM_H
#include <stdint.h>
#include "lpc_f24.h"

/// Prefill matrix products against weights stored [K, N] (ONNX MatMul layout, used in place from
/// the memory map): an AVX-512 register-blocked sgemm over a column window, one thread per call
/// (callers spread windows over the pool).

/// Whether `lpc_sgemm_f32` runs its AVX-512 kernel on this CPU (otherwise it runs the scalar
/// twin: callers should keep using BLAS).
int lpc_sgemm_available(void);

/// C[i, j] = Σ_p A[i, p] · B[p, j]   for i < m, n0 ≤ j < n1   (+ C[i, j] first when accumulate ≠ 0)
/// a [m, k] row-major (row stride lda ≥ k), b [k, ≥ n1] row-major (row stride ldb),
/// c [m, ≥ n1] row-major (row stride ldc). Columns outside n0 ..< n1 are neither read nor written.
/// Each element is one chain of fused multiply-adds over p = 0, 1, …, k-1 in order, starting from
/// +0 (or from C), so the result equals `lpc_sgemm_f32_reference` bit for bit. k = 0 writes zeros
/// (leaves C with accumulate). Packs A into a temporary buffer first (see below).
void lpc_sgemm_f32(int64_t m, int64_t n0, int64_t n1, int64_t k, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate);

/// A packed for `lpc_sgemm_f32_packed`: 8-row blocks (the last zero-padded), each [k, 8]
/// (element (i, p) at packed[(i / 8) · 8k + p · 8 + i % 8]); `lpc_sgemm_packed_a_count` floats.
/// Pack once per A and share it among the threads that compute column windows of its products.
int64_t lpc_sgemm_packed_a_count(int64_t m, int64_t k);
void lpc_sgemm_pack_a(int64_t m, int64_t k, const float *a, int64_t lda, float *packed);
/// `lpc_sgemm_f32` with A packed by `lpc_sgemm_pack_a` (same results, bit for bit).
void lpc_sgemm_f32_packed(int64_t m, int64_t n0, int64_t n1, int64_t k, const float *packed_a,
                          const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate);

/// `lpc_sgemm_f32_packed` with B a tiled f24 matrix [k, ldb] (`lpc_f24.h`) whose columns bcol ..<
/// bcol + n1 are used (C's column j is B's column bcol + j): widened exactly while the kernel
/// copies B's chunks, so the result equals the float32 call on the widened B.
void lpc_sgemm_f24_packed(int64_t m, int64_t n0, int64_t n1, int64_t k, const float *packed_a,
                          const lpc_f24 *b, int64_t ldb, int64_t bcol, float *c, int64_t ldc, int accumulate);

/// The packed calls' scalar twin (what they run without AVX-512): B float32 (b, row-major) or a tiled f24
/// matrix (b24, columns from bcol), one of them non-null; the same chains, element by element.
void lpc_sgemm_packed_reference(int64_t m, int64_t n0, int64_t n1, int64_t k, const float *packed_a, const float *b,
                                const lpc_f24 *b24, int64_t ldb, int64_t bcol, float *c, int64_t ldc, int accumulate);

/// Scalar twin: the same chains with fmaf, element by element.
void lpc_sgemm_f32_reference(int64_t m, int64_t n0, int64_t n1, int64_t k, const float *a, int64_t lda,
                             const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate);

#endif
