#ifndef LPC_PREFILL_ATTENTION_H
#define LPC_PREFILL_ATTENTION_H
#include <stdint.h>

/// kt[c · ldkt + j] = k[j · d + c] for j < t, c < d, and 0 for t ≤ j < ldkt: one K head [t, d]
/// transposed to [d, ldkt] (keys along rows, zero-padded) for `lpc_attention_rows`.
void lpc_transpose_keys(const float *k, int64_t t, int64_t d, float *kt, int64_t ldkt);

/// Prefill attention for `rows` query rows of one head sharing one K/V head. Row i of
/// q [rows, d] attends to keys lo[i] ..< hi[i] (its live range; the caller passes 0 ..< t for
/// a row with none) exactly as `lpc_attention_row` would over that range:
///   out[i, :dv] = softmax(scale · q_i·Kᵀ + mask_i) · V   over those keys,
/// with mask_i[j] = mask[i · mask_row_stride + j · mask_stride] (mask may be NULL); a row whose
/// scores are all -inf gives NaN (0 with nan_to_zero, which also zeroes NaN weights).
/// kt: K transposed, [d, ldkt] (`lpc_transpose_keys`, ldkt a multiple of 32 ≥ t); v [t, dv].
/// scratch: rows · ldkt floats. AVX-512 with 4 rows × 32 keys (scores) and 4 rows × 64 values
/// (weighted sum) register tiles when dv is a multiple of 16; else each row goes to
/// `lpc_attention_row` (kt unused).
void lpc_attention_rows(const float *q, int64_t rows, const float *k, const float *kt, int64_t ldkt, const float *v,
                        int64_t t, int64_t d, int64_t dv, const float *mask, int64_t mask_row_stride, int64_t mask_stride,
                        const int64_t *lo, const int64_t *hi, float scale, float *out, float *scratch, int nan_to_zero);

#endif
