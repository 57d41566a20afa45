#include "lpc_sgemm.h"
#include "lpc_kernels.h"
#include "f24_simd.h"
#include "gemv_f24.h"
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

// C[m, n0..<n1] = A[m, k] · B[k, n0..<n1] with B the weights as stored ([K, N], row-major, read in
// place). Register tile: 8 rows × 48 columns = 24 zmm accumulators; per step p, three B vectors
// are loaded and each of the 8 A values is broadcast once and used three times (24 FMAs for 11
// loads). A is packed once per product (`lpc_sgemm_pack_a`: 8-row blocks, [k, 8] each), so a
// step's 8 values are adjacent and the loop needs one pointer per operand. The loops, outside in:
//   windows of LPC_SGEMM_NB columns;
//   K in chunks of LPC_SGEMM_KC, each chunk of the window's B rows copied into 48-column strips
//     [KC, 48] (float32 B's rows are ldb apart: 2–6 KiB strides map a chunk's rows onto a few L1
//     sets, where the row blocks would evict each other; a strip's copy, 24 KiB, stays in L1;
//     tiled f24 B's strips are contiguous pieces, widened as they are copied), the next chunk's
//     rows prefetched into L2 meanwhile;
//   48-column strips of the window;
//   8-row blocks of A (a remainder block of 1–7 rows);
//   the micro-kernel over the chunk's p in order.
// Between chunks the accumulators go to C and come back unchanged (a float store and load are
// exact), so every element is still one FMA chain over p = 0 … k-1 in order: the result equals
// the scalar twin bit for bit, whatever the chunking, window or row blocking.

#ifndef LPC_SGEMM_NB
#define LPC_SGEMM_NB 192
#endif
#ifndef LPC_SGEMM_PREFETCH
#define LPC_SGEMM_PREFETCH 1
#endif
#ifndef LPC_SGEMM_KC
#define LPC_SGEMM_KC 128
#endif

enum { MR = 8, NR = 48 };

int lpc_sgemm_available(void) { return lpc_simd_level() >= 3; }

// The micro-kernel for a rows × (16·nv) tile (rows ≤ 8, nv ≤ 3), the last vector masked by `last`.
// Called with constant rows/nv from the dispatch below, so the compiler unrolls it and keeps the
// accumulators in registers.
__attribute__((target("avx512f"), always_inline))
static inline void tile(const int rows, const int nv, __mmask16 last, int64_t kc, const float *a,
                        const float *b, int64_t ldb, float *c, int64_t ldc, int load_c) {
    __m512 acc[MR][3];
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nv; v++) {
            __mmask16 mask = v == nv - 1 ? last : (__mmask16)0xffff;
            acc[r][v] = load_c ? _mm512_maskz_loadu_ps(mask, c + r * ldc + 16 * v) : _mm512_setzero_ps();
        }
    for (int64_t p = 0; p < kc; p++) {
        const float *bp = b + p * ldb;
        __m512 bv[3];
        for (int v = 0; v < nv; v++)
            bv[v] = v == nv - 1 ? _mm512_maskz_loadu_ps(last, bp + 16 * v) : _mm512_loadu_ps(bp + 16 * v);
        for (int r = 0; r < rows; r++) {
            __m512 ar = _mm512_set1_ps(a[p * MR + r]);
            for (int v = 0; v < nv; v++) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < nv; v++) {
            __mmask16 mask = v == nv - 1 ? last : (__mmask16)0xffff;
            _mm512_mask_storeu_ps(c + r * ldc + 16 * v, mask, acc[r][v]);
        }
}

#define TILE_FN(R, V) \
__attribute__((target("avx512f"))) static void tile_##R##x##V(__mmask16 last, int64_t kc, const float *a, \
    const float *b, int64_t ldb, float *c, int64_t ldc, int load_c) { tile(R, V, last, kc, a, b, ldb, c, ldc, load_c); }
#define TILE_ROW(R) TILE_FN(R, 1) TILE_FN(R, 2) TILE_FN(R, 3)
TILE_ROW(1) TILE_ROW(2) TILE_ROW(3) TILE_ROW(4) TILE_ROW(5) TILE_ROW(6) TILE_ROW(7) TILE_ROW(8)

typedef void (*tile_fn)(__mmask16, int64_t, const float *, const float *, int64_t, float *, int64_t, int);
#define TILE_ENTRY(R) { tile_##R##x1, tile_##R##x2, tile_##R##x3 }
static const tile_fn tiles[MR][3] = {
    TILE_ENTRY(1), TILE_ENTRY(2), TILE_ENTRY(3), TILE_ENTRY(4), TILE_ENTRY(5), TILE_ENTRY(6), TILE_ENTRY(7), TILE_ENTRY(8),
};

// Copies rows k0 ..< k0+kc of B's columns j0 ..< j0+width (float32, row-major) into `packed` as
// 48-column strips, each [kc, 48] contiguous (the last strip's unused columns are zeros, never
// stored to C), and asks for the next chunk's rows of the same columns (prefetch into L2) while
// this one is used.
__attribute__((target("avx512f")))
static void pack_chunk_f32(const float *b, int64_t ldb, int64_t k0, int64_t kc, int64_t k, int64_t j0,
                           int64_t width, float *packed) {
    for (int64_t p = 0; p < kc; p++) {
        const float *row = b + (k0 + p) * ldb + j0;
        if (LPC_SGEMM_PREFETCH && k0 + kc + p < k) {
            const char *next = (const char *)(row + LPC_SGEMM_KC * ldb);
            for (int64_t off = 0; off < width * 4; off += 64) _mm_prefetch(next + off, _MM_HINT_T1);
        }
        // Whole strips: columns past `width` in the last one are zeros.
        for (int64_t col = 0; col < (width + NR - 1) / NR * NR; col += 16) {
            int64_t rest = width - col;
            __mmask16 mask = rest >= 16 ? (__mmask16)0xffff : rest > 0 ? (__mmask16)((1u << rest) - 1) : 0;
            _mm512_store_ps(packed + (col / NR * kc + p) * NR + col % NR, _mm512_maskz_loadu_ps(mask, row + col));
        }
    }
}

// The same for tiled f24 B [k, ldb] (lpc_f24.h), window columns bcol ..< bcol+width, widened
// exactly. With bcol on a strip's edge (every SmolLM2 product) each output strip is a stored
// strip, and its chunk is kc / 16 contiguous block pieces: one widening pass each, and the piece
// 128 rows on prefetched. Other windows (a side-by-side part starting inside a strip) are widened
// row by row, a stored strip's run at a time.
__attribute__((target("avx512f,avx512bw")))
static void pack_chunk_f24(const lpc_f24 *b24, int64_t ldb, int64_t k0, int64_t kc, int64_t k, int64_t bcol,
                           int64_t width, float *packed) {
    int64_t strips = (width + NR - 1) / NR;
    if (bcol % LPC_F24_STRIP != 0) { // row by row: the window's runs of each stored strip, then its output strips
        float row[LPC_SGEMM_NB + NR];
        for (int64_t p = 0; p < kc; p++) {
            lpc_f24_tiles_row_to_f32(b24, k, ldb, k0 + p, bcol, width, row);
            memset(row + width, 0, (size_t)(strips * NR - width) * sizeof(float));
            for (int64_t os = 0; os < strips; os++) memcpy(packed + (os * kc + p) * NR, row + os * NR, NR * sizeof(float));
        }
        return;
    }
    for (int64_t os = 0; os < strips; os++) {
        int64_t s0 = bcol + os * NR, stored = ldb - s0 < NR ? ldb - s0 : NR; // the stored strip's width
        float *out = packed + os * kc * NR;
        for (int64_t p0 = k0; p0 < k0 + kc;) {
            int64_t b0 = p0 / LPC_F24_BLOCK_ROWS * LPC_F24_BLOCK_ROWS;
            int64_t h = k - b0 < LPC_F24_BLOCK_ROWS ? k - b0 : LPC_F24_BLOCK_ROWS;
            int64_t p1 = b0 + h < k0 + kc ? b0 + h : k0 + kc;
            const lpc_f24 *src = b24 + b0 * ldb + s0 * h + (p0 - b0) * stored;
            if (LPC_SGEMM_PREFETCH && p0 + LPC_SGEMM_KC < k) {
                int64_t nb0 = b0 + LPC_SGEMM_KC, nh = k - nb0 < LPC_F24_BLOCK_ROWS ? k - nb0 : LPC_F24_BLOCK_ROWS;
                int64_t rows = p1 - p0 < nh - (p0 - b0) ? p1 - p0 : nh - (p0 - b0);
                const char *next = (const char *)(b24 + nb0 * ldb + s0 * nh + (p0 - b0) * stored);
                for (int64_t off = 0; off < rows * stored * 3; off += 64) _mm_prefetch(next + off, _MM_HINT_T1);
            }
            if (stored == NR) lpc_f24_widen_contiguous(src, out + (p0 - k0) * NR, (p1 - p0) * NR);
            else
                for (int64_t p = p0; p < p1; p++) {
                    float *row = out + (p - k0) * NR;
                    lpc_f24_to_f32_n(src + (p - p0) * stored, row, stored);
                    memset(row + stored, 0, (size_t)(NR - stored) * sizeof(float));
                }
            p0 = p1;
        }
    }
}

int64_t lpc_sgemm_packed_a_count(int64_t m, int64_t k) { return (m + MR - 1) / MR * MR * (k > 0 ? k : 0); }

// Eight rows × eight steps of A transposed into packed order (eight [8]-vectors of one step each).
__attribute__((target("avx2")))
static void pack_8x8(const float *a, int64_t lda, float *out) {
    __m256 r0 = _mm256_loadu_ps(a), r1 = _mm256_loadu_ps(a + lda), r2 = _mm256_loadu_ps(a + 2 * lda),
           r3 = _mm256_loadu_ps(a + 3 * lda), r4 = _mm256_loadu_ps(a + 4 * lda), r5 = _mm256_loadu_ps(a + 5 * lda),
           r6 = _mm256_loadu_ps(a + 6 * lda), r7 = _mm256_loadu_ps(a + 7 * lda);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3),
           t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5),
           t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee), u2 = _mm256_shuffle_ps(t1, t3, 0x44),
           u3 = _mm256_shuffle_ps(t1, t3, 0xee), u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee),
           u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
    _mm256_storeu_ps(out, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(out + 8, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(out + 16, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(out + 24, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(out + 32, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(out + 40, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(out + 48, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(out + 56, _mm256_permute2f128_ps(u3, u7, 0x31));
}

void lpc_sgemm_pack_a(int64_t m, int64_t k, const float *a, int64_t lda, float *packed) {
    int vector = lpc_simd_level() >= 2;
    for (int64_t i0 = 0; i0 < m; i0 += MR) {
        float *block = packed + i0 * k;
        int64_t p0 = 0;
        if (vector && m - i0 >= MR) for (; p0 + 8 <= k; p0 += 8) pack_8x8(a + i0 * lda + p0, lda, block + p0 * MR);
        for (int64_t r = 0; r < MR; r++) {
            const float *row = a + (i0 + r) * lda;
            if (i0 + r < m) for (int64_t p = p0; p < k; p++) block[p * MR + r] = row[p];
            else for (int64_t p = p0; p < k; p++) block[p * MR + r] = 0;
        }
    }
}

// B float32 (b, row-major, ldb) or tiled f24 (b24 [k, ldb], C's column j is B's column bcol + j).
__attribute__((target("avx512f,avx512bw")))
static void sgemm_avx512(int64_t m, int64_t n0, int64_t n1, int64_t k, const float *ap, const float *b,
                         const lpc_f24 *b24, int64_t ldb, int64_t bcol, float *c, int64_t ldc, int accumulate) {
    float packed[LPC_SGEMM_KC * LPC_SGEMM_NB] __attribute__((aligned(64)));
    for (int64_t w0 = n0; w0 < n1; w0 += LPC_SGEMM_NB) {
        int64_t width = n1 - w0 < LPC_SGEMM_NB ? n1 - w0 : LPC_SGEMM_NB;
        for (int64_t k0 = 0; k0 < k; k0 += LPC_SGEMM_KC) {
            int64_t kc = k - k0 < LPC_SGEMM_KC ? k - k0 : LPC_SGEMM_KC;
            int load_c = accumulate || k0 > 0;
            if (b24) pack_chunk_f24(b24, ldb, k0, kc, k, bcol + w0, width, packed);
            else pack_chunk_f32(b, ldb, k0, kc, k, w0, width, packed);
            for (int64_t s = 0; s * NR < width; s++) {
                int64_t j0 = w0 + s * NR, cols = width - s * NR < NR ? width - s * NR : NR;
                int nv = (int)((cols + 15) / 16);
                int64_t rest = cols - 16 * (nv - 1); // 1 … 16 columns in the last vector
                __mmask16 last = (__mmask16)(rest == 16 ? 0xffff : (1u << rest) - 1);
                const float *bt = packed + s * kc * NR;
                for (int64_t i0 = 0; i0 < m; i0 += MR) {
                    int rows = (int)(m - i0 < MR ? m - i0 : MR);
                    tiles[rows - 1][nv - 1](last, kc, ap + i0 * k + k0 * MR, bt, NR, c + i0 * ldc + j0, ldc, load_c);
                }
            }
        }
    }
}

void lpc_sgemm_f32_reference(int64_t m, int64_t n0, int64_t n1, int64_t k, const float *a, int64_t lda,
                             const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = n0; j < n1; j++) {
            float sum = accumulate ? c[i * ldc + j] : 0.0f;
            for (int64_t p = 0; p < k; p++) sum = __builtin_fmaf(a[i * lda + p], b[p * ldb + j], sum);
            c[i * ldc + j] = sum;
        }
}

// k = 0: C = 0 over the window (unchanged with accumulate). Returns whether there is work left.
static int trivial(int64_t m, int64_t n0, int64_t n1, int64_t k, float *c, int64_t ldc, int accumulate) {
    if (m <= 0 || n1 <= n0) return 1;
    if (k > 0) return 0;
    if (!accumulate)
        for (int64_t i = 0; i < m; i++) memset(c + i * ldc + n0, 0, (size_t)(n1 - n0) * sizeof(float));
    return 1;
}

// Scalar twin on the packed layout (no AVX-512): element (i, p) of A at packed_a[(i / 8) · 8k + p · 8 + i % 8];
// B float32 or tiled f24 (b24, C's column j at B's column bcol + j).
void lpc_sgemm_packed_reference(int64_t m, int64_t n0, int64_t n1, int64_t k, const float *packed_a, const float *b,
                                const lpc_f24 *b24, int64_t ldb, int64_t bcol, float *c, int64_t ldc, int accumulate) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = n0; j < n1; j++) {
            float sum = accumulate ? c[i * ldc + j] : 0.0f;
            for (int64_t p = 0; p < k; p++) {
                float bv = b24 ? lpc_f24_to_f32(b24[lpc_f24_tile_index(k, ldb, p, bcol + j)]) : b[p * ldb + j];
                sum = __builtin_fmaf(packed_a[(i / MR) * MR * k + p * MR + i % MR], bv, sum);
            }
            c[i * ldc + j] = sum;
        }
}

void lpc_sgemm_f32_packed(int64_t m, int64_t n0, int64_t n1, int64_t k, const float *packed_a,
                          const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate) {
    if (trivial(m, n0, n1, k, c, ldc, accumulate)) return;
    if (lpc_sgemm_available()) sgemm_avx512(m, n0, n1, k, packed_a, b, 0, ldb, 0, c, ldc, accumulate);
    else lpc_sgemm_packed_reference(m, n0, n1, k, packed_a, b, 0, ldb, 0, c, ldc, accumulate);
}

void lpc_sgemm_f24_packed(int64_t m, int64_t n0, int64_t n1, int64_t k, const float *packed_a,
                          const lpc_f24 *b, int64_t ldb, int64_t bcol, float *c, int64_t ldc, int accumulate) {
    if (trivial(m, n0, n1, k, c, ldc, accumulate)) return;
    if (lpc_sgemm_available()) sgemm_avx512(m, n0, n1, k, packed_a, 0, b, ldb, bcol, c, ldc, accumulate);
    else lpc_sgemm_packed_reference(m, n0, n1, k, packed_a, 0, b, ldb, bcol, c, ldc, accumulate);
}

void lpc_sgemm_f32(int64_t m, int64_t n0, int64_t n1, int64_t k, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate) {
    if (trivial(m, n0, n1, k, c, ldc, accumulate)) return;
    if (!lpc_sgemm_available()) { lpc_sgemm_f32_reference(m, n0, n1, k, a, lda, b, ldb, c, ldc, accumulate); return; }
    float *packed = malloc((size_t)lpc_sgemm_packed_a_count(m, k) * sizeof(float));
    if (!packed) { lpc_sgemm_f32_reference(m, n0, n1, k, a, lda, b, ldb, c, ldc, accumulate); return; }
    lpc_sgemm_pack_a(m, k, a, lda, packed);
    sgemm_avx512(m, n0, n1, k, packed, b, 0, ldb, 0, c, ldc, accumulate);
    free(packed);
}
