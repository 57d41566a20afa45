#ifndef LPC_ELEMENTWISE_H
#define LPC_ELEMENTWISE_H
#include <stdint.h>

/// out[i] = silu(g[i]) · u[i] = g[i] · u[i] / (1 + exp(-g[i])) for i < n: AVX-512 with a
/// polynomial exp (relative error ~2e-7), else the scalar twin.
void lpc_swiglu(const float *g, const float *u, float *out, int64_t n);
void lpc_swiglu_reference(const float *g, const float *u, float *out, int64_t n);

#endif
