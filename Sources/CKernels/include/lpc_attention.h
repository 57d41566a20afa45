#ifndef LPC_ATTENTION_H
#define LPC_ATTENTION_H
#include <stdint.h>

/// Decode attention for one query row: out[dv] = softmax(scale · q·Kᵀ + mask) · V over t cached
/// positions. q [d]; k [t] rows of d floats, row stride d; v likewise with dv; mask (may be NULL)
/// read at mask[i · mask_stride]; scratch holds t floats. A row whose scores are all -inf gives
/// NaN (or 0 with nan_to_zero), as Softmax then MatMul would. AVX-512 when d and dv are multiples
/// of 16 up to 256, else a scalar path (also the reference twin).
void lpc_attention_row(const float *q, const float *k, const float *v, int64_t t, int64_t d, int64_t dv,
                       const float *mask, int64_t mask_stride, float scale, float *out, float *scratch, int nan_to_zero);
void lpc_attention_row_reference(const float *q, const float *k, const float *v, int64_t t, int64_t d, int64_t dv,
                                 const float *mask, int64_t mask_stride, float scale, float *out, float *scratch, int nan_to_zero);

#endif
