// How close the decode product kernels stream to a plain read, outside the runtime.
//
// One pass is a SmolLM2-135M decode step's weight products, as `lpc` runs them with `--weights
// auto` (f24 tiles for the 30 layers' Q/K/V, O, gate/up and down, float32 for the tied LM head
// read transposed): 432 MB, every matrix its own allocation, so each pass reads them cold from
// memory. The same bytes are then read plainly (AVX-512 loads, two halves per product on the
// same thread pool, one job per product as the kernels have). Printed per pass: both times, their
// ratio, the caller's wait at job ends, and per product kind the median time of each.
// Alternate it with a changed kernel and compare medians: the host's bandwidth drifts.
//
// Build and run (release flags, AVX-512 with VBMI):
//   S=Sources/CKernels
//   clang -O3 -mavx512f -mavx512bw -mavx512vl -mavx512vbmi -mfma -mf16c -I$S/include -I$S \
//       -o /tmp/bench_decode_products tools/bench_decode_products.c $S/lpc_f24.c $S/lpc_kernels.c \
//       $S/lpc_gemv_f24.c $S/lpc_gemv_half.c $S/lpc_bf16_lmhead.c -lpthread -lm
//   /tmp/bench_decode_products [passes]
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>
#include "lpc_kernels.h"
#include "lpc_f24.h"

enum { LAYERS = 30, HIDDEN = 576, FFN = 1536, QKV = 960, VOCAB = 49152, KINDS = 5 };
static const char *kind_names[KINDS] = {"q/k/v", "o", "gate/up", "down", "lm head"};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// A plain read of [p, p + n) in two halves, one per pool thread.
typedef struct { const char *p; int64_t n; } read_job;
static __m512i read_sink[2];
__attribute__((target("avx512f"))) static void read_half(void *ctx, int64_t t) {
    const read_job *job = ctx;
    int64_t half = job->n / 2 / 128 * 128, n = t ? job->n - half : half;
    const char *p = job->p + t * half;
    __m512i a = _mm512_setzero_si512(), b = a;
    for (int64_t i = 0; i + 128 <= n; i += 128) {
        a = _mm512_xor_si512(a, _mm512_loadu_si512(p + i));
        b = _mm512_xor_si512(b, _mm512_loadu_si512(p + i + 64));
    }
    read_sink[t] = _mm512_add_epi64(read_sink[t], _mm512_xor_si512(a, b)); // keeps the loads
}
static void read_plain(const void *p, int64_t n) {
    read_job job = {p, n};
    lpc_parallel_for(2, read_half, &job);
}

static lpc_f24 *tiles(const float *values, int64_t k, int64_t n) {
    lpc_f24 *w = aligned_alloc(64, (size_t)((k * n * 3 + 63) / 64 * 64));
    if (!w || lpc_f32_to_f24_tiles(values, w, k, n, 0, k) != 0) { fprintf(stderr, "packing failed\n"); exit(1); }
    return w;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, by_value);
    return v[n / 2];
}

int main(int argc, char **argv) {
    int passes = argc > 1 ? atoi(argv[1]) : 9;
    if (passes < 1 || passes > 1000 || !lpc_f24_supported()) {
        fprintf(stderr, "usage: %s [passes 1…1000] (needs AVX-512 with VBMI)\n", argv[0]);
        return 2;
    }
    lpc_set_threads(2);
    // Exact f24 values (low byte zero), any pattern: the kernels' speed does not depend on them.
    float *values = malloc(sizeof(float) * FFN * HIDDEN);
    for (int64_t i = 0; i < FFN * HIDDEN; i++) {
        float f = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
        uint32_t bits;
        memcpy(&bits, &f, 4);
        bits &= ~0xffu;
        memcpy(&values[i], &bits, 4);
    }
    lpc_f24 *qkv[LAYERS], *o[LAYERS], *gate[LAYERS], *up[LAYERS], *down[LAYERS];
    for (int l = 0; l < LAYERS; l++) {
        qkv[l] = tiles(values, HIDDEN, QKV);
        o[l] = tiles(values, HIDDEN, HIDDEN);
        gate[l] = tiles(values, HIDDEN, FFN);
        up[l] = tiles(values, HIDDEN, FFN);
        down[l] = tiles(values, FFN, HIDDEN);
    }
    float *head = aligned_alloc(64, sizeof(float) * VOCAB * HIDDEN); // [VOCAB, HIDDEN], read transposed
    for (int64_t i = 0; i < (int64_t)VOCAB * HIDDEN; i++) head[i] = (float)(i % 7) * 0.01f;
    static float x[FFN], y0[FFN], y1[FFN], logits[VOCAB];
    for (int i = 0; i < FFN; i++) x[i] = 0.01f * (float)(i % 13);

    double bytes = (double)LAYERS * (HIDDEN * QKV + HIDDEN * HIDDEN + 3.0 * HIDDEN * FFN) * 3 + (double)VOCAB * HIDDEN * 4;
    double *kernel_kind[KINDS], *read_kind[KINDS];
    for (int c = 0; c < KINDS; c++) {
        kernel_kind[c] = calloc((size_t)passes, sizeof(double));
        read_kind[c] = calloc((size_t)passes, sizeof(double));
    }
    double *kernel_total = calloc((size_t)passes, sizeof(double)), *read_total = calloc((size_t)passes, sizeof(double));
    printf("%.0f MB per pass\n", bytes / 1e6);
    for (int pass = 0; pass < passes; pass++) {
        lpc_pool_stats stats;
        lpc_pool_stats_reset();
        double start = now(), t;
        for (int l = 0; l < LAYERS; l++) {
            t = now(); lpc_gemv_kn_f24(x, qkv[l], y0, 1, QKV, HIDDEN); kernel_kind[0][pass] += now() - t;
            t = now(); lpc_gemv_kn_f24(x, o[l], y0, 1, HIDDEN, HIDDEN); kernel_kind[1][pass] += now() - t;
            const lpc_f24 *pair[2] = {gate[l], up[l]};
            float *outs[2] = {y0, y1};
            int64_t widths[2] = {FFN, FFN};
            t = now(); lpc_gemv_kn_multi_f24(x, pair, outs, widths, 2, 1, HIDDEN); kernel_kind[2][pass] += now() - t;
            t = now(); lpc_gemv_kn_f24(x, down[l], y0, 1, HIDDEN, FFN); kernel_kind[3][pass] += now() - t;
        }
        t = now(); lpc_gemv_f32(x, head, logits, 1, VOCAB, HIDDEN); kernel_kind[4][pass] += now() - t;
        kernel_total[pass] = now() - start;
        lpc_pool_stats_read(&stats);

        start = now();
        for (int l = 0; l < LAYERS; l++) {
            t = now(); read_plain(qkv[l], HIDDEN * QKV * 3); read_kind[0][pass] += now() - t;
            t = now(); read_plain(o[l], HIDDEN * HIDDEN * 3); read_kind[1][pass] += now() - t;
            t = now(); read_plain(gate[l], HIDDEN * FFN * 3); read_plain(up[l], HIDDEN * FFN * 3); read_kind[2][pass] += now() - t;
            t = now(); read_plain(down[l], HIDDEN * FFN * 3); read_kind[3][pass] += now() - t;
        }
        t = now(); read_plain(head, (int64_t)VOCAB * HIDDEN * 4); read_kind[4][pass] += now() - t;
        read_total[pass] = now() - start;
        printf("pass %2d: kernels %6.2f ms (%4.1f GB/s), plain read %6.2f ms (%4.1f GB/s), read/kernels %.2f, "
               "caller waited %.2f ms\n", pass, kernel_total[pass] * 1e3, bytes / kernel_total[pass] / 1e9,
               read_total[pass] * 1e3, bytes / read_total[pass] / 1e9, read_total[pass] / kernel_total[pass],
               stats.caller_wait_seconds * 1e3);
    }
    printf("medians: kernels %.2f ms, plain read %.2f ms\n", median(kernel_total, passes) * 1e3, median(read_total, passes) * 1e3);
    for (int c = 0; c < KINDS; c++) {
        double k = median(kernel_kind[c], passes), r = median(read_kind[c], passes);
        printf("  %-8s kernels %5.2f ms, plain read %5.2f ms, read/kernels %.2f\n", kind_names[c], k * 1e3, r * 1e3, r / k);
    }
    return 0;
}
