#ifndef LPC_F24_H
#define LPC_F24_H
#include <stdint.h>
#include <string.h>

/// f24: a float32 without its low byte, 3 bytes (bytes 1–3 of the little-endian float32). It is a
/// lossless storage for float32 weights whose 8 lowest mantissa bits are all zero, as in exports
/// whose weights were trained or stored with fewer mantissa bits (SmolLM2-135M's layer weights
/// use at most 14 of 23): the product kernels read 3 bytes instead of 4 per weight and compute
/// with the same float32 values.
typedef struct { uint8_t bytes[3]; } lpc_f24;

static inline float lpc_f24_to_f32(lpc_f24 v) {
    uint32_t bits = (uint32_t)v.bytes[0] << 8 | (uint32_t)v.bytes[1] << 16 | (uint32_t)v.bytes[2] << 24;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/// Whether this CPU has the fast f24 decode kernel (AVX-512 with VBMI); elsewhere f24 is not chosen
/// (the kernels still run, on slower paths).
int lpc_f24_supported(void);
/// Packs n float32 values (drops each one's low byte). Returns 0 when every dropped byte was zero
/// (the packing is exact), else -1 (dst is written either way).
int lpc_f32_to_f24_n(const float *src, lpc_f24 *dst, int64_t n);
/// Widens n f24 values to float32 (exact).
void lpc_f24_to_f32_n(const lpc_f24 *src, float *dst, int64_t n);

/// y[i, c] = sum_j x[i, j] * w[j, c] with f24 weights [k, n]: the same float32 sums, in the same
/// order, as lpc_gemv_kn_f32 / lpc_gemv_kn_multi_f32 on the widened weights (bit for bit where
/// lpc_f24_supported()).
void lpc_gemv_kn_f24(const float *x, const lpc_f24 *w, float *y, int64_t m, int64_t n, int64_t k);
void lpc_gemv_kn_multi_f24(const float *x, const lpc_f24 *const *w, float *const *y, const int64_t *n, int64_t parts, int64_t m, int64_t k);
/// Scalar twin (double sums).
void lpc_gemv_kn_f24_reference(const float *x, const lpc_f24 *w, float *y, int64_t m, int64_t n, int64_t k);

#endif
