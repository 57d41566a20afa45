#ifndef LPC_ELEMENTWISE_H
#define LPC_ELEMENTWISE_H
#include <stdint.h>
// Pulled in here so builds with a cached CKernels module see the new header.
#include "lpc_memory.h"
#include "lpc_prefill_attention.h"

/// out[i] = silu(g[i]) · u[i] = g[i] · u[i] / (1 + exp(-g[i])) for i < n: AVX-512 with a
/// polynomial exp (relative error ~2e-7), else the scalar twin.
void lpc_swiglu(const float *g, const float *u, float *out, int64_t n);
void lpc_swiglu_reference(const float *g, const float *u, float *out, int64_t n);

/// out[i] = a[i] + b[i] for i < n (AVX-512, else the scalar twin; bit-identical).
void lpc_add_f32(const float *a, const float *b, float *out, int64_t n);
void lpc_add_f32_reference(const float *a, const float *b, float *out, int64_t n);

/// One row of the rotate-half rotary embedding: out[j] = x[j]·c[j] + r[j]·s[j] for j < d, with
/// r = concat(-x[h..<d], x[0..<d-h]) (rotate_half, h = the half size, 0 ≤ h ≤ d). x, c, s, out [d].
/// AVX-512 without FMA contraction, so bit-identical to the scalar twin.
void lpc_rotate_half_row(const float *x, const float *c, const float *s, float *out, int64_t d, int64_t h);
void lpc_rotate_half_row_reference(const float *x, const float *c, const float *s, float *out, int64_t d, int64_t h);

/// out[i] = w[i] · (x[i] · inv) for i < d: RMSNorm's scaling of one row (bit-identical twins).
void lpc_scale_by_weight_row(const float *x, const float *w, float inv, float *out, int64_t d);
void lpc_scale_by_weight_row_reference(const float *x, const float *w, float inv, float *out, int64_t d);

#endif
