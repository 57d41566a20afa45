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

/// One query row of a partial attention over a block of positions (flash-decoding): the block's
/// running max of the scores, Σ exp(s - max) and the unnormalised Σ exp(s - max) · v. Blocks of
/// one row are merged by `lpc_attention_merge`. An all -inf block gives max -inf, sum 0, acc 0.
typedef struct {
    const float *q;    // [d]
    const float *mask; // additive mask at the block's first position, read at mask[i · mask_stride]; NULL = none
    float *acc;        // [dv] out
    float max, sum;    // out
} lpc_attention_partial_row;

/// `rows` query rows that share one K/V head (the heads of a GQA group, and/or several query
/// positions) against positions [0, t) of k [t, d] (row stride d) and v [t, dv]. Each K and V row
/// is read once for all query rows. scratch holds rows · t floats. AVX-512 when d and dv are
/// multiples of 16 up to 128, else the reference twin.
void lpc_attention_partial(lpc_attention_partial_row *rows, int64_t nrows, const float *k, const float *v, int64_t t,
                           int64_t d, int64_t dv, int64_t mask_stride, float scale, float *scratch);
void lpc_attention_partial_reference(lpc_attention_partial_row *rows, int64_t nrows, const float *k, const float *v,
                                     int64_t t, int64_t d, int64_t dv, int64_t mask_stride, float scale, float *scratch);

/// out[dv] = softmax-weighted V of one query row from its `nparts` blocks. NaN when every score
/// is -inf or a score is NaN (0 with nan_to_zero), as `lpc_attention_row` gives.
void lpc_attention_merge(const lpc_attention_partial_row *parts, int64_t nparts, int64_t dv, float *out, int nan_to_zero);

#endif
