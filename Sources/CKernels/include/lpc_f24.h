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

/// An f24 weight matrix [k, n] is stored in tiles, for the product kernels: its rows in blocks of
/// LPC_F24_BLOCK_ROWS (the last block may be shorter), each block's columns in strips of
/// LPC_F24_STRIP (the last strip may be narrower), each strip of a block [h, w] row-major, the
/// strips of a block one after another. A block holds the same bytes as its rows in row-major
/// order, so rows j0 ..< j1 (j0 a multiple of 16) are one contiguous range, as a decode task
/// streams them; a strip of a block is contiguous, so the prefill sgemm widens its chunks of B
/// without a row-strided gather. The size is k · n · 3 bytes, as row-major.
enum { LPC_F24_BLOCK_ROWS = 16, LPC_F24_STRIP = 48 };

/// Where element (j, c) of an f24 matrix [k, n] is in its tiles.
static inline int64_t lpc_f24_tile_index(int64_t k, int64_t n, int64_t j, int64_t c) {
    int64_t b0 = j / LPC_F24_BLOCK_ROWS * LPC_F24_BLOCK_ROWS, s0 = c / LPC_F24_STRIP * LPC_F24_STRIP;
    int64_t h = k - b0 < LPC_F24_BLOCK_ROWS ? k - b0 : LPC_F24_BLOCK_ROWS;
    int64_t w = n - s0 < LPC_F24_STRIP ? n - s0 : LPC_F24_STRIP;
    return b0 * n + s0 * h + (j - b0) * w + (c - s0);
}

/// Packs rows r0 ..< r1 of the row-major float32 matrix src [k, n] into the tiles of dst [k, n]
/// (r0 a multiple of LPC_F24_BLOCK_ROWS). Returns 0 when every dropped byte was zero, else -1.
int lpc_f32_to_f24_tiles(const float *src, lpc_f24 *dst, int64_t k, int64_t n, int64_t r0, int64_t r1);
/// Widens rows r0 ..< r1 of the tiled f24 matrix src [k, n] into the row-major float32 dst [k, n].
void lpc_f24_tiles_to_f32(const lpc_f24 *src, float *dst, int64_t k, int64_t n, int64_t r0, int64_t r1);
/// Widens columns c0 ..< c0 + count of row `row` of the tiled f24 matrix src [k, n] into dst[0 ..< count].
void lpc_f24_tiles_row_to_f32(const lpc_f24 *src, int64_t k, int64_t n, int64_t row, int64_t c0, int64_t count, float *dst);

/// Whether this CPU has the fast f24 decode kernel (AVX-512 with VBMI); elsewhere f24 is not chosen
/// (the kernels still run, on slower paths).
int lpc_f24_supported(void);
/// Packs n float32 values (drops each one's low byte). Returns 0 when every dropped byte was zero
/// (the packing is exact), else -1 (dst is written either way).
int lpc_f32_to_f24_n(const float *src, lpc_f24 *dst, int64_t n);
/// Widens n f24 values to float32 (exact).
void lpc_f24_to_f32_n(const lpc_f24 *src, float *dst, int64_t n);

/// y[i, c] = sum_j x[i, j] * w[j, c] with tiled f24 weights [k, n]: the same float32 sums, in the same
/// order, as lpc_gemv_kn_f32 / lpc_gemv_kn_multi_f32 on the widened weights (bit for bit where
/// lpc_f24_supported()).
void lpc_gemv_kn_f24(const float *x, const lpc_f24 *w, float *y, int64_t m, int64_t n, int64_t k);
void lpc_gemv_kn_multi_f24(const float *x, const lpc_f24 *const *w, float *const *y, const int64_t *n, int64_t parts, int64_t m, int64_t k);
/// The column-band kernel used without AVX-512 (float sums, j in order; exposed for its test):
/// y[:, c0..<c1] of the product above.
void lpc_band_f24_scalar(const float *x, const lpc_f24 *w, float *y, int64_t m, int64_t n, int64_t k, int64_t c0, int64_t c1);
/// Scalar twin (double sums).
void lpc_gemv_kn_f24_reference(const float *x, const lpc_f24 *w, float *y, int64_t m, int64_t n, int64_t k);

#endif
