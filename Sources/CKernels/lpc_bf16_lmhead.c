// bf16 AMX LM head fused with log-softmax for LPC training (see include/lpc_bf16_lmhead.h).
//
// Layouts (bf16 = uint16_t bits, "tile" = 16 rows × 64 bytes = 512 bf16, AMX's B-operand format
// where each 64-byte row holds 16 columns × 2 consecutive K values):
//   wb1 [vocabPad/16][dPad/32] tiles: tile (vt, kt) row r = { W[16vt+n][32kt+2r], W[16vt+n][32kt+2r+1] : n < 16 }
//       → B operand of S[rows, 16 vocab] += H[rows, 32 d]·W[16 vocab, 32 d]ᵀ
//   wb2 [vocabPad/32][dPad/16] tiles: tile (vk, dt) row r = { W[32vk+2r][16dt+n], W[32vk+2r+1][16dt+n] : n < 16 }
//       → B operand of M[rows, 16 d] += P[rows, 32 vocab]·W[32 vocab, 16 d]
// Padding (vocab to the vocab block, d to 32) is zeros; padded vocab columns are masked out of
// the softmax, padded d columns stay zero.
#include "lpc_bf16_lmhead.h"
#include "lpc_simd_math.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define LPC_X86 1
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define VB LPC_BF16_VOCAB_BLOCK
#define TB LPC_BF16_ROW_BLOCK
#define TILE_ELEMS 512

uint16_t lpc_f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float lpc_bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// MARK: availability

static int amx_ok = 0;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void amx_probe(void) {
#if LPC_X86
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    int avx512f = (b >> 16) & 1, avx512bw = (b >> 30) & 1;
    int amx_bf16 = (d >> 22) & 1, amx_tile = (d >> 24) & 1;
    unsigned a1, b1, c1, d1;
    if (!__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) return;
    int avx512bf16 = (a1 >> 5) & 1;
    unsigned a2, b2, c2, d2;
    if (!__get_cpuid(1, &a2, &b2, &c2, &d2)) return;
    int osxsave = (c2 >> 27) & 1;
    if (!(avx512f && avx512bw && amx_bf16 && amx_tile && avx512bf16 && osxsave)) return;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    // XCR0: SSE, AVX, opmask + ZMM state (5..7), and XTILECFG/XTILEDATA (17, 18).
    unsigned need = (1u << 1) | (1u << 2) | (7u << 5) | (3u << 17);
    if ((lo & need) != need) return;
#if defined(__linux__)
    // Linux keeps the 8 KB tile state off until the process asks for it.
    if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) != 0) return;
#endif
    amx_ok = 1;
#endif
}

int lpc_amx_bf16_available(void) {
    pthread_once(&amx_once, amx_probe);
    return amx_ok;
}

// MARK: packing

struct lpc_bf16_head {
    int64_t vocab, d, vocabPad, dPad;
    uint16_t *wb1;  // [vocabPad/16][dPad/32] tiles
    uint16_t *wb2;  // [vocabPad/32][dPad/16] tiles
};

lpc_bf16_head *lpc_bf16_head_create(const float *w, int64_t vocab, int64_t d) {
    if (!lpc_amx_bf16_available() || vocab <= 0 || d <= 0 || !w) return NULL;
    lpc_bf16_head *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->vocab = vocab;
    h->d = d;
    h->vocabPad = round_up(vocab, VB);
    h->dPad = round_up(d, 32);
    size_t elems = (size_t)h->vocabPad * (size_t)h->dPad;
    h->wb1 = aligned_alloc(64, elems * 2);
    h->wb2 = aligned_alloc(64, elems * 2);
    if (!h->wb1 || !h->wb2) { lpc_bf16_head_destroy(h); return NULL; }
    const int64_t kts = h->dPad / 32, dts = h->dPad / 16;
    // W element (v, k) as bf16, zero in the padding.
#define WBF(v, k) (((v) < vocab && (k) < d) ? lpc_f32_to_bf16(w[(size_t)(v) * d + (k)]) : (uint16_t)0)
    for (int64_t vt = 0; vt < h->vocabPad / 16; vt++)
        for (int64_t kt = 0; kt < kts; kt++) {
            uint16_t *tile = h->wb1 + ((size_t)vt * kts + kt) * TILE_ELEMS;
            for (int r = 0; r < 16; r++)
                for (int n = 0; n < 16; n++) {
                    tile[r * 32 + 2 * n] = WBF(16 * vt + n, 32 * kt + 2 * r);
                    tile[r * 32 + 2 * n + 1] = WBF(16 * vt + n, 32 * kt + 2 * r + 1);
                }
        }
    for (int64_t vk = 0; vk < h->vocabPad / 32; vk++)
        for (int64_t dt = 0; dt < dts; dt++) {
            uint16_t *tile = h->wb2 + ((size_t)vk * dts + dt) * TILE_ELEMS;
            for (int r = 0; r < 16; r++)
                for (int n = 0; n < 16; n++) {
                    tile[r * 32 + 2 * n] = WBF(32 * vk + 2 * r, 16 * dt + n);
                    tile[r * 32 + 2 * n + 1] = WBF(32 * vk + 2 * r + 1, 16 * dt + n);
                }
        }
#undef WBF
    return h;
}

void lpc_bf16_head_destroy(lpc_bf16_head *h) {
    if (!h) return;
    free(h->wb1);
    free(h->wb2);
    free(h);
}

#if LPC_X86
// MARK: AMX kernels

#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

typedef struct {
    uint8_t palette_id, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} __attribute__((packed)) tile_config;

AMX_TARGET static void amx_configure(void) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    for (int i = 0; i < 8; i++) { cfg.rows[i] = 16; cfg.colsb[i] = 64; }
    _tile_loadconfig(&cfg);
}

// S [rowsPad, VB] = A · W[v0 .. v0+VB)ᵀ, A = the block's rows in bf16 packed as tiles
// [rowsPad/16][dPad/32] (contiguous 1 KB tile loads). rowsPad a multiple of 32. 2×2 tiles:
// C 0..3, A 4..5, B 6..7; each B pair (2 × kts KB) stays in L1 while all row pairs use it.
AMX_TARGET static void amx_logits(const lpc_bf16_head *h, const uint16_t *A, int64_t rowsPad, int64_t v0, float *S) {
    const int64_t kts = h->dPad / 32;
    for (int64_t vt = 0; vt < VB / 16; vt += 2) {
        const uint16_t *B0 = h->wb1 + (size_t)((v0 / 16) + vt) * kts * TILE_ELEMS;
        const uint16_t *B1 = B0 + (size_t)kts * TILE_ELEMS;
        for (int64_t r = 0; r < rowsPad; r += 32) {
            const uint16_t *a0 = A + (size_t)(r / 16) * kts * TILE_ELEMS, *a1 = a0 + (size_t)kts * TILE_ELEMS;
            _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
            for (int64_t kt = 0; kt < kts; kt++) {
                _tile_loadd(4, a0 + kt * TILE_ELEMS, 64);
                _tile_loadd(5, a1 + kt * TILE_ELEMS, 64);
                _tile_loadd(6, B0 + kt * TILE_ELEMS, 64);
                _tile_loadd(7, B1 + kt * TILE_ELEMS, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            float *s = S + (size_t)r * VB + vt * 16;
            _tile_stored(0, s, VB * 4);
            _tile_stored(1, s + 16, VB * 4);
            _tile_stored(2, s + 16 * VB, VB * 4);
            _tile_stored(3, s + 16 * VB + 16, VB * 4);
        }
    }
}

// M [rowsPad, dPad] += P · W[v0 .. v0+VB) [VB, dPad], P [rowsPad, VB] bf16 packed as tiles
// [rowsPad/16][VB/32] (written so by softmax_block).
AMX_TARGET static void amx_expected(const lpc_bf16_head *h, const uint16_t *P, int64_t rowsPad, int64_t v0, float *M) {
    const int64_t dts = h->dPad / 16, ldm = h->dPad * 4;
    const int64_t vk0 = v0 / 32;
    for (int64_t dt = 0; dt < dts; dt += 2) {
        for (int64_t r = 0; r < rowsPad; r += 32) {
            float *c = M + (size_t)r * h->dPad + dt * 16;
            _tile_loadd(0, c, ldm);
            _tile_loadd(1, c + 16, ldm);
            _tile_loadd(2, c + 16 * h->dPad, ldm);
            _tile_loadd(3, c + 16 * h->dPad + 16, ldm);
            const uint16_t *p0 = P + (size_t)(r / 16) * (VB / 32) * TILE_ELEMS, *p1 = p0 + (VB / 32) * TILE_ELEMS;
            for (int64_t k = 0; k < VB / 32; k++) {
                const uint16_t *b = h->wb2 + ((size_t)(vk0 + k) * dts + dt) * TILE_ELEMS;
                _tile_loadd(4, p0 + k * TILE_ELEMS, 64);
                _tile_loadd(5, p1 + k * TILE_ELEMS, 64);
                _tile_loadd(6, b, 64);
                _tile_loadd(7, b + TILE_ELEMS, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            _tile_stored(0, c, ldm);
            _tile_stored(1, c + 16, ldm);
            _tile_stored(2, c + 16 * h->dPad, ldm);
            _tile_stored(3, c + 16 * h->dPad + 16, ldm);
        }
    }
}

// One row's online-softmax update over one vocab block of `valid` logits s[0..valid):
// returns the new running max and updates *sum; writes P (bf16, zero past `valid`) when p != NULL,
// p pointing at the row's first element inside its row tile (columns j at p + (j/32)·512 + j%32).
AMX_TARGET static float softmax_block(const float *s, int64_t valid, float m, float *sum, uint16_t *p, float *alpha) {
    __m512 vmax = _mm512_set1_ps(-INFINITY);
    int64_t j = 0;
    for (; j + 16 <= valid; j += 16) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(s + j));
    __mmask16 tail = (__mmask16)((1u << (valid - j)) - 1);
    if (tail) vmax = _mm512_mask_max_ps(vmax, tail, vmax, _mm512_maskz_loadu_ps(tail, s + j));
    float bmax = _mm512_reduce_max_ps(vmax);
    float mnew = bmax > m ? bmax : m;
    *alpha = expf(m - mnew);  // 0 for the first block (m = −inf)
    __m512 vm = _mm512_set1_ps(mnew), acc = _mm512_setzero_ps();
    for (j = 0; j + 16 <= valid; j += 16) {
        __m512 e = lpc_exp512(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm));
        acc = _mm512_add_ps(acc, e);
        if (p) _mm256_storeu_si256((__m256i *)(p + (j / 32) * TILE_ELEMS + (j % 32)), (__m256i)_mm512_cvtneps_pbh(e));
    }
    for (; j < VB; j += 16) {  // the tail (and, for padded vocab, all-zero weights)
        __mmask16 mk = j < valid ? (__mmask16)((1u << (valid - j)) - 1) : 0;
        __m512 e = _mm512_maskz_mov_ps(mk, lpc_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, s + j), vm)));
        acc = _mm512_add_ps(acc, e);
        if (p) _mm256_storeu_si256((__m256i *)(p + (j / 32) * TILE_ELEMS + (j % 32)), (__m256i)_mm512_cvtneps_pbh(e));
    }
    *sum = *sum * *alpha + _mm512_reduce_add_ps(acc);
    return mnew;
}

AMX_TARGET static int amx_rows(const lpc_bf16_head *h, const float *hidden, const int32_t *ids, int64_t rows,
                               float *logp, float *expected) {
    const int64_t d = h->d, dPad = h->dPad;
    // Scratch: A [TB, dPad] bf16, S [TB, VB] f32, P [TB, VB] bf16, M [TB, dPad] f32, per-row state.
    size_t bytes = (size_t)TB * dPad * 2 + (size_t)TB * VB * 4 + (size_t)TB * VB * 2 + (size_t)TB * dPad * 4 + 3 * TB * 4;
    char *mem = aligned_alloc(64, round_up((int64_t)bytes, 64));
    if (!mem) return -2;
    uint16_t *A = (uint16_t *)mem;
    float *S = (float *)(A + (size_t)TB * dPad);
    uint16_t *P = (uint16_t *)(S + (size_t)TB * VB);
    float *M = (float *)(P + (size_t)TB * VB);
    float *mx = M + (size_t)TB * dPad, *sum = mx + TB, *target = sum + TB;
    const int wantM = expected != NULL;
    amx_configure();
    for (int64_t r0 = 0; r0 < rows; r0 += TB) {
        const int64_t n = rows - r0 < TB ? rows - r0 : TB, nPad = round_up(n, 32);
        memset(A, 0, (size_t)nPad * dPad * 2);
        for (int64_t t = 0; t < n; t++)
            for (int64_t k = 0; k < d; k++)
                A[((t / 16) * (dPad / 32) + k / 32) * TILE_ELEMS + (t % 16) * 32 + k % 32] = lpc_f32_to_bf16(hidden[(r0 + t) * d + k]);
        if (wantM) {
            memset(M, 0, (size_t)nPad * dPad * 4);
            memset(P, 0, (size_t)nPad * VB * 2);  // padded rows add nothing
        }
        for (int64_t t = 0; t < n; t++) { mx[t] = -INFINITY; sum[t] = 0; target[t] = NAN; }
        for (int64_t v0 = 0; v0 < h->vocab; v0 += VB) {
            const int64_t valid = h->vocab - v0 < VB ? h->vocab - v0 : VB;
            amx_logits(h, A, nPad, v0, S);
            for (int64_t t = 0; t < n; t++) {
                const float *s = S + t * VB;
                int64_t id = ids[r0 + t];
                if (id >= v0 && id < v0 + valid) target[t] = s[id - v0];
                float alpha;
                mx[t] = softmax_block(s, valid, mx[t], &sum[t], wantM ? P + (t / 16) * (VB / 32) * TILE_ELEMS + (t % 16) * 32 : NULL, &alpha);
                if (wantM && alpha != 1.0f) {
                    float *mr = M + t * dPad;
                    __m512 va = _mm512_set1_ps(alpha);
                    for (int64_t k = 0; k < dPad; k += 16) _mm512_storeu_ps(mr + k, _mm512_mul_ps(_mm512_loadu_ps(mr + k), va));
                }
            }
            if (wantM) amx_expected(h, P, nPad, v0, M);
        }
        for (int64_t t = 0; t < n; t++) {
            logp[r0 + t] = target[t] - mx[t] - logf(sum[t]);
            if (wantM) {
                const float inv = 1.0f / sum[t];
                for (int64_t k = 0; k < d; k++) expected[(r0 + t) * d + k] = M[t * dPad + k] * inv;
            }
        }
    }
    _tile_release();
    free(mem);
    return 0;
}
#endif

int lpc_bf16_head_token_logprobs(const lpc_bf16_head *h, const float *hidden, const int32_t *ids, int64_t rows,
                                 float *logp, float *expected) {
    for (int64_t t = 0; t < rows; t++)
        if (ids[t] < 0 || ids[t] >= h->vocab) return -1;
    if (rows <= 0) return 0;
#if LPC_X86
    return amx_rows(h, hidden, ids, rows, logp, expected);
#else
    return -2;  // no head can be created off x86
#endif
}

// MARK: reference twin

int lpc_bf16_head_token_logprobs_reference(const float *w, int64_t vocab, int64_t d, const float *hidden,
                                           const int32_t *ids, int64_t rows, float *logp, float *expected) {
    double *logits = malloc((size_t)vocab * sizeof(double));
    float *hb = malloc((size_t)d * sizeof(float));
    if (!logits || !hb) { free(logits); free(hb); return -2; }
    int rc = 0;
    for (int64_t t = 0; t < rows && rc == 0; t++) {
        if (ids[t] < 0 || ids[t] >= vocab) { rc = -1; break; }
        for (int64_t k = 0; k < d; k++) hb[k] = lpc_bf16_to_f32(lpc_f32_to_bf16(hidden[t * d + k]));
        double m = -INFINITY;
        for (int64_t v = 0; v < vocab; v++) {
            double acc = 0;
            for (int64_t k = 0; k < d; k++) acc += (double)hb[k] * lpc_bf16_to_f32(lpc_f32_to_bf16(w[v * d + k]));
            logits[v] = acc;
            if (acc > m) m = acc;
        }
        double s = 0;
        for (int64_t v = 0; v < vocab; v++) s += exp(logits[v] - m);
        logp[t] = (float)(logits[ids[t]] - m - log(s));
        if (expected) {
            for (int64_t k = 0; k < d; k++) {
                double acc = 0;
                for (int64_t v = 0; v < vocab; v++) acc += exp(logits[v] - m) / s * lpc_bf16_to_f32(lpc_f32_to_bf16(w[v * d + k]));
                expected[t * d + k] = (float)acc;
            }
        }
    }
    free(logits);
    free(hb);
    return rc;
}
