#ifndef LPC_KERNELS_H
#define LPC_KERNELS_H
#include <stdint.h>

/// The few kernels Swift cannot emit portably: AVX2/AVX-512 FMA matrix-vector products over
/// float32, float16 (F16C) or bfloat16 weights, with runtime CPU dispatch, and a small spinning thread pool
/// (decode issues ~200 matvecs per token; each must start in about a microsecond).

/// y[i, r] = sum_j x[i, j] * w[r, j]  for i < m, r < n: x [m, k], w [n, k] (row-major), y [m, n].
void lpc_gemv_f32(const float *x, const float *w, float *y, int64_t m, int64_t n, int64_t k);
/// The same with float16 weights (IEEE half bits), and with bfloat16 weights (float32's high half).
void lpc_gemv_f16(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k);
void lpc_gemv_bf16(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k);
/// int16 weights (the bits of int16_t, unscaled: `--weights i16` multiplies by the per-output scale afterwards).
void lpc_gemv_i16(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k);
void lpc_gemv_i16_reference(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k);
/// Scalar reference twins (one thread, no SIMD).
void lpc_gemv_f32_reference(const float *x, const float *w, float *y, int64_t m, int64_t n, int64_t k);
void lpc_gemv_f16_reference(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k);
void lpc_gemv_bf16_reference(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k);

/// y[i, c] = sum_j x[i, j] * w[j, c]: x [m, k], w [k, n] (ONNX MatMul layout), y [m, n].
void lpc_gemv_kn_f32(const float *x, const float *w, float *y, int64_t m, int64_t n, int64_t k);
void lpc_gemv_kn_f16(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k);
void lpc_gemv_kn_bf16(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k);
void lpc_gemv_kn_i16(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k);
void lpc_gemv_kn_multi_i16(const float *x, const uint16_t *const *w, float *const *y, const int64_t *n, int64_t parts, int64_t m, int64_t k);
void lpc_gemv_kn_i16_reference(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k);
/// Several products sharing x in one parallel region: y[p] [m, n[p]] = x [m, k] · w[p] [k, n[p]]
/// for p < parts (Q/K/V or gate/up projections of one layer).
void lpc_gemv_kn_multi_f32(const float *x, const float *const *w, float *const *y, const int64_t *n, int64_t parts, int64_t m, int64_t k);
void lpc_gemv_kn_multi_f16(const float *x, const uint16_t *const *w, float *const *y, const int64_t *n, int64_t parts, int64_t m, int64_t k);
void lpc_gemv_kn_multi_bf16(const float *x, const uint16_t *const *w, float *const *y, const int64_t *n, int64_t parts, int64_t m, int64_t k);
void lpc_gemv_kn_f32_reference(const float *x, const float *w, float *y, int64_t m, int64_t n, int64_t k);
void lpc_gemv_kn_f16_reference(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k);
void lpc_gemv_kn_bf16_reference(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k);

/// Round-to-nearest-even conversions.
void lpc_f32_to_f16(const float *src, uint16_t *dst, int64_t n);
void lpc_f16_to_f32(const uint16_t *src, float *dst, int64_t n);
/// float32 → bfloat16 (round to nearest even, NaN stays NaN) and back (exact), n elements.
void lpc_f32_to_bf16_n(const float *src, uint16_t *dst, int64_t n);
void lpc_bf16_to_f32_n(const uint16_t *src, float *dst, int64_t n);
/// int16 bits → float32 (exact), n elements.
void lpc_i16_to_f32_n(const uint16_t *src, float *dst, int64_t n);
/// Symmetric int16 quantization with one float32 scale per output (`--weights i16`):
/// scale = max |w| / 32767 over an output's weights (1 if all zero), q = round(w / scale), ties to
/// even. Columns of w [k, n] (scale [n]) or rows of w [n, k] (scale [n]). Returns -1 (q, scale
/// partly written) when a weight is inf or NaN, else 0.
int lpc_f32_to_i16_columns(const float *w, uint16_t *q, float *scale, int64_t k, int64_t n);
int lpc_f32_to_i16_rows(const float *w, uint16_t *q, float *scale, int64_t n, int64_t k);

/// Threads our pool uses, including the caller (1 = no workers).
void lpc_set_threads(int n);
int lpc_get_threads(void);
/// Runs fn(ctx, t) for t in [0, tasks) on the pool; returns when all are done.
typedef void (*lpc_task_fn)(void *ctx, int64_t task);
void lpc_parallel_for(int64_t tasks, lpc_task_fn fn, void *ctx);

/// How evenly the pool's jobs split (reported by `lpc bench`): seconds the caller spent on
/// tasks, the workers spent on tasks (summed), and the caller waited at the end of jobs for
/// workers still finishing theirs; jobs run on the pool and tasks each side ran. Counted from the
/// last reset; read while no job runs.
typedef struct {
    int64_t jobs, caller_tasks, worker_tasks;
    double caller_task_seconds, worker_task_seconds, caller_wait_seconds;
} lpc_pool_stats;
void lpc_pool_stats_read(lpc_pool_stats *out);
void lpc_pool_stats_reset(void);

/// Asks an idle worker to read [p, p + bytes) into the caches until the next job starts (the
/// next matrix product's weights, read while the caller runs small serial ops). Lengths are cut to
/// whole cache lines and at most 4 MiB. No-op with one thread.
void lpc_prefetch_weights(const void *p, int64_t bytes);
/// Drops a pending prefetch and waits until no worker reads ahead (before freeing the weights).
void lpc_prefetch_cancel(void);
/// For tests: bytes read ahead by lpc_prefetch_weights requests so far; whether a worker is reading now.
int64_t lpc_prefetched_bytes(void);
int lpc_prefetch_in_progress(void);

/// Which SIMD path the dispatcher picked: 0 scalar, 2 AVX2+FMA+F16C, 3 AVX-512.
int lpc_simd_level(void);

/// Reads n bytes with the pool's threads and returns a checksum (for bandwidth measurement).
uint64_t lpc_read_bytes(const void *p, int64_t n);

/// Makes a DYNAMIC_ARCH OpenBLAS that fell back to its generic SSE3 kernels (it predates the
/// CPU) use its AVX-512 or AVX2 ones. Returns the core name in use. Idempotent.
const char *lpc_tune_openblas(void);

#include "lpc_attention.h"
#include "lpc_elementwise.h"
#include "lpc_f24.h"

#endif
