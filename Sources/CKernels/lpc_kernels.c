#include "lpc_kernels.h"
#include "lpc_bf16_lmhead.h"
#include "gemv_half.h"
#include "f24_simd.h"
#include "gemv_f24.h"
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <stdatomic.h>
#include <string.h>
#include <stdlib.h>
#include <math.h>

// MARK: - CPU dispatch

static int simd_level = -1;

int lpc_simd_level(void) {
    if (simd_level < 0) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) simd_level = 3;
        else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) simd_level = 2;
        else simd_level = 0;
    }
    return simd_level;
}

// MARK: - Thread pool

#define MAX_THREADS 64
static int pool_threads = 1;          // including the caller
static int pool_started = 0;          // workers created
static pthread_t workers[MAX_THREADS];
static pthread_mutex_t pool_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;
static _Atomic int64_t pool_generation = 0;
static _Atomic int pool_sleepers = 0;
// The current job: JOB_OPEN while the caller may still have tasks, plus the number of workers
// that joined it and have not finished. A worker joins only an open job; the caller closes the
// job when it runs out of tasks and then waits only for workers that joined. A worker the OS did
// not schedule in time never delays the caller (it finds the job closed and skips it).
#define JOB_OPEN 0x40000000
static _Atomic int pool_state = 0;
// The current job's unclaimed tasks [front, back): low 32 bits front, high 32 bits back. The
// caller and most workers claim from the front; worker 0 claims from the back, so it starts on
// the last task, whose weights it read ahead while idle (lpc_prefetch_weights).
static _Atomic uint64_t pool_range = 0;
static int pool_active = 0;            // workers taking part in the current job
static lpc_task_fn pool_fn;
static void *pool_ctx;

static int64_t claim_task(int from_back) {
    uint64_t range = atomic_load(&pool_range);
    for (;;) {
        uint64_t front = range & 0xffffffffu, back = range >> 32;
        if (front >= back) return -1;
        uint64_t next = from_back ? range - ((uint64_t)1 << 32) : range + 1;
        if (atomic_compare_exchange_weak(&pool_range, &range, next)) return (int64_t)(from_back ? back - 1 : front);
    }
}

// One job at a time (lpc_parallel_for); also guards the caller's statistics below.
static pthread_mutex_t job_mutex = PTHREAD_MUTEX_INITIALIZER;

// Balance statistics (lpc_pool_stats): the caller's under job_mutex; each worker's its own slot.
// Four clock reads per job on the caller, two on each worker: ~0.1 µs against jobs of tens of microseconds.
static int64_t stats_jobs, stats_caller_tasks, stats_caller_task_ns, stats_caller_wait_ns;
static _Atomic int64_t stats_worker_tasks[MAX_THREADS], stats_worker_task_ns[MAX_THREADS];

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// worker: the worker's index, or -1 for the caller.
static void run_tasks(int from_back, int worker) {
    int64_t t, tasks = 0, start = now_ns();
    while ((t = claim_task(from_back)) >= 0) { pool_fn(pool_ctx, t); tasks++; }
    int64_t spent = now_ns() - start;
    if (worker < 0) {
        stats_caller_tasks += tasks;
        stats_caller_task_ns += spent;
    } else {
        atomic_fetch_add_explicit(&stats_worker_tasks[worker], tasks, memory_order_relaxed);
        atomic_fetch_add_explicit(&stats_worker_task_ns[worker], spent, memory_order_relaxed);
    }
}

void lpc_pool_stats_read(lpc_pool_stats *out) {
    pthread_mutex_lock(&job_mutex);
    memset(out, 0, sizeof *out);
    out->jobs = stats_jobs;
    out->caller_tasks = stats_caller_tasks;
    out->caller_task_seconds = stats_caller_task_ns * 1e-9;
    out->caller_wait_seconds = stats_caller_wait_ns * 1e-9;
    for (int i = 0; i < MAX_THREADS; i++) {
        out->worker_tasks += atomic_load(&stats_worker_tasks[i]);
        out->worker_task_seconds += atomic_load(&stats_worker_task_ns[i]) * 1e-9;
    }
    pthread_mutex_unlock(&job_mutex);
}

void lpc_pool_stats_reset(void) {
    pthread_mutex_lock(&job_mutex);
    stats_jobs = stats_caller_tasks = stats_caller_task_ns = stats_caller_wait_ns = 0;
    for (int i = 0; i < MAX_THREADS; i++) {
        atomic_store(&stats_worker_tasks[i], 0);
        atomic_store(&stats_worker_task_ns[i], 0);
    }
    pthread_mutex_unlock(&job_mutex);
}

// Weight prefetch: between two matrix products of a decode step the caller runs small serial
// ops (norms, rotary, attention) while the memory bus idles. Worker 0 spends that time reading
// the end of the next product's weights (its first task: it claims from the back) into its
// caches, and stops as soon as a job arrives or the request is cancelled (the weights' owner is
// going away).
// A request is one word, so the worker never pairs one request's address with another's length:
// the address in the low 48 bits (user space), the length in cache lines in the high 16 (≤ 4 MiB).
static _Atomic uint64_t prefetch_request = 0;
static _Atomic int64_t prefetch_cancels = 0;
static _Atomic int prefetch_busy = 0;
static _Atomic int64_t prefetched_total = 0; // bytes read ahead so far (for tests)

int64_t lpc_prefetched_bytes(void) { return atomic_load(&prefetched_total); }
int lpc_prefetch_in_progress(void) { return atomic_load(&prefetch_busy); }

void lpc_prefetch_weights(const void *p, int64_t bytes) {
    uint64_t address = (uint64_t)(uintptr_t)p, lines = bytes > 0 ? (uint64_t)bytes / 64 : 0;
    if (pool_threads < 2 || !p || address >> 48 || lines == 0) return;
    if (lines > 0xffff) lines = 0xffff;
    atomic_store(&prefetch_request, address | lines << 48);
}

void lpc_prefetch_cancel(void) {
    atomic_store(&prefetch_request, 0);
    atomic_fetch_add(&prefetch_cancels, 1);
    while (atomic_load(&prefetch_busy)) _mm_pause(); // the worker checks every 4 KiB
}

// Touches one byte per cache line, 4 KiB at a time, until done, a new job (generation) shows,
// or a cancel. Marks itself busy before taking the request so a cancel can wait it out.
static void prefetch_until_job(int64_t seen) {
    atomic_store(&prefetch_busy, 1);
    int64_t cancels = atomic_load(&prefetch_cancels);
    uint64_t request = atomic_exchange(&prefetch_request, 0);
    const char *p = (const char *)(uintptr_t)(request & (((uint64_t)1 << 48) - 1));
    int64_t n = (int64_t)(request >> 48) * 64;
    char acc = 0;
    int64_t off = 0;
    while (p && off < n) {
        int64_t end = off + 4096 < n ? off + 4096 : n;
        for (int64_t i = off; i < end; i += 64) acc ^= ((const volatile char *)p)[i];
        off = end;
        if (atomic_load_explicit(&pool_generation, memory_order_relaxed) != seen ||
            atomic_load_explicit(&prefetch_cancels, memory_order_relaxed) != cancels) break;
    }
    atomic_fetch_add(&prefetched_total, off);
    atomic_store(&prefetch_busy, 0);
    (void)acc;
}

static void *worker_main(void *arg) {
    int index = (int)(intptr_t)arg;
    int64_t seen = 0;
    for (;;) {
        int spins = 0;
        int64_t gen;
        while ((gen = atomic_load(&pool_generation)) == seen) {
            if (index == 0 && atomic_load_explicit(&prefetch_request, memory_order_relaxed)) {
                prefetch_until_job(seen);
                spins = 0;
                continue;
            }
            if (++spins < 20000) { _mm_pause(); continue; }
            pthread_mutex_lock(&pool_mutex);
            atomic_fetch_add(&pool_sleepers, 1);
            while ((gen = atomic_load(&pool_generation)) == seen) pthread_cond_wait(&pool_cond, &pool_mutex);
            atomic_fetch_sub(&pool_sleepers, 1);
            pthread_mutex_unlock(&pool_mutex);
            break;
        }
        seen = gen;
        if (index >= pool_active) continue;
        int state = atomic_load(&pool_state);
        while ((state & JOB_OPEN) && !atomic_compare_exchange_weak(&pool_state, &state, state + 1)) {}
        if (!(state & JOB_OPEN)) continue; // closed: the caller did every task
        run_tasks(index == 0, index);
        atomic_fetch_sub(&pool_state, 1);
    }
    return 0;
}

void lpc_set_threads(int n) {
    if (n < 1) n = 1;
    if (n > MAX_THREADS) n = MAX_THREADS;
    pthread_mutex_lock(&pool_mutex);
    while (pool_started < n - 1) {
        pthread_create(&workers[pool_started], 0, worker_main, (void *)(intptr_t)pool_started);
        pool_started++;
    }
    pool_threads = n;
    pthread_mutex_unlock(&pool_mutex);
}

int lpc_get_threads(void) { return pool_threads; }

void lpc_parallel_for(int64_t tasks, lpc_task_fn fn, void *ctx) {
    int workers_wanted = pool_threads - 1;
    if (tasks < (int64_t)workers_wanted + 1) workers_wanted = (int)(tasks - 1);
    // One job at a time: a concurrent or nested caller runs its tasks itself (as does a job too
    // large for the 32-bit task range).
    if (workers_wanted <= 0 || tasks > 0x7fffffff || pthread_mutex_trylock(&job_mutex) != 0) {
        for (int64_t t = 0; t < tasks; t++) fn(ctx, t);
        return;
    }
    pool_fn = fn;
    pool_ctx = ctx;
    pool_active = workers_wanted;
    atomic_store(&pool_range, (uint64_t)tasks << 32);
    atomic_store(&pool_state, JOB_OPEN);
    atomic_fetch_add(&pool_generation, 1);
    if (atomic_load(&pool_sleepers) > 0) {
        pthread_mutex_lock(&pool_mutex);
        pthread_cond_broadcast(&pool_cond);
        pthread_mutex_unlock(&pool_mutex);
    }
    run_tasks(0, -1);
    // No task left to claim: close the job and wait for the workers that joined it to finish
    // theirs (yielding when that takes long: a busy machine preempts them).
    atomic_fetch_and(&pool_state, ~JOB_OPEN);
    int64_t wait_start = now_ns();
    int spins = 0;
    while (atomic_load(&pool_state) != 0) {
        if (++spins < 4000) _mm_pause();
        else sched_yield();
    }
    stats_caller_wait_ns += now_ns() - wait_start;
    stats_jobs++;
    pthread_mutex_unlock(&job_mutex);
}

// MARK: - gemv kernels: y[i, r] = dot(x[i, :], w[r, :])

__attribute__((target("avx512f")))
static inline float hsum512(__m512 v) { return _mm512_reduce_add_ps(v); }

__attribute__((target("avx2,fma")))
static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    __m128 shuf = _mm_movehdup_ps(lo);
    __m128 sums = _mm_add_ps(lo, shuf);
    shuf = _mm_movehl_ps(shuf, sums);
    sums = _mm_add_ss(sums, shuf);
    return _mm_cvtss_f32(sums);
}

// Weight loads as float vectors, for f32 and f16 storage.
#define LOAD512_F32(p) _mm512_loadu_ps(p)
#define LOAD512_F16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p)))
#define MLOAD512_F32(mask, p) _mm512_maskz_loadu_ps(mask, p)
#define MLOAD512_F16(mask, p) _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p))
#define LOAD256_F32(p) _mm256_loadu_ps(p)
#define LOAD256_F16(p) _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p)))
#define LOAD512_BF16(p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
#define MLOAD512_BF16(mask, p) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, p)), 16))
#define LOAD256_BF16(p) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p))), 16))
#define LOAD512_I16(p) _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)(p))))
#define MLOAD512_I16(mask, p) _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(mask, p)))
#define LOAD256_I16(p) _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(p))))

// Weight storage of a gemv: the element type behind `const void *w`.
enum { WT_F32 = 0, WT_F16 = 1, WT_BF16 = 2, WT_I16 = 3, WT_F24 = 4 }; // WT_I16: int16 bits, unscaled
static inline int64_t weight_size(int wt) { return wt == WT_F32 ? 4 : wt == WT_F24 ? 3 : 2; }
// f24 products split into tasks exactly as float32 ones do, so their sums are the same bits.
static inline int64_t split_size(int wt) { return wt == WT_F24 ? 4 : weight_size(wt); }

// Four weight rows at a time against one x row: four independent streams. The four rows are one
// block of memory: each step also prefetches its share of the block ROWS_PREFETCH_AHEAD further
// on into L2 (the LM head, 113 MB: 0.97 → 1.00 of a plain read of the same bytes in the same
// tasks, medians of six interleaved rounds of every SmolLM2 decode product on 2 threads).
#define ROWS_PREFETCH_AHEAD 32768
#define DEFINE_ROWS512(NAME, WT, LOAD, MLOAD, ATTR)                                               \
ATTR static void NAME(const float *x, const WT *w, float *y, int64_t m, int64_t n, int64_t k,    \
                      int64_t r0, int64_t r1) {                                                 \
    int64_t kv = k & ~(int64_t)15;                                                              \
    __mmask16 tail = (__mmask16)((1u << (k - kv)) - 1);                                         \
    int64_t r = r0;                                                                             \
    for (; r + 4 <= r1; r += 4) {                                                               \
        const WT *w0 = w + r * k, *w1 = w0 + k, *w2 = w1 + k, *w3 = w2 + k;                      \
        for (int64_t i = 0; i < m; i++) {                                                       \
            const float *xi = x + i * k;                                                        \
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                          \
            for (int64_t j = 0; j < kv; j += 16) {                                              \
                if (i == 0) {                                                                   \
                    const char *ahead = (const char *)w0 + ROWS_PREFETCH_AHEAD + 4 * sizeof(WT) * j; \
                    if (ahead + 4 * 16 * sizeof(WT) <= (const char *)(w + r1 * k))               \
                        for (int q = 0; q < 4 * 16 * (int)sizeof(WT); q += 64) _mm_prefetch(ahead + q, _MM_HINT_T1); \
                }                                                                               \
                __m512 xv = _mm512_loadu_ps(xi + j);                                            \
                a0 = _mm512_fmadd_ps(LOAD(w0 + j), xv, a0);                                     \
                a1 = _mm512_fmadd_ps(LOAD(w1 + j), xv, a1);                                     \
                a2 = _mm512_fmadd_ps(LOAD(w2 + j), xv, a2);                                     \
                a3 = _mm512_fmadd_ps(LOAD(w3 + j), xv, a3);                                     \
            }                                                                                   \
            if (kv < k) {                                                                       \
                __m512 xv = _mm512_maskz_loadu_ps(tail, xi + kv);                               \
                a0 = _mm512_fmadd_ps(MLOAD(tail, w0 + kv), xv, a0);                              \
                a1 = _mm512_fmadd_ps(MLOAD(tail, w1 + kv), xv, a1);                              \
                a2 = _mm512_fmadd_ps(MLOAD(tail, w2 + kv), xv, a2);                              \
                a3 = _mm512_fmadd_ps(MLOAD(tail, w3 + kv), xv, a3);                              \
            }                                                                                   \
            float *yi = y + i * n + r;                                                          \
            yi[0] = hsum512(a0); yi[1] = hsum512(a1); yi[2] = hsum512(a2); yi[3] = hsum512(a3); \
        }                                                                                       \
    }                                                                                           \
    for (; r < r1; r++) {                                                                       \
        const WT *w0 = w + r * k;                                                               \
        for (int64_t i = 0; i < m; i++) {                                                       \
            const float *xi = x + i * k;                                                        \
            __m512 a0 = _mm512_setzero_ps();                                                    \
            for (int64_t j = 0; j < kv; j += 16) a0 = _mm512_fmadd_ps(LOAD(w0 + j), _mm512_loadu_ps(xi + j), a0); \
            if (kv < k) a0 = _mm512_fmadd_ps(MLOAD(tail, w0 + kv), _mm512_maskz_loadu_ps(tail, xi + kv), a0); \
            y[i * n + r] = hsum512(a0);                                                         \
        }                                                                                       \
    }                                                                                           \
}

DEFINE_ROWS512(rows_f32_avx512, float, LOAD512_F32, MLOAD512_F32, __attribute__((target("avx512f"))))
// 16-bit weights (f16, bf16) use lpc_rows8_*_avx512 (lpc_gemv_half.c).

static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        if (mant == 0) bits = sign;
        else { // subnormal
            int e = -1;
            do { e++; mant <<= 1; } while (!(mant & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000 | (mant << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffff;
    if (absx >= 0x7f800000) return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000 ? 0x200 : 0));
    if (absx >= 0x477ff000) return (uint16_t)(sign | 0x7c00); // rounds to inf
    if (absx < 0x38800000) { // subnormal or zero in half
        if (absx < 0x33000000) return (uint16_t)sign;
        uint32_t mant = (absx & 0x7fffff) | 0x800000;
        int shift = 126 - (int)(absx >> 23); // 14..24
        uint32_t rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        uint32_t result = mant >> shift;
        if (rem > mid || (rem == mid && (result & 1))) result++;
        return (uint16_t)(sign | result);
    }
    uint32_t result = ((absx - 0x38000000) >> 13);
    uint32_t rem = absx & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (result & 1))) result++;
    return (uint16_t)(sign | result);
}

static inline float bf16_to_float(uint16_t b) { return lpc_bf16_to_f32(b); }
static inline float i16_to_float(uint16_t b) { return (float)(int16_t)b; }

static inline float f32_identity(float v) { return v; }

// Scalar fallbacks (no AVX2) over weights [n, k]: rows r0 ..< r1 of y, float sums.
#define DEFINE_ROWS_SCALAR(NAME, WT, TOFN)                                                      \
static void NAME(const float *x, const WT *w, float *y, int64_t m, int64_t n, int64_t k, int64_t r0, int64_t r1) { \
    for (int64_t r = r0; r < r1; r++)                                                           \
        for (int64_t i = 0; i < m; i++) {                                                       \
            float s = 0;                                                                        \
            for (int64_t j = 0; j < k; j++) s += x[i * k + j] * TOFN(w[r * k + j]);              \
            y[i * n + r] = s;                                                                   \
        }                                                                                       \
}
DEFINE_ROWS_SCALAR(rows_f32_scalar, float, f32_identity)
DEFINE_ROWS_SCALAR(rows_f16_scalar, uint16_t, half_to_float)
DEFINE_ROWS_SCALAR(rows_bf16_scalar, uint16_t, bf16_to_float)
DEFINE_ROWS_SCALAR(rows_i16_scalar, uint16_t, i16_to_float)

#define DEFINE_ROWS256(NAME, WT, LOAD)                                                          \
__attribute__((target("avx2,fma,f16c")))                                                        \
static void NAME(const float *x, const WT *w, float *y, int64_t m, int64_t n, int64_t k,         \
                 int64_t r0, int64_t r1) {                                                      \
    int64_t kv = k & ~(int64_t)7;                                                               \
    for (int64_t r = r0; r < r1; r++) {                                                         \
        const WT *w0 = w + r * k;                                                               \
        for (int64_t i = 0; i < m; i++) {                                                       \
            const float *xi = x + i * k;                                                        \
            __m256 a0 = _mm256_setzero_ps(), a1 = a0;                                           \
            int64_t j = 0;                                                                      \
            for (; j + 16 <= kv; j += 16) {                                                     \
                a0 = _mm256_fmadd_ps(LOAD(w0 + j), _mm256_loadu_ps(xi + j), a0);                 \
                a1 = _mm256_fmadd_ps(LOAD(w0 + j + 8), _mm256_loadu_ps(xi + j + 8), a1);        \
            }                                                                                   \
            for (; j < kv; j += 8) a0 = _mm256_fmadd_ps(LOAD(w0 + j), _mm256_loadu_ps(xi + j), a0); \
            float s = hsum256(_mm256_add_ps(a0, a1));                                           \
            for (; j < k; j++) s += xi[j] * TOF(w0[j]);                                          \
            y[i * n + r] = s;                                                                   \
        }                                                                                       \
    }                                                                                           \
}

#define TOF(v) ((float)(v))
DEFINE_ROWS256(rows_f32_avx2, float, LOAD256_F32)
#undef TOF
#define TOF(v) half_to_float(v)
DEFINE_ROWS256(rows_f16_avx2, uint16_t, LOAD256_F16)
#undef TOF
#define TOF(v) bf16_to_float(v)
DEFINE_ROWS256(rows_bf16_avx2, uint16_t, LOAD256_BF16)
#undef TOF
#define TOF(v) i16_to_float(v)
DEFINE_ROWS256(rows_i16_avx2, uint16_t, LOAD256_I16)
#undef TOF

typedef struct {
    const float *x;
    const void *w;
    float *y;
    int64_t m, n, k, chunk;
    int wt; // WT_*
} gemv_job;

static void gemv_task(void *ctx, int64_t t) {
    const gemv_job *j = (const gemv_job *)ctx;
    int64_t r0 = t * j->chunk, r1 = r0 + j->chunk;
    if (r1 > j->n) r1 = j->n;
    if (r0 >= r1) return;
    int level = lpc_simd_level();
    if (j->wt == WT_F16) {
        if (level == 3) lpc_rows8_f16_avx512(j->x, (const uint16_t *)j->w, j->y, j->m, j->n, j->k, r0, r1);
        else if (level == 2) rows_f16_avx2(j->x, (const uint16_t *)j->w, j->y, j->m, j->n, j->k, r0, r1);
        else rows_f16_scalar(j->x, (const uint16_t *)j->w, j->y, j->m, j->n, j->k, r0, r1);
    } else if (j->wt == WT_BF16) {
        if (level == 3) lpc_rows8_bf16_avx512(j->x, (const uint16_t *)j->w, j->y, j->m, j->n, j->k, r0, r1);
        else if (level == 2) rows_bf16_avx2(j->x, (const uint16_t *)j->w, j->y, j->m, j->n, j->k, r0, r1);
        else rows_bf16_scalar(j->x, (const uint16_t *)j->w, j->y, j->m, j->n, j->k, r0, r1);
    } else if (j->wt == WT_I16) {
        if (level == 3) lpc_rows8_i16_avx512(j->x, (const uint16_t *)j->w, j->y, j->m, j->n, j->k, r0, r1);
        else if (level == 2) rows_i16_avx2(j->x, (const uint16_t *)j->w, j->y, j->m, j->n, j->k, r0, r1);
        else rows_i16_scalar(j->x, (const uint16_t *)j->w, j->y, j->m, j->n, j->k, r0, r1);
    } else {
        if (level == 3) rows_f32_avx512(j->x, (const float *)j->w, j->y, j->m, j->n, j->k, r0, r1);
        else if (level == 2) rows_f32_avx2(j->x, (const float *)j->w, j->y, j->m, j->n, j->k, r0, r1);
        else rows_f32_scalar(j->x, (const float *)j->w, j->y, j->m, j->n, j->k, r0, r1);
    }
}

static void gemv(const float *x, const void *w, float *y, int64_t m, int64_t n, int64_t k, int wt) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) { memset(y, 0, (size_t)(m * n) * sizeof(float)); return; }
    int threads = pool_threads;
    // Chunks of whole 16-row groups; a few per thread so uneven cores even out, and for large
    // products (the LM head: 113 MB in float32) about 1 MiB each, so that the caller's wait for the
    // last task is short. Each row's sum is one task's, so the split never changes the bits.
    int64_t bytes = n * k * weight_size(wt);
    int64_t tasks = bytes < (1 << 16) ? 1 : (int64_t)threads * 4;
    if (bytes >> 20 > tasks) tasks = bytes >> 20;
    int64_t chunk = (n + tasks - 1) / tasks;
    chunk = (chunk + 15) & ~(int64_t)15;
    tasks = (n + chunk - 1) / chunk;
    gemv_job job = {x, w, y, m, n, k, chunk, wt};
    lpc_parallel_for(tasks, gemv_task, &job);
}

void lpc_gemv_f32(const float *x, const float *w, float *y, int64_t m, int64_t n, int64_t k) { gemv(x, w, y, m, n, k, WT_F32); }
void lpc_gemv_f16(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k) { gemv(x, w, y, m, n, k, WT_F16); }
void lpc_gemv_bf16(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k) { gemv(x, w, y, m, n, k, WT_BF16); }
void lpc_gemv_i16(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k) { gemv(x, w, y, m, n, k, WT_I16); }

// Reference twins, double sums: y[i, r] = Σ_j x[i, j] · w at r · R + j · J — weights [n, k]
// (R = k, J = 1: lpc_gemv_*_reference) or [k, n] (R = 1, J = n: lpc_gemv_kn_*_reference).
#define DEFINE_GEMV_REFERENCE(NAME, WT, TOFN, R, J)                                             \
void NAME(const float *x, const WT *w, float *y, int64_t m, int64_t n, int64_t k) {             \
    for (int64_t i = 0; i < m; i++)                                                             \
        for (int64_t r = 0; r < n; r++) {                                                       \
            double s = 0;                                                                       \
            for (int64_t j = 0; j < k; j++) s += (double)x[i * k + j] * TOFN(w[r * (R) + j * (J)]); \
            y[i * n + r] = (float)s;                                                            \
        }                                                                                       \
}
DEFINE_GEMV_REFERENCE(lpc_gemv_f32_reference, float, f32_identity, k, 1)
DEFINE_GEMV_REFERENCE(lpc_gemv_f16_reference, uint16_t, half_to_float, k, 1)
DEFINE_GEMV_REFERENCE(lpc_gemv_i16_reference, uint16_t, i16_to_float, k, 1)
DEFINE_GEMV_REFERENCE(lpc_gemv_bf16_reference, uint16_t, bf16_to_float, k, 1)

__attribute__((target("avx2,f16c")))
static void f32_to_f16_f16c(const float *src, uint16_t *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = float_to_half(src[i]);
}

void lpc_f32_to_f16(const float *src, uint16_t *dst, int64_t n) {
    if (lpc_simd_level() >= 2) { f32_to_f16_f16c(src, dst, n); return; }
    for (int64_t i = 0; i < n; i++) dst[i] = float_to_half(src[i]);
}

// Hardware conversion (vcvtph2ps, exact for every half value; a signalling NaN comes back quiet):
// the prefill path widens every f16 weight once per call, which the scalar loop made ~2x slower
// than the f32 prefill.
__attribute__((target("avx512f,avx512bw,avx512vl")))
static void f16_to_f32_avx512(const uint16_t *src, float *dst, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    if (i < n) {
        __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(dst + i, tail, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(tail, src + i)));
    }
}

void lpc_f16_to_f32(const uint16_t *src, float *dst, int64_t n) {
    if (lpc_simd_level() == 3) { f16_to_f32_avx512(src, dst, n); return; }
    for (int64_t i = 0; i < n; i++) dst[i] = half_to_float(src[i]);
}

__attribute__((target("avx512f,avx512bw")))
static void f32_to_bf16_avx512(const float *src, uint16_t *dst, int64_t n) {
    // Round to nearest even on the bits, as lpc_f32_to_bf16; NaNs become quiet NaNs.
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
    const __m512i absmask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i u = _mm512_loadu_si512((const void *)(src + i));
        __m512i rounded = _mm512_add_epi32(_mm512_add_epi32(u, bias), _mm512_and_si512(_mm512_srli_epi32(u, 16), one));
        __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, absmask), inf);
        rounded = _mm512_mask_or_epi32(rounded, nan, u, _mm512_set1_epi32(0x400000)); // quiet bit, unrounded
        _mm256_storeu_si256((__m256i *)(dst + i), _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16)));
    }
    for (; i < n; i++) dst[i] = lpc_f32_to_bf16(src[i]);
}

void lpc_f32_to_bf16_n(const float *src, uint16_t *dst, int64_t n) {
    if (lpc_simd_level() == 3) { f32_to_bf16_avx512(src, dst, n); return; }
    for (int64_t i = 0; i < n; i++) dst[i] = lpc_f32_to_bf16(src[i]);
}

void lpc_bf16_to_f32_n(const uint16_t *src, float *dst, int64_t n) {
    // Exact: a bfloat16 is the high half of a float32.
    uint32_t *out = (uint32_t *)dst;
    for (int64_t i = 0; i < n; i++) out[i] = (uint32_t)src[i] << 16;
}

void lpc_i16_to_f32_n(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = i16_to_float(src[i]); // exact
}

// Symmetric int16 with one float32 scale per output: scale = max |w| / 32767 over the output's
// weights (1 when they are all zero), q = round(w / scale) to nearest even. -1 on a non-finite weight.
// Rounding by adding and subtracting 1.5·2^23 (exact to nearest even for |v| < 2^22, and it
// vectorises, unlike nearbyintf); |w / scale| ≤ 32767 up to the division's rounding.
static inline uint16_t i16_of(float v) {
    float r = (v + 12582912.0f) - 12582912.0f;
    if (r > 32767.0f) r = 32767.0f;
    if (r < -32767.0f) r = -32767.0f;
    return (uint16_t)(int16_t)r;
}

int lpc_f32_to_i16_columns(const float *w, uint16_t *q, float *scale, int64_t k, int64_t n) {
    // Row-major passes (w [k, n] is read in memory order): column maxima, then the integers.
    for (int64_t c = 0; c < n; c++) scale[c] = 0;
    for (int64_t j = 0; j < k; j++) {
        const float *row = w + j * n;
        for (int64_t c = 0; c < n; c++) {
            if (!(row[c] - row[c] == 0)) return -1; // inf or NaN
            float a = fabsf(row[c]);
            scale[c] = a > scale[c] ? a : scale[c];
        }
    }
    for (int64_t c = 0; c < n; c++) scale[c] = scale[c] > 0 ? scale[c] / 32767.0f : 1.0f;
    for (int64_t j = 0; j < k; j++) {
        const float *row = w + j * n;
        uint16_t *out = q + j * n;
        for (int64_t c = 0; c < n; c++) out[c] = i16_of(row[c] / scale[c]);
    }
    return 0;
}

int lpc_f32_to_i16_rows(const float *w, uint16_t *q, float *scale, int64_t n, int64_t k) {
    for (int64_t r = 0; r < n; r++) {
        const float *row = w + r * k;
        float top = 0;
        for (int64_t j = 0; j < k; j++) {
            if (!(row[j] - row[j] == 0)) return -1;
            float a = fabsf(row[j]);
            top = a > top ? a : top;
        }
        float s = top > 0 ? top / 32767.0f : 1.0f;
        scale[r] = s;
        for (int64_t j = 0; j < k; j++) q[r * k + j] = i16_of(row[j] / s);
    }
    return 0;
}

// MARK: - gemv over weights stored [K, N] (as ONNX MatMul keeps them): y[i, c] = sum_j x[i, j] w[j, c]
// Each task owns a band of columns and streams every weight row's slice of that band, keeping
// its slice of y in L1.

#define DEFINE_KN512(NAME, WT, LOAD, MLOAD, ATTR)                                                \
ATTR static void NAME(const float *x, const WT *w, float *y, int64_t m, int64_t n, int64_t k,    \
                      int64_t c0, int64_t c1) {                                                 \
    int64_t width = c1 - c0, cv = c0 + (width & ~(int64_t)15);                                  \
    __mmask16 tail = (__mmask16)((1u << (c1 - cv)) - 1);                                        \
    for (int64_t i = 0; i < m; i++) memset(y + i * n + c0, 0, (size_t)width * sizeof(float));  \
    for (int64_t j = 0; j < k; j++) {                                                           \
        const WT *wj = w + j * n;                                                               \
        for (int64_t i = 0; i < m; i++) {                                                       \
            __m512 xb = _mm512_set1_ps(x[i * k + j]);                                           \
            float *yi = y + i * n;                                                              \
            int64_t c = c0;                                                                     \
            for (; c + 64 <= cv; c += 64) {                                                     \
                _mm512_storeu_ps(yi + c, _mm512_fmadd_ps(LOAD(wj + c), xb, _mm512_loadu_ps(yi + c)));                \
                _mm512_storeu_ps(yi + c + 16, _mm512_fmadd_ps(LOAD(wj + c + 16), xb, _mm512_loadu_ps(yi + c + 16))); \
                _mm512_storeu_ps(yi + c + 32, _mm512_fmadd_ps(LOAD(wj + c + 32), xb, _mm512_loadu_ps(yi + c + 32))); \
                _mm512_storeu_ps(yi + c + 48, _mm512_fmadd_ps(LOAD(wj + c + 48), xb, _mm512_loadu_ps(yi + c + 48))); \
            }                                                                                   \
            for (; c < cv; c += 16)                                                             \
                _mm512_storeu_ps(yi + c, _mm512_fmadd_ps(LOAD(wj + c), xb, _mm512_loadu_ps(yi + c)));                \
            if (cv < c1)                                                                        \
                _mm512_mask_storeu_ps(yi + cv, tail, _mm512_fmadd_ps(MLOAD(tail, wj + cv), xb, _mm512_maskz_loadu_ps(tail, yi + cv))); \
        }                                                                                       \
    }                                                                                           \
}

DEFINE_KN512(kn_f32_avx512, float, LOAD512_F32, MLOAD512_F32, __attribute__((target("avx512f"))))
DEFINE_KN512(kn_f16_avx512, uint16_t, LOAD512_F16, MLOAD512_F16, __attribute__((target("avx512f,avx512bw,avx512vl"))))
DEFINE_KN512(kn_bf16_avx512, uint16_t, LOAD512_BF16, MLOAD512_BF16, __attribute__((target("avx512f,avx512bw,avx512vl"))))
DEFINE_KN512(kn_i16_avx512, uint16_t, LOAD512_I16, MLOAD512_I16, __attribute__((target("avx512f,avx512bw,avx512vl"))))

#define DEFINE_KN256(NAME, WT, LOAD, TOFN)                                                       \
__attribute__((target("avx2,fma,f16c")))                                                        \
static void NAME(const float *x, const WT *w, float *y, int64_t m, int64_t n, int64_t k,         \
                 int64_t c0, int64_t c1) {                                                      \
    int64_t width = c1 - c0, cv = c0 + (width & ~(int64_t)7);                                   \
    for (int64_t i = 0; i < m; i++) memset(y + i * n + c0, 0, (size_t)width * sizeof(float));  \
    for (int64_t j = 0; j < k; j++) {                                                           \
        const WT *wj = w + j * n;                                                               \
        for (int64_t i = 0; i < m; i++) {                                                       \
            float xs = x[i * k + j];                                                            \
            __m256 xb = _mm256_set1_ps(xs);                                                     \
            float *yi = y + i * n;                                                              \
            int64_t c = c0;                                                                     \
            for (; c < cv; c += 8)                                                              \
                _mm256_storeu_ps(yi + c, _mm256_fmadd_ps(LOAD(wj + c), xb, _mm256_loadu_ps(yi + c))); \
            for (; c < c1; c++) yi[c] += xs * TOFN(wj[c]);                                      \
        }                                                                                       \
    }                                                                                           \
}

DEFINE_KN256(kn_f32_avx2, float, LOAD256_F32, f32_identity)
DEFINE_KN256(kn_f16_avx2, uint16_t, LOAD256_F16, half_to_float)
DEFINE_KN256(kn_bf16_avx2, uint16_t, LOAD256_BF16, bf16_to_float)
DEFINE_KN256(kn_i16_avx2, uint16_t, LOAD256_I16, i16_to_float)

#define DEFINE_KN_SCALAR(NAME, WT, TOFN)                                                        \
static void NAME(const float *x, const WT *w, float *y, int64_t m, int64_t n, int64_t k,         \
                 int64_t c0, int64_t c1) {                                                      \
    for (int64_t i = 0; i < m; i++)                                                             \
        for (int64_t c = c0; c < c1; c++) {                                                     \
            float s = 0;                                                                        \
            for (int64_t j = 0; j < k; j++) s += x[i * k + j] * TOFN(w[j * n + c]);              \
            y[i * n + c] = s;                                                                   \
        }                                                                                       \
}
DEFINE_KN_SCALAR(kn_f32_scalar, float, f32_identity)
DEFINE_KN_SCALAR(kn_f16_scalar, uint16_t, half_to_float)
DEFINE_KN_SCALAR(kn_bf16_scalar, uint16_t, bf16_to_float)
DEFINE_KN_SCALAR(kn_i16_scalar, uint16_t, i16_to_float)

// K-split: task s of S owns weight rows [k·s/S, k·(s+1)/S), a contiguous block of memory, and
// writes its partial y[m, n] into its own scratch row; the caller sums the S partials. Four
// weight rows are streamed at once (four sequential streams for the prefetchers) and y stays
// in L1. Used when a column band would be too narrow to stream well (n ≤ KSPLIT_MAX_N).
#define KSPLIT_MAX_N 4096

#define DEFINE_KSPLIT512(NAME, WT, LOAD, MLOAD, ATTR)                                            \
ATTR static void NAME(const float *x, const WT *w, float *part, int64_t m, int64_t n, int64_t k, \
                      int64_t j0, int64_t j1) {                                                 \
    int64_t nv = n & ~(int64_t)15;                                                              \
    __mmask16 tail = (__mmask16)((1u << (n - nv)) - 1);                                         \
    memset(part, 0, (size_t)(m * n) * sizeof(float));                                          \
    int64_t j = j0;                                                                             \
    for (; j + 4 <= j1; j += 4) {                                                               \
        const WT *w0 = w + j * n, *w1 = w0 + n, *w2 = w1 + n, *w3 = w2 + n;                      \
        for (int64_t i = 0; i < m; i++) {                                                       \
            const float *xi = x + i * k + j;                                                    \
            __m512 x0 = _mm512_set1_ps(xi[0]), x1 = _mm512_set1_ps(xi[1]);                     \
            __m512 x2 = _mm512_set1_ps(xi[2]), x3 = _mm512_set1_ps(xi[3]);                     \
            float *yi = part + i * n;                                                           \
            int64_t c = 0;                                                                      \
            for (; c < nv; c += 16) {                                                           \
                __m512 a = _mm512_fmadd_ps(LOAD(w0 + c), x0, _mm512_loadu_ps(yi + c));           \
                __m512 b = _mm512_mul_ps(LOAD(w1 + c), x1);                                     \
                a = _mm512_fmadd_ps(LOAD(w2 + c), x2, a);                                       \
                b = _mm512_fmadd_ps(LOAD(w3 + c), x3, b);                                       \
                _mm512_storeu_ps(yi + c, _mm512_add_ps(a, b));                                  \
            }                                                                                   \
            if (nv < n) {                                                                       \
                __m512 a = _mm512_fmadd_ps(MLOAD(tail, w0 + nv), x0, _mm512_maskz_loadu_ps(tail, yi + nv)); \
                __m512 b = _mm512_mul_ps(MLOAD(tail, w1 + nv), x1);                             \
                a = _mm512_fmadd_ps(MLOAD(tail, w2 + nv), x2, a);                               \
                b = _mm512_fmadd_ps(MLOAD(tail, w3 + nv), x3, b);                               \
                _mm512_mask_storeu_ps(yi + nv, tail, _mm512_add_ps(a, b));                      \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
    for (; j < j1; j++) {                                                                       \
        const WT *w0 = w + j * n;                                                               \
        for (int64_t i = 0; i < m; i++) {                                                       \
            __m512 x0 = _mm512_set1_ps(x[i * k + j]);                                           \
            float *yi = part + i * n;                                                           \
            int64_t c = 0;                                                                      \
            for (; c < nv; c += 16)                                                             \
                _mm512_storeu_ps(yi + c, _mm512_fmadd_ps(LOAD(w0 + c), x0, _mm512_loadu_ps(yi + c))); \
            if (nv < n)                                                                         \
                _mm512_mask_storeu_ps(yi + nv, tail, _mm512_fmadd_ps(MLOAD(tail, w0 + nv), x0, _mm512_maskz_loadu_ps(tail, yi + nv))); \
        }                                                                                       \
    }                                                                                           \
}

DEFINE_KSPLIT512(ksplit_f32_avx512, float, LOAD512_F32, MLOAD512_F32, __attribute__((target("avx512f"))))
// f24 weights use lpc_ksplit4_f24_avx512 (lpc_gemv_f24.c: this arithmetic, with prefetching).
// 16-bit weights use lpc_ksplit8_*_avx512 (lpc_gemv_half.c: eight rows per pass, prefetching).

// Several products sharing x (Q/K/V, gate/up) in one parallel region: part p has weights w[p]
// [k, n[p]] and output y[p] [m, n[p]].
#define KN_MAX_PARTS 8
typedef struct {
    const float *x;
    const void *w[KN_MAX_PARTS];
    float *y[KN_MAX_PARTS];
    int64_t n[KN_MAX_PARTS];
    float *scratch[KN_MAX_PARTS]; // [splits, m, n[p]] partials (K-split parts), else NULL
    int64_t first[KN_MAX_PARTS + 1]; // first task of each part
    int64_t chunk[KN_MAX_PARTS];     // K rows (K-split) or columns (band split) per task
    int64_t m, k;
    int parts, wt; // WT_*
} kn_job;

static void kn_multi_task(void *ctx, int64_t t) {
    const kn_job *j = (const kn_job *)ctx;
    int p = 0;
    while (t >= j->first[p + 1]) p++;
    int64_t s = t - j->first[p], n = j->n[p];
    int level = lpc_simd_level();
    if (j->scratch[p]) {
        int64_t r0 = s * j->chunk[p], r1 = r0 + j->chunk[p];
        if (r1 > j->k) r1 = j->k;
        float *part = j->scratch[p] + s * j->m * n;
        if (r0 >= r1) { memset(part, 0, (size_t)(j->m * n) * sizeof(float)); return; }
        if (j->wt == WT_F16) lpc_ksplit8_f16_avx512(j->x, (const uint16_t *)j->w[p], part, j->m, n, j->k, r0, r1);
        else if (j->wt == WT_BF16) lpc_ksplit8_bf16_avx512(j->x, (const uint16_t *)j->w[p], part, j->m, n, j->k, r0, r1);
        else if (j->wt == WT_I16) lpc_ksplit8_i16_avx512(j->x, (const uint16_t *)j->w[p], part, j->m, n, j->k, r0, r1);
        else if (j->wt == WT_F24) lpc_ksplit4_f24_avx512(j->x, (const lpc_f24 *)j->w[p], part, j->m, n, j->k, r0, r1);
        else ksplit_f32_avx512(j->x, (const float *)j->w[p], part, j->m, n, j->k, r0, r1);
        return;
    }
    int64_t c0 = s * j->chunk[p], c1 = c0 + j->chunk[p];
    if (c1 > n) c1 = n;
    if (c0 >= c1) return;
    if (level == 3 && j->wt != WT_F32 && j->wt != WT_F24 && c0 == 0 && c1 == n) {
        // One task for the whole product (a small part, e.g. K or V): the 8-row kernel writes y
        // directly; the column-band kernel would load and store y once per weight row.
        if (j->wt == WT_F16) lpc_ksplit8_f16_avx512(j->x, (const uint16_t *)j->w[p], j->y[p], j->m, n, j->k, 0, j->k);
        else if (j->wt == WT_BF16) lpc_ksplit8_bf16_avx512(j->x, (const uint16_t *)j->w[p], j->y[p], j->m, n, j->k, 0, j->k);
        else lpc_ksplit8_i16_avx512(j->x, (const uint16_t *)j->w[p], j->y[p], j->m, n, j->k, 0, j->k);
        return;
    }
    if (j->wt == WT_F16) {
        if (level == 3) kn_f16_avx512(j->x, (const uint16_t *)j->w[p], j->y[p], j->m, n, j->k, c0, c1);
        else if (level == 2) kn_f16_avx2(j->x, (const uint16_t *)j->w[p], j->y[p], j->m, n, j->k, c0, c1);
        else kn_f16_scalar(j->x, (const uint16_t *)j->w[p], j->y[p], j->m, n, j->k, c0, c1);
    } else if (j->wt == WT_BF16) {
        if (level == 3) kn_bf16_avx512(j->x, (const uint16_t *)j->w[p], j->y[p], j->m, n, j->k, c0, c1);
        else if (level == 2) kn_bf16_avx2(j->x, (const uint16_t *)j->w[p], j->y[p], j->m, n, j->k, c0, c1);
        else kn_bf16_scalar(j->x, (const uint16_t *)j->w[p], j->y[p], j->m, n, j->k, c0, c1);
    } else if (j->wt == WT_I16) {
        if (level == 3) kn_i16_avx512(j->x, (const uint16_t *)j->w[p], j->y[p], j->m, n, j->k, c0, c1);
        else if (level == 2) kn_i16_avx2(j->x, (const uint16_t *)j->w[p], j->y[p], j->m, n, j->k, c0, c1);
        else kn_i16_scalar(j->x, (const uint16_t *)j->w[p], j->y[p], j->m, n, j->k, c0, c1);
    } else if (j->wt == WT_F24) {
        // No AVX2 kernel: f24 storage is chosen only with AVX-512 (lpc_f24_supported).
        if (level == 3) lpc_band_f24_avx512(j->x, (const lpc_f24 *)j->w[p], j->y[p], j->m, n, j->k, c0, c1);
        else lpc_band_f24_scalar(j->x, (const lpc_f24 *)j->w[p], j->y[p], j->m, n, j->k, c0, c1);
    } else {
        if (level == 3) kn_f32_avx512(j->x, (const float *)j->w[p], j->y[p], j->m, n, j->k, c0, c1);
        else if (level == 2) kn_f32_avx2(j->x, (const float *)j->w[p], j->y[p], j->m, n, j->k, c0, c1);
        else kn_f32_scalar(j->x, (const float *)j->w[p], j->y[p], j->m, n, j->k, c0, c1);
    }
}

__attribute__((target("avx512f")))
static void sum_partials_avx512(const float *scratch, float *y, int64_t count, int64_t splits) {
    int64_t v = count & ~(int64_t)15;
    for (int64_t c = 0; c < v; c += 16) {
        __m512 a = _mm512_loadu_ps(scratch + c);
        for (int64_t s = 1; s < splits; s++) a = _mm512_add_ps(a, _mm512_loadu_ps(scratch + s * count + c));
        _mm512_storeu_ps(y + c, a);
    }
    for (int64_t c = v; c < count; c++) {
        float a = scratch[c];
        for (int64_t s = 1; s < splits; s++) a += scratch[s * count + c];
        y[c] = a;
    }
}

static void gemv_kn_multi(const float *x, const void *const *w, float *const *y, const int64_t *n, int parts,
                          int64_t m, int64_t k, int wt) {
    if (m <= 0 || parts <= 0) return;
    if (parts > KN_MAX_PARTS) {
        gemv_kn_multi(x, w, y, n, KN_MAX_PARTS, m, k, wt);
        gemv_kn_multi(x, w + KN_MAX_PARTS, y + KN_MAX_PARTS, n + KN_MAX_PARTS, parts - KN_MAX_PARTS, m, k, wt);
        return;
    }
    kn_job job;
    memset(&job, 0, sizeof job);
    job.x = x; job.m = m; job.k = k; job.parts = parts; job.wt = wt;
    int threads = pool_threads;
    int ksplit = lpc_simd_level() == 3 && (wt != WT_F24 || lpc_f24_supported()); // the f24 K-split needs VBMI
    int64_t total_bytes = 0;
    for (int p = 0; p < parts; p++) total_bytes += n[p] * k * split_size(wt);
    size_t scratch_floats = 0;
    int64_t tasks = 0;
    for (int p = 0; p < parts; p++) {
        job.w[p] = w[p]; job.y[p] = y[p]; job.n[p] = n[p];
        job.first[p] = tasks;
        if (n[p] <= 0) { job.chunk[p] = 1; continue; }
        if (k <= 0) { memset(y[p], 0, (size_t)(m * n[p]) * sizeof(float)); job.chunk[p] = 1; continue; }
        int64_t bytes = n[p] * k * split_size(wt);
        // About two tasks per thread for the whole job, each part's count in proportion to its
        // bytes, rounded to nearest (at least one): tasks of near-equal size. Rounding up gave
        // Q/K/V 3 + 1 + 1 equal tasks, so one of two threads did three (measured: the Q/K/V
        // product ran at 25 GB/s against 30–37 for the others; 2 + 1 + 1 balances it).
        int64_t want = total_bytes < (1 << 16) ? 1 : ((int64_t)threads * 2 * bytes + total_bytes / 2) / total_bytes;
        if (want < 1) want = 1;
        if (ksplit && n[p] <= KSPLIT_MAX_N && want > 1) {
            int64_t chunk = (k + want - 1) / want;
            // Whole passes of the kernel: four rows (f32, f24), eight (16-bit weights); for f24 whole
            // blocks of its tiles (16 rows), so that a task reads one contiguous range, and for f32
            // the same cut, so that the two give the same bits.
            int64_t rows_per_pass = wt == WT_F32 || wt == WT_F24 ? LPC_F24_BLOCK_ROWS : 8;
            chunk = (chunk + rows_per_pass - 1) / rows_per_pass * rows_per_pass;
            job.chunk[p] = chunk;
            int64_t splits = (k + chunk - 1) / chunk;
            tasks += splits;
            scratch_floats += (size_t)(splits * m * n[p]);
            job.scratch[p] = (float *)1; // marked; assigned below
        } else {
            int64_t chunk = (n[p] + want - 1) / want;
            chunk = (chunk + 15) & ~(int64_t)15;
            job.chunk[p] = chunk;
            tasks += (n[p] + chunk - 1) / chunk;
        }
    }
    job.first[parts] = tasks;
    float *scratch = 0;
    if (scratch_floats) {
        scratch = (float *)aligned_alloc(64, ((scratch_floats * sizeof(float)) + 63) & ~(size_t)63);
        float *cursor = scratch;
        for (int p = 0; p < parts; p++) if (job.scratch[p]) {
            job.scratch[p] = cursor;
            cursor += (job.first[p + 1] - job.first[p]) * m * n[p];
        }
    }
    if (tasks > 0) lpc_parallel_for(tasks, kn_multi_task, &job);
    for (int p = 0; p < parts; p++) if (job.scratch[p])
        sum_partials_avx512(job.scratch[p], y[p], m * n[p], job.first[p + 1] - job.first[p]);
    free(scratch);
}

static void gemv_kn(const float *x, const void *w, float *y, int64_t m, int64_t n, int64_t k, int wt) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) { memset(y, 0, (size_t)(m * n) * sizeof(float)); return; }
    gemv_kn_multi(x, &w, &y, &n, 1, m, k, wt);
}

void lpc_gemv_kn_multi_f32(const float *x, const float *const *w, float *const *y, const int64_t *n, int64_t parts, int64_t m, int64_t k) {
    gemv_kn_multi(x, (const void *const *)w, y, n, (int)parts, m, k, WT_F32);
}
void lpc_gemv_kn_multi_f16(const float *x, const uint16_t *const *w, float *const *y, const int64_t *n, int64_t parts, int64_t m, int64_t k) {
    gemv_kn_multi(x, (const void *const *)w, y, n, (int)parts, m, k, WT_F16);
}
void lpc_gemv_kn_multi_bf16(const float *x, const uint16_t *const *w, float *const *y, const int64_t *n, int64_t parts, int64_t m, int64_t k) {
    gemv_kn_multi(x, (const void *const *)w, y, n, (int)parts, m, k, WT_BF16);
}

void lpc_gemv_kn_f32(const float *x, const float *w, float *y, int64_t m, int64_t n, int64_t k) { gemv_kn(x, w, y, m, n, k, WT_F32); }
void lpc_gemv_kn_f16(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k) { gemv_kn(x, w, y, m, n, k, WT_F16); }
void lpc_gemv_kn_bf16(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k) { gemv_kn(x, w, y, m, n, k, WT_BF16); }
void lpc_gemv_kn_i16(const float *x, const uint16_t *w, float *y, int64_t m, int64_t n, int64_t k) { gemv_kn(x, w, y, m, n, k, WT_I16); }
void lpc_gemv_kn_multi_i16(const float *x, const uint16_t *const *w, float *const *y, const int64_t *n, int64_t parts, int64_t m, int64_t k) {
    gemv_kn_multi(x, (const void *const *)w, y, n, (int)parts, m, k, WT_I16);
}
void lpc_gemv_kn_f24(const float *x, const lpc_f24 *w, float *y, int64_t m, int64_t n, int64_t k) { gemv_kn(x, w, y, m, n, k, WT_F24); }
void lpc_gemv_kn_multi_f24(const float *x, const lpc_f24 *const *w, float *const *y, const int64_t *n, int64_t parts, int64_t m, int64_t k) {
    gemv_kn_multi(x, (const void *const *)w, y, n, (int)parts, m, k, WT_F24);
}

// Reference twins over weights [k, n] (DEFINE_GEMV_REFERENCE above).
DEFINE_GEMV_REFERENCE(lpc_gemv_kn_f32_reference, float, f32_identity, 1, n)
DEFINE_GEMV_REFERENCE(lpc_gemv_kn_f16_reference, uint16_t, half_to_float, 1, n)
DEFINE_GEMV_REFERENCE(lpc_gemv_kn_i16_reference, uint16_t, i16_to_float, 1, n)
DEFINE_GEMV_REFERENCE(lpc_gemv_kn_bf16_reference, uint16_t, bf16_to_float, 1, n)

// MARK: - Bandwidth probe

typedef struct { const uint8_t *p; int64_t n, chunk; _Atomic uint64_t sum; } read_job;

__attribute__((target("avx2")))
static uint64_t read_range_avx2(const uint8_t *p, int64_t n) {
    __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int64_t i = 0;
    for (; i + 128 <= n; i += 128) {
        acc0 = _mm256_xor_si256(acc0, _mm256_loadu_si256((const __m256i *)(p + i)));
        acc1 = _mm256_xor_si256(acc1, _mm256_loadu_si256((const __m256i *)(p + i + 32)));
        acc2 = _mm256_xor_si256(acc2, _mm256_loadu_si256((const __m256i *)(p + i + 64)));
        acc3 = _mm256_xor_si256(acc3, _mm256_loadu_si256((const __m256i *)(p + i + 96)));
    }
    acc0 = _mm256_xor_si256(_mm256_xor_si256(acc0, acc1), _mm256_xor_si256(acc2, acc3));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, acc0);
    uint64_t s = out[0] ^ out[1] ^ out[2] ^ out[3];
    for (; i < n; i++) s += p[i];
    return s;
}

static void read_task(void *ctx, int64_t t) {
    read_job *j = (read_job *)ctx;
    int64_t a = t * j->chunk, b = a + j->chunk;
    if (b > j->n) b = j->n;
    if (a >= b) return;
    uint64_t s;
    if (lpc_simd_level() >= 2) s = read_range_avx2(j->p + a, b - a);
    else { s = 0; for (int64_t i = a; i < b; i += 8) s += j->p[i]; }
    atomic_fetch_add(&j->sum, s);
}

uint64_t lpc_read_bytes(const void *p, int64_t n) {
    read_job job;
    job.p = (const uint8_t *)p;
    job.n = n;
    int64_t tasks = (int64_t)pool_threads * 8;
    job.chunk = ((n + tasks - 1) / tasks + 63) & ~(int64_t)63;
    atomic_store(&job.sum, 0);
    lpc_parallel_for((n + job.chunk - 1) / job.chunk, read_task, &job);
    return atomic_load(&job.sum);
}

// MARK: - OpenBLAS core type

// OpenBLAS 0.3.21 (Debian) does not know Zen 4 and falls back to its SSE3 "Prescott" kernels
// (~15 GFLOP/s instead of ~100). Its DYNAMIC_ARCH build picks the core type again when asked.
extern char *gotoblas_corename(void) __attribute__((weak));
extern void gotoblas_dynamic_init(void) __attribute__((weak));
extern void gotoblas_dynamic_quit(void) __attribute__((weak));

const char *lpc_tune_openblas(void) {
    static const char *result = 0;
    if (result) return result;
    result = "unchanged";
    if (!gotoblas_corename || !gotoblas_dynamic_init || !gotoblas_dynamic_quit) return result;
    const char *core = gotoblas_corename();
    if (getenv("OPENBLAS_CORETYPE") || !core || strcmp(core, "Prescott") != 0) return result = core;
    int level = lpc_simd_level();
    if (level < 2) return result = core;
    setenv("OPENBLAS_CORETYPE", level == 3 ? "SkylakeX" : "Haswell", 1);
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    return result = gotoblas_corename();
}
